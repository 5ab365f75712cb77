// The backing-store interface of Shoal maps: what a member reads through, writes through or writes
// behind to. RocksDbStore is the embedded default; users implement MapStore to put a map in front
// of their own database (SQL, a key-value service, ...).
//
// Threading contract: every method BLOCKS until the store has answered, so the member calls them
// only from its blocking-work thread pool (boost::asio::thread_pool), never from an event loop.
// Implementations must be thread-safe: calls for different partitions, and reads concurrent with
// writes, arrive from several pool threads at once. Writes to one key are issued in order by the
// member (a partition has one owner), so a store need not order them itself.
//
// Outcomes are values: an absent key is an empty optional, a failure is a StoreError. Methods do
// not throw for store failures. Views in arguments are valid only for the duration of the call.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/persistence/store_result.h"

namespace shoal::persistence {

// Entry metadata persisted beside the value, so that a restarted member or a read-through keeps
// CAS versions and expiry. A store that cannot keep it may return it zeroed.
struct StoredMeta {
  uint64_t version = 0;          // the entry version (1 on creation, +1 per write)
  int64_t expirationTimeMs = 0;  // Unix ms after which the entry is expired; 0 = never
  uint8_t flags = 0;             // opaque to the store, reserved for the member (value encoding)

  friend bool operator==(const StoredMeta&, const StoredMeta&) = default;
};

struct StoredValue {
  std::string value;
  StoredMeta meta;
};

// One key of one map, with the partition it belongs to (a SQL store may ignore the partition).
struct KeyRef {
  uint32_t partition = 0;
  std::string_view key;
};

// One write of a batch: a store, or an erase when `value` is empty.
struct StoreWrite {
  std::string_view map;
  uint32_t partition = 0;
  std::string_view key;
  std::optional<std::string_view> value;  // nullopt: erase the key
  StoredMeta meta;                        // ignored for an erase
};

struct ListedKey {
  uint32_t partition = 0;
  std::string key;

  friend bool operator==(const ListedKey&, const ListedKey&) = default;
};

// A page of listKeys. Continue with `nextCursor`; an empty `nextCursor` means the listing is done
// (the last page may be empty). Cursors are opaque and belong to the store that produced them.
struct KeyPage {
  std::vector<ListedKey> keys;
  std::string nextCursor;
};

// One entry seen by forEach; views are valid only during the visitor call.
struct StoredEntryView {
  std::string_view map;
  std::string_view key;
  std::string_view value;
  StoredMeta meta;
};
// Return true to continue, false to stop early (forEach then returns success).
using EntryVisitor = std::function<bool(const StoredEntryView&)>;

class MapStore {
 public:
  virtual ~MapStore() = default;

  // The stored value and metadata of `key`, or nullopt when the store does not have it.
  virtual StoreResult<std::optional<StoredValue>> load(std::string_view map, uint32_t partition,
                                                       std::string_view key) = 0;
  // One result per key, in the order of `keys`. Default: one load() per key.
  virtual StoreResult<std::vector<std::optional<StoredValue>>> loadMany(std::string_view map,
                                                                        std::span<const KeyRef> keys);

  // Stores (inserts or replaces) one entry. Durable when it returns, as far as the store promises.
  virtual StoreResult<void> store(std::string_view map, uint32_t partition, std::string_view key,
                                  std::string_view value, const StoredMeta& meta) = 0;
  // Applies stores and erases, possibly of several maps and partitions (the write-behind queue
  // sends such batches). Atomic where the store can do it (RocksDbStore: one write batch); the
  // default applies the writes one by one and stops at the first failure.
  virtual StoreResult<void> storeMany(std::span<const StoreWrite> batch);

  // Erases one key; erasing an absent key succeeds.
  virtual StoreResult<void> erase(std::string_view map, uint32_t partition, std::string_view key) = 0;
  // Default: one erase() per key, stopping at the first failure.
  virtual StoreResult<void> eraseMany(std::string_view map, std::span<const KeyRef> keys);

  // Keys of `map` in `partition` (or in every partition when nullopt), at most `limit` per page,
  // starting after `cursor` (empty: from the beginning). Keys written during a listing may or may
  // not appear; keys present for the whole listing appear exactly once.
  virtual StoreResult<KeyPage> listKeys(std::string_view map, std::optional<uint32_t> partition,
                                        std::string_view cursor, uint32_t limit) = 0;

  // Visits every entry of every map in `partition`, with its metadata: restart recovery and
  // migration read a partition this way.
  virtual StoreResult<void> forEach(uint32_t partition, const EntryVisitor& visit) = 0;

  // Removes every entry of every map in `partition` (the partition left this member).
  virtual StoreResult<void> dropPartition(uint32_t partition) = 0;

  // Makes every write that returned so far durable (for stores that defer it). Default: nothing.
  virtual StoreResult<void> sync() { return {}; }
};

}  // namespace shoal::persistence

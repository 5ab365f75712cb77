// The records of one map on one shard: one open-addressing table per partition, compact entries
// (one allocation holding header, key and value), TTL / max-idle expiry (lazy on access plus an
// incremental sweep), and sampled LRU / LFU eviction against per-map entry and byte limits.
// Not thread-safe: a MapRecords is owned by the shard (loop thread) that owns its partitions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::node {

using PartitionId = uint32_t;

// Time source in milliseconds since the Unix epoch; tests inject a manual one.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t nowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowMs() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t startMs = 1'700'000'000'000) : now_(startMs) {}
  int64_t nowMs() const override { return now_; }
  void advance(int64_t ms) { now_ += ms; }

 private:
  int64_t now_;
};

enum class EvictionPolicy { NONE, LRU, LFU };

struct MapConfig {
  uint64_t maxEntries = 0;                        // entries of this map on this member; 0 = unbounded
  uint64_t maxBytes = 0;                          // entry memory of this map on this member; 0 = unbounded
  EvictionPolicy eviction = EvictionPolicy::LRU;  // used when a limit is set; NONE rejects writes
  int64_t defaultTtlMs = 0;                       // applied when a write says -1; 0 = never expires
  int64_t defaultMaxIdleMs = 0;                   // applied when a write says -1; 0 = none
  uint32_t evictionSampleSize = 16;               // entries sampled per eviction (Redis uses 5..10)
};

enum class EntryEventType { ADDED, UPDATED, REMOVED, EXPIRED, EVICTED };

struct EntryMeta {
  uint64_t version = 0;  // 1 on creation, +1 on every write
  int64_t creationTimeMs = 0;
  int64_t updateTimeMs = 0;
  int64_t lastAccessTimeMs = 0;
  int64_t expirationTimeMs = 0;  // 0: never (min of TTL deadline and idle deadline)
  int64_t ttlMs = 0;
  int64_t maxIdleMs = 0;
  uint64_t hits = 0;
};

struct EntryView {
  std::string key;
  std::string value;
  EntryMeta meta;
};

// What happened to an entry, for listeners. Views point into memory valid only during the call.
struct EntryEvent {
  EntryEventType type;
  std::string_view key;
  std::string_view value;     // new value (ADDED / UPDATED), empty otherwise
  std::string_view oldValue;  // previous value (UPDATED / REMOVED / EXPIRED / EVICTED)
  uint64_t version;           // version after the change (removals: the removed entry's)
};
using EventSink = std::function<void(const EntryEvent&)>;

// What a persistent store must do after a change; produced only when a change sink is set.
// Separate from listener events: evictions produce no change (the persisted copy stays), expiries
// do (ERASE). Views point into memory valid only during the call; the sink must not call back into
// the MapRecords that produced the change.
struct RecordChange {
  enum class Kind { STORE, ERASE };
  Kind kind;
  PartitionId partition;
  std::string_view key;
  std::string_view value;    // STORE: the entry's value now; ERASE: empty
  uint64_t version;          // STORE: the entry's version now; ERASE: the removed entry's version
  int64_t expirationTimeMs;  // STORE: absolute TTL deadline, 0 = never (the idle deadline is not
                             // included: idle expiry is a memory policy, restore restarts it)
  int64_t ttlMs;             // STORE: the entry's TTL setting (0 none); ERASE: 0
  int64_t maxIdleMs;         // STORE: the entry's max-idle setting (0 none); ERASE: 0
};
using ChangeSink = std::function<void(const RecordChange&)>;

struct WriteSpec {
  std::string_view value;
  int64_t ttlMs = -1;      // -1: map default; 0: never; >0 ms
  int64_t maxIdleMs = -1;  // -1: map default; 0: none; >0 ms
};

enum class WriteMode {
  ALWAYS,      // put / set
  IF_ABSENT,   // putIfAbsent
  IF_PRESENT,  // replace
};

struct WriteResult {
  bool applied = false;
  bool hadPrevious = false;   // an unexpired entry existed before
  uint64_t version = 0;       // version after the write (or of the existing entry if not applied)
  bool rejectedFull = false;  // the map is full and its eviction policy is NONE
};

class MapRecords {
 public:
  MapRecords(std::string name, MapConfig config, uint32_t partitionCount, const Clock& clock);
  ~MapRecords();
  MapRecords(const MapRecords&) = delete;
  MapRecords& operator=(const MapRecords&) = delete;

  const std::string& name() const { return name_; }
  const MapConfig& config() const { return config_; }
  void setConfig(const MapConfig& config);  // takes effect on the next write / sweep
  void setEventSink(EventSink sink);        // empty function: no events are produced
  // Change capture for persistence, called synchronously in the order changes happen: STORE after
  // every applied write and after setTtl; ERASE after removals, clear() (every entry it drops) and
  // expiry (lazy, swept or found by eviction sampling). Nothing on eviction. Empty: none.
  void setChangeSink(ChangeSink sink);
  const ChangeSink& changeSink() const { return changeSink_; }

  // Reads. Expired entries are removed on sight (EXPIRED event) and reported absent.
  // get/getEntry count as an access (hits +1, lastAccessTime = now); containsKey does not.
  // `value` out-params are assigned only when the entry is present.
  bool get(PartitionId p, std::string_view key, std::string* value);
  std::optional<EntryView> getEntry(PartitionId p, std::string_view key);
  bool containsKey(PartitionId p, std::string_view key);
  // The metadata of a live entry without counting an access (merges compare versions with it).
  std::optional<EntryMeta> peekMeta(PartitionId p, std::string_view key);

  // Writes. `previous` (may be null) receives the value that was there before, if any.
  // A write that would exceed maxEntries / maxBytes first evicts (EVICTED events) by the policy.
  WriteResult write(PartitionId p, std::string_view key, const WriteSpec& spec, WriteMode mode,
                    std::string* previous);
  // Compare-and-set: applied only when the current value equals `expected` / version equals.
  WriteResult replaceIfValue(PartitionId p, std::string_view key, std::string_view expected,
                             const WriteSpec& spec);
  WriteResult replaceIfVersion(PartitionId p, std::string_view key, uint64_t expectedVersion,
                               const WriteSpec& spec);
  // Removal; `previous` (may be null) receives the removed value. Returns true if removed.
  bool remove(PartitionId p, std::string_view key, std::string* previous);
  bool removeIfValue(PartitionId p, std::string_view key, std::string_view expected);
  bool removeIfVersion(PartitionId p, std::string_view key, uint64_t expectedVersion);
  // Sets (ttlMs > 0) or clears (0) the TTL of an existing entry; not a write (version unchanged).
  bool setTtl(PartitionId p, std::string_view key, int64_t ttlMs);
  // Removes every entry (REMOVED events when a sink is set); returns how many.
  uint64_t clear();

  // Inserts or replaces `key` as loaded from a store: the version is kept exactly, the entry expires
  // at `expirationTimeMs` (0: never; already past: not inserted, returns false), ttlMs / maxIdleMs as
  // given (-1: map default). Creation/update/access times are now. Emits neither events nor changes.
  // Evicts like a write when limits are exceeded (EVICTED events are emitted as usual; an expired
  // entry found while sampling is removed as EXPIRED). An entry already in memory under `key` is
  // replaced silently, expired or not. Returns false, changing nothing, also when the map is full
  // and its eviction policy is NONE. A later write continues from the restored version.
  bool restore(PartitionId p, std::string_view key, std::string_view value, uint64_t version,
               int64_t expirationTimeMs, int64_t ttlMs, int64_t maxIdleMs);

  // Removes every entry of the partitions `include` accepts, like clear(); returns how many.
  uint64_t clearWhere(const std::function<bool(PartitionId)>& include);
  uint64_t partitionSize(PartitionId p) const;  // live and not yet swept entries of `p`

  // Replication (cluster). Passes the state of up to `limit` entries of partition `p` to `fn` as
  // STORE changes, from `cursor` (0 starts); returns the next cursor, 0 when done. Every entry
  // present for the whole iteration is passed at least once. Cursors fit in 48 bits.
  uint64_t scanPartition(PartitionId p, uint64_t cursor, uint32_t limit, const ChangeSink& fn);
  // Anti-entropy: an order-independent digest of partition `p` (a sum of a hash of key, value and
  // version per live entry; left out: entries with a max-idle, whose expiry follows reads that
  // only the primary sees, and those expiring before `expiringBeforeMs`, which may be swept on one
  // replica only) and the number of entries it covers.
  struct Digest {
    uint64_t sum = 0;
    uint64_t entries = 0;
    bool operator==(const Digest&) const = default;
  };
  Digest digest(PartitionId p, int64_t expiringBeforeMs);
  // Applies a change made on the partition's primary: STORE restores the entry exactly (version,
  // deadlines), ERASE removes it. Emits no events; passes the change on to the change sink.
  void applyReplicated(const RecordChange& change);
  // Drops every entry of `p` without events or changes (a backup about to be filled again, or a
  // partition this member no longer holds).
  void dropPartition(PartitionId p);

  uint64_t size() const { return entries_; }
  uint64_t bytes() const { return bytes_; }  // memory held by entries and tables

  // Removes up to `budget` expired entries found by an incremental sweep; returns how many.
  // The owner calls this periodically (e.g. every 100 ms) so expired entries do not linger.
  size_t sweepExpired(size_t budget);

  // Cursor iteration. Cursor 0 starts; a returned cursor of 0 means done. Every entry present for
  // the whole iteration is returned at least once (a table resize mid-iteration restarts the
  // affected partition, so duplicates are possible, misses are not). Never more than `limit`.
  struct ScanItem {
    std::string key;
    std::string value;
  };
  uint64_t scan(uint64_t cursor, uint32_t limit, bool withValues, std::vector<ScanItem>* out);

 private:
  struct Partition;
  Partition* partitionAt(PartitionId p, bool create);
  int64_t findLive(Partition& part, std::string_view key, uint64_t hash, int64_t nowMs);
  WriteResult applyWrite(Partition& part, std::string_view key, uint64_t hash, int64_t slot,
                         const WriteSpec& spec, WriteResult result, int64_t nowMs);
  // makeRoom for writing `fresh` (replacing `old`, or null); frees `fresh` when there is no room.
  bool makeRoomFor(Partition& part, uint8_t* old, uint8_t* fresh, int64_t nowMs);
  bool makeRoom(uint64_t addEntries, int64_t addBytes, const uint8_t* keep, int64_t nowMs,
                uint64_t maxEvictions);
  bool evictOne(const uint8_t* keep, int64_t nowMs);
  Partition* randomNonEmptyPartition();
  void placeNew(Partition& part, uint64_t hash, uint8_t* entry);
  void eraseAt(Partition& part, size_t slot, EntryEventType why, bool withEvent = true);
  // Frees every entry of `part` and the partition itself (no events, no changes).
  void freePartition(std::unique_ptr<Partition>& part);
  void emitStore(const Partition& part, const uint8_t* entry);
  void resizeTable(Partition& part, uint32_t capacity);
  void maybeShrink(Partition& part);
  void touch(uint8_t* entry, int64_t nowMs);
  EntryMeta metaOf(uint8_t* entry) const;
  uint32_t secondsOf(int64_t nowMs) const;
  uint64_t nextRandom();

  std::string name_;
  MapConfig config_;
  const Clock& clock_;
  EventSink sink_;
  ChangeSink changeSink_;
  std::vector<std::unique_ptr<Partition>> partitions_;  // created lazily
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
  uint64_t sweepCursor_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  int64_t epochMs_;               // entry times are whole seconds since this instant (map creation)
  uint64_t tableGeneration_ = 0;  // every table (re)build takes the next value; scan cursors keep it
};

}  // namespace shoal::node

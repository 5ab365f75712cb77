// WriteBehindQueue's private state: the in-memory mirror of the pending log records, the order in
// which they fall due, and the dead-letter key set. The log (RocksDB) is the truth; memory is
// rebuilt from it by open().
//
// Locking. `logMutex` orders the log: every call that writes the log or changes memory holds it
// from its decision to its memory update, so the log sees writes of a key in the order memory
// does (a flush can never delete a record that a concurrent enqueue just replaced), and only its
// holder mutates state. `mutex` guards memory against readers (flush picking entries, pending(),
// pendingWrite()); it is taken briefly and never held across I/O. A holder of `logMutex` may read
// state without `mutex`: nobody else writes it, except for one exception. A flush into the log's
// own store decides under `logMutex`, marks its entries `flushing`, and writes (store write and
// record removal in one batch) with no lock held, so enqueues are not stalled by it; an enqueue
// that meets a `flushing` key waits (`flushWritten`) until that write is done, so its record lands
// after the removal. The flush then removes its entries under `mutex` alone; they are nodes no
// enqueue holds. Order: flushMutex, logMutex, mutex.
//
// Memory layout, chosen for the enqueue path (one hash lookup and one encoded record per write):
// `entries` is keyed by the log key; an entry keeps the record exactly as logged (value at its
// end) behind a shared pointer, so a flush takes it without copying. Map, partition and key are
// decoded from the node's key when needed. Since the delay is the same for every write of a
// queue, entries fall due in the order they were first enqueued: `fifo` holds them in that order
// (a slot is cleared, not erased, when its entry leaves), and only entries off that order — ones
// backing off after a failure, replayed dead letters, a clock that went back — are kept sorted in
// `scheduled`. Node pointers are stable (unordered_map never moves its nodes), and only a holder
// of `logMutex` erases a node, so a flush (one at a time) can hold pointers to what it picked.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "key_codec.h"
#include "rocksdb_store_impl.h"
#include "shoal/persistence/write_behind_queue.h"
#include "write_behind_log.h"

namespace shoal::persistence {

inline constexpr uint64_t NO_SLOT = std::numeric_limits<uint64_t>::max();

struct PendingEntry {
  uint64_t seq = 0;                           // the key's latest enqueue (its generation)
  std::shared_ptr<const std::string> record;  // as logged; null: being enqueued, not visible yet
  uint32_t valueOffset = 0;                   // the value's start in `record`
  bool erase = false;
  StoredMeta meta;
  int64_t firstEnqueuedMs = 0;
  int64_t dueMs = 0;
  uint32_t attempts = 0;    // failed writes since the key was last written
  uint64_t slot = NO_SLOT;  // absolute index in `fifo`, or NO_SLOT when in `scheduled`
  size_t staged = 0;        // enqueue in progress: 1 + index of the write about to replace this
  bool flushing = false;    // a flush into the log's own store is writing it (see State)

  std::optional<std::string_view> value() const {
    if (erase) return std::nullopt;
    return std::string_view(*record).substr(valueOffset);
  }
};

using EntryNode = std::pair<const std::string, PendingEntry>;  // log key, entry

// One pending write picked for a flush, written to the target without `mutex` held.
struct FlushItem {
  EntryNode* node = nullptr;
  uint64_t seq = 0;
  std::shared_ptr<const std::string> record;  // keeps the value alive while the target writes it
  std::optional<std::string_view> value;
  StoredMeta meta;
  std::optional<StoreError> error;  // set when the target refused it
};

struct WriteBehindQueue::State {
  RocksDbStore::Impl& log;
  MapStore& target;
  bool targetIsLog;  // the target is `log` itself: a flush stores and removes in one batch
  WriteBehindOptions options;
  NowMs clock;
  std::string pendingPrefix;
  std::string deadPrefix;
  rocksdb::WriteOptions enqueueWrite;  // sync = options.sync

  std::mutex flushMutex;  // one flush at a time; taken before `logMutex`
  std::mutex logMutex;
  mutable std::mutex mutex;
  std::condition_variable flushWritten;                   // with `mutex`: `flushing` marks were cleared
  uint64_t flushesWritten = 0;                            // bumped (under `mutex`) each time they are
  std::unordered_map<std::string, PendingEntry> entries;  // by log key (pendingPrefix | entry key)
  struct Slot {
    int64_t dueMs = 0;
    EntryNode* node = nullptr;  // null: the entry left or moved to `scheduled`
  };
  std::deque<Slot> fifo;  // fresh entries in enqueue order, so by due time
  uint64_t fifoBase = 0;  // absolute index of fifo.front()
  int64_t fifoLastDueMs = std::numeric_limits<int64_t>::min();
  std::set<std::pair<int64_t, EntryNode*>> scheduled;  // (dueMs, node): entries off the fifo order
  std::atomic<uint64_t> visible{0};  // entries with a record (pending(): read without the mutex)
  uint64_t retrying = 0;             // entries with attempts > 0 (backing off after a failure)
  std::set<std::string> deadKeys;
  // Dead letters made obsolete by a later successful write while the log could not be updated;
  // their records are deleted by the next flush that can write, and are invisible meanwhile.
  std::set<std::string> obsoleteDead;
  uint64_t lastSeq = 0;

  State(RocksDbStore::Impl& log, MapStore& target, bool targetIsLog, WriteBehindOptions options, NowMs clock);
  ~State();

  StoreResult<void> recover();
  StoreResult<std::vector<EnqueueOutcome>> enqueueMany(std::span<const StoreWrite> writes);
  enum class Pick {
    DUE,         // due ones, plus whole batches of the oldest still in their first delay
    SKIP_DELAY,  // every entry not waiting out a backoff
    EVERYTHING,  // every pending entry
  };
  // Entries to write now; the nodes stay valid until this flush removes them.
  std::vector<EntryNode*> dueEntries(int64_t nowMs, Pick pick) const;
  StoreResult<void> flushEntries(const std::vector<EntryNode*>& nodes, FlushReport& report);
  StoreResult<void> flushBatch(std::vector<FlushItem>& items, FlushReport& report);
  StoreResult<void> flushIntoLog(std::vector<FlushItem>& items, FlushReport& report);
  void writeToTarget(std::vector<FlushItem>& items);
  // After a flush's target write: removes what was written, backs off or dead-letters the rest.
  StoreResult<void> settle(std::vector<FlushItem>& items, FlushReport& report, rocksdb::WriteBatch cleanup);
  int64_t backoffMs(uint32_t attempts) const;
  int64_t minBackoffPendingMs() const;
  // Every visible entry, oldest (due first) first; callers hold `mutex` or `logMutex`.
  std::vector<EntryNode*> ordered() const;

  std::string_view entryKeyOf(const EntryNode& node) const {
    return std::string_view(node.first).substr(pendingPrefix.size());
  }
  codec::DecodedKey decoded(const EntryNode& node) const {
    return *codec::decodeStoreKey(entryKeyOf(node));  // checked when it was enqueued or loaded
  }
  std::string logKeyOf(uint32_t partition, std::string_view map, std::string_view key) const;

  // Memory updates; callers hold `logMutex` and `mutex`.
  EntryNode& insert(std::string logKey, PendingEntry entry);
  void remove(EntryNode& node);
  void place(EntryNode& node);  // into fifo or scheduled, by its dueMs
  void unplace(EntryNode& node);
  void reschedule(EntryNode& node, int64_t dueMs);
  void setAttempts(PendingEntry& entry, uint32_t attempts);
  // The log record of a pending entry with `attempts`, `deadAtMs` and `lastError` set.
  std::string deadRecordOf(const PendingEntry& entry, int64_t deadAtMs, const StoreError& error) const;
};

// Encodes the pending record of a write; `valueOffset` receives where its value starts.
std::shared_ptr<const std::string> pendingRecord(const wblog::LogRecord& header,
                                                 std::optional<std::string_view> value,
                                                 uint32_t& valueOffset);

}  // namespace shoal::persistence

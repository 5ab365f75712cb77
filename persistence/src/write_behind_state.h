// WriteBehindQueue's private state: the in-memory mirror of the pending log records, a due-time
// index, and the dead-letter key set. The log (RocksDB) is the truth; memory is rebuilt from it
// by open(). `mutex` orders every log write with the memory update that goes with it, so a flush
// can never delete a log record that a concurrent enqueue just replaced.
#pragma once

#include <rocksdb/write_batch.h>

#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "rocksdb_store_impl.h"
#include "shoal/persistence/write_behind_queue.h"
#include "write_behind_log.h"

namespace shoal::persistence {

struct PendingEntry {
  uint64_t seq = 0;
  uint32_t partition = 0;
  std::string map;
  std::string key;
  std::optional<std::string> value;  // nullopt: erase
  StoredMeta meta;
  int64_t firstEnqueuedMs = 0;
  int64_t dueMs = 0;
  uint32_t attempts = 0;  // failed writes since the key was last written
};

// A copy of one pending write taken for a flush, written to the target without the lock held.
struct FlushItem {
  std::string entryKey;
  PendingEntry entry;
  std::optional<StoreError> error;  // set when the target refused it
};

struct WriteBehindQueue::State {
  RocksDbStore::Impl& log;
  MapStore& target;
  WriteBehindOptions options;
  NowMs clock;
  std::string pendingPrefix;
  std::string deadPrefix;

  std::mutex flushMutex;  // one flush at a time; taken before `mutex`
  mutable std::mutex mutex;
  std::unordered_map<std::string, PendingEntry> entries;      // by entry key (RocksDbStore key)
  std::map<std::pair<int64_t, uint64_t>, std::string> byDue;  // (dueMs, seq) -> entry key
  std::set<std::string> deadKeys;
  // Dead letters made obsolete by a later successful write while the log could not be updated;
  // their records are deleted by the next flush that can write, and are invisible meanwhile.
  std::set<std::string> obsoleteDead;
  uint64_t lastSeq = 0;
  uint64_t retrying = 0;  // entries with attempts > 0 (backing off after a failure)

  State(RocksDbStore::Impl& log, MapStore& target, WriteBehindOptions options, NowMs clock);
  ~State();

  StoreResult<void> recover();
  StoreResult<std::vector<EnqueueOutcome>> enqueueMany(std::span<const StoreWrite> writes);
  enum class Pick {
    DUE,         // due ones, plus whole batches of the oldest still in their first delay
    SKIP_DELAY,  // every entry not waiting out a backoff
    EVERYTHING,  // every pending entry
  };
  // Entry keys to write now.
  std::vector<std::string> dueKeys(int64_t nowMs, Pick pick) const;
  StoreResult<void> flushKeys(const std::vector<std::string>& keys, FlushReport& report);
  StoreResult<void> flushBatch(std::vector<FlushItem>& items, FlushReport& report);
  void writeToTarget(std::vector<FlushItem>& items);
  int64_t backoffMs(uint32_t attempts) const;
  int64_t minBackoffPendingMs() const;

  // Memory updates; callers hold `mutex`.
  void insert(const std::string& entryKey, PendingEntry entry);
  void remove(const std::string& entryKey);
  void reschedule(const std::string& entryKey, PendingEntry& entry, int64_t dueMs);
  void setAttempts(PendingEntry& entry, uint32_t attempts);
  wblog::LogRecord recordOf(const PendingEntry& entry) const;
};

}  // namespace shoal::persistence

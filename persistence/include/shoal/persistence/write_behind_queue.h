// Durable write-behind: writes are acknowledged once they are in a synced log (a column family of
// the member's RocksDbStore), coalesced per key, and written to the target MapStore later in
// batches, with retry, exponential backoff and a persisted dead-letter record. Nothing is dropped
// silently: an entry leaves the queue only when the target stored it, when a newer write of the
// same key replaced it, or by an explicit discard call.
//
// Threads: none of its own. The owner drives it by calling flushDue() periodically (say every
// 100 ms) and flush() at shutdown, on its blocking-work pool; every method blocks on disk and is
// thread-safe. One flush runs at a time; enqueues proceed during a flush.
// Delivery to the target is at-least-once: after a crash an entry already stored may be stored
// again (same value, same version).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shoal/persistence/map_store.h"
#include "shoal/persistence/rocksdb_store.h"

namespace shoal::persistence {

struct WriteBehindOptions {
  std::string name;                // queue name, unique per RocksDbStore, 1..255 bytes (e.g. the map name)
  int64_t delayMs = 1000;          // an entry is written this long after its first unflushed enqueue, >= 0
  uint32_t batchSize = 100;        // writes per storeMany call; a full batch is written without delay, >= 1
  uint32_t maxAttempts = 5;        // failed writes of an entry before it becomes a dead letter, >= 1
  int64_t initialBackoffMs = 500;  // wait after the first failure, doubled after each further one, >= 1
  int64_t maxBackoffMs = 60'000;   // cap of that wait, >= initialBackoffMs
  // false: an enqueue returns once its log record is in RocksDB's WAL (written to the OS, not
  // fsynced): it survives a crash of the process, not of the machine. true: fsynced first.
  bool sync = false;
};

enum class EnqueueOutcome {
  QUEUED,     // no write of this key was pending
  COALESCED,  // replaced the pending write of this key
  STALE,      // ignored: a store of a higher version of this key is pending (a replayed write)
};

// An entry that exhausted its attempts during a flush (now a dead letter).
struct KeyFailure {
  std::string map;
  uint32_t partition = 0;
  std::string key;
  uint32_t attempts = 0;
  StoreError error;  // the last failure
};

struct FlushReport {
  uint64_t written = 0;                  // entries the target stored (or erased)
  uint64_t failedAttempts = 0;           // entries whose write failed and will be retried
  std::vector<KeyFailure> deadLettered;  // entries moved to the dead-letter record
};

struct DeadLetter {
  std::string map;
  uint32_t partition = 0;
  std::string key;
  std::optional<std::string> value;  // nullopt: the failed write was an erase
  StoredMeta meta;
  uint32_t attempts = 0;
  StoreError lastError;
  int64_t deadAtMs = 0;  // when it gave up (queue clock)
};

// A write waiting in the queue (for migration / replication of the queue).
struct PendingWrite {
  std::string map;
  uint32_t partition = 0;
  std::string key;
  std::optional<std::string> value;
  StoredMeta meta;
};

class WriteBehindQueue {
 public:
  using NowMs = std::function<int64_t()>;  // Unix ms; tests inject a manual clock

  // Opens the queue `options.name` in `log` and reloads its unflushed entries and dead letters
  // (crash recovery). `log` and `target` must outlive the queue; `target` may be `log` itself.
  static StoreResult<std::unique_ptr<WriteBehindQueue>> open(RocksDbStore& log, MapStore& target,
                                                             const WriteBehindOptions& options,
                                                             NowMs clock = {});
  ~WriteBehindQueue();  // nothing is lost: what is pending stays in the log for the next open
  WriteBehindQueue(const WriteBehindQueue&) = delete;
  WriteBehindQueue& operator=(const WriteBehindQueue&) = delete;

  // Durably logs one write (fsync) before returning; only then may the client be acknowledged.
  StoreResult<EnqueueOutcome> enqueue(const StoreWrite& write);
  // Logs several writes with one fsync; all or none are logged.
  StoreResult<std::vector<EnqueueOutcome>> enqueueMany(std::span<const StoreWrite> writes);

  // Writes the entries that are due: delay elapsed, backoff over, or a full batch waiting.
  // An error means the log itself failed; the entries concerned stay pending.
  StoreResult<FlushReport> flushDue();
  // Like flushDue(), but entries still in their first delay go too; failed entries still wait out
  // their backoff. Does not sleep: an operator's flush calls it until pending() is 0.
  StoreResult<FlushReport> flushNow();
  // Writes everything pending, retrying with backoff (sleeping) until each entry is stored or
  // dead-lettered. The caller stops enqueueing first (shutdown, graceful leave).
  StoreResult<FlushReport> flush();

  uint64_t pending() const;  // entries waiting (dead letters not included)
  uint64_t deadLetterCount() const;

  // Dead letters in key order, at most `limit`.
  StoreResult<std::vector<DeadLetter>> listDeadLetters(uint32_t limit) const;
  // Moves every dead letter back into the queue, due now with fresh attempts; a dead letter whose
  // key has a newer pending write is removed instead (replaying it would undo that write).
  // Returns how many were re-queued.
  StoreResult<uint64_t> replayDeadLetters();
  // Deletes one dead letter (an operator gave up on it); false if there was none.
  StoreResult<bool> discardDeadLetter(std::string_view map, uint32_t partition, std::string_view key);

  // The pending writes of one partition, and their removal once another member's queue has
  // taken the partition over (migration).
  StoreResult<std::vector<PendingWrite>> pendingWrites(uint32_t partition) const;
  // Every pending write, oldest first (restart: memory shows what the store does not have yet).
  std::vector<PendingWrite> pendingWrites() const;
  // The pending write of one key, if any (read-through must prefer it to the store's older copy).
  StoreResult<std::optional<PendingWrite>> pendingWrite(std::string_view map, uint32_t partition,
                                                        std::string_view key) const;
  StoreResult<uint64_t> discardPartition(uint32_t partition);

  const WriteBehindOptions& options() const;

  // Names of the queues that have records (pending writes or dead letters) in `log`, sorted;
  // a restarted member opens these to finish what they hold.
  static StoreResult<std::vector<std::string>> queueNames(RocksDbStore& log);

 private:
  struct State;
  WriteBehindQueue(RocksDbStore& log, MapStore& target, WriteBehindOptions options, NowMs clock);

  std::unique_ptr<State> state_;
};

}  // namespace shoal::persistence

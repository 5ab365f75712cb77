// The write-behind queues of a member: one persistence::WriteBehindQueue per write-behind map
// (queue name = map name), whose durable log is the member's RocksDbStore (data-dir) and whose
// target is the member's backing store (that same RocksDbStore, or the embedder's MapStore).
// Pool side only: every method blocks on disk and is thread-safe; call them on the blocking-work
// pool (or at start-up / stop, before or after the shard serves), never on a loop thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "shoal/node/options.h"
#include "shoal/persistence/map_store.h"
#include "shoal/persistence/rocksdb_store.h"
#include "shoal/persistence/write_behind_queue.h"

namespace shoal::node {

// The queue options of map `name` as configured (defaults for a map that is not write-behind).
persistence::WriteBehindOptions writeBehindOptionsFor(const NodeOptions& options, const std::string& name);

class WriteBehindMaps {
 public:
  // `log` and `target` must outlive this object (`target` may be `log`).
  WriteBehindMaps(persistence::RocksDbStore& log, persistence::MapStore& target, const NodeOptions& options);
  ~WriteBehindMaps();

  // Start-up: opens every queue that has records in the log (crash recovery); returns their names.
  persistence::StoreResult<std::vector<std::string>> openExisting();
  // The queue of `map`, opened with the map's options on first use.
  persistence::StoreResult<persistence::WriteBehindQueue*> queueFor(const std::string& map);
  // The queue of `map` if it is open, else null.
  persistence::WriteBehindQueue* find(const std::string& map) const;

  // Durably queues one commit group's writes, one enqueueMany (one fsync) per map; all writes must
  // be of write-behind maps. On error some maps' writes may be queued and others not.
  persistence::StoreResult<void> enqueue(std::span<const persistence::StoreWrite> writes);
  // flushDue() of every queue but those in `skip`; problems are logged (dead letters by the queue).
  void flushDue(const std::set<std::string>& skip);
  // flushNow() of every queue; returns how many writes are still pending in all of them.
  uint64_t flushNow();
  // Discards what every queue holds of `partition` (the member no longer holds a copy of it);
  // waits for a flush of the queue in flight, so nothing of it reaches the store afterwards.
  persistence::StoreResult<void> discardPartition(uint32_t partition);
  // A store and erase of a probe key in the log: does the queue's disk take writes again?
  persistence::StoreResult<void> probeLog();

 private:
  std::vector<persistence::WriteBehindQueue*> all() const;

  persistence::RocksDbStore& log_;
  persistence::MapStore& target_;
  const NodeOptions& options_;
  mutable std::mutex mutex_;  // guards queues_; held while a queue opens (rare), never otherwise on I/O
  std::map<std::string, std::unique_ptr<persistence::WriteBehindQueue>> queues_;
};

}  // namespace shoal::node

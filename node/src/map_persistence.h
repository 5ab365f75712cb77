// Persistence of a shard's maps: captures every change of a persistent map (from RPC, RESP and
// embedded writes alike, through MapRecords' change sink) and makes it durable in group commits on
// the blocking-work pool — written to the backing store (write-through maps) or to the map's
// durable write-behind queue (write-behind maps) — and tells the caller when its changes are
// durable. Also restores the maps at start (store, then queued writes) and refuses writes while
// the store or the queue is failing. Lives on the shard thread; only disk calls run on the pool.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "record_store.h"
#include "shoal/persistence/map_store.h"
#include "write_behind_maps.h"

namespace shoal::node {

class MapPersistence {
 public:
  // `store` (and `behind`, null when no map can be write-behind) must outlive this object; their
  // calls run on `pool`. `ownStore`: the store is this member's alone (RocksDB in data-dir), so it
  // holds exactly the partitions the member holds: partitions it gives up are dropped from it and
  // its complete copies are recorded in it. An embedder's store is shared: neither happens.
  MapPersistence(persistence::MapStore& store, WriteBehindMaps* behind, boost::asio::thread_pool& pool,
                 kj::Timer& timer, bool ownStore);
  ~MapPersistence();

  // Makes `records` persistent: its changes are captured from now on, for its store or (`behind`)
  // for its write-behind queue.
  void attach(MapRecords& records, bool behind);
  // Loads every stored entry of the maps that `recordsOf` accepts (by name, null: skip) into them,
  // then re-applies the writes still queued in write-behind queues, so memory shows every
  // acknowledged write. A queue whose map is no longer write-behind is flushed to the store first.
  // Blocking, for start-up before anything is served.
  struct Restored {
    uint64_t entries = 0;
    // The partitions the store had data of, each with the view version in which this member last
    // held a complete copy of it (0: unknown — data without a recorded copy).
    std::map<uint32_t, uint64_t> copies;
    uint32_t lastMembers = 0;  // members of the newest view a copy was recorded in
  };
  Restored restoreAll(uint32_t partitionCount,
                      const std::function<MapRecords*(const std::string&)>& recordsOf,
                      const std::function<bool(const std::string&)>& isWriteBehind);

  // Own store only (no-ops otherwise), ordered with the changes captured before and after:
  // `dropPartition` deletes what the store and the write-behind queues hold of `p` (and its copy
  // record); `recordCopies` notes that this member holds complete copies of these (partition,
  // version) pairs, in a view of `members` members (read back by restoreAll after a restart).
  // Made durable by the next commit().
  void dropPartition(uint32_t p);
  void recordCopies(uint32_t members, const std::vector<std::pair<uint32_t, uint64_t>>& copies);
  bool ownsStore() const { return ownStore_; }

  // Resolves when every change captured so far is stored; rejects with a "shoal:store-failed:"
  // failure when the store refused them. Changes of concurrent callers share one group commit.
  kj::Promise<void> commit();
  bool hasPending() const { return !pending_.empty(); }
  // Read-through: the stored value of `key` (nullopt when absent); rejects like commit() when the
  // store fails.
  // A write-behind map's key is read from its queue first (a write not stored yet).
  kj::Promise<std::optional<persistence::StoredValue>> load(const std::string& map, uint32_t partition,
                                                            const std::string& key, bool behind);

  // Set after a failed commit until a probe write succeeds: writes to persistent maps of that kind
  // (write-through: the store; write-behind: the queue's data-dir) are refused up front, so memory
  // does not run ahead of what is durable, with this message.
  const std::optional<std::string>& failure(bool behind) const { return behind ? queueFailure_ : failure_; }
  // Writes waiting in `map`'s write-behind queue (0 when it has none).
  uint64_t queuedWrites(const std::string& map) const;

 private:
  struct OwnedWrite {
    std::string map;
    uint32_t partition;
    std::string key;
    std::optional<std::string> value;
    persistence::StoredMeta meta;
    bool behind;                  // for the map's write-behind queue, not the store
    bool dropsPartition = false;  // not a write: drop `partition` from the store and the queues
  };
  struct Group {
    std::vector<OwnedWrite> writes;
    std::vector<kj::Own<kj::PromiseFulfiller<void>>> waiters;
  };
  struct Outcome {
    std::optional<persistence::StoreError> store;  // write-through part failed
    std::optional<persistence::StoreError> queue;  // write-behind part failed
  };
  void startFlush();
  void finishFlush(Group& group, const Outcome& outcome);
  void startProbe(bool behind);
  kj::Promise<void> probeLoop(bool behind);
  uint64_t restoreQueued(const std::function<MapRecords*(const std::string&)>& recordsOf,
                         const std::function<bool(const std::string&)>& isWriteBehind,
                         std::map<uint32_t, uint64_t>& copies);

  persistence::MapStore& store_;
  WriteBehindMaps* behind_;
  bool ownStore_;
  mutable std::unordered_map<std::string, persistence::WriteBehindQueue*> openQueues_;  // queuedWrites()
  boost::asio::thread_pool& pool_;
  kj::Timer& timer_;
  std::vector<OwnedWrite> pending_;  // captured, not yet handed to a group
  Group next_;                       // waiting for the flush in flight
  bool flushing_ = false;
  std::optional<std::string> failure_;       // the store failed (write-through maps)
  std::optional<std::string> queueFailure_;  // the write-behind queue failed (write-behind maps)
  bool probing_ = false;
  bool probingQueue_ = false;
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node

// Write-through persistence of a shard's maps: captures every change of a persistent map (from
// RPC, RESP and embedded writes alike, through MapRecords' change sink), writes them to the
// backing store in group commits on the blocking-work pool, and tells the caller when its changes
// are durable. Also restores the maps at start and refuses writes while the store is failing.
// Lives on the shard thread; only the store calls run on the pool.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "record_store.h"
#include "shoal/persistence/map_store.h"

namespace shoal::node {

class MapPersistence {
 public:
  // `store` must outlive this object; store calls run on `pool`.
  MapPersistence(persistence::MapStore& store, boost::asio::thread_pool& pool, kj::Timer& timer);
  ~MapPersistence();

  // Makes `records` persistent: its changes are captured from now on.
  void attach(MapRecords& records);
  // Loads every stored entry of the maps that `wanted` accepts (by name) into `recordsOf(name)`;
  // blocking, for start-up before anything is served. Returns entries restored.
  uint64_t restoreAll(uint32_t partitionCount,
                      const std::function<MapRecords*(const std::string&)>& recordsOf);

  // Resolves when every change captured so far is stored; rejects with a "shoal:store-failed:"
  // failure when the store refused them. Changes of concurrent callers share one group commit.
  kj::Promise<void> commit();
  bool hasPending() const { return !pending_.empty(); }
  // Read-through: the stored value of `key` (nullopt when absent); rejects like commit() when the
  // store fails.
  kj::Promise<std::optional<persistence::StoredValue>> load(const std::string& map, uint32_t partition,
                                                            const std::string& key);

  // Set after a failed commit until a probe write succeeds: writes to persistent maps are refused
  // up front (so memory does not run ahead of the store), with this message.
  const std::optional<std::string>& failure() const { return failure_; }

 private:
  struct OwnedWrite {
    std::string map;
    uint32_t partition;
    std::string key;
    std::optional<std::string> value;
    persistence::StoredMeta meta;
  };
  struct Group {
    std::vector<OwnedWrite> writes;
    std::vector<kj::Own<kj::PromiseFulfiller<void>>> waiters;
  };
  void startFlush();
  void finishFlush(std::optional<persistence::StoreError> error);
  kj::Promise<void> probeLoop();

  persistence::MapStore& store_;
  boost::asio::thread_pool& pool_;
  kj::Timer& timer_;
  std::vector<OwnedWrite> pending_;  // captured, not yet handed to a group
  Group next_;                       // waiting for the flush in flight
  bool flushing_ = false;
  std::optional<std::string> failure_;
  bool probing_ = false;
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node

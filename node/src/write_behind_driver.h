// The loop side of write-behind: drives the queues' flushes from the shard's timer (flushDue on the
// blocking-work pool every FLUSH_TICK_MS, never on the loop), runs the operator commands (flush a
// map until its queue is empty, list dead letters, replay them) and the bounded drain at a
// graceful stop. Lives on the shard thread; all queue calls run on the pool.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "write_behind_maps.h"

namespace shoal::node {

struct MapFlushResult {
  uint64_t written = 0;                         // writes the store took during the flush
  std::vector<persistence::KeyFailure> failed;  // writes that became dead letters during it
  uint64_t deadLetters = 0;                     // dead letters of the map afterwards (older included)
};

struct DeadLetterList {
  std::vector<persistence::DeadLetter> letters;  // in key order, at most the limit asked for
  uint64_t total = 0;                            // dead letters of the map
};

class WriteBehindDriver {
 public:
  static constexpr int64_t FLUSH_TICK_MS = 100;

  // `isWriteBehind(map)`: the map is configured write-behind (its queue may not be open yet).
  WriteBehindDriver(WriteBehindMaps& queues, boost::asio::thread_pool& pool, kj::Timer& timer,
                    std::function<bool(const std::string&)> isWriteBehind);
  ~WriteBehindDriver();

  // Starts the periodic flushDue loop (after restart recovery).
  void start();

  // Writes every queued write of `map` now (no delay), retrying failures after their backoff,
  // until the map's queue is empty; rejects with "shoal:invalid-argument:" when `map` is not a
  // write-behind map and "shoal:store-failed:" when the queue's own log fails.
  kj::Promise<MapFlushResult> flushMap(std::string map);
  kj::Promise<DeadLetterList> deadLetters(std::string map, uint32_t limit);
  // Re-queues every dead letter of `map` (due now, fresh attempts); resolves to how many.
  kj::Promise<uint64_t> replay(std::string map);
  // Graceful stop: flushes every queue until empty or `timeoutMs` passes; what is left stays
  // queued (durably) for the next start, and is logged.
  kj::Promise<void> drain(int64_t timeoutMs);

 private:
  kj::Promise<void> tickLoop();
  kj::Promise<MapFlushResult> flushMapPass(std::string map, std::shared_ptr<MapFlushResult> result);
  kj::Promise<void> drainPass(int64_t deadlineMs);

  WriteBehindMaps& queues_;
  boost::asio::thread_pool& pool_;
  kj::Timer& timer_;
  std::function<bool(const std::string&)> isWriteBehind_;
  // Maps an operator flush is running for (with how many): the periodic flush leaves them alone,
  // so that the operator's report sees every write that fails meanwhile.
  std::map<std::string, int> operatorFlushes_;
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node

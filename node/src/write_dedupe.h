// Results of recent writes by (client id, request id), so that a client's retry of a write whose
// reply was lost gets the first result instead of applying the write twice. Each client says,
// with every batch, the lowest request id it still waits for; everything below is forgotten, so
// memory follows the writes in flight, not the write rate. Shard thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

#include "shoal/proto/shoal.capnp.h"

namespace shoal::node {

class WriteDedupe {
 public:
  struct Limits {
    size_t maxPerClient = 200'000;         // results kept per client that never acknowledges
    int64_t idleClientMs = 5 * 60 * 1000;  // a silent client's results are dropped after this
  };
  WriteDedupe() = default;
  explicit WriteDedupe(Limits limits) : limits_(limits) {}

  // Forgets the client's results below `lowestPending` (0: the client does not say).
  void beginBatch(uint64_t clientId, uint64_t lowestPending, int64_t nowMs);
  // Fills `result` with the remembered result and returns true when this write already ran.
  bool replay(uint64_t clientId, uint64_t requestId, wire::OpResult::Builder result) const;
  void remember(uint64_t clientId, uint64_t requestId, wire::OpResult::Reader result);
  // Forgets one result (its write turned out not to be stored, so a retry must run again).
  void forget(uint64_t clientId, uint64_t requestId);
  // Drops clients not heard from for idleClientMs.
  void expireIdle(int64_t nowMs);

  size_t size() const;
  size_t clients() const { return clients_.size(); }

 private:
  struct Cached {
    wire::OpResult::Which which;
    bool flag = false;
    uint64_t count = 0;
    wire::ErrorCode code = wire::ErrorCode::INTERNAL;
    std::string value;  // value, or failure message
  };
  struct Client {
    int64_t lastSeenMs = 0;
    std::map<uint64_t, Cached> results;  // by request id; ids grow, so pruning takes a prefix
  };

  Limits limits_;
  std::unordered_map<uint64_t, Client> clients_;
};

}  // namespace shoal::node

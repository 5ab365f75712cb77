// Anti-entropy: a partition's primary periodically compares its copy with each complete backup's
// and copies the partition again to a backup whose copy differs — repairing divergence that the
// per-partition sequence numbers cannot see (a change a backup failed to apply, a bug). One
// partition is checked per step, every cluster.anti-entropy-interval / partition count, so a
// full round takes the interval. A check is an order-independent digest per map (MapRecords::
// digest) taken on the primary right after it sent every write it applied to the partition; the
// backup compares only if it applied exactly those writes (same sequence number), so writes in
// flight never look like divergence. Maps with a memory limit are not compared (each replica
// evicts on its own). Shard thread only.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <memory>

#include "membership.h"
#include "peer_links.h"
#include "replication.h"

namespace shoal::node {
class MapService;
}

namespace shoal::node::cluster {

class AntiEntropy {
 public:
  AntiEntropy(const NodeOptions& options, const Clock& clock, Membership& membership, PeerLinks& links,
              MapService& maps, Replication& replication, kj::Timer& timer);
  ~AntiEntropy();

  void start();  // no-op when cluster.anti-entropy-interval is 0
  kj::Promise<void> onCheck(
      capnp::CallContext<wire::Peer::CheckDigestsParams, wire::Peer::CheckDigestsResults> context);

  uint64_t repaired() const { return repaired_; }  // backups copied again because they differed

 private:
  kj::Promise<void> loop();
  void checkNext();
  void check(partition::PartitionId p);
  void endRound();

  const NodeOptions& options_;
  const Clock& clock_;
  Membership& membership_;
  PeerLinks& links_;
  MapService& maps_;
  Replication& replication_;
  kj::Timer& timer_;
  partition::PartitionId cursor_ = 0;
  uint64_t repaired_ = 0;
  uint64_t compared_ = 0;  // in the current round (a lap of the cursor)
  uint64_t differed_ = 0;
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node::cluster

// This member's part in its cluster: connections to the other members, membership and the
// partition table, replication, and the Peer service other members call. Every member runs one,
// even alone (a cluster of one owns every partition). Shard thread only.
#pragma once

#include <kj/async-io.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "anti_entropy.h"
#include "membership.h"
#include "peer_links.h"
#include "replication.h"
#include "split_merge.h"

namespace shoal::node::cluster {

// One Redis command another member's RESP gateway routed here.
struct RespCall {
  std::vector<std::string> args;
  bool localOnly = false;  // answer for this member's own partitions only (fan-out, SCAN)
  int protocol = 2;        // the Redis client's RESP protocol (2 or 3)
};

// What a member brings back from its data directory.
struct RestoredMember {
  MemberId id = 0;           // its identity; 0: none kept (a new one is chosen)
  CopyVersions copies;       // the partitions it has data of, with the version of its copy
  uint32_t lastMembers = 0;  // members of the newest view it recorded a copy in
  // Partitions it loaded data of at start (those of `copies`, or from an embedder's shared store):
  // freed once the cluster places them elsewhere.
  std::set<partition::PartitionId> loaded;
};

class Cluster {
 public:
  Cluster(const NodeOptions& options, const Clock& clock, kj::AsyncIoProvider& io, MapService& maps,
          capnp::ReaderOptions readerOptions, const std::string& address, RestoredMember restored = {});
  ~Cluster();

  // Joins (or forms) the cluster; rejects with "shoal:invalid-argument: ..." when refused.
  kj::Promise<void> start();

  // Serving map operations needs a table and this member in it.
  bool ready() const;
  std::string notReadyReason() const;

  const NodeOptions& options() const { return options_; }
  kj::Timer& timer() { return timer_; }
  Membership& membership() { return membership_; }
  Replication& replication() { return replication_; }
  SplitMerge& splitMerge() { return splitMerge_; }
  PeerLinks& links() { return links_; }
  wire::Peer::Client peerCapability() { return peer_; }
  // Runs after every view change (after replication has taken it in).
  void addViewListener(Membership::ViewListener listener) { viewListeners_.push_back(std::move(listener)); }

  // Runs Redis commands other members route here, in order, one reply each (set by the RESP
  // gateway's owner).
  using RespHandler = std::function<kj::Promise<std::vector<std::string>>(std::vector<RespCall> calls)>;
  void setRespHandler(RespHandler handler) { respHandler_ = std::move(handler); }
  kj::Promise<std::vector<std::string>> handleResp(std::vector<RespCall> calls);

 private:
  const NodeOptions& options_;
  kj::Timer& timer_;
  PeerLinks links_;
  Membership membership_;
  Replication replication_;
  SplitMerge splitMerge_;
  AntiEntropy antiEntropy_;
  wire::Peer::Client peer_;
  RespHandler respHandler_;
  std::vector<Membership::ViewListener> viewListeners_;
};

}  // namespace shoal::node::cluster

// Membership of this member in its cluster: joining through seeds, heartbeats and the failure
// detector, and — on the oldest member, the coordinator — admitting members, removing dead ones,
// moving the partition table towards its target (partition/placement.h) and publishing each new
// view (member list + table, one version number for both). When the coordinator dies the next
// oldest member that still hears from nobody older takes over. Shard thread only.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../record_store.h"
#include "peer_links.h"
#include "restored_copies.h"
#include "shoal/node/options.h"
#include "shoal/partition/placement.h"

namespace shoal::node::cluster {

using partition::MemberId;

struct MemberEntry {
  MemberId id = 0;
  std::string name;
  std::string address;
  std::string zone;
  int64_t joinedAtMs = 0;
  bool leaving = false;
  uint64_t incarnation = 0;  // per process start (the id stays with the data directory)
};

struct View {
  uint64_t version = 0;              // 0: not in a cluster yet
  std::vector<MemberEntry> members;  // oldest first; members[0] coordinates
  partition::PartitionTable table;   // table.epoch == version once assigned
  // Per partition: the version in which its replicas (or which of them are filling) last changed,
  // the same on every member — what a complete copy is recorded with (restored_copies.h).
  std::vector<uint64_t> replicasSince;

  const MemberEntry* find(MemberId id) const;
};

void writeView(const View& view, const std::string& clusterName, wire::ClusterView::Builder out);
void writeTable(const partition::PartitionTable& table, capnp::List<wire::PartitionReplicas>::Builder out);
View readView(wire::ClusterView::Reader in);

class Membership {
 public:
  using ViewListener = std::function<void(const View& previous, const View& current)>;

  // `ownCopies`: the partitions this member restarted with (from its data directory).
  Membership(const NodeOptions& options, const Clock& clock, kj::Timer& timer, PeerLinks& links,
             MemberEntry self, CopyVersions ownCopies = {}, uint32_t ownLastMembers = 0);
  ~Membership();

  // Joins through the seeds (or forms a cluster alone); resolves once this member is in a view.
  // Rejects with "shoal:invalid-argument: ..." when the cluster refuses it (name, partition count).
  kj::Promise<void> start();
  void setViewListener(ViewListener listener) { listener_ = std::move(listener); }

  const View& view() const { return view_; }
  MemberId selfId() const { return self_.id; }
  const MemberEntry& self() const { return self_; }
  bool isCoordinator() const { return !view_.members.empty() && view_.members[0].id == self_.id; }
  bool isPrimary(partition::PartitionId p) const { return view_.table.primaryOf(p) == self_.id; }
  // A replica of `p` here whose copy is complete (a backup that is not still being filled).
  bool holdsCopy(partition::PartitionId p) const {
    if (!view_.table.assigned() || p >= view_.table.partitions.size()) return false;
    auto& r = view_.table.partitions[p];
    return r.holds(self_.id) && !r.isFilling(self_.id);
  }
  const std::string* addressOf(MemberId id) const;

  // With cluster.min-cluster-size: why writes are refused now (this member hears from fewer
  // members than the quorum, itself included), else nullopt.
  std::optional<std::string> writesRefused() const;

  // Resolves when the next view is adopted (e.g. after a member failed), or after `timeoutMs`.
  kj::Promise<void> nextView(uint32_t timeoutMs);
  // Resolves once writesRefused() says so (checked every heartbeat); never without min-cluster-size.
  kj::Promise<void> whenWritesRefused();

  // Graceful leave: resolves once the coordinator removed this member (its partitions moved).
  kj::Promise<void> leave();

  // Split-brain merge: leaves this side's view (listeners drop this member's data, as when it was
  // declared dead) and joins the cluster at `address` (then the seeds); resolves once joined.
  kj::Promise<void> rejoinThrough(const std::string& address);

  // Peer service handlers.
  kj::Promise<void> onJoin(capnp::CallContext<wire::Peer::JoinParams, wire::Peer::JoinResults> context);
  kj::Promise<void> onHeartbeat(
      capnp::CallContext<wire::Peer::HeartbeatParams, wire::Peer::HeartbeatResults> context);
  void onPublish(wire::ClusterView::Reader view);
  void onFilled(partition::PartitionId p, MemberId member, MemberId primary);
  void onLeave(MemberId member);

 private:
  kj::Promise<void> joinThrough(size_t seedIndex, int64_t deadlineMs);
  void formAlone();
  // Declared dead by the others (it was stopped, or cut off): drop everything, join again.
  void rejoin();
  // Leaves the current view (dropping this member's data) and joins through `first`, the seeds
  // and the members it knew; resolves once it joined.
  kj::Promise<void> leaveAndJoin(std::vector<std::string> first);
  kj::Promise<void> heartbeatLoop();
  void heartbeatAll();
  void detectFailures();
  // Coordinator: recomputes the table for the current members; publishes when anything changed.
  // `base`: the table to step from (default: the current one).
  void recompute(std::vector<MemberEntry> members, bool membersChanged,
                 const partition::PartitionTable* base = nullptr);
  void schedulePublish();
  // Coordinator, before partitions are assigned: members to wait for (initial-min-cluster-size,
  // or after a restart with data the members of the last view, until restart-wait runs out).
  uint32_t membersToAssign();
  void noteRestored(MemberId member, CopyVersions copies, uint32_t lastMembers);
  void publishNow();
  void publishTo(const std::string& address);  // the current view, to one member
  void adopt(View view);

  const NodeOptions& options_;
  const Clock& clock_;
  kj::Timer& timer_;
  PeerLinks& links_;
  MemberEntry self_;
  View view_;
  ViewListener listener_;
  std::vector<std::string> joinAddresses_;  // seeds, and on a rejoin the last known members
  std::map<MemberId, int64_t> lastHeard_;   // Unix ms of the last heartbeat from / answer of each member
  CopyVersions ownCopies_;                  // reported when joining, until this member drops its data
  uint32_t ownLastMembers_ = 0;             // members of the view of its newest copy
  bool restartWaitOver_ = false;            // cluster.restart-wait ran out (or was never started)
  bool restartWaitStarted_ = false;
  RestoredCopies restored_;  // coordinator: gathered until partitions are first assigned
  bool publishScheduled_ = false;
  int64_t lastTickMs_ = 0;  // the heartbeat loop's last run, to notice this member was paused
  kj::Own<kj::PromiseFulfiller<void>> leftFulfiller_;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> viewWaiters_;
  // whenWritesRefused(): one shared promise (its branches go with the batches that wait on it).
  kj::Maybe<kj::ForkedPromise<void>> refusal_;
  kj::Own<kj::PromiseFulfiller<void>> refusalFulfiller_;
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node::cluster

// Joining, heartbeats, failure detection and the coordinator's views; see membership.h.
#include "membership.h"

#include <algorithm>

#include "../member_log.h"
#include "shoal/error.h"

namespace shoal::node::cluster {
namespace {

constexpr int64_t PUBLISH_COALESCE_MS = 20;  // table steps that arrive together go out as one view
constexpr int64_t JOIN_ATTEMPT_TIMEOUT_MS = 1000;

kj::Exception refused(const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:invalid-argument: ", message.c_str()));
}

void writeMember(const MemberEntry& m, wire::PeerInfo::Builder out) {
  out.setId(m.id);
  out.setName(m.name);
  out.setAddress(m.address);
  out.setZone(m.zone);
  out.setJoinedAtMs(m.joinedAtMs);
  out.setLeaving(m.leaving);
  out.setIncarnation(m.incarnation);
}

MemberEntry readMember(wire::PeerInfo::Reader in) {
  return MemberEntry{in.getId(),         in.getName(),    in.getAddress(),    in.getZone(),
                     in.getJoinedAtMs(), in.getLeaving(), in.getIncarnation()};
}

}  // namespace

const MemberEntry* View::find(MemberId id) const {
  for (auto& m : members)
    if (m.id == id) return &m;
  return nullptr;
}

void writeView(const View& view, const std::string& clusterName, wire::ClusterView::Builder out) {
  out.setVersion(view.version);
  out.setClusterName(clusterName);
  auto members = out.initMembers(view.members.size());
  for (size_t i = 0; i < view.members.size(); ++i) writeMember(view.members[i], members[i]);
  writeTable(view.table, out.initPartitions(view.table.partitions.size()));
  auto since = out.initReplicasSince(view.replicasSince.size());
  for (size_t p = 0; p < view.replicasSince.size(); ++p) since.set(p, view.replicasSince[p]);
}

void writeTable(const partition::PartitionTable& table, capnp::List<wire::PartitionReplicas>::Builder out) {
  for (size_t p = 0; p < table.partitions.size(); ++p) {
    auto& r = table.partitions[p];
    auto replicas = out[p].initReplicas(r.replicas.size());
    for (size_t i = 0; i < r.replicas.size(); ++i) replicas.set(i, r.replicas[i]);
    auto filling = out[p].initFilling(r.filling.size());
    for (size_t i = 0; i < r.filling.size(); ++i) filling.set(i, r.filling[i]);
  }
}

View readView(wire::ClusterView::Reader in) {
  View v;
  v.version = in.getVersion();
  for (auto m : in.getMembers()) v.members.push_back(readMember(m));
  auto parts = in.getPartitions();
  if (parts.size() > 0) v.table.epoch = v.version;
  v.table.partitions.resize(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    for (auto id : parts[p].getReplicas()) v.table.partitions[p].replicas.push_back(id);
    for (auto id : parts[p].getFilling()) v.table.partitions[p].filling.push_back(id);
  }
  for (auto since : in.getReplicasSince()) v.replicasSince.push_back(since);
  return v;
}

class Membership::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().warn("cluster task failed: {}", e.getDescription().cStr());
  }
};

Membership::Membership(const NodeOptions& options, const Clock& clock, kj::Timer& timer, PeerLinks& links,
                       MemberEntry self, CopyVersions ownCopies, uint32_t ownLastMembers)
    : options_(options),
      clock_(clock),
      timer_(timer),
      links_(links),
      self_(std::move(self)),
      ownCopies_(std::move(ownCopies)),
      ownLastMembers_(ownLastMembers),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {}

Membership::~Membership() = default;

const std::string* Membership::addressOf(MemberId id) const {
  auto* m = view_.find(id);
  return m ? &m->address : nullptr;
}

kj::Promise<void> Membership::start() {
  lastTickMs_ = clock_.nowMs();  // a pause before the first heartbeat is noticed too
  tasks_->add(heartbeatLoop());
  bool anySeed = false;
  for (auto& s : options_.seeds) anySeed |= s != self_.address;
  if (!anySeed) {
    formAlone();
    return kj::READY_NOW;
  }
  joinAddresses_ = options_.seeds;
  return joinThrough(0, clock_.nowMs() + options_.cluster.joinTimeoutMs);
}

void Membership::rejoin() {
  memberLog().error(
      "the coordinator no longer counts member '{}' as a member (it was declared dead, e.g. while "
      "stopped): it drops its data, stops serving and joins again",
      self_.name);
  tasks_->add(leaveAndJoin({}));
}

kj::Promise<void> Membership::rejoinThrough(const std::string& address) {
  memberLog().warn("member '{}' leaves its side of a healed network partition and joins the cluster at {}",
                   self_.name, address);
  return leaveAndJoin({address});
}

kj::Promise<void> Membership::leaveAndJoin(std::vector<std::string> first) {
  ownCopies_.clear();  // its data is dropped with the view it leaves
  ownLastMembers_ = 0;
  joinAddresses_ = std::move(first);
  joinAddresses_.insert(joinAddresses_.end(), options_.seeds.begin(), options_.seeds.end());
  for (auto& m : view_.members) {
    if (m.id != self_.id) joinAddresses_.push_back(m.address);
  }
  View removed = view_;
  removed.members.erase(std::remove_if(removed.members.begin(), removed.members.end(),
                                       [&](auto& m) { return m.id == self_.id; }),
                        removed.members.end());
  adopt(std::move(removed));  // listeners drop this member's data
  view_ = View{};
  return joinThrough(0, INT64_MAX);
}

void Membership::formAlone() {
  self_.joinedAtMs = clock_.nowMs();
  memberLog().info("member '{}' ({:x}) starts cluster '{}'", self_.name, self_.id, options_.cluster.name);
  view_.members.clear();
  noteRestored(self_.id, ownCopies_, ownLastMembers_);
  recompute({self_}, true);
}

kj::Promise<void> Membership::joinThrough(size_t seedIndex, int64_t deadlineMs) {
  if (clock_.nowMs() >= deadlineMs || joinAddresses_.empty()) {
    memberLog().warn("no seed answered within cluster.join-timeout ({} ms): starting a cluster alone",
                     options_.cluster.joinTimeoutMs);
    formAlone();
    return kj::READY_NOW;
  }
  auto seed = joinAddresses_[seedIndex % joinAddresses_.size()];
  auto next = [this, seedIndex, deadlineMs]() {
    return timer_.afterDelay(100 * kj::MILLISECONDS).then([this, seedIndex, deadlineMs]() {
      return joinThrough(seedIndex + 1, deadlineMs);
    });
  };
  if (seed == self_.address) return joinThrough(seedIndex + 1, deadlineMs);
  auto request = links_.peer(seed).joinRequest();
  request.setClusterName(options_.cluster.name);
  request.setPartitionCount(options_.partitionCount);
  writeMember(self_, request.initMember());
  writeCopies(ownCopies_, request.initCopies(ownCopies_.size()));
  request.setLastMembers(ownLastMembers_);
  return timer_.timeoutAfter(JOIN_ATTEMPT_TIMEOUT_MS * kj::MILLISECONDS, request.send())
      .then(
          [this, seed](capnp::Response<wire::Peer::JoinResults>&& response) -> kj::Promise<void> {
            auto view = readView(response.getView());
            memberLog().info("member '{}' ({:x}) joined cluster '{}' through {} ({} members, view {})",
                             self_.name, self_.id, options_.cluster.name, seed, view.members.size(),
                             view.version);
            adopt(std::move(view));
            return kj::READY_NOW;
          },
          [this, seed, next](kj::Exception&& e) -> kj::Promise<void> {
            std::string text = e.getDescription().cStr();
            if (text.find("shoal:invalid-argument:") != std::string::npos) {
              memberLog().error("cluster refused this member: {}", text);
              return kj::mv(e);
            }
            memberLog().debug("seed {} did not answer: {}", seed, text);
            links_.drop(seed);
            return next();
          });
}

kj::Promise<void> Membership::onJoin(
    capnp::CallContext<wire::Peer::JoinParams, wire::Peer::JoinResults> context) {
  auto params = context.getParams();
  auto joiner = readMember(params.getMember());
  std::string clusterName = params.getClusterName();
  if (clusterName != options_.cluster.name || params.getPartitionCount() != options_.partitionCount) {
    std::string why =
        clusterName != options_.cluster.name
            ? "cluster name '" + clusterName + "' differs from this cluster's '" + options_.cluster.name + "'"
            : "partition count " + std::to_string(params.getPartitionCount()) +
                  " differs from this cluster's " + std::to_string(options_.partitionCount);
    memberLog().error("refused member '{}' at {}: {}", joiner.name, joiner.address, why);
    return refused("member '" + joiner.name + "' cannot join: " + why);
  }
  if (view_.version == 0) {
    return kj::Exception(kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
                         kj::str("shoal:unavailable: this member has not joined a cluster yet"));
  }
  if (auto* known = view_.find(joiner.id); known && known->incarnation != joiner.incarnation) {
    // The member restarted (it keeps its id with its data directory) before it was declared
    // dead: its old incarnation is gone, and the failure detector may say so now.
    memberLog().warn("member '{}' ({:x}) restarted: its previous incarnation is gone", joiner.name,
                     joiner.id);
    lastHeard_[joiner.id] = 0;
    if (!isCoordinator() && view_.members[0].id == joiner.id) {
      return kj::Exception(
          kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
          kj::str("shoal:unavailable: the coordinator restarted; retry once it is replaced"));
    }
  }
  if (!isCoordinator()) {
    // Pass it on to the coordinator and relay its answer.
    auto& coordinator = view_.members[0].address;
    auto request = links_.peer(coordinator).joinRequest();
    request.setClusterName(params.getClusterName());
    request.setPartitionCount(params.getPartitionCount());
    request.setMember(params.getMember());
    request.setCopies(params.getCopies());
    request.setLastMembers(params.getLastMembers());
    return request.send().then([context](capnp::Response<wire::Peer::JoinResults>&& r) mutable {
      context.getResults().setView(r.getView());
    });
  }
  auto members = view_.members;
  auto it = std::find_if(members.begin(), members.end(), [&](auto& m) { return m.id == joiner.id; });
  if (it != members.end() && it->incarnation != joiner.incarnation) {
    // First a view without the old incarnation (its partitions go to their backups), then the
    // new one joins like any member (it is filled again).
    links_.drop(it->address);
    members.erase(it);
    recompute(members, true);
    members = view_.members;
    it = members.end();
  }
  noteRestored(joiner.id, readCopies(params.getCopies()), params.getLastMembers());
  if (it == members.end()) {
    joiner.joinedAtMs = clock_.nowMs();
    joiner.leaving = false;
    members.push_back(joiner);
    memberLog().info("member '{}' ({:x}) at {} joins; {} members", joiner.name, joiner.id, joiner.address,
                     members.size());
  }
  lastHeard_[joiner.id] = clock_.nowMs();
  recompute(std::move(members), true);
  publishNow();
  writeView(view_, options_.cluster.name, context.getResults().initView());
  return kj::READY_NOW;
}

kj::Promise<void> Membership::onHeartbeat(
    capnp::CallContext<wire::Peer::HeartbeatParams, wire::Peer::HeartbeatResults> context) {
  auto from = context.getParams().getFrom();
  lastHeard_[from] = clock_.nowMs();
  if (isCoordinator() && context.getParams().getViewVersion() < view_.version) {
    // It missed a view: send it again.
    if (auto* address = addressOf(from)) {
      auto request = links_.peer(*address).publishRequest();
      writeView(view_, options_.cluster.name, request.initView());
      tasks_->add(request.send().ignoreResult().catch_([](kj::Exception&&) {}));
    }
  }
  context.getResults().setViewVersion(view_.version);
  context.getResults().setKnown(!isCoordinator() || view_.find(from) != nullptr);
  return kj::READY_NOW;
}

void Membership::onPublish(wire::ClusterView::Reader in) {
  if (in.getVersion() <= view_.version) return;
  auto view = readView(in);
  // Only views of this member's own cluster: ones whose coordinator it counts as a member. After a
  // network partition heals, TCP delivers views the other side published during the cut; their
  // versions say nothing about this side's, and adopting one would drop this side's data instead
  // of merging it (split_merge.h). A member joining (no view yet) takes the view its join returns.
  if (view.members.empty() || !view_.find(view.members[0].id)) return;
  adopt(std::move(view));
}

void Membership::adopt(View view) {
  auto now = clock_.nowMs();
  for (auto& m : view.members) {
    if (!lastHeard_.count(m.id)) lastHeard_[m.id] = now;  // the failure detector starts counting now
  }
  auto previous = std::move(view_);
  view_ = std::move(view);
  bool wasMember = previous.find(self_.id) != nullptr;
  if (wasMember && !view_.find(self_.id)) {
    if (leftFulfiller_) {
      memberLog().info("member '{}' left the cluster", self_.name);
      leftFulfiller_->fulfill();
      leftFulfiller_ = nullptr;
    } else {
      memberLog().error("member '{}' is not in the cluster's view {} any more", self_.name, view_.version);
    }
  }
  // Connections to members no longer in the view fail their calls now instead of at a timeout.
  for (auto& m : previous.members) {
    if (!view_.find(m.id)) links_.drop(m.address);
  }
  if (listener_) listener_(previous, view_);
  auto waiters = std::move(viewWaiters_);
  viewWaiters_.clear();
  for (auto& w : waiters) w->fulfill();
}

std::optional<std::string> Membership::writesRefused() const {
  auto quorum = options_.cluster.minClusterSize;
  if (quorum <= 1) return std::nullopt;
  auto now = clock_.nowMs();
  uint32_t heard = 1;  // itself
  for (auto& m : view_.members) {
    if (m.id == self_.id) continue;
    auto it = lastHeard_.find(m.id);
    if (it != lastHeard_.end() && now - it->second <= int64_t(options_.cluster.failureTimeoutMs)) ++heard;
  }
  if (heard >= quorum) return std::nullopt;
  return "member '" + self_.name + "' hears from " + std::to_string(heard) +
         " member(s), fewer than cluster.min-cluster-size (" + std::to_string(quorum) +
         "): writes are refused on this side of a network partition";
}

kj::Promise<void> Membership::whenWritesRefused() {
  if (options_.cluster.minClusterSize <= 1) return kj::NEVER_DONE;
  if (writesRefused()) return kj::READY_NOW;
  KJ_IF_MAYBE (r, refusal_) return r->addBranch();
  auto paf = kj::newPromiseAndFulfiller<void>();
  refusalFulfiller_ = kj::mv(paf.fulfiller);
  auto forked = paf.promise.fork();
  auto branch = forked.addBranch();
  refusal_ = kj::mv(forked);
  return branch;
}

kj::Promise<void> Membership::nextView(uint32_t timeoutMs) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  viewWaiters_.push_back(kj::mv(paf.fulfiller));
  return paf.promise.exclusiveJoin(timer_.afterDelay(timeoutMs * kj::MILLISECONDS));
}

kj::Promise<void> Membership::heartbeatLoop() {
  return timer_.afterDelay(options_.cluster.heartbeatIntervalMs * kj::MILLISECONDS).then([this]() {
    auto now = clock_.nowMs();
    if (now - lastTickMs_ > int64_t(options_.cluster.failureTimeoutMs) / 2) {
      // This member itself was paused (SIGSTOP, a long GC-like stall, a suspended VM): the silence
      // it sees is its own. Judge the others afresh instead of declaring them all dead.
      memberLog().warn("member '{}' was paused for {} ms: restarting the failure detector", self_.name,
                       now - lastTickMs_);
      for (auto& [_, heard] : lastHeard_) heard = now;
    }
    lastTickMs_ = now;
    if (view_.version != 0) {
      heartbeatAll();
      detectFailures();
    }
    if (refusalFulfiller_ && writesRefused()) {
      refusalFulfiller_->fulfill();
      refusalFulfiller_ = nullptr;
      refusal_ = nullptr;
    }
    return heartbeatLoop();
  });
}

void Membership::heartbeatAll() {
  for (auto& m : view_.members) {
    if (m.id == self_.id) continue;
    auto request = links_.peer(m.address).heartbeatRequest();
    request.setFrom(self_.id);
    request.setViewVersion(view_.version);
    auto id = m.id;
    auto address = m.address;
    tasks_->add(timer_.timeoutAfter(options_.cluster.failureTimeoutMs * kj::MILLISECONDS, request.send())
                    .then(
                        [this, id](capnp::Response<wire::Peer::HeartbeatResults>&& response) {
                          lastHeard_[id] = clock_.nowMs();
                          if (!response.getKnown() && !view_.members.empty() && view_.members[0].id == id &&
                              view_.find(self_.id)) {
                            if (leftFulfiller_) {
                              // Leaving, and the coordinator let it go (its view may still be on its way).
                              memberLog().info("member '{}' left the cluster", self_.name);
                              leftFulfiller_->fulfill();
                              leftFulfiller_ = nullptr;
                            } else {
                              rejoin();
                            }
                          }
                        },
                        [this, address](kj::Exception&&) { links_.drop(address); }));
  }
}

void Membership::detectFailures() {
  auto now = clock_.nowMs();
  auto silent = [&](const MemberEntry& m) {
    if (m.id == self_.id) return false;
    auto it = lastHeard_.find(m.id);
    return it != lastHeard_.end() && now - it->second > int64_t(options_.cluster.failureTimeoutMs);
  };
  if (view_.members.empty() || !view_.find(self_.id)) return;
  if (!isCoordinator()) {
    // Take over when every member older than this one is silent.
    for (auto& m : view_.members) {
      if (m.id == self_.id) break;
      if (!silent(m)) return;
    }
    memberLog().warn("coordinator '{}' is silent for over {} ms: member '{}' takes over",
                     view_.members[0].name, options_.cluster.failureTimeoutMs, self_.name);
  }
  std::vector<MemberEntry> alive;
  for (auto& m : view_.members) {
    if (silent(m)) {
      memberLog().warn("member '{}' ({:x}) at {} declared dead: silent for {} ms", m.name, m.id, m.address,
                       now - lastHeard_[m.id]);
      links_.drop(m.address);
    } else {
      alive.push_back(m);
    }
  }
  if (alive.size() != view_.members.size()) recompute(std::move(alive), true);
}

void Membership::recompute(std::vector<MemberEntry> members, bool membersChanged,
                           const partition::PartitionTable* base) {
  const auto& from = base ? *base : view_.table;
  // Members that asked to leave go once no partition is left on them.
  std::vector<MemberEntry> kept;
  std::vector<std::string> gone;  // their addresses: they are told with the view that drops them
  for (auto& m : members) {
    bool holdsAny = false;
    for (auto& r : view_.table.partitions) holdsAny |= r.holds(m.id);
    if (m.leaving && !holdsAny && m.id != self_.id) {
      memberLog().info("member '{}' ({:x}) has handed off its partitions and leaves", m.name, m.id);
      membersChanged = true;
      gone.push_back(m.address);
      continue;
    }
    kept.push_back(m);
  }
  // A leaving coordinator hands off, then removes itself last.
  bool selfGone = false;
  if (!kept.empty() && kept[0].id == self_.id && kept[0].leaving) {
    bool holdsAny = false;
    for (auto& r : view_.table.partitions) holdsAny |= r.holds(self_.id);
    if (!holdsAny && kept.size() > 1) {
      kept.erase(kept.begin());
      selfGone = membersChanged = true;
    } else if (kept.size() == 1 && leftFulfiller_) {
      // The last member standing: nobody to hand off to.
      memberLog().info("member '{}' is the last member: it leaves without a hand-off", self_.name);
      leftFulfiller_->fulfill();
      leftFulfiller_ = nullptr;
    }
  }
  View next;
  next.members = std::move(kept);
  next.table = from;
  bool assign = from.assigned() || next.members.size() >= membersToAssign();
  if (assign && from.assigned()) restored_.clear();  // copies matter only for the first assignment
  if (assign) {
    std::vector<partition::MemberSlot> slots;
    std::vector<MemberId> alive;
    for (auto& m : next.members) {
      alive.push_back(m.id);
      if (!m.leaving) slots.push_back({m.id, m.zone});
    }
    if (slots.empty()) {
      for (auto& m : next.members) slots.push_back({m.id, m.zone});  // everyone leaving: stay put
    }
    auto target = partition::targetPlacement(
        options_.partitionCount, slots, options_.cluster.backupCount + options_.cluster.asyncBackupCount);
    if (!from.assigned() && !restored_.empty()) {
      // A restart with data: each partition starts on the member with its newest copy.
      auto base = restored_.baseTable(target, alive);
      auto empty = RestoredCopies::uncopied(base);
      if (empty == 0) {
        memberLog().info("partitions assigned from the copies the {} members restarted with",
                         next.members.size());
      } else {
        memberLog().warn(
            "partitions assigned from the copies the {} members restarted with; {} of {} start "
            "empty: no member that joined has a copy of them",
            next.members.size(), empty, options_.partitionCount);
      }
      next.table = partition::nextTable(base, target, alive);
      restored_.clear();
    } else {
      next.table = partition::nextTable(from, target, alive);
    }
  }
  bool tableChanged = next.table.partitions != view_.table.partitions;
  if (!membersChanged && !tableChanged) return;
  // Versions continue above every copy a restarted member reported, so that copies recorded from
  // now on are newer than any recorded before the restart.
  next.version = std::max(view_.version, restored_.highestVersion()) + 1;
  next.replicasSince.resize(next.table.partitions.size(), next.version);
  for (size_t p = 0; p < next.table.partitions.size(); ++p) {
    if (p < view_.table.partitions.size() && p < view_.replicasSince.size() &&
        view_.table.partitions[p] == next.table.partitions[p]) {
      next.replicasSince[p] = view_.replicasSince[p];
    }
  }
  if (next.table.partitions.empty()) {
    next.table.epoch = 0;
  } else {
    next.table.epoch = next.version;
  }
  if (selfGone) {
    // Tell the others first: the view no longer has this member, so it stops coordinating.
    View old = view_;
    view_ = next;
    publishNow();
    view_ = old;
  }
  adopt(std::move(next));
  if (!selfGone) schedulePublish();
  for (auto& address : gone) publishTo(address);
  if (selfGone || !isCoordinator()) return;
  // A leaving member whose partitions all went to members that held them already (two members,
  // say) needs no copy, so no finished fill would look at it again: let it go now.
  for (auto& m : view_.members) {
    if (!m.leaving || (m.id == self_.id && view_.members.size() == 1)) continue;
    bool holdsAny = false;
    for (auto& r : view_.table.partitions) holdsAny |= r.holds(m.id);
    if (!holdsAny) {
      recompute(view_.members, false);
      return;
    }
  }
}

void Membership::noteRestored(MemberId member, CopyVersions copies, uint32_t lastMembers) {
  if (view_.table.assigned()) {
    restored_.add(member, std::move(copies), lastMembers);  // for the versions only
    return;
  }
  restored_.add(member, std::move(copies), lastMembers);
  if (restartWaitStarted_ || restored_.expectedMembers() <= options_.cluster.initialMinClusterSize ||
      options_.cluster.restartWaitMs == 0) {
    return;
  }
  restartWaitStarted_ = true;
  memberLog().info(
      "restarting: partitions wait for the {} members of the last view (up to "
      "cluster.restart-wait, {} ms)",
      restored_.expectedMembers(), options_.cluster.restartWaitMs);
  tasks_->add(timer_.afterDelay(options_.cluster.restartWaitMs * kj::MILLISECONDS).then([this]() {
    restartWaitOver_ = true;
    if (!isCoordinator() || view_.table.assigned()) return;
    memberLog().warn(
        "cluster.restart-wait ran out with {} of the {} members of the last view: assigning "
        "partitions from the copies of those present",
        view_.members.size(), restored_.expectedMembers());
    recompute(view_.members, false);
  }));
}

uint32_t Membership::membersToAssign() {
  uint32_t n = options_.cluster.initialMinClusterSize;
  if (!restartWaitOver_ && options_.cluster.restartWaitMs > 0) n = std::max(n, restored_.expectedMembers());
  return n;
}

void Membership::schedulePublish() {
  if (publishScheduled_) return;
  publishScheduled_ = true;
  tasks_->add(timer_.afterDelay(PUBLISH_COALESCE_MS * kj::MILLISECONDS).then([this]() {
    publishScheduled_ = false;
    if (isCoordinator()) publishNow();
  }));
}

void Membership::publishNow() {
  for (auto& m : view_.members) {
    if (m.id != self_.id) publishTo(m.address);
  }
}

void Membership::publishTo(const std::string& address) {
  auto request = links_.peer(address).publishRequest();
  writeView(view_, options_.cluster.name, request.initView());
  tasks_->add(timer_.timeoutAfter(options_.cluster.failureTimeoutMs * kj::MILLISECONDS, request.send())
                  .ignoreResult()
                  .catch_([this, address](kj::Exception&&) { links_.drop(address); }));
}

void Membership::onFilled(partition::PartitionId p, MemberId member, MemberId primary) {
  if (!isCoordinator() || p >= view_.table.partitions.size()) return;
  auto& r = view_.table.partitions[p];
  if (r.primary() != primary || !r.isFilling(member)) return;
  auto table = view_.table;
  partition::markFilled(table, p, member);
  // Step from the table with this replica filled (the copy is complete: it may now be promoted).
  recompute(view_.members, false, &table);
}

void Membership::onLeave(MemberId member) {
  if (!isCoordinator()) {
    auto request = links_.peer(view_.members[0].address).leaveRequest();
    request.setMember(member);
    tasks_->add(request.send().ignoreResult());
    return;
  }
  auto members = view_.members;
  for (auto& m : members) {
    if (m.id == member && !m.leaving) {
      memberLog().info("member '{}' ({:x}) asked to leave: moving its partitions away", m.name, m.id);
      m.leaving = true;
    }
  }
  recompute(std::move(members), true);
}

kj::Promise<void> Membership::leave() {
  if (view_.members.size() <= 1) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  leftFulfiller_ = kj::mv(paf.fulfiller);
  onLeave(self_.id);
  return kj::mv(paf.promise);
}

}  // namespace shoal::node::cluster

// Wiring of the cluster parts and the Peer service; see cluster.h.
#include "cluster.h"

#include <random>

#include "../map_service.h"

namespace shoal::node::cluster {
namespace {

uint64_t randomNonZero() {
  std::random_device device;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t(device()) << 32) | device();
  return id;
}

// The Peer interface other members call; dispatches to membership and replication.
class PeerService final : public wire::Peer::Server {
 public:
  PeerService(Cluster& cluster, Membership& membership, Replication& replication, SplitMerge& splitMerge,
              AntiEntropy& antiEntropy)
      : cluster_(cluster),
        membership_(membership),
        replication_(replication),
        splitMerge_(splitMerge),
        antiEntropy_(antiEntropy) {}

  kj::Promise<void> join(JoinContext context) override { return membership_.onJoin(context); }
  kj::Promise<void> heartbeat(HeartbeatContext context) override { return membership_.onHeartbeat(context); }
  kj::Promise<void> publish(PublishContext context) override {
    membership_.onPublish(context.getParams().getView());
    return kj::READY_NOW;
  }
  kj::Promise<void> replicate(ReplicateContext context) override { return replication_.onReplicate(context); }
  kj::Promise<void> filled(FilledContext context) override {
    auto p = context.getParams();
    membership_.onFilled(p.getPartition(), p.getMember(), p.getPrimary());
    return kj::READY_NOW;
  }
  kj::Promise<void> leave(LeaveContext context) override {
    membership_.onLeave(context.getParams().getMember());
    return kj::READY_NOW;
  }
  kj::Promise<void> probe(ProbeContext context) override { return splitMerge_.onProbe(context); }
  kj::Promise<void> mergeInto(MergeIntoContext context) override {
    splitMerge_.onMergeInto(context.getParams().getAddress());
    return kj::READY_NOW;
  }
  kj::Promise<void> mergeEntries(MergeEntriesContext context) override {
    return splitMerge_.onMergeEntries(context);
  }
  kj::Promise<void> checkDigests(CheckDigestsContext context) override {
    return antiEntropy_.onCheck(context);
  }
  kj::Promise<void> resp(RespContext context) override {
    auto commands = context.getParams().getCommands();
    std::vector<RespCall> calls;
    calls.reserve(commands.size());
    for (auto c : commands) {
      RespCall call;
      call.args.reserve(c.getArgs().size());
      for (auto a : c.getArgs()) call.args.emplace_back(reinterpret_cast<const char*>(a.begin()), a.size());
      call.localOnly = c.getLocalOnly();
      call.protocol = c.getProtocol() == 3 ? 3 : 2;
      calls.push_back(std::move(call));
    }
    return cluster_.handleResp(std::move(calls)).then([context](std::vector<std::string> replies) mutable {
      auto out = context.getResults().initReplies(replies.size());
      for (size_t i = 0; i < replies.size(); ++i) {
        out.set(i, kj::arrayPtr(reinterpret_cast<const kj::byte*>(replies[i].data()), replies[i].size()));
      }
    });
  }

 private:
  Cluster& cluster_;
  Membership& membership_;
  Replication& replication_;
  SplitMerge& splitMerge_;
  AntiEntropy& antiEntropy_;
};

}  // namespace

Cluster::Cluster(const NodeOptions& options, const Clock& clock, kj::AsyncIoProvider& io, MapService& maps,
                 capnp::ReaderOptions readerOptions, const std::string& address, RestoredMember restored)
    : options_(options),
      timer_(io.getTimer()),
      links_(io.getNetwork(), readerOptions),
      membership_(options, clock, io.getTimer(), links_,
                  MemberEntry{restored.id != 0 ? restored.id : randomNonZero(), options.name, address,
                              options.cluster.zone, 0, false, randomNonZero()},
                  restored.copies, restored.lastMembers),
      replication_(options, membership_, links_, maps, io.getTimer()),
      splitMerge_(options, clock, membership_, links_, maps, io.getTimer()),
      antiEntropy_(options, clock, membership_, links_, maps, replication_, io.getTimer()),
      peer_(kj::heap<PeerService>(*this, membership_, replication_, splitMerge_, antiEntropy_)) {
  replication_.setRestored(std::move(restored.loaded));
  membership_.setViewListener([this](const View& previous, const View& current) {
    replication_.onView(previous, current);
    splitMerge_.onView(previous, current);
    for (auto& listener : viewListeners_) listener(previous, current);
  });
  maps.setClusterHooks([this](MapRecords& records) { replication_.attach(records); },
                       [this](partition::PartitionId p) { return membership_.isPrimary(p); });
  maps.setReplication(
      [this]() { return replication_.hasPending(); },
      [this]() {
        return replication_.replicateSoon().then([](std::set<partition::PartitionId> stale) {
          if (!stale.empty()) {
            kj::throwFatalException(kj::Exception(
                kj::Exception::Type::FAILED, __FILE__, __LINE__,
                kj::str("shoal:wrong-owner: partition ", *stale.begin(), " moved to another member; retry")));
          }
        });
      });
  maps.setWriteGuard([this]() { return membership_.writesRefused(); });
  maps.setResultSink([this](partition::PartitionId p, uint64_t clientId, uint64_t requestId,
                            uint64_t lowestPending, wire::OpResult::Reader result) {
    replication_.captureResult(p, clientId, requestId, lowestPending, result);
  });
}

Cluster::~Cluster() = default;

kj::Promise<std::vector<std::string>> Cluster::handleResp(std::vector<RespCall> calls) {
  if (!respHandler_) {
    return std::vector<std::string>(calls.size(), "-ERR this member cannot run Redis commands\r\n");
  }
  return respHandler_(std::move(calls));
}

kj::Promise<void> Cluster::start() {
  splitMerge_.start();
  antiEntropy_.start();
  return membership_.start();
}

bool Cluster::ready() const {
  auto& view = membership_.view();
  return view.table.assigned() && view.find(membership_.selfId()) != nullptr;
}

std::string Cluster::notReadyReason() const {
  auto& view = membership_.view();
  if (view.version == 0) return "this member has not joined its cluster yet";
  if (!view.find(membership_.selfId())) return "this member is no longer part of its cluster";
  return "the cluster has " + std::to_string(view.members.size()) +
         " members; partitions are assigned once cluster.initial-min-cluster-size (" +
         std::to_string(options_.cluster.initialMinClusterSize) +
         ") have joined, and after a restart with data once the members of the last view are back (for up to "
         "cluster.restart-wait)";
}

}  // namespace shoal::node::cluster

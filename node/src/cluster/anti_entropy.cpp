// Periodic digest comparison between primaries and backups; see anti_entropy.h.
#include "anti_entropy.h"

#include <algorithm>

#include "../map_service.h"
#include "../member_log.h"

namespace shoal::node::cluster {
namespace {

// Entries expiring within this margin of the primary's clock are left out of a check: the
// replicas sweep them at slightly different times.
constexpr int64_t EXPIRY_MARGIN_MS = 5000;

using Digests = std::vector<std::pair<std::string, MapRecords::Digest>>;

}  // namespace

class AntiEntropy::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().debug("anti-entropy check failed: {}", e.getDescription().cStr());
  }
};

AntiEntropy::AntiEntropy(const NodeOptions& options, const Clock& clock, Membership& membership,
                         PeerLinks& links, MapService& maps, Replication& replication, kj::Timer& timer)
    : options_(options),
      clock_(clock),
      membership_(membership),
      links_(links),
      maps_(maps),
      replication_(replication),
      timer_(timer),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {}

AntiEntropy::~AntiEntropy() = default;

void AntiEntropy::start() {
  if (options_.cluster.antiEntropyIntervalMs == 0) return;
  tasks_->add(loop());
}

kj::Promise<void> AntiEntropy::loop() {
  auto step = std::max<uint64_t>(
      1, options_.cluster.antiEntropyIntervalMs / std::max<uint32_t>(1, options_.partitionCount));
  return timer_.afterDelay(step * kj::MILLISECONDS).then([this]() {
    checkNext();
    return loop();
  });
}

void AntiEntropy::checkNext() {
  auto& table = membership_.view().table;
  if (!table.assigned()) return;
  // The next partition this member is primary of (at most one lap).
  for (size_t tried = 0; tried < table.partitions.size(); ++tried) {
    auto p = cursor_;
    cursor_ = (cursor_ + 1) % table.partitions.size();
    if (cursor_ == 0) endRound();
    if (membership_.isPrimary(p)) {
      check(p);
      return;
    }
  }
}

void AntiEntropy::endRound() {
  // One line per round in which copies were compared: what the check does is visible, also when
  // it finds nothing.
  if (compared_ > 0) {
    memberLog().info("anti-entropy round: {} backup copies compared, {} differed", compared_, differed_);
  }
  compared_ = differed_ = 0;
}

void AntiEntropy::check(partition::PartitionId p) {
  if (!replication_.quiet(p)) return;  // writes not sent yet, or a copy under way: next round
  auto& view = membership_.view();
  auto& replicas = view.table.partitions[p];
  auto self = membership_.selfId();
  std::vector<MemberId> backups;
  for (auto m : replicas.replicas) {
    if (m != self && !replicas.isFilling(m)) backups.push_back(m);
  }
  if (backups.empty()) return;
  int64_t expiringBefore = clock_.nowMs() + EXPIRY_MARGIN_MS;
  Digests digests = maps_.digests(p, expiringBefore);
  for (auto m : backups) {
    auto* address = membership_.addressOf(m);
    if (!address) continue;
    auto request = links_.peer(*address).checkDigestsRequest();
    request.setEpoch(view.version);
    request.setFrom(self);
    request.setPartition(p);
    request.setSeq(replication_.sentSeq(p, m));
    request.setExpiringBeforeMs(expiringBefore);
    auto list = request.initMaps(digests.size());
    for (size_t i = 0; i < digests.size(); ++i) {
      list[i].setMap(digests[i].first);
      list[i].setDigest(digests[i].second.sum);
      list[i].setEntries(digests[i].second.entries);
    }
    auto timeout = 2 * options_.cluster.failureTimeoutMs * kj::MILLISECONDS;
    tasks_->add(
        timer_.timeoutAfter(timeout, request.send())
            .then([this, p, m, epoch = view.version](capnp::Response<wire::Peer::CheckDigestsResults>&& r) {
              if (!r.getCompared()) return;
              ++compared_;
              if (r.getMatches()) return;
              ++differed_;
              // Still the primary with that backup, and no copy started meanwhile?
              auto& now = membership_.view();
              if (!membership_.isPrimary(p) || !now.table.partitions[p].holds(m) || !replication_.quiet(p)) {
                return;
              }
              memberLog().warn(
                  "anti-entropy: backup {:x}'s copy of partition {} differs from the primary's "
                  "(view {}): copying it again",
                  m, p, epoch);
              ++repaired_;
              replication_.refill(p, m);
            }));
  }
}

kj::Promise<void> AntiEntropy::onCheck(
    capnp::CallContext<wire::Peer::CheckDigestsParams, wire::Peer::CheckDigestsResults> context) {
  auto params = context.getParams();
  auto results = context.getResults();
  auto p = params.getPartition();
  auto applied = replication_.appliedSeq(p, params.getFrom());
  auto& table = membership_.view().table;
  bool backupHere = p < table.partitions.size() && table.partitions[p].holds(membership_.selfId()) &&
                    !table.partitions[p].isFilling(membership_.selfId());
  if (!applied || *applied != params.getSeq() || !backupHere) {
    results.setCompared(false);  // writes in flight, or not (or no longer) its backup
    return kj::READY_NOW;
  }
  Digests theirs;
  for (auto d : params.getMaps()) {
    theirs.emplace_back(std::string(d.getMap()), MapRecords::Digest{d.getDigest(), d.getEntries()});
  }
  results.setCompared(true);
  results.setMatches(maps_.sameDigests(p, params.getExpiringBeforeMs(), theirs));
  return kj::READY_NOW;
}

}  // namespace shoal::node::cluster

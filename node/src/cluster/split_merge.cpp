// Finding the other side of a healed network partition and merging into it; see split_merge.h.
#include "split_merge.h"

#include <kj/vector.h>

#include <algorithm>
#include <map>

#include "../map_service.h"
#include "../member_log.h"

namespace shoal::node::cluster {
namespace {

constexpr int64_t PROBE_TIMEOUT_MS = 1000;
constexpr int64_t DELIVER_DEADLINE_MS = 60'000;  // owners that cannot be found for this long: give up
constexpr uint32_t COLLECT_CHUNK = 4096;
constexpr size_t MAX_LOST_ADDRESSES = 64;

// Maps that are not user data: topic logs ("$topic:..."), which a merge does not combine.
bool internalMap(std::string_view name) {
  return !name.empty() && name[0] == '$';
}

kj::Exception unavailable(const std::string& why) {
  return kj::Exception(kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
                       kj::str("shoal:unavailable: ", why.c_str()));
}

}  // namespace

bool mergedEntryWins(uint64_t version, int64_t updateTimeMs, const std::optional<EntryMeta>& existing) {
  if (!existing) return true;
  if (version != existing->version) return version > existing->version;
  return updateTimeMs > existing->updateTimeMs;
}

bool mergesInto(const SplitSide& a, const SplitSide& b) {
  if (a.memberCount != b.memberCount) return a.memberCount < b.memberCount;
  if (a.coordinatorJoinedAtMs != b.coordinatorJoinedAtMs)
    return a.coordinatorJoinedAtMs > b.coordinatorJoinedAtMs;
  return a.coordinatorId > b.coordinatorId;
}

class SplitMerge::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().warn("split-brain merge task failed: {}", e.getDescription().cStr());
  }
};

SplitMerge::SplitMerge(const NodeOptions& options, const Clock& clock, Membership& membership,
                       PeerLinks& links, MapService& maps, kj::Timer& timer)
    : options_(options),
      clock_(clock),
      membership_(membership),
      links_(links),
      maps_(maps),
      timer_(timer),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {}

SplitMerge::~SplitMerge() = default;

void SplitMerge::start() {
  if (options_.cluster.mergeProbeIntervalMs == 0) return;
  tasks_->add(probeLoop());
}

void SplitMerge::onView(const View& previous, const View& current) {
  if (!current.find(membership_.selfId())) return;
  for (auto& m : previous.members) {
    if (m.id != membership_.selfId() && !m.leaving && !current.find(m.id)) lost_.insert(m.address);
  }
  for (auto& m : current.members) lost_.erase(m.address);
  while (lost_.size() > MAX_LOST_ADDRESSES) lost_.erase(lost_.begin());
}

kj::Promise<void> SplitMerge::probeLoop() {
  return timer_.afterDelay(options_.cluster.mergeProbeIntervalMs * kj::MILLISECONDS).then([this]() {
    if (membership_.isCoordinator() && !merging_) probeAll();
    return probeLoop();
  });
}

void SplitMerge::probeAll() {
  auto& view = membership_.view();
  std::set<std::string> targets = lost_;
  targets.insert(options_.seeds.begin(), options_.seeds.end());
  for (auto& m : view.members) targets.erase(m.address);
  targets.erase(membership_.self().address);
  for (auto& address : targets) {
    if (!probing_.insert(address).second) continue;
    auto request = links_.peer(address).probeRequest();
    writeSummary(request.initFrom());
    tasks_->add(timer_.timeoutAfter(PROBE_TIMEOUT_MS * kj::MILLISECONDS, request.send())
                    .then(
                        [this, address](capnp::Response<wire::Peer::ProbeResults>&& response) {
                          probing_.erase(address);
                          consider(response.getSeen(), response.getKnowsSender());
                        },
                        [this, address](kj::Exception&&) {
                          probing_.erase(address);
                          links_.drop(address);
                        }));
  }
}

void SplitMerge::writeSummary(wire::ClusterSummary::Builder out) const {
  auto& view = membership_.view();
  out.setClusterName(options_.cluster.name);
  out.setPartitionCount(options_.partitionCount);
  out.setMemberCount(static_cast<uint32_t>(view.members.size()));
  if (view.members.empty()) return;
  auto& c = view.members[0];
  auto coordinator = out.initCoordinator();
  coordinator.setId(c.id);
  coordinator.setName(c.name);
  coordinator.setAddress(c.address);
  coordinator.setZone(c.zone);
  coordinator.setJoinedAtMs(c.joinedAtMs);
}

kj::Promise<void> SplitMerge::onProbe(
    capnp::CallContext<wire::Peer::ProbeParams, wire::Peer::ProbeResults> context) {
  auto from = context.getParams().getFrom();
  auto& view = membership_.view();
  if (view.version == 0 || !view.find(membership_.selfId())) {
    return unavailable("this member is not in a cluster right now");
  }
  bool knows = view.find(from.getCoordinator().getId()) != nullptr;
  auto results = context.getResults();
  writeSummary(results.initSeen());
  results.setKnowsSender(knows);
  consider(from, knows);
  return kj::READY_NOW;
}

void SplitMerge::consider(wire::ClusterSummary::Reader other, bool knowsUs) {
  if (!membership_.isCoordinator() || merging_) return;
  auto& view = membership_.view();
  auto coordinator = other.getCoordinator();
  if (other.getClusterName() != options_.cluster.name ||
      other.getPartitionCount() != options_.partitionCount || coordinator.getId() == 0 ||
      other.getMemberCount() == 0) {
    return;  // another cluster altogether (joins refuse it too), or a member between clusters
  }
  // The same cluster, or views that still overlap (a member that was paused): heartbeats and
  // republished views reconcile those; only disjoint clusters merge.
  if (knowsUs || view.find(coordinator.getId())) return;
  std::string address = coordinator.getAddress();
  SplitSide mine{view.members[0].id, view.members[0].joinedAtMs, static_cast<uint32_t>(view.members.size())};
  SplitSide theirs{coordinator.getId(), coordinator.getJoinedAtMs(), other.getMemberCount()};
  if (mergesInto(mine, theirs)) {
    memberLog().warn(
        "split brain healed: this side of cluster '{}' ({} members, coordinator '{}') meets the side of {} "
        "members coordinated by '{}' at {}, and merges into it",
        options_.cluster.name, mine.memberCount, view.members[0].name, theirs.memberCount,
        std::string(coordinator.getName()), address);
    startMerge(address);
  } else {
    // The other side merges; make sure its coordinator hears from this one.
    if (lost_.insert(address).second) {
      memberLog().info(
          "split brain healed: the side coordinated by '{}' at {} ({} members) will merge into this one",
          std::string(coordinator.getName()), address, theirs.memberCount);
    }
  }
}

void SplitMerge::startMerge(const std::string& address) {
  for (auto& m : membership_.view().members) {
    if (m.id == membership_.selfId()) continue;
    auto request = links_.peer(m.address).mergeIntoRequest();
    request.setAddress(address);
    auto name = m.name;
    tasks_->add(timer_.timeoutAfter(PROBE_TIMEOUT_MS * kj::MILLISECONDS, request.send())
                    .ignoreResult()
                    .catch_([name](kj::Exception&& e) {
                      memberLog().warn(
                          "member '{}' did not take the merge order ({}); it rejoins when its "
                          "coordinator no longer counts it",
                          name, e.getDescription().cStr());
                    }));
  }
  mergeSelf(address);
}

void SplitMerge::onMergeInto(const std::string& address) {
  mergeSelf(address);
}

void SplitMerge::mergeSelf(const std::string& address) {
  if (merging_) return;
  merging_ = true;
  auto entries = collect();
  size_t total = entries.size();
  memberLog().warn("member '{}' hands {} entries of its partitions to the cluster at {}",
                   membership_.self().name, total, address);
  tasks_->add(membership_.rejoinThrough(address)
                  .then([this, entries = std::move(entries), total]() mutable {
                    return deliver(std::move(entries), clock_.nowMs() + DELIVER_DEADLINE_MS, total);
                  })
                  .then([this]() { merging_ = false; },
                        [this](kj::Exception&& e) {
                          merging_ = false;
                          memberLog().error("split-brain merge failed: {}", e.getDescription().cStr());
                        }));
}

std::vector<SplitMerge::Entry> SplitMerge::collect() {
  std::vector<Entry> out;
  std::vector<std::string> names;
  for (auto* m : maps_.allMaps()) {
    if (!internalMap(m->name())) names.push_back(m->name());
  }
  for (auto& name : names) {
    auto* records = maps_.findRecords(name);
    if (!records) continue;
    for (partition::PartitionId p = 0; p < options_.partitionCount; ++p) {
      if (!membership_.isPrimary(p)) continue;
      uint64_t cursor = 0;
      do {
        std::vector<Entry> batch;
        cursor = records->scanPartition(p, cursor, COLLECT_CHUNK, [&](const RecordChange& c) {
          batch.push_back(Entry{name, p, std::string(c.key), std::string(c.value), c.version, 0,
                                c.expirationTimeMs, c.ttlMs, c.maxIdleMs});
        });
        for (auto& e : batch) {
          if (auto meta = records->peekMeta(p, e.key)) e.updateTimeMs = meta->updateTimeMs;
          out.push_back(std::move(e));
        }
      } while (cursor != 0);
    }
  }
  return out;
}

kj::Promise<void> SplitMerge::deliver(std::vector<Entry> entries, int64_t deadlineMs, size_t total) {
  if (entries.empty()) {
    memberLog().info("split-brain merge: all {} entries handed over", total);
    return kj::READY_NOW;
  }
  auto& view = membership_.view();
  std::map<std::string, std::vector<Entry>> byOwner;
  std::vector<Entry> waiting;
  for (auto& e : entries) {
    const std::string* address = nullptr;
    if (view.table.assigned() && e.partition < view.table.partitions.size()) {
      address = membership_.addressOf(view.table.primaryOf(e.partition));
    }
    if (address) {
      byOwner[*address].push_back(std::move(e));
    } else {
      waiting.push_back(std::move(e));
    }
  }
  const size_t budget = std::max<size_t>(1 << 20, options_.limits.maxMessageBytes / 4);
  kj::Vector<kj::Promise<std::vector<Entry>>> sends;
  for (auto& [address, list] : byOwner) {
    std::vector<Entry> chunk;
    size_t bytes = 0;
    for (auto& e : list) {
      bytes += e.key.size() + e.value.size() + e.map.size() + 64;
      chunk.push_back(std::move(e));
      if (bytes > budget) {
        sends.add(sendChunk(address, std::move(chunk)));
        chunk.clear();
        bytes = 0;
      }
    }
    sends.add(sendChunk(address, std::move(chunk)));
  }
  return kj::joinPromises(sends.releaseAsArray())
      .then([this, waiting = std::move(waiting), deadlineMs,
             total](kj::Array<std::vector<Entry>> leftovers) mutable -> kj::Promise<void> {
        for (auto& list : leftovers) {
          for (auto& e : list) waiting.push_back(std::move(e));
        }
        if (waiting.empty()) return deliver({}, deadlineMs, total);
        if (clock_.nowMs() >= deadlineMs) {
          memberLog().error(
              "split-brain merge: {} of {} entries found no owner that took them within {} s; they are not "
              "merged",
              waiting.size(), total, DELIVER_DEADLINE_MS / 1000);
          return kj::READY_NOW;
        }
        return membership_.nextView(1000).then(
            [this, waiting = std::move(waiting), deadlineMs, total]() mutable {
              return deliver(std::move(waiting), deadlineMs, total);
            });
      });
}

kj::Promise<std::vector<SplitMerge::Entry>> SplitMerge::sendChunk(const std::string& address,
                                                                  std::vector<Entry> chunk) {
  if (chunk.empty()) return std::vector<Entry>{};
  auto request = links_.peer(address).mergeEntriesRequest();
  auto out = request.initEntries(chunk.size());
  for (size_t i = 0; i < chunk.size(); ++i) {
    auto& e = chunk[i];
    auto w = out[i];
    w.setMap(e.map);
    w.setPartition(e.partition);
    w.setKey(kj::arrayPtr(reinterpret_cast<const kj::byte*>(e.key.data()), e.key.size()));
    w.setValue(kj::arrayPtr(reinterpret_cast<const kj::byte*>(e.value.data()), e.value.size()));
    w.setVersion(e.version);
    w.setUpdateTimeMs(e.updateTimeMs);
    w.setExpirationTimeMs(e.expirationTimeMs);
    w.setTtlMs(e.ttlMs);
    w.setMaxIdleMs(e.maxIdleMs);
  }
  auto shared = std::make_shared<std::vector<Entry>>(std::move(chunk));
  return timer_.timeoutAfter(10 * kj::SECONDS, request.send())
      .then(
          [shared](capnp::Response<wire::Peer::MergeEntriesResults>&& response) {
            std::vector<Entry> left;
            for (auto i : response.getNotOwned()) {
              if (i < shared->size()) left.push_back(std::move((*shared)[i]));
            }
            return left;
          },
          [this, shared, address](kj::Exception&& e) {
            memberLog().debug("split-brain merge: {} did not take {} entries ({}); retrying", address,
                              shared->size(), e.getDescription().cStr());
            links_.drop(address);
            return std::move(*shared);
          });
}

kj::Promise<void> SplitMerge::onMergeEntries(
    capnp::CallContext<wire::Peer::MergeEntriesParams, wire::Peer::MergeEntriesResults> context) {
  auto& view = membership_.view();
  if (!view.table.assigned() || !view.find(membership_.selfId())) {
    return unavailable("this member is not serving partitions right now");
  }
  if (auto refused = membership_.writesRefused()) return unavailable(*refused);
  auto entries = context.getParams().getEntries();
  std::vector<uint32_t> notOwned;
  size_t applied = 0;
  for (uint32_t i = 0; i < entries.size(); ++i) {
    auto e = entries[i];
    auto p = e.getPartition();
    if (p >= options_.partitionCount || !membership_.isPrimary(p)) {
      notOwned.push_back(i);
      continue;
    }
    std::string name = e.getMap();
    if (internalMap(name)) continue;
    auto key = e.getKey();
    auto value = e.getValue();
    std::string_view k(reinterpret_cast<const char*>(key.begin()), key.size());
    std::string_view v(reinterpret_cast<const char*>(value.begin()), value.size());
    if (k.size() > options_.limits.maxKeyBytes || v.size() > options_.limits.maxValueBytes) continue;
    auto& records = maps_.records(name);
    if (!mergedEntryWins(e.getVersion(), e.getUpdateTimeMs(), records.peekMeta(p, k))) continue;
    records.applyReplicated(RecordChange{RecordChange::Kind::STORE, p, k, v, e.getVersion(),
                                         e.getExpirationTimeMs(), e.getTtlMs(), e.getMaxIdleMs()});
    ++applied;
  }
  memberLog().info("split-brain merge: applied {} of {} entries ({} for partitions owned elsewhere)", applied,
                   entries.size(), notOwned.size());
  // Answered once what was applied is stored and on the backups, like a client's write.
  return maps_.commit().then([context, notOwned = std::move(notOwned)]() mutable {
    auto out = context.getResults().initNotOwned(notOwned.size());
    for (size_t i = 0; i < notOwned.size(); ++i) out.set(i, notOwned[i]);
  });
}

}  // namespace shoal::node::cluster

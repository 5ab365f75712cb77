// Primary-backup replication and backup fills; see replication.h.
#include "replication.h"

#include <capnp/serialize.h>

#include <cstdlib>

#include "../map_service.h"
#include "../member_log.h"

namespace shoal::node::cluster {
namespace {

constexpr uint32_t MAX_RUNNING_FILLS = 4;          // copies under way at once from this member
constexpr size_t MAX_FILL_CHUNK_BYTES = 4u << 20;  // a chunk closes after this many value bytes
constexpr int64_t FILL_RETRY_INTERVAL_MS = 500;    // abandoned copies start again this often

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string_view viewOf(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}

}  // namespace

class Replication::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().warn("replication task failed: {}", e.getDescription().cStr());
  }
};

Replication::Replication(const NodeOptions& options, Membership& membership, PeerLinks& links,
                         MapService& maps, kj::Timer& timer)
    : options_(options),
      membership_(membership),
      links_(links),
      maps_(maps),
      timer_(timer),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {
  if (const char* drop = std::getenv("SHOAL_FAULT_DROP_REPLICATED")) {
    dropFirst_ = std::strtoull(drop, nullptr, 10);
    if (dropFirst_ > 0)
      memberLog().warn("fault injection: the first {} replicated changes are dropped", dropFirst_);
  }
  tasks_->add(kj::evalLater([this]() {
    struct Loop {
      static kj::Promise<void> run(Replication* self) {
        return self->timer_.afterDelay(FILL_RETRY_INTERVAL_MS * kj::MILLISECONDS).then([self]() {
          self->ensureFills();
          return run(self);
        });
      }
    };
    return Loop::run(this);
  }));
}

Replication::~Replication() = default;

void Replication::attach(MapRecords& records) {
  auto previous = records.changeSink();
  records.setChangeSink([this, previous, map = records.name()](const RecordChange& c) {
    if (previous) previous(c);
    if (!replicated(c.partition)) return;
    pending_[c.partition].changes.push_back(OwnedChange{map, std::string(c.key), std::string(c.value),
                                                        c.kind == RecordChange::Kind::ERASE, c.version,
                                                        c.expirationTimeMs, c.ttlMs, c.maxIdleMs});
    flushSoon();
  });
}

bool Replication::replicated(partition::PartitionId p) const {
  return membership_.isPrimary(p) && membership_.view().table.partitions[p].replicas.size() > 1;
}

void Replication::captureResult(partition::PartitionId p, uint64_t clientId, uint64_t requestId,
                                uint64_t lowestPending, wire::OpResult::Reader result) {
  if (!replicated(p)) return;
  // Sized to the result (a few words), not capnp's default 8 KiB first segment, zeroed per write.
  capnp::MallocMessageBuilder message(result.totalSize().wordCount + 1);
  message.setRoot(result);
  pending_[p].results.push_back(
      OwnedResult{clientId, requestId, lowestPending, capnp::messageToFlatArray(message)});
  flushSoon();
}

kj::Promise<std::set<partition::PartitionId>> Replication::replicateSoon() {
  KJ_IF_MAYBE (next, nextFlush_) return next->addBranch();
  auto forked = kj::evalLater([this]() {
                  nextFlush_ = nullptr;
                  return replicate();
                }).fork();
  auto branch = forked.addBranch();
  nextFlush_ = kj::mv(forked);
  return branch;
}

void Replication::flushSoon() {
  // Changes not sent by a caller that waits for them (expiry sweeps, embedded writes) go out with
  // the next shared flush, the same one a waiting caller joins (so no caller is answered before
  // its own changes reached the backups).
  if (nextFlush_ == nullptr) tasks_->add(replicateSoon().ignoreResult());
}

void Replication::writeChanges(capnp::List<wire::Change>::Builder out,
                               const std::vector<OwnedChange>& changes) {
  for (size_t i = 0; i < changes.size(); ++i) {
    auto& c = changes[i];
    auto w = out[i];
    w.setMap(c.map);
    w.setKey(bytesOf(c.key));
    w.setValue(bytesOf(c.value));
    w.setErase(c.erase);
    w.setVersion(c.version);
    w.setExpirationTimeMs(c.expirationTimeMs);
    w.setTtlMs(c.ttlMs);
    w.setMaxIdleMs(c.maxIdleMs);
  }
}

void Replication::writeResults(capnp::List<wire::DedupeRecord>::Builder out,
                               const std::vector<OwnedResult>& results) {
  for (size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    out[i].setClientId(r.clientId);
    out[i].setRequestId(r.requestId);
    out[i].setLowestPending(r.lowestPending);
    out[i].setResult(r.result.asBytes());
  }
}

kj::Promise<std::set<partition::PartitionId>> Replication::replicate() {
  auto pending = std::move(pending_);
  pending_.clear();
  auto& view = membership_.view();
  auto self = membership_.selfId();
  auto timeout = 2 * options_.cluster.failureTimeoutMs * kj::MILLISECONDS;
  // Which partitions go to which backup: one call per backup carries them all, or two when it is
  // a synchronous backup of some and an asynchronous one of others (the second is not waited for).
  std::map<std::pair<MemberId, bool>, std::vector<partition::PartitionId>> byBackup;  // (member, async)
  for (auto& [p, outgoing] : pending) {
    if (p >= view.table.partitions.size()) continue;
    auto& r = view.table.partitions[p];
    for (size_t rank = 0; rank < r.replicas.size(); ++rank) {
      auto m = r.replicas[rank];
      if (m == self) continue;
      if (r.isFilling(m)) {
        // Live writes reach a filling backup only after its copy began (the copy starts with
        // "drop what you hold"); before that the copy will carry them.
        auto it = fills_.find({p, m});
        if (it == fills_.end() || !it->second.begun) continue;
      }
      bool async = rank > options_.cluster.backupCount;  // the replicas after the primary's sync backups
      byBackup[{m, async}].push_back(p);
    }
  }
  kj::Vector<kj::Promise<std::vector<partition::PartitionId>>> waits;
  for (auto& [key, partitions] : byBackup) {
    MemberId member = key.first;
    bool async = key.second;
    auto* address = membership_.addressOf(member);
    if (!address) continue;
    auto request = links_.peer(*address).replicateRequest();
    request.setEpoch(view.version);
    request.setFrom(self);
    auto parts = request.initParts(partitions.size());
    for (size_t i = 0; i < partitions.size(); ++i) {
      auto p = partitions[i];
      auto& outgoing = pending[p];
      parts[i].setPartition(p);
      parts[i].setSeq(++nextSeq_[{p, member}]);
      writeChanges(parts[i].initChanges(outgoing.changes.size()), outgoing.changes);
      writeResults(parts[i].initDedupe(outgoing.results.size()), outgoing.results);
    }
    std::string to = *address;
    auto sent =
        timer_.timeoutAfter(timeout, request.send())
            .then(
                [this, member, partitions](capnp::Response<wire::Peer::ReplicateResults>&& response) {
                  std::vector<partition::PartitionId> stale;
                  auto statuses = response.getStatuses();
                  for (size_t i = 0; i < partitions.size() && i < statuses.size(); ++i) {
                    auto p = partitions[i];
                    if (statuses[i] == wire::ReplicateStatus::STALE) {
                      stale.push_back(p);
                    } else if (statuses[i] == wire::ReplicateStatus::GAP) {
                      // It missed writes: send it a fresh copy.
                      memberLog().info("backup {:x} of partition {} missed writes: copying it again", member,
                                       p);
                      auto& fill = fills_[{p, member}];
                      if (fill.state != Fill::State::RUNNING) fill = Fill{};
                    }
                  }
                  startQueuedFills();
                  return stale;
                },
                [this, to](kj::Exception&& e) {
                  // A dead or wedged backup does not hold the writes up for longer than the
                  // timeout; the failure detector replaces it.
                  memberLog().warn("backup at {} did not take writes: {}", to, e.getDescription().cStr());
                  links_.drop(to);
                  return std::vector<partition::PartitionId>{};
                });
    if (async) {
      // Acknowledged writes are not held up for it; a gap it reports is repaired by a copy, and a
      // stale answer changes nothing here (the writes were answered; the new table takes over).
      tasks_->add(sent.ignoreResult());
    } else {
      waits.add(kj::mv(sent));
    }
  }
  return kj::joinPromises(waits.releaseAsArray())
      .then([](kj::Array<std::vector<partition::PartitionId>> results) {
        std::set<partition::PartitionId> stale;
        for (auto& r : results) stale.insert(r.begin(), r.end());
        return stale;
      });
}

kj::Promise<void> Replication::onReplicate(
    capnp::CallContext<wire::Peer::ReplicateParams, wire::Peer::ReplicateResults> context) {
  auto params = context.getParams();
  auto parts = params.getParts();
  auto statuses = context.getResults().initStatuses(parts.size());
  for (size_t i = 0; i < parts.size(); ++i)
    statuses.set(i, applyPart(params.getEpoch(), params.getFrom(), parts[i]));
  if (!maps_.hasPendingChanges()) return kj::READY_NOW;
  // Persistent maps: the backup's copy is stored before it answers.
  return maps_.commit();
}

wire::ReplicateStatus Replication::applyPart(uint64_t epoch, MemberId from,
                                             wire::PartitionWrites::Reader part) {
  auto p = part.getPartition();
  auto& view = membership_.view();
  if (p >= options_.partitionCount) return wire::ReplicateStatus::GAP;
  if (epoch < view.version && view.table.primaryOf(p) != from) return wire::ReplicateStatus::STALE;
  auto& state = backups_[p];
  auto seq = part.getSeq();
  if (part.getBeginFill()) {
    maps_.dropPartition(p);  // in memory and in the store, before the copy's first entries
    restored_.erase(p);
    // The copy record went with the data; it is written again only when the replicas change, so
    // a copy made again in place (a gap, anti-entropy) counts as one of unknown age after a crash.
    state = BackupState{true, from, seq};
  } else if (!state.known) {
    state = BackupState{true, from, seq};
  } else if (state.from != from || seq != state.lastSeq + 1) {
    return wire::ReplicateStatus::GAP;
  } else {
    state.lastSeq = seq;
  }
  for (auto c : part.getChanges()) {
    if (dropFirst_ > 0) {
      --dropFirst_;
      continue;
    }
    std::string name = c.getMap();
    maps_.records(name).applyReplicated(RecordChange{
        c.getErase() ? RecordChange::Kind::ERASE : RecordChange::Kind::STORE, p, viewOf(c.getKey()),
        viewOf(c.getValue()), c.getVersion(), c.getExpirationTimeMs(), c.getTtlMs(), c.getMaxIdleMs()});
  }
  for (auto d : part.getDedupe()) {
    auto bytes = d.getResult();
    if (bytes.size() % sizeof(capnp::word) != 0) continue;
    auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    memcpy(words.begin(), bytes.begin(), bytes.size());
    capnp::FlatArrayMessageReader reader(words);
    maps_.rememberReplicated(d.getClientId(), d.getRequestId(), d.getLowestPending(),
                             reader.getRoot<wire::OpResult>());
  }
  return wire::ReplicateStatus::APPLIED;
}

void Replication::onView(const View& previous, const View& current) {
  auto self = membership_.selfId();
  persistHoldings(previous, current);
  if (previous.find(self) && !current.find(self)) {
    // Out of the cluster: what this member holds may be stale; it is filled again after a rejoin.
    backups_.clear();
    fills_.clear();
    pending_.clear();
    return;
  }
  if (current.table.assigned()) {
    for (partition::PartitionId p = 0; p < current.table.partitions.size(); ++p) {
      bool held = p < previous.table.partitions.size() && previous.table.partitions[p].holds(self);
      if (held && !current.table.partitions[p].holds(self)) backups_.erase(p);
    }
  }
  ensureFills();
}

void Replication::persistHoldings(const View& previous, const View& current) {
  auto self = membership_.selfId();
  if (previous.find(self) && !current.find(self)) {
    for (partition::PartitionId p = 0; p < options_.partitionCount; ++p) maps_.dropPartition(p);
    restored_.clear();
    recorded_.clear();
  } else if (current.table.assigned() && current.find(self)) {
    std::vector<std::pair<partition::PartitionId, uint64_t>> copies;  // partition, version of its replicas
    for (partition::PartitionId p = 0; p < current.table.partitions.size(); ++p) {
      auto& replicas = current.table.partitions[p];
      bool held = p < previous.table.partitions.size() && previous.table.partitions[p].holds(self);
      if (!replicas.holds(self)) {
        // No longer a replica (the new replicas were filled from the primary), or restored data
        // of a partition the cluster placed elsewhere: free it, and delete it from the store.
        if (held || restored_.count(p)) maps_.dropPartition(p);
        recorded_.erase(p);
      } else if (!replicas.isFilling(self)) {
        // Recorded with the version the partition's replicas last changed in (the same on
        // every replica, so copies of one view compare equal); a member that drops out of them
        // keeps an older version than those that go on taking writes.
        uint64_t since = p < current.replicasSince.size() ? current.replicasSince[p] : current.version;
        auto recorded = recorded_.find(p);
        if (recorded == recorded_.end() || recorded->second != since) {
          copies.emplace_back(p, since);
          recorded_[p] = since;
        }
      }
    }
    restored_.clear();
    maps_.recordCopies(static_cast<uint32_t>(current.members.size()), copies);
  } else {
    return;
  }
  if (maps_.hasPendingStore()) tasks_->add(maps_.commitStore());
}

bool Replication::quiet(partition::PartitionId p) const {
  if (pending_.count(p)) return false;
  auto it = fills_.lower_bound({p, 0});
  return it == fills_.end() || it->first.first != p;
}

uint64_t Replication::sentSeq(partition::PartitionId p, MemberId backup) const {
  auto it = nextSeq_.find({p, backup});
  return it == nextSeq_.end() ? 0 : it->second;
}

void Replication::refill(partition::PartitionId p, MemberId backup) {
  auto& fill = fills_[{p, backup}];
  if (fill.state != Fill::State::RUNNING) fill = Fill{};
  startQueuedFills();
}

std::optional<uint64_t> Replication::appliedSeq(partition::PartitionId p, MemberId from) const {
  auto it = backups_.find(p);
  if (it == backups_.end() || !it->second.known || it->second.from != from) return std::nullopt;
  return it->second.lastSeq;
}

bool Replication::stillFilling(const FillKey& key) const {
  auto& table = membership_.view().table;
  if (key.first >= table.partitions.size()) return false;
  auto& r = table.partitions[key.first];
  return r.primary() == membership_.selfId() && r.holds(key.second);
}

void Replication::ensureFills() {
  auto& table = membership_.view().table;
  auto self = membership_.selfId();
  // Forget copies the table no longer asks for (finished and recorded, or moot).
  for (auto it = fills_.begin(); it != fills_.end();) {
    auto [p, m] = it->first;
    bool wanted =
        p < table.partitions.size() && table.partitions[p].primary() == self && table.partitions[p].holds(m);
    bool recorded = wanted && !table.partitions[p].isFilling(m);
    if (it->second.state != Fill::State::RUNNING &&
        (!wanted || (recorded && it->second.state == Fill::State::DONE))) {
      it = fills_.erase(it);
    } else {
      ++it;
    }
  }
  for (partition::PartitionId p = 0; p < table.partitions.size(); ++p) {
    auto& r = table.partitions[p];
    if (r.primary() != self) continue;
    for (auto m : r.filling) fills_.try_emplace({p, m});
  }
  startQueuedFills();
}

void Replication::startQueuedFills() {
  for (auto& [key, fill] : fills_) {
    if (running_ >= MAX_RUNNING_FILLS) return;
    if (fill.state != Fill::State::QUEUED) continue;
    fill.state = Fill::State::RUNNING;
    ++running_;
    tasks_->add(fillStep(key));
  }
}

kj::Promise<void> Replication::fillStep(FillKey key) {
  auto it = fills_.find(key);
  if (it == fills_.end()) {  // forgotten while running (this member left the cluster)
    --running_;
    return kj::READY_NOW;
  }
  // Done: kept (DONE) until the table records it, so it is not copied twice meanwhile; else
  // dropped, and the retry loop starts it again if the table still wants it.
  auto finish = [this, key](bool done) {
    --running_;
    auto it = fills_.find(key);
    if (it != fills_.end()) {
      if (done) {
        it->second.state = Fill::State::DONE;
      } else {
        fills_.erase(it);
      }
    }
    startQueuedFills();
  };
  auto* address = membership_.addressOf(key.second);
  if (!stillFilling(key) || !address) {
    finish(false);
    return kj::READY_NOW;
  }
  Fill& fill = it->second;
  auto p = key.first;
  bool first = !fill.begun;
  if (first) {
    fill.maps.clear();
    for (auto* map : maps_.allMaps()) fill.maps.push_back(map->name());
  }
  std::vector<OwnedChange> chunk;
  size_t bytes = 0;
  auto limit = options_.cluster.fillChunkEntries;
  while (fill.mapIndex < fill.maps.size() && chunk.size() < limit && bytes < MAX_FILL_CHUNK_BYTES) {
    auto* records = maps_.findRecords(fill.maps[fill.mapIndex]);
    if (!records) {
      ++fill.mapIndex;
      fill.cursor = 0;
      continue;
    }
    fill.cursor = records->scanPartition(p, fill.cursor, 1, [&](const RecordChange& c) {
      chunk.push_back(OwnedChange{records->name(), std::string(c.key), std::string(c.value), false, c.version,
                                  c.expirationTimeMs, c.ttlMs, c.maxIdleMs});
      bytes += c.key.size() + c.value.size();
    });
    if (fill.cursor == 0) ++fill.mapIndex;
  }
  bool last = fill.mapIndex >= fill.maps.size();
  auto& view = membership_.view();
  auto request = links_.peer(*address).replicateRequest();
  request.setEpoch(view.version);
  request.setFrom(membership_.selfId());
  auto part = request.initParts(1)[0];
  part.setPartition(p);
  part.setSeq(++nextSeq_[key]);
  part.setBeginFill(first);
  writeChanges(part.initChanges(chunk.size()), chunk);
  fill.begun = true;
  std::string to = *address;
  return timer_.timeoutAfter(2 * options_.cluster.failureTimeoutMs * kj::MILLISECONDS, request.send())
      .then(
          [this, key, last,
           finish](capnp::Response<wire::Peer::ReplicateResults>&& response) -> kj::Promise<void> {
            auto statuses = response.getStatuses();
            if (statuses.size() != 1 || statuses[0] != wire::ReplicateStatus::APPLIED) {
              finish(false);  // refused: the next table or the retry loop decides
              return kj::READY_NOW;
            }
            if (!last) return fillStep(key);
            auto self = membership_.selfId();
            memberLog().debug("partition {} copied to member {:x}", key.first, key.second);
            if (membership_.isCoordinator()) {
              membership_.onFilled(key.first, key.second, self);
            } else if (!membership_.view().members.empty()) {
              auto request = links_.peer(membership_.view().members[0].address).filledRequest();
              request.setPartition(key.first);
              request.setMember(key.second);
              request.setPrimary(self);
              tasks_->add(request.send().ignoreResult());
            }
            finish(true);
            return kj::READY_NOW;
          },
          [this, to, finish](kj::Exception&& e) {
            memberLog().warn("copy to member at {} stopped: {}", to, e.getDescription().cStr());
            links_.drop(to);
            finish(false);
          });
}

}  // namespace shoal::node::cluster

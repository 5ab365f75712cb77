// wire::Member implementation; see member_service.h.
#include "member_service.h"

#include <algorithm>
#include <map>
#include <set>

#include "member_log.h"
#include "shoal/version.h"
#include "topic/topic_log.h"

namespace shoal::node {
namespace {

// A failure of the whole call; "shoal:<code>:" lets the client map it back to an ErrorCode.
kj::Exception callFailure(const char* code, const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:", code, ": ", message.c_str()));
}

const char* opName(wire::MapOp::Which which) {
  switch (which) {
    case wire::MapOp::GET:
      return "get";
    case wire::MapOp::GET_ENTRY:
      return "getEntry";
    case wire::MapOp::CONTAINS_KEY:
      return "containsKey";
    case wire::MapOp::PUT:
      return "put";
    case wire::MapOp::SET:
      return "set";
    case wire::MapOp::PUT_IF_ABSENT:
      return "putIfAbsent";
    case wire::MapOp::REPLACE:
      return "replace";
    case wire::MapOp::REPLACE_IF_VALUE:
      return "replaceIfValue";
    case wire::MapOp::REPLACE_IF_VERSION:
      return "replaceIfVersion";
    case wire::MapOp::REMOVE:
      return "remove";
    case wire::MapOp::DELETE:
      return "delete";
    case wire::MapOp::REMOVE_IF_VALUE:
      return "removeIfValue";
    case wire::MapOp::REMOVE_IF_VERSION:
      return "removeIfVersion";
    case wire::MapOp::SIZE:
      return "size";
    case wire::MapOp::CLEAR:
      return "clear";
    case wire::MapOp::SET_TTL:
      return "setTtl";
    case wire::MapOp::PUBLISH:
      return "publish";
  }
  return "unknown";
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

}  // namespace

struct MemberService::Routing {
  enum class Route : uint8_t { LOCAL, ELSEWHERE };
  std::vector<Route> route;
  std::vector<partition::PartitionId> partition;
};

bool MemberService::isLocal(const Routing& routing, uint32_t i) {
  return routing.route[i] == Routing::Route::LOCAL;
}

namespace {

void failOp(wire::OpResult::Builder result, wire::ErrorCode code, const std::string& message) {
  auto f = result.initFailure();
  f.setCode(code);
  f.setMessage(message);
}

bool isKeyless(wire::MapOp::Which which) {
  return which == wire::MapOp::SIZE || which == wire::MapOp::CLEAR;
}

// Reads that a backup copy may answer (read-backup-data): they change nothing a primary replicates.
bool isBackupRead(wire::MapOp::Which which) {
  return which == wire::MapOp::GET || which == wire::MapOp::GET_ENTRY || which == wire::MapOp::CONTAINS_KEY;
}

}  // namespace

kj::Promise<void> MemberService::execute(ExecuteContext context) {
  auto batch = context.getParams().getBatch();
  auto ops = batch.getOps();
  auto traceId = batch.getTraceId();
  auto& limits = maps_.limits();
  if (ops.size() > limits.maxBatchOps) {
    memberLog().info("[trace {}] rejected batch of {} ops", traceId.cStr(), ops.size());
    return callFailure("too-large", "batch of " + std::to_string(ops.size()) +
                                        " operations exceeds limits.max-batch-ops (" +
                                        std::to_string(limits.maxBatchOps) + ")");
  }
  if (memberLog().should_log(spdlog::level::debug)) {
    memberLog().debug("[trace {}] execute {} ops from client {:x}", traceId.cStr(), ops.size(),
                      batch.getClientId());
    for (auto op : ops) {
      if (op.hasTraceId()) {
        memberLog().debug("[trace {}] {} on map '{}' (batch {})", op.getTraceId().cStr(), opName(op.which()),
                          op.getMap().cStr(), traceId.cStr());
      }
    }
  }
  // Size the whole request before applying anything, so an oversized batch is refused whole
  // (the connection reads with twice this budget, see runtime.cpp).
  uint64_t bytes = 0;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { bytes = batch.totalSize().wordCount * 8; })) {
    bytes = UINT64_MAX;
  }
  if (bytes > limits.maxMessageBytes) {
    memberLog().info("[trace {}] rejected a batch over limits.max-message-bytes", traceId.cStr());
    return callFailure(
        "too-large",
        "request of " +
            (bytes == UINT64_MAX ? std::string("unknown size") : std::to_string(bytes) + " bytes") +
            " exceeds limits.max-message-bytes (" + std::to_string(limits.maxMessageBytes) + ")");
  }
  auto results = context.getResults().initResults(ops.size());
  context.getResults().setTableEpoch(cluster_.membership().view().table.epoch);
  if (!cluster_.ready()) {
    auto why = cluster_.notReadyReason();
    for (uint32_t i = 0; i < ops.size(); ++i) failOp(results[i], wire::ErrorCode::UNAVAILABLE, why);
    return kj::READY_NOW;
  }
  // Route each op: owned here, elsewhere (forwarded to its primary), or everywhere (size, clear).
  auto& membership = cluster_.membership();
  auto& view = membership.view();
  bool forwarded = batch.getForwarded();
  auto routing = kj::heap<Routing>();
  routing->route.resize(ops.size(), Routing::Route::LOCAL);
  routing->partition.resize(ops.size(), 0);
  std::map<std::string, std::vector<uint32_t>> remote;
  std::vector<uint32_t> everywhere;
  auto refused = membership.writesRefused();  // the minority side of a partition: no writes at all
  for (uint32_t i = 0; i < ops.size(); ++i) {
    auto op = ops[i];
    if (refused && isWriteOp(op.which())) {
      routing->route[i] = Routing::Route::ELSEWHERE;
      failOp(results[i], wire::ErrorCode::UNAVAILABLE, *refused);
      continue;
    }
    if (isKeyless(op.which())) {
      if (!forwarded && view.members.size() > 1) everywhere.push_back(i);
      continue;
    }
    auto key = op.getKey();
    if (key.size() > limits.maxKeyBytes) continue;  // refused where it is applied
    auto p = maps_.partitioner().partitionOf({reinterpret_cast<const char*>(key.begin()), key.size()});
    routing->partition[i] = p;
    if (membership.isPrimary(p)) continue;
    if (batch.getReadBackups() && isBackupRead(op.which()) && membership.holdsCopy(p) &&
        maps_.readsBackupData({op.getMap().cStr(), op.getMap().size()})) {
      continue;  // read-backup-data: this member's backup copy answers (applied in sequence order)
    }
    routing->route[i] = Routing::Route::ELSEWHERE;
    auto owner = view.table.primaryOf(p);
    auto* address = membership.addressOf(owner);
    if (forwarded || address == nullptr) {
      failOp(results[i], wire::ErrorCode::WRONG_OWNER,
             "partition " + std::to_string(p) + " is not owned by member '" + identity_.name +
                 "' (table epoch " + std::to_string(view.version) + "); retry");
      continue;
    }
    remote[*address].push_back(i);
  }
  maps_.beginBatch(batch.getClientId(), batch.getLowestPending());
  auto& r = *routing;
  kj::Vector<kj::Promise<void>> parts;
  auto local = applyFrom(context, r, 0);
  if (!everywhere.empty()) {
    local = local.then([this, context, everywhere]() mutable { return fanOut(context, everywhere); });
  }
  parts.add(kj::mv(local));
  for (auto& [address, indices] : remote) parts.add(forwardTo(context, address, indices));
  return kj::joinPromises(parts.releaseAsArray()).attach(kj::mv(routing));
}

kj::Promise<void> MemberService::applyFrom(ExecuteContext context, Routing& routing, uint32_t first) {
  auto batch = context.getParams().getBatch();
  auto ops = batch.getOps();
  auto results = context.getResults().getResults();
  auto clientId = batch.getClientId();
  for (uint32_t i = first; i < ops.size(); ++i) {
    if (routing.route[i] != Routing::Route::LOCAL) continue;
    if (maps_.needsLoad(ops[i])) {
      // Read-through: the entry may have been evicted from memory; load it, then go on in order.
      maps_.flushTopicStates();
      return maps_.loadFor(ops[i]).then([this, context, &routing, i]() mutable {
        auto batch = context.getParams().getBatch();
        maps_.apply(batch.getOps()[i], batch.getClientId(), context.getResults().getResults()[i],
                    batch.getTraceId().cStr());
        return applyFrom(context, routing, i + 1);
      });
    }
    maps_.apply(ops[i], clientId, results[i], batch.getTraceId().cStr());
  }
  return finishLocal(context, routing);
}

kj::Promise<void> MemberService::finishLocal(ExecuteContext context, Routing& routing) {
  auto clientId = context.getParams().getBatch().getClientId();
  maps_.flushTopicStates();  // before the changes go to the backups and the store
  // The backups apply the batch's changes while the store writes them; the reply waits for both.
  kj::Promise<std::set<partition::PartitionId>> replicated = std::set<partition::PartitionId>{};
  if (cluster_.replication().hasPending()) {
    replicated = cluster_.replication().replicateSoon();
    if (cluster_.options().cluster.minClusterSize > 1) {
      // Losing the quorum ends the wait for backups at once: those writes are refused below
      // instead of waiting out the replication timeout.
      replicated = replicated.exclusiveJoin(cluster_.membership().whenWritesRefused().then(
          []() { return std::set<partition::PartitionId>{}; }));
    }
  }
  kj::Promise<void> committed = kj::READY_NOW;
  if (maps_.hasPendingStore()) {
    // Write-through: if the store refuses the changes the whole call fails (STORE_FAILED) and their
    // dedupe results are forgotten, so that no retry is answered "done" for a write not stored.
    committed =
        maps_.commitStore().catch_([this, context, clientId](kj::Exception&& e) mutable -> kj::Promise<void> {
          for (auto op : context.getParams().getBatch().getOps())
            maps_.forgetResult(clientId, op.getRequestId());
          return kj::mv(e);
        });
  }
  return replicated.then([this, context, &routing, clientId,
                          committed = kj::mv(committed)](std::set<partition::PartitionId> stale) mutable {
    if (!stale.empty()) {
      // A newer table made another member primary: these writes are not acknowledged (the client
      // retries them at the new primary) and their dedupe results are forgotten.
      auto ops = context.getParams().getBatch().getOps();
      auto results = context.getResults().getResults();
      for (uint32_t i = 0; i < ops.size(); ++i) {
        if (routing.route[i] != Routing::Route::LOCAL || isKeyless(ops[i].which())) continue;
        if (!stale.count(routing.partition[i])) continue;
        maps_.forgetResult(clientId, ops[i].getRequestId());
        failOp(results[i], wire::ErrorCode::WRONG_OWNER,
               "partition " + std::to_string(routing.partition[i]) + " moved to another member; retry");
      }
    }
    if (auto refused = cluster_.membership().writesRefused()) {
      // The quorum was lost while the batch replicated (a backup on the other side of a network
      // partition timed out): its writes passed the guard but are not acknowledged.
      auto ops = context.getParams().getBatch().getOps();
      auto results = context.getResults().getResults();
      for (uint32_t i = 0; i < ops.size(); ++i) {
        if (routing.route[i] != Routing::Route::LOCAL || isKeyless(ops[i].which())) continue;
        if (!isWriteOp(ops[i].which())) continue;
        if (results[i].isFailure()) continue;
        maps_.forgetResult(clientId, ops[i].getRequestId());
        failOp(results[i], wire::ErrorCode::UNAVAILABLE, *refused);
      }
    }
    return committed.then([this, context, &routing]() mutable { notifyPublished(context, routing); });
  });
}

kj::Promise<void> MemberService::forwardTo(ExecuteContext context, const std::string& address,
                                           std::vector<uint32_t> indices) {
  auto batch = context.getParams().getBatch();
  opsForwarded_ += indices.size();
  auto request = cluster_.links().member(address).executeRequest();
  auto out = request.initBatch();
  out.setTraceId(batch.getTraceId());
  out.setClientId(batch.getClientId());
  out.setTableEpoch(cluster_.membership().view().version);
  out.setLowestPending(batch.getLowestPending());
  out.setForwarded(true);
  auto ops = out.initOps(indices.size());
  for (size_t j = 0; j < indices.size(); ++j) ops.setWithCaveats(j, batch.getOps()[indices[j]]);
  auto timeout = 2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS;
  return cluster_.timer()
      .timeoutAfter(timeout, request.send())
      .then(
          [context,
           indices](capnp::Response<wire::Member::ExecuteResults>&& response) mutable -> kj::Promise<void> {
            auto results = context.getResults().getResults();
            auto answers = response.getResults();
            for (size_t j = 0; j < indices.size(); ++j) {
              if (j < answers.size()) {
                results.setWithCaveats(indices[j], answers[j]);
              } else {
                failOp(results[indices[j]], wire::ErrorCode::INTERNAL, "member returned too few results");
              }
            }
            return kj::READY_NOW;
          },
          [this, context, indices, address](kj::Exception&& e) mutable -> kj::Promise<void> {
            cluster_.links().drop(address);
            std::string text = e.getDescription().cStr();
            // The owner is probably dead: answer once the cluster has moved on (a new view, or the
            // failure timeout), so that the client's retry finds the new primary at once.
            return cluster_.membership()
                .nextView(cluster_.options().cluster.failureTimeoutMs * 3 / 2)
                .then([context, indices, address, text]() mutable {
                  auto results = context.getResults().getResults();
                  for (auto i : indices) {
                    failOp(
                        results[i], wire::ErrorCode::UNAVAILABLE,
                        "the member at " + address + " owning this key did not answer (" + text + "); retry");
                  }
                });
          });
}

kj::Promise<void> MemberService::fanOut(ExecuteContext context, std::vector<uint32_t> indices) {
  auto batch = context.getParams().getBatch();
  auto& view = cluster_.membership().view();
  kj::Vector<kj::Promise<void>> calls;
  for (auto& member : view.members) {
    if (member.id == cluster_.membership().selfId()) continue;
    auto request = cluster_.links().member(member.address).executeRequest();
    auto out = request.initBatch();
    out.setTraceId(batch.getTraceId());
    out.setClientId(batch.getClientId());
    out.setTableEpoch(view.version);
    out.setForwarded(true);
    auto ops = out.initOps(indices.size());
    for (size_t j = 0; j < indices.size(); ++j) ops.setWithCaveats(j, batch.getOps()[indices[j]]);
    auto address = member.address;
    calls.add(
        cluster_.timer()
            .timeoutAfter(2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS, request.send())
            .then(
                [context, indices](capnp::Response<wire::Member::ExecuteResults>&& response) mutable {
                  auto results = context.getResults().getResults();
                  auto answers = response.getResults();
                  for (size_t j = 0; j < indices.size() && j < answers.size(); ++j) {
                    auto mine = results[indices[j]];
                    if (mine.isFailure()) continue;
                    if (answers[j].isFailure()) {
                      results.setWithCaveats(indices[j], answers[j]);
                    } else if (mine.isCount() && answers[j].isCount()) {
                      mine.setCount(mine.getCount() + answers[j].getCount());
                    }
                  }
                },
                [this, context, indices, address](kj::Exception&& e) mutable {
                  cluster_.links().drop(address);
                  auto results = context.getResults().getResults();
                  for (auto i : indices) {
                    failOp(results[i], wire::ErrorCode::UNAVAILABLE,
                           "member at " + address + " did not answer (" + e.getDescription().cStr() +
                               "); the count is incomplete, retry");
                  }
                }));
  }
  return kj::joinPromises(calls.releaseAsArray());
}

kj::Promise<void> MemberService::scan(ScanContext context) {
  // One call covers consecutive partitions owned here; a partition owned elsewhere is asked of
  // its owner (once: a forwarded scan answers from its own partitions only).
  auto params = context.getParams();
  if (params.getMap().size() > 0 && params.getMap().cStr()[0] == '$')
    return callFailure("invalid-argument", "map names starting with '$' are reserved");
  auto limit = std::min(std::max(params.getLimit(), 1u), maps_.limits().maxScanLimit);
  if (!cluster_.ready()) return callFailure("unavailable", cluster_.notReadyReason());
  auto cursor = params.getCursor();
  auto p = static_cast<partition::PartitionId>(cursor >> 48);
  auto& membership = cluster_.membership();
  if (p < maps_.partitioner().partitionCount() && !maps_.owns(p) && !params.getForwarded()) {
    auto* address = membership.addressOf(membership.view().table.primaryOf(p));
    if (!address)
      return callFailure("unavailable", "partition " + std::to_string(p) + " has no owner; retry");
    auto request = cluster_.links().member(*address).scanRequest();
    request.setMap(params.getMap());
    request.setCursor(cursor);
    request.setLimit(limit);
    request.setWithValues(params.getWithValues());
    request.setTraceId(params.getTraceId());
    request.setForwarded(true);
    return request.send().then([context](capnp::Response<wire::Member::ScanResults>&& response) mutable {
      context.getResults().setEntries(response.getEntries());
      context.getResults().setCursor(response.getCursor());
    });
  }
  std::vector<MapRecords::ScanItem> items;
  std::string name = params.getMap();
  auto next = maps_.scanOwned(maps_.findRecords(name), cursor, limit, params.getWithValues(), &items);
  auto results = context.getResults();
  auto entries = results.initEntries(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    entries[i].setKey(bytesOf(items[i].key));
    entries[i].setValue(bytesOf(items[i].value));
  }
  results.setCursor(next);
  return kj::READY_NOW;
}

kj::Promise<void> MemberService::addListener(AddListenerContext context) {
  auto params = context.getParams();
  std::string name = params.getMap();
  if (name.empty()) return callFailure("invalid-argument", "map name is empty");
  if (name[0] == '$') return callFailure("invalid-argument", "map names starting with '$' are reserved");
  auto hub = maps_.hub(name);
  auto id = hub->addRemote(params.getListener(), params.getIncludeValues());
  memberLog().debug("listener {} added on map '{}'", id, name);
  if (params.getLocalOnly()) {
    context.getResults().setRegistration(kj::heap<RegistrationImpl>(hub, id));
    return kj::READY_NOW;
  }
  // Answered once the other members have it too: from then on every event reaches the listener.
  auto added = listeners_.add(name, params.getListener(), params.getIncludeValues());
  context.getResults().setRegistration(kj::heap<RegistrationImpl>(hub, id, added.fanout));
  return kj::mv(added.registered);
}

void MemberService::fillMember(wire::MemberInfo::Builder out, const cluster::MemberEntry& member) {
  auto& membership = cluster_.membership();
  auto& table = membership.view().table;
  bool self = member.id == membership.selfId();
  out.setName(member.name);
  out.setAddress(member.address);
  out.setState(member.leaving ? "leaving" : self && !cluster_.ready() ? "joining" : "active");
  out.setUptimeMs(self ? clock_.nowMs() - identity_.startedAtMs : clock_.nowMs() - member.joinedAtMs);
  out.setPartitionsOwned(table.primariesOf(member.id));
  out.setPartitionsBackedUp(table.backupsOf(member.id));
  out.setVersion(SHOAL_VERSION);
  out.setMaxMessageBytes(maps_.limits().maxMessageBytes);
  out.setMaxBatchOps(maps_.limits().maxBatchOps);
  out.setId(member.id);
  out.setZone(member.zone);
  if (self) out.setOpsForwarded(opsForwarded_);
}

kj::Promise<void> MemberService::ping(PingContext context) {
  fillMember(context.getResults().initMember(), cluster_.membership().self());
  return kj::READY_NOW;
}

kj::Promise<void> MemberService::listMaps(ListMapsContext context) {
  auto maps = maps_.allMaps();
  // Topics' ring buffers are listed by listTopics.
  maps.erase(std::remove_if(maps.begin(), maps.end(),
                            [](const MapRecords* m) { return topic::isTopicMap(m->name()); }),
             maps.end());
  auto out = context.getResults().initMaps(maps.size());
  for (size_t i = 0; i < maps.size(); ++i) {
    out[i].setName(maps[i]->name());
    out[i].setEntries(maps[i]->size());
    out[i].setBytes(maps[i]->bytes());
  }
  return kj::READY_NOW;
}

kj::Promise<void> MemberService::cluster(ClusterContext context) {
  auto results = context.getResults();
  auto& view = cluster_.membership().view();
  if (view.members.empty()) {
    fillMember(results.initMembers(1)[0], cluster_.membership().self());
  } else {
    auto members = results.initMembers(view.members.size());
    for (size_t i = 0; i < view.members.size(); ++i) fillMember(members[i], view.members[i]);
  }
  results.setPartitionCount(maps_.partitioner().partitionCount());
  results.setTableEpoch(view.table.epoch);
  cluster::writeTable(view.table, results.initPartitions(view.table.partitions.size()));
  results.setMigrating(view.table.fillingCount());
  return kj::READY_NOW;
}

kj::Promise<void> MemberService::peer(PeerContext context) {
  context.getResults().setPeer(cluster_.peerCapability());
  return kj::READY_NOW;
}

}  // namespace shoal::node

// wire::Member implementation; see member_service.h.
#include "member_service.h"

#include "member_log.h"
#include "shoal/version.h"

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
  }
  return "unknown";
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
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
  context.getResults().initResults(ops.size());
  maps_.beginBatch(batch.getClientId(), batch.getLowestPending());
  return applyFrom(context, 0);
}

kj::Promise<void> MemberService::applyFrom(ExecuteContext context, uint32_t first) {
  auto batch = context.getParams().getBatch();
  auto ops = batch.getOps();
  auto results = context.getResults().getResults();
  auto clientId = batch.getClientId();
  for (uint32_t i = first; i < ops.size(); ++i) {
    if (maps_.needsLoad(ops[i])) {
      // Read-through: the entry may have been evicted from memory; load it, then go on in order.
      return maps_.loadFor(ops[i]).then([this, context, i]() mutable {
        auto batch = context.getParams().getBatch();
        maps_.apply(batch.getOps()[i], batch.getClientId(), context.getResults().getResults()[i],
                    batch.getTraceId().cStr());
        return applyFrom(context, i + 1);
      });
    }
    maps_.apply(ops[i], clientId, results[i], batch.getTraceId().cStr());
  }
  if (!maps_.hasPendingChanges()) return kj::READY_NOW;
  // Write-through: the reply waits until this batch's changes are stored. If the store refuses
  // them the whole call fails (STORE_FAILED) and their dedupe results are forgotten, so that no
  // retry is answered "done" for a write that was not stored.
  return maps_.commit().catch_([this, context, clientId](kj::Exception&& e) mutable -> kj::Promise<void> {
    for (auto op : context.getParams().getBatch().getOps()) maps_.forgetResult(clientId, op.getRequestId());
    return kj::mv(e);
  });
}

kj::Promise<void> MemberService::scan(ScanContext context) {
  auto params = context.getParams();
  auto limit = std::min(std::max(params.getLimit(), 1u), maps_.limits().maxScanLimit);
  std::vector<MapRecords::ScanItem> items;
  uint64_t next = 0;
  std::string name = params.getMap();
  if (auto* map = maps_.findRecords(name)) {
    next = map->scan(params.getCursor(), limit, params.getWithValues(), &items);
  }
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
  auto hub = maps_.hub(name);
  auto id = hub->addRemote(params.getListener(), params.getIncludeValues());
  memberLog().debug("listener {} added on map '{}'", id, name);
  context.getResults().setRegistration(kj::heap<RegistrationImpl>(hub, id));
  return kj::READY_NOW;
}

void MemberService::fillMember(wire::MemberInfo::Builder out) {
  out.setName(identity_.name);
  out.setAddress(identity_.address);
  out.setState("active");
  out.setUptimeMs(clock_.nowMs() - identity_.startedAtMs);
  out.setPartitionsOwned(maps_.partitioner().partitionCount());
  out.setVersion(SHOAL_VERSION);
  out.setMaxMessageBytes(maps_.limits().maxMessageBytes);
  out.setMaxBatchOps(maps_.limits().maxBatchOps);
}

kj::Promise<void> MemberService::ping(PingContext context) {
  fillMember(context.getResults().initMember());
  return kj::READY_NOW;
}

kj::Promise<void> MemberService::listMaps(ListMapsContext context) {
  auto maps = maps_.allMaps();
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
  fillMember(results.initMembers(1)[0]);
  results.setPartitionCount(maps_.partitioner().partitionCount());
  results.setTableEpoch(1);
  return kj::READY_NOW;
}

}  // namespace shoal::node

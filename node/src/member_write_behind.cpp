// wire::Member's write-behind administration (flush, dead letters, replay): checks the request and
// hands it to the WriteBehindDriver, whose queue calls run on the blocking-work pool.
#include "member_log.h"
#include "member_service.h"

namespace shoal::node {
namespace {

constexpr size_t MAX_MAP_NAME_BYTES = 256;
constexpr uint32_t MAX_DEAD_LETTERS_PER_CALL = 10'000;

kj::Exception callFailure(const char* code, const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:", code, ": ", message.c_str()));
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// The map name of a request, or a failure naming what is wrong with it.
kj::Maybe<kj::Exception> checkMap(const std::string& name, WriteBehindDriver* driver) {
  if (name.empty() || name.size() > MAX_MAP_NAME_BYTES) {
    return callFailure("invalid-argument",
                       "map name must be 1.." + std::to_string(MAX_MAP_NAME_BYTES) + " bytes");
  }
  if (driver == nullptr) {
    return callFailure("invalid-argument", "map '" + name +
                                               "' is not a write-behind map: this member has no data-dir, "
                                               "so it has no write-behind maps");
  }
  return nullptr;
}

}  // namespace

kj::Promise<void> MemberService::flushWriteBehind(FlushWriteBehindContext context) {
  std::string map = context.getParams().getMap();
  KJ_IF_MAYBE (failure, checkMap(map, writeBehind_)) {
    return kj::mv(*failure);
  }
  // A caller that gives up (timeout) ends the flush: with writes still arriving it may never end.
  context.allowCancellation();
  memberLog().info("flushing write-behind map '{}' (operator request)", map);
  return writeBehind_->flushMap(map).then([context, map](MapFlushResult result) mutable {
    auto report = context.getResults().initReport();
    report.setWritten(result.written);
    report.setDeadLetters(result.deadLetters);
    auto failed = report.initFailed(result.failed.size());
    for (size_t i = 0; i < result.failed.size(); ++i) {
      failed[i].setKey(bytesOf(result.failed[i].key));
      failed[i].setAttempts(result.failed[i].attempts);
      failed[i].setError(result.failed[i].error.toString());
    }
    memberLog().info("flushed write-behind map '{}': {} written, {} failed, {} dead letters", map,
                     result.written, result.failed.size(), result.deadLetters);
  });
}

kj::Promise<void> MemberService::listDeadLetters(ListDeadLettersContext context) {
  auto params = context.getParams();
  std::string map = params.getMap();
  KJ_IF_MAYBE (failure, checkMap(map, writeBehind_)) {
    return kj::mv(*failure);
  }
  uint32_t limit = std::min(std::max(params.getLimit(), 1u), MAX_DEAD_LETTERS_PER_CALL);
  return writeBehind_->deadLetters(map, limit).then([context](DeadLetterList list) mutable {
    auto results = context.getResults();
    results.setTotal(list.total);
    auto out = results.initLetters(list.letters.size());
    for (size_t i = 0; i < list.letters.size(); ++i) {
      const auto& d = list.letters[i];
      out[i].setKey(bytesOf(d.key));
      if (d.value) out[i].setValue(bytesOf(*d.value));
      out[i].setErase(!d.value.has_value());
      out[i].setVersion(d.meta.version);
      out[i].setExpirationTimeMs(d.meta.expirationTimeMs);
      out[i].setAttempts(d.attempts);
      out[i].setError(d.lastError.toString());
      out[i].setDeadAtMs(d.deadAtMs);
    }
  });
}

kj::Promise<void> MemberService::replayDeadLetters(ReplayDeadLettersContext context) {
  std::string map = context.getParams().getMap();
  KJ_IF_MAYBE (failure, checkMap(map, writeBehind_)) {
    return kj::mv(*failure);
  }
  return writeBehind_->replay(map).then(
      [context](uint64_t requeued) mutable { context.getResults().setRequeued(requeued); });
}

}  // namespace shoal::node

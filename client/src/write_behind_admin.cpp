// shoal::Client's write-behind administration calls: flush, dead letters, replay.
#include "shoal/client/client.h"
#include "transport.h"

namespace shoal {
namespace {

std::string stringOf(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

void requireMap(std::string_view map) {
  if (map.empty()) throw Error(ErrorCode::INVALID_ARGUMENT, "map name is empty");
}

}  // namespace

WriteBehindFlushReport Client::flushWriteBehind(std::string_view map, std::chrono::milliseconds timeout) {
  requireMap(map);
  WriteBehindFlushReport out;
  std::string name(map);
  transport_->call(
      [&out, &name](wire::Member::Client& member) {
        auto request = member.flushWriteBehindRequest();
        request.setMap(name);
        return request.send().then([&out](capnp::Response<wire::Member::FlushWriteBehindResults>&& r) {
          auto report = r.getReport();
          out = WriteBehindFlushReport{};
          out.written = report.getWritten();
          out.deadLetters = report.getDeadLetters();
          for (auto f : report.getFailed()) {
            out.failed.push_back({stringOf(f.getKey()), f.getAttempts(), f.getError()});
          }
        });
      },
      timeout);
  return out;
}

DeadLetterPage Client::deadLetters(std::string_view map, uint32_t limit) {
  requireMap(map);
  DeadLetterPage out;
  std::string name(map);
  transport_->call(
      [&out, &name, limit](wire::Member::Client& member) {
        auto request = member.listDeadLettersRequest();
        request.setMap(name);
        request.setLimit(limit);
        return request.send().then([&out](capnp::Response<wire::Member::ListDeadLettersResults>&& r) {
          out = DeadLetterPage{};
          out.total = r.getTotal();
          for (auto d : r.getLetters()) {
            DeadLetter letter;
            letter.key = stringOf(d.getKey());
            if (!d.getErase()) letter.value = stringOf(d.getValue());
            letter.version = d.getVersion();
            letter.expirationTimeMs = d.getExpirationTimeMs();
            letter.attempts = d.getAttempts();
            letter.error = d.getError();
            letter.deadAtMs = d.getDeadAtMs();
            out.letters.push_back(std::move(letter));
          }
        });
      },
      transport_->options().requestTimeout);
  return out;
}

uint64_t Client::replayDeadLetters(std::string_view map) {
  requireMap(map);
  uint64_t requeued = 0;
  std::string name(map);
  transport_->call(
      [&requeued, &name](wire::Member::Client& member) {
        auto request = member.replayDeadLettersRequest();
        request.setMap(name);
        return request.send().then([&requeued](capnp::Response<wire::Member::ReplayDeadLettersResults>&& r) {
          requeued = r.getRequeued();
        });
      },
      transport_->options().requestTimeout);
  return requeued;
}

}  // namespace shoal

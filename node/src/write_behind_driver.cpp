// Periodic and operator-driven write-behind flushes; see write_behind_driver.h.
#include "write_behind_driver.h"

#include "member_log.h"
#include "pool_call.h"
#include "shoal/error.h"

namespace shoal::node {
namespace {

kj::Exception callFailure(const char* code, const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:", code, ": ", message.c_str()));
}

int64_t steadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Thrown on the pool, turned into a call failure on the loop.
struct NotWriteBehind : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct QueueFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Maps the pool-side exceptions of an operator command to the codes the client understands.
kj::Exception commandFailure(kj::Exception&& e) {
  std::string text = e.getDescription().cStr();
  for (const char* code : {"invalid-argument", "store-failed"}) {
    std::string marker = std::string("[") + code + "] ";
    if (auto at = text.find(marker); at != std::string::npos) {
      return callFailure(code, text.substr(at + marker.size()));
    }
  }
  return kj::mv(e);
}

}  // namespace

class WriteBehindDriver::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().error("write-behind flush loop failed: {}", e.getDescription().cStr());
  }
};

WriteBehindDriver::WriteBehindDriver(WriteBehindMaps& queues, boost::asio::thread_pool& pool,
                                     kj::Timer& timer, std::function<bool(const std::string&)> isWriteBehind)
    : queues_(queues),
      pool_(pool),
      timer_(timer),
      isWriteBehind_(std::move(isWriteBehind)),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {}

WriteBehindDriver::~WriteBehindDriver() = default;

void WriteBehindDriver::start() {
  tasks_->add(tickLoop());
}

kj::Promise<void> WriteBehindDriver::tickLoop() {
  return timer_.afterDelay(FLUSH_TICK_MS * kj::MILLISECONDS).then([this]() {
    auto& queues = queues_;
    std::set<std::string> skip;
    for (auto& [map, _] : operatorFlushes_) skip.insert(map);
    return onPool<bool>(pool_,
                        [&queues, skip = std::move(skip)]() {
                          queues.flushDue(skip);
                          return true;
                        })
        .then([this](bool) { return tickLoop(); });
  });
}

namespace {

// On the pool: the open queue of `map` (opened now for a configured write-behind map); throws for
// a map that has no queue. Pool jobs capture `queues`, never the driver, which may go first.
persistence::WriteBehindQueue& queueOf(WriteBehindMaps& queues, const std::string& map, bool configured) {
  if (configured) {
    auto queue = queues.queueFor(map);
    if (!queue) throw QueueFailed("[store-failed] " + queue.error().toString());
    return **queue;
  }
  auto* queue = queues.find(map);
  if (queue == nullptr) {
    throw NotWriteBehind(
        "[invalid-argument] map '" + map +
        "' is not a write-behind map on this member (its persistence is not \"write-behind\")");
  }
  return *queue;
}

}  // namespace

kj::Promise<MapFlushResult> WriteBehindDriver::flushMap(std::string map) {
  ++operatorFlushes_[map];
  // Runs when the flush ends, fails or is cancelled by the caller.
  auto done = kj::defer([this, map]() {
    if (--operatorFlushes_[map] == 0) operatorFlushes_.erase(map);
  });
  return flushMapPass(map, std::make_shared<MapFlushResult>()).attach(kj::mv(done));
}

kj::Promise<MapFlushResult> WriteBehindDriver::flushMapPass(std::string map,
                                                            std::shared_ptr<MapFlushResult> result) {
  struct Pass {
    uint64_t pending = 0;
  };
  bool configured = isWriteBehind_(map);
  auto& queues = queues_;
  auto pass = onPool<Pass>(pool_, [&queues, map, configured, result]() {
    auto& queue = queueOf(queues, map, configured);
    auto report = queue.flushNow();
    if (!report) throw QueueFailed("[store-failed] " + report.error().toString());
    // `result` is only touched by one pass at a time, on the pool, then read on the loop.
    result->written += report->written;
    for (auto& f : report->deadLettered) result->failed.push_back(std::move(f));
    result->deadLetters = queue.deadLetterCount();
    return Pass{queue.pending()};
  });
  return pass.then(
      [this, map, result](Pass p) -> kj::Promise<MapFlushResult> {
        if (p.pending == 0) return *result;
        // Failed writes wait out their backoff; look again a tick later.
        return timer_.afterDelay(FLUSH_TICK_MS * kj::MILLISECONDS).then([this, map, result]() {
          return flushMapPass(map, result);
        });
      },
      [](kj::Exception&& e) -> kj::Promise<MapFlushResult> { return commandFailure(kj::mv(e)); });
}

kj::Promise<DeadLetterList> WriteBehindDriver::deadLetters(std::string map, uint32_t limit) {
  bool configured = isWriteBehind_(map);
  auto& queues = queues_;
  return onPool<DeadLetterList>(pool_,
                                [&queues, map, configured, limit]() {
                                  auto& queue = queueOf(queues, map, configured);
                                  auto letters = queue.listDeadLetters(limit);
                                  if (!letters)
                                    throw QueueFailed("[store-failed] " + letters.error().toString());
                                  return DeadLetterList{std::move(*letters), queue.deadLetterCount()};
                                })
      .catch_([](kj::Exception&& e) -> kj::Promise<DeadLetterList> { return commandFailure(kj::mv(e)); });
}

kj::Promise<uint64_t> WriteBehindDriver::replay(std::string map) {
  bool configured = isWriteBehind_(map);
  auto& queues = queues_;
  return onPool<uint64_t>(pool_,
                          [&queues, map, configured]() {
                            auto& queue = queueOf(queues, map, configured);
                            auto replayed = queue.replayDeadLetters();
                            if (!replayed) throw QueueFailed("[store-failed] " + replayed.error().toString());
                            if (*replayed > 0) {
                              memberLog().warn("map '{}': {} dead letters re-queued by an operator", map,
                                               *replayed);
                            }
                            return *replayed;
                          })
      .catch_([](kj::Exception&& e) -> kj::Promise<uint64_t> { return commandFailure(kj::mv(e)); });
}

kj::Promise<void> WriteBehindDriver::drain(int64_t timeoutMs) {
  tasks_ = nullptr;  // no more periodic flushes
  tasks_ = std::make_unique<kj::TaskSet>(*taskErrors_);
  return drainPass(steadyMs() + timeoutMs);
}

kj::Promise<void> WriteBehindDriver::drainPass(int64_t deadlineMs) {
  auto& queues = queues_;
  return onPool<uint64_t>(pool_, [&queues]() { return queues.flushNow(); })
      .then([this, deadlineMs](uint64_t pending) -> kj::Promise<void> {
        if (pending == 0) return kj::READY_NOW;
        if (steadyMs() >= deadlineMs) {
          memberLog().warn(
              "stopping with {} write-behind writes not yet stored; they stay queued in data-dir and are "
              "written after the next start",
              pending);
          return kj::READY_NOW;
        }
        return timer_.afterDelay(FLUSH_TICK_MS * kj::MILLISECONDS).then([this, deadlineMs]() {
          return drainPass(deadlineMs);
        });
      });
}

}  // namespace shoal::node

// Closed-loop callers over shoal::RawMap's asynchronous calls; see closed_loop.h.
#include "closed_loop.h"

#include <atomic>
#include <future>

namespace shoal::bench {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

double PhaseResult::opsPerSecond() const {
  auto seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? double(succeeded()) / seconds : 0.0;
}

struct ClosedLoopRun::Tally {
  PhaseResult result;
};

struct ClosedLoopRun::Caller {
  RawMap map;
  Tally* tally;
  uint64_t rng;
  std::string key;
  Clock::time_point submitted;
};

struct ClosedLoopRun::Sync {
  std::atomic<uint64_t> issued{0};
  std::atomic<uint32_t> active{0};
  Clock::time_point start;
  Clock::time_point stopIssuingAt;
  std::atomic<int64_t> finishedAtNs{0};
  std::promise<void> done;
};

ClosedLoopRun::ClosedLoopRun(const std::vector<std::unique_ptr<Client>>& clients,
                             const WorkloadOptions& options, PhaseKind kind, uint64_t loadCount)
    : options_(options),
      kind_(kind),
      loadCount_(loadCount),
      value_(options.valueSize, 'x'),
      sync_(std::make_unique<Sync>()) {
  for (size_t i = 0; i < clients.size(); ++i) tallies_.push_back(std::make_unique<Tally>());
  for (uint32_t i = 0; i < options.callers; ++i) {
    auto c = i % clients.size();
    // Distinct, reproducible streams per caller: the printed seed replays the same key sequence
    // per caller (the interleaving between callers is up to the scheduler).
    uint64_t rng = options.seed ^ (uint64_t(i + 1) * 0xd1b54a32d192ed03ull);
    callers_.push_back(std::make_unique<Caller>(Caller{
        clients[c]->rawMap(options.map), tallies_[c].get(), rng, std::string(options.keySize, '0'), {}}));
  }
}

ClosedLoopRun::~ClosedLoopRun() = default;

PhaseResult ClosedLoopRun::run(std::string name) {
  auto finished = sync_->done.get_future();
  sync_->active = uint32_t(callers_.size());
  sync_->start = Clock::now();
  sync_->stopIssuingAt = sync_->start + std::chrono::duration_cast<Clock::duration>(options_.duration);
  for (auto& caller : callers_) issueNext(*caller);
  finished.wait();

  PhaseResult total;
  total.name = std::move(name);
  for (auto& t : tallies_) {
    auto& r = t->result;
    total.gets += r.gets;
    total.hits += r.hits;
    total.sets += r.sets;
    total.errors += r.errors;
    for (auto& [code, n] : r.errorsByCode) total.errorsByCode[code] += n;
    if (total.firstError.empty()) total.firstError = r.firstError;
    total.latency.merge(r.latency);
  }
  total.elapsed = std::chrono::nanoseconds(sync_->finishedAtNs.load()) - sync_->start.time_since_epoch();
  return total;
}

void ClosedLoopRun::issueNext(Caller& caller) {
  uint64_t n = sync_->issued.fetch_add(1, std::memory_order_relaxed);
  // One clock read serves both the stop check and the submit time: reading the clock costs as
  // much as a tenth of the client's CPU on some VMs.
  auto now = Clock::now();
  bool isGet = false;
  if (kind_ == PhaseKind::LOAD) {
    if (n >= loadCount_) return finish();
    formatKey(n, caller.key);
  } else {
    bool over = options_.requests > 0 ? n >= options_.requests : now >= sync_->stopIssuingAt;
    if (over) return finish();
    formatKey(splitmix64(caller.rng) % options_.keyspace, caller.key);
    isGet = splitmix64(caller.rng) % (options_.getWeight + options_.setWeight) < options_.getWeight;
  }
  Caller* c = &caller;
  caller.submitted = now;
  if (isGet) {
    caller.map.getAsync(caller.key, [this, c](Result<std::optional<std::string>> r) { onGetDone(*c, r); });
  } else {
    caller.map.setAsync(caller.key, value_, [this, c](Result<bool> r) { onSetDone(*c, r); });
  }
}

void ClosedLoopRun::onGetDone(Caller& caller, Result<std::optional<std::string>>& result) {
  if (!result.ok()) return onFailure(caller, result.error());
  auto& r = caller.tally->result;
  r.latency.record(uint64_t(std::chrono::nanoseconds(Clock::now() - caller.submitted).count()));
  r.gets++;
  if (result.value().has_value()) r.hits++;
  issueNext(caller);
}

void ClosedLoopRun::onSetDone(Caller& caller, Result<bool>& result) {
  if (!result.ok()) return onFailure(caller, result.error());
  auto& r = caller.tally->result;
  r.latency.record(uint64_t(std::chrono::nanoseconds(Clock::now() - caller.submitted).count()));
  r.sets++;
  issueNext(caller);
}

void ClosedLoopRun::onFailure(Caller& caller, const Error& error) {
  auto& r = caller.tally->result;
  r.errors++;
  r.errorsByCode[std::string(errorCodeName(error.code()))]++;
  if (r.firstError.empty()) r.firstError = error.what();
  issueNext(caller);
}

void ClosedLoopRun::finish() {
  if (sync_->active.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    sync_->finishedAtNs = std::chrono::nanoseconds(Clock::now().time_since_epoch()).count();
    sync_->done.set_value();
  }
}

}  // namespace shoal::bench

// ClosedLoopRun: drives a fixed number of logical callers against the grid through the public
// client library, the way redis-benchmark drives its clients: each caller has exactly one
// operation outstanding and issues its next one from the completion callback of the previous one
// (on the client's I/O thread, so the callback never blocks). Latency is submit -> callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "histogram.h"
#include "shoal/client/client.h"
#include "workload.h"

namespace shoal::bench {

// What one phase of a run measured.
struct PhaseResult {
  std::string name;
  uint64_t gets = 0;    // GETs answered (hit or miss)
  uint64_t hits = 0;    // GETs that found a value
  uint64_t sets = 0;    // SETs acknowledged
  uint64_t errors = 0;  // operations that failed, by code below
  std::map<std::string, uint64_t> errorsByCode;
  std::string firstError;
  LatencyHistogram latency;             // successful operations only, nanoseconds
  std::chrono::nanoseconds elapsed{0};  // first submit to last completion

  uint64_t succeeded() const { return gets + sets; }
  double opsPerSecond() const;
};

enum class PhaseKind {
  LOAD,   // SET keys 0 .. count-1, each once, in order
  MIXED,  // the options' GET:SET mix over random keys, for `requests` operations or `duration`
};

class ClosedLoopRun {
 public:
  // `clients` outlive the run; caller i uses clients[i % clients.size()].
  ClosedLoopRun(const std::vector<std::unique_ptr<Client>>& clients, const WorkloadOptions& options,
                PhaseKind kind, uint64_t loadCount);
  ~ClosedLoopRun();

  // Runs to completion on the clients' I/O threads and blocks the calling thread until then.
  PhaseResult run(std::string name);

 private:
  struct Tally;
  struct Caller;

  void issueNext(Caller& caller);
  void onGetDone(Caller& caller, Result<std::optional<std::string>>& result);
  void onSetDone(Caller& caller, Result<bool>& result);
  void onFailure(Caller& caller, const Error& error);
  void finish();

  const WorkloadOptions& options_;
  PhaseKind kind_;
  uint64_t loadCount_;
  std::string value_;
  std::vector<std::unique_ptr<Tally>> tallies_;  // one per client: its I/O thread alone writes it
  std::vector<std::unique_ptr<Caller>> callers_;
  struct Sync;
  std::unique_ptr<Sync> sync_;
};

}  // namespace shoal::bench

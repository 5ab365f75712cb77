// How shoal-bench prints what it measured: human-readable lines, or one JSON object (--json) for
// scripts such as compare-redis.sh.
#pragma once

#include <ostream>
#include <vector>

#include "closed_loop.h"
#include "shoal/client/client.h"
#include "workload.h"

namespace shoal::bench {

struct Report {
  const WorkloadOptions& options;
  std::vector<PhaseResult> phases;
  std::vector<MapInfo> maps;  // filled by --report-maps
  bool reportedMaps = false;

  void printText(std::ostream& out) const;
  void printJson(std::ostream& out) const;
};

// One line describing the set-up, printed before a run starts.
void printSetup(std::ostream& out, const WorkloadOptions& options);

}  // namespace shoal::bench

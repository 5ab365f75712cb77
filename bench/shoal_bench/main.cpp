// shoal-bench: a whole-system load generator for Shoal that uses only the public client library.
// Closed-loop asynchronous callers (like redis-benchmark's clients) run a GET/SET mix over a
// keyspace and report throughput and latency percentiles; --load and --report-maps measure how
// much memory the member spends per entry. Exit code: 0 ok, 1 some operations failed, 2 bad
// options, 3 no member reachable.
#include <CLI/CLI.hpp>
#include <iostream>
#include <random>
#include <sstream>

#include "closed_loop.h"
#include "report.h"
#include "shoal/client/client.h"
#include "workload.h"

namespace {

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shoal::bench;
  WorkloadOptions options;
  std::string servers = "127.0.0.1:5701", ratio = "1:1", duration;
  std::optional<uint64_t> seed;
  uint64_t load = 0, timeoutMs = 5000;
  bool warmup = false, reportMaps = false, json = false, noSmartRouting = false;

  CLI::App app{"shoal-bench: closed-loop load generator for a Shoal grid (client library only)"};
  app.add_option("--servers", servers, "members, HOST:PORT,... (default 127.0.0.1:5701)");
  app.add_option("--callers", options.callers, "concurrent callers, one op outstanding each (default 50)");
  app.add_option("--connections", options.connections,
                 "client instances the callers are spread over; each has one connection per member "
                 "and batches its callers' concurrent operations (default 1)");
  app.add_option("--value-size", options.valueSize, "value bytes (default 100)");
  app.add_option("--key-size", options.keySize, "key bytes, \"key:\" and zero-padded digits (default 16)");
  app.add_option("--ratio", ratio, "GET:SET weights of the mix (default 1:1)");
  app.add_option("--keyspace", options.keyspace, "random keys are drawn from 0 .. N-1 (default 100000)");
  auto* requestsOpt = app.add_option("--requests,-n", options.requests, "operations of the measured run");
  auto* durationOpt =
      app.add_option("--duration", duration, "length of the measured run, e.g. 30s (instead of --requests)");
  requestsOpt->excludes(durationOpt);
  app.add_option("--map", options.map, "map name (default bench)");
  app.add_option("--seed", seed, "seed of the key chooser (default random; always printed)");
  app.add_flag("--warmup", warmup, "SET every key of the keyspace once before the measured run");
  app.add_option("--load", load,
                 "SET keys 0 .. N-1 once each, in order (a memory measurement; no mixed run "
                 "unless --requests or --duration is given)");
  app.add_flag("--report-maps", reportMaps, "print each map's entries and bytes as the member reports them");
  app.add_option("--timeout", timeoutMs, "per-operation deadline in ms, retries included (default 5000)");
  app.add_flag("--json", json, "print one JSON object instead of text");
  app.add_flag("--no-smart-routing", noSmartRouting,
               "send every operation through the first reachable member, which forwards (default: "
               "each keyed operation goes straight to its primary)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is not an error; everything else is a bad option
  }

  try {
    options.servers = splitList(servers);
    std::tie(options.getWeight, options.setWeight) = parseRatio(ratio);
    if (!duration.empty()) options.duration = parseDuration(duration);
    options.seed = seed ? *seed : std::random_device{}() * uint64_t(0x100000001b3) ^ std::random_device{}();
    options.validate();
    if (load > 0) {
      WorkloadOptions loadCheck = options;
      loadCheck.keyspace = load;
      loadCheck.validate();
    }
    if (timeoutMs == 0) throw std::invalid_argument("--timeout: must be > 0");
  } catch (const std::invalid_argument& e) {
    std::cerr << "shoal-bench: " << e.what() << "\n";
    return 2;
  }
  bool mixed = options.requests > 0 || options.duration.count() > 0 || (load == 0 && !reportMaps && !warmup);
  if (mixed && options.requests == 0 && options.duration.count() == 0) options.requests = 100000;

  std::ostream& log = json ? std::cerr : std::cout;
  printSetup(log, options);
  std::vector<std::unique_ptr<shoal::Client>> clients;
  try {
    shoal::ClientOptions co;
    co.servers = options.servers;
    co.requestTimeout = std::chrono::milliseconds(timeoutMs);
    co.smartRouting = !noSmartRouting;
    for (uint32_t i = 0; i < options.connections; ++i) clients.push_back(shoal::Client::connect(co));
  } catch (const shoal::Error& e) {
    std::cerr << "shoal-bench: " << e.what() << "\n";
    return 3;
  }

  Report report{options, {}, {}, false};
  if (load > 0) report.phases.push_back(ClosedLoopRun(clients, options, PhaseKind::LOAD, load).run("load"));
  if (warmup) {
    report.phases.push_back(ClosedLoopRun(clients, options, PhaseKind::LOAD, options.keyspace).run("warmup"));
  }
  if (mixed) report.phases.push_back(ClosedLoopRun(clients, options, PhaseKind::MIXED, 0).run("run"));
  if (reportMaps) {
    try {
      report.maps = clients.front()->maps();
      report.reportedMaps = true;
    } catch (const shoal::Error& e) {
      std::cerr << "shoal-bench: listing maps failed: " << e.what() << "\n";
      return 1;
    }
  }
  if (json) {
    report.printJson(std::cout);
  } else {
    report.printText(std::cout);
  }
  for (auto& c : clients) c->close();
  for (auto& p : report.phases) {
    if (p.errors > 0) return 1;
  }
  return 0;
}

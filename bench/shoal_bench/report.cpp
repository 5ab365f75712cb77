// Text and JSON output of shoal-bench; see report.h.
#include "report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace shoal::bench {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

double micros(uint64_t nanos) {
  return double(nanos) / 1000.0;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

void printSetup(std::ostream& out, const WorkloadOptions& o) {
  out << "shoal-bench: servers " << joined(o.servers) << ", map '" << o.map << "', " << o.callers
      << " callers on " << o.connections << " connection(s), " << o.keySize << "-byte keys, " << o.valueSize
      << "-byte values, get:set " << o.getWeight << ":" << o.setWeight << ", keyspace " << o.keyspace
      << ", seed " << o.seed << "\n";
}

void Report::printText(std::ostream& out) const {
  for (auto& p : phases) {
    out << p.name << ": " << p.succeeded() << " ops in "
        << fixed(std::chrono::duration<double>(p.elapsed).count(), 3) << " s = " << fixed(p.opsPerSecond(), 0)
        << " ops/s (get " << p.gets;
    if (p.gets > 0) out << " [hit " << fixed(100.0 * double(p.hits) / double(p.gets), 1) << "%]";
    out << ", set " << p.sets << ", errors " << p.errors << ")\n";
    auto& h = p.latency;
    out << "  latency us: p50 " << fixed(micros(h.valueAt(0.50)), 1) << "  p99 "
        << fixed(micros(h.valueAt(0.99)), 1) << "  p99.9 " << fixed(micros(h.valueAt(0.999)), 1) << "  max "
        << fixed(micros(h.max()), 1) << "  mean " << fixed(h.mean() / 1000.0, 1) << "\n";
    for (auto& [code, n] : p.errorsByCode) out << "  errors " << code << ": " << n << "\n";
    if (!p.firstError.empty()) out << "  first error: " << p.firstError << "\n";
  }
  if (reportedMaps) {
    for (auto& m : maps) {
      out << "map '" << m.name << "': " << m.entries << " entries, " << m.bytes << " bytes";
      if (m.entries > 0) out << " = " << fixed(double(m.bytes) / double(m.entries), 1) << " bytes/entry";
      out << "\n";
    }
  }
}

void Report::printJson(std::ostream& out) const {
  nlohmann::json j;
  j["servers"] = options.servers;
  j["map"] = options.map;
  j["callers"] = options.callers;
  j["connections"] = options.connections;
  j["keySize"] = options.keySize;
  j["valueSize"] = options.valueSize;
  j["ratio"] = {{"get", options.getWeight}, {"set", options.setWeight}};
  j["keyspace"] = options.keyspace;
  j["seed"] = std::to_string(options.seed);  // a string: JSON numbers lose precision past 2^53
  j["phases"] = nlohmann::json::array();
  for (auto& p : phases) {
    auto& h = p.latency;
    j["phases"].push_back({
        {"name", p.name},
        {"ops", p.succeeded()},
        {"seconds", std::chrono::duration<double>(p.elapsed).count()},
        {"opsPerSec", p.opsPerSecond()},
        {"gets", p.gets},
        {"hits", p.hits},
        {"sets", p.sets},
        {"errors", p.errors},
        {"errorsByCode", p.errorsByCode},
        {"firstError", p.firstError},
        {"latencyUs",
         {{"p50", micros(h.valueAt(0.50))},
          {"p99", micros(h.valueAt(0.99))},
          {"p999", micros(h.valueAt(0.999))},
          {"max", micros(h.max())},
          {"mean", h.mean() / 1000.0}}},
    });
  }
  if (reportedMaps) {
    j["maps"] = nlohmann::json::array();
    for (auto& m : maps) {
      j["maps"].push_back({{"name", m.name},
                           {"entries", m.entries},
                           {"bytes", m.bytes},
                           {"bytesPerEntry", m.entries ? double(m.bytes) / double(m.entries) : 0.0}});
    }
  }
  out << j.dump() << "\n";
}

}  // namespace shoal::bench

// What shoal-bench asks of the grid: the options of a run (a plain struct, every field defaulted
// and documented), the key names it uses, and parsers for the textual options.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace shoal::bench {

struct WorkloadOptions {
  std::vector<std::string> servers = {"127.0.0.1:5701"};  // members, HOST:PORT
  std::string map = "bench";                              // map every operation goes to
  uint32_t callers = 50;                                  // concurrent closed-loop callers (1 .. 100000)
  uint32_t connections = 1;              // shoal::Client instances the callers are spread over (1 .. callers)
  uint32_t valueSize = 100;              // bytes of every value written (0 .. 64 MiB)
  uint32_t keySize = 16;                 // bytes of every key: "key:" and a zero-padded number
  uint32_t getWeight = 1;                // GET share of the mix, e.g. 9 in 9:1
  uint32_t setWeight = 1;                // SET share of the mix
  uint64_t keyspace = 100000;            // random keys are drawn uniformly from key 0 .. keyspace-1
  uint64_t requests = 0;                 // operations of the measured run; 0 = run for `duration`
  std::chrono::nanoseconds duration{0};  // length of the measured run when requests is 0
  uint64_t seed = 0;                     // seed of the key and operation chooser; printed with the results

  // Throws std::invalid_argument naming the first invalid field.
  void validate() const;
};

// Key number i as a keySize-byte name: "key:000000001234" at 16 bytes, the same names
// redis-benchmark -r uses, so both sides hash and store keys of the same length.
std::string keyName(uint64_t i, uint32_t keySize);
// Writes key number i into `out` (already keySize bytes long) without allocating.
void formatKey(uint64_t i, std::string& out);

// "9:1" -> {9, 1}; throws std::invalid_argument.
std::pair<uint32_t, uint32_t> parseRatio(const std::string& text);
// "30s", "500ms", "2m", "1h" or a bare number of seconds; throws std::invalid_argument.
std::chrono::nanoseconds parseDuration(const std::string& text);

}  // namespace shoal::bench

// Options, key names and option parsing of shoal-bench; see workload.h.
#include "workload.h"

#include <stdexcept>

namespace shoal::bench {
namespace {

constexpr std::string_view KEY_PREFIX = "key:";

uint32_t digitsOf(uint64_t n) {
  uint32_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

uint64_t parseCount(const std::string& text, const std::string& what) {
  size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (...) {
    pos = 0;
  }
  if (pos == 0 || pos != text.size()) throw std::invalid_argument(what + ": '" + text + "' is not a number");
  return n;
}

}  // namespace

void WorkloadOptions::validate() const {
  auto require = [](bool ok, const std::string& field, const std::string& what) {
    if (!ok) throw std::invalid_argument("--" + field + ": " + what);
  };
  require(!servers.empty(), "servers", "give at least one HOST:PORT");
  require(!map.empty(), "map", "must not be empty");
  require(callers >= 1 && callers <= 100000, "callers", "must be 1 .. 100000");
  require(connections >= 1 && connections <= callers, "connections", "must be 1 .. callers");
  require(valueSize <= (64u << 20), "value-size", "must be at most 64 MiB");
  require(getWeight + setWeight > 0, "ratio", "GET:SET must not be 0:0");
  require(keyspace >= 1, "keyspace", "must be >= 1");
  require(keySize >= KEY_PREFIX.size() + digitsOf(keyspace - 1), "key-size",
          "too small for keyspace " + std::to_string(keyspace) + " (needs \"key:\" and its digits)");
}

std::string keyName(uint64_t i, uint32_t keySize) {
  std::string out(keySize, '0');
  formatKey(i, out);
  return out;
}

void formatKey(uint64_t i, std::string& out) {
  auto size = out.size();
  auto prefix = std::min(KEY_PREFIX.size(), size);
  out.replace(0, prefix, KEY_PREFIX.substr(0, prefix));
  for (size_t at = size; at > prefix; --at) {
    out[at - 1] = char('0' + i % 10);
    i /= 10;
  }
}

std::pair<uint32_t, uint32_t> parseRatio(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos)
    throw std::invalid_argument("--ratio: '" + text + "' is not GET:SET (e.g. 9:1)");
  auto get = parseCount(text.substr(0, colon), "--ratio");
  auto set = parseCount(text.substr(colon + 1), "--ratio");
  if (get > 1000000 || set > 1000000 || get + set == 0) {
    throw std::invalid_argument("--ratio: '" + text + "' needs weights 0 .. 1000000, not both 0");
  }
  return {uint32_t(get), uint32_t(set)};
}

std::chrono::nanoseconds parseDuration(const std::string& text) {
  size_t pos = 0;
  double n = 0;
  try {
    n = std::stod(text, &pos);
  } catch (...) {
    pos = 0;
  }
  auto unit = text.substr(pos);
  double scale = unit.empty() || unit == "s" ? 1e9
                 : unit == "ms"              ? 1e6
                 : unit == "m"               ? 60e9
                 : unit == "h"               ? 3600e9
                                             : -1;
  if (pos == 0 || scale < 0 || n <= 0) {
    throw std::invalid_argument("--duration: '" + text + "' is not a duration (e.g. 500ms, 30s, 2m)");
  }
  return std::chrono::nanoseconds(int64_t(n * scale));
}

}  // namespace shoal::bench

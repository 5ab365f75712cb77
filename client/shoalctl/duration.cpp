// Parsing and printing of shoalctl durations; see duration.h.
#include "duration.h"

#include <array>
#include <cstdint>
#include <limits>
#include <utility>

namespace shoal::ctl {
namespace {

constexpr int64_t MS_PER_SECOND = 1000;
constexpr int64_t MS_PER_MINUTE = 60 * MS_PER_SECOND;
constexpr int64_t MS_PER_HOUR = 60 * MS_PER_MINUTE;
constexpr int64_t MS_PER_DAY = 24 * MS_PER_HOUR;

// Longest suffix first so that "ms" is not read as "m" followed by garbage.
constexpr std::array<std::pair<std::string_view, int64_t>, 5> UNITS = {{
    {"ms", 1},
    {"s", MS_PER_SECOND},
    {"m", MS_PER_MINUTE},
    {"h", MS_PER_HOUR},
    {"d", MS_PER_DAY},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 18) return std::nullopt;
  auto unit = text.substr(digits);
  for (auto& [name, factor] : UNITS) {
    if (unit != name) continue;
    int64_t number = 0;
    for (size_t i = 0; i < digits; ++i) number = number * 10 + (text[i] - '0');
    if (number > std::numeric_limits<int64_t>::max() / factor) return std::nullopt;
    return std::chrono::milliseconds(number * factor);
  }
  return std::nullopt;
}

std::string durationUsage(std::string_view text) {
  return "'" + std::string(text) +
         "' is not a duration; write a whole number and a unit, e.g. 500ms, 30s, 5m, 2h or 1d";
}

std::string formatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms < MS_PER_SECOND) return std::to_string(ms < 0 ? 0 : ms) + "ms";
  static constexpr std::array<std::pair<const char*, int64_t>, 4> PARTS = {{
      {"d", MS_PER_DAY},
      {"h", MS_PER_HOUR},
      {"m", MS_PER_MINUTE},
      {"s", MS_PER_SECOND},
  }};
  std::string out;
  int shown = 0;
  for (auto& [name, size] : PARTS) {
    int64_t n = ms / size;
    ms %= size;
    if (n == 0 && shown == 0) continue;
    if (shown > 0 && n > 0) out += " ";
    if (n > 0) out += std::to_string(n) + name;
    if (++shown == 2) break;
  }
  return out;
}

}  // namespace shoal::ctl

// Durations on shoalctl's command line (--ttl, --timeout): "500ms", "30s", "5m", "2h", "1d" —
// and their human-readable form for output (member uptime).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace shoal::ctl {

// A whole number followed by one unit (ms, s, m, h, d); nullopt when malformed or too large.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

// The message for a malformed duration, saying what to type instead.
std::string durationUsage(std::string_view text);

// "2d 3h", "5m 12s", "850ms": the two largest non-zero units.
std::string formatDuration(std::chrono::milliseconds d);

}  // namespace shoal::ctl

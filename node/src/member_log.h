// The member's logger: spdlog's logger named "shoal" (created on first use, writing to stderr).
// Hosts that embed a member can configure it by that name without touching their own default
// logger; the member sets its level from NodeOptions::logLevel at start.
#pragma once

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace shoal::node {

inline constexpr const char* MEMBER_LOGGER = "shoal";

inline spdlog::logger& memberLog() {
  auto logger = spdlog::get(MEMBER_LOGGER);
  if (!logger) {
    try {
      logger = spdlog::stderr_color_mt(MEMBER_LOGGER);
    } catch (const spdlog::spdlog_ex&) {
      logger = spdlog::get(MEMBER_LOGGER);  // created concurrently by another thread
    }
  }
  return *logger;
}

}  // namespace shoal::node

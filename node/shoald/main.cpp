// shoald: a dedicated Shoal member. Reads flags, environment and an optional config file, starts
// the member, and stops it gracefully on SIGTERM or SIGINT.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "config.h"
#include "shoal/node/node.h"

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  shoal::NodeOptions options;
  if (int exitCode = shoal::shoald::loadOptions(argc, argv, &options); exitCode >= 0) return exitCode;
  // Logs go to stderr; stdout carries only the "ready on" line that scripts read.
  // The member logs through spdlog's logger named "shoal"; shoald makes it the default too.
  spdlog::set_default_logger(spdlog::stderr_color_mt("shoal"));
  spdlog::set_level(spdlog::level::from_str(options.logLevel));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");

  std::unique_ptr<shoal::Node> node;
  try {
    node = shoal::Node::start(options);
  } catch (const shoal::Error& e) {
    spdlog::critical("cannot start: {}", e.what());
    return e.code() == shoal::ErrorCode::INVALID_ARGUMENT ? 2 : 1;
  }
  // Scripts and tests read this line to learn the bound port.
  std::printf("shoald %s ready on %s", options.name.c_str(), node->address().c_str());
  if (!node->respAddress().empty()) std::printf(" resp %s", node->respAddress().c_str());
  std::printf("\n");
  std::fflush(stdout);

  int signalNumber = 0;
  sigwait(&stopSignals, &signalNumber);
  spdlog::info("received {}, leaving gracefully", signalNumber == SIGTERM ? "SIGTERM" : "SIGINT");
  node->stop();
  return 0;
}

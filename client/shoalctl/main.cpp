// shoalctl: Shoal's command-line client. Parses the command line, connects through the client
// library (never member code), runs one command and maps its outcome to an exit code.
#include <algorithm>
#include <iostream>
#include <optional>

#include "command_line.h"
#include "commands.h"
#include "errors.h"
#include "output.h"
#include "shoal/client/client.h"
#include "topic_commands.h"

namespace {

constexpr std::chrono::milliseconds MAX_CONNECT_TIMEOUT{2000};

int run(const shoal::ctl::CommandLine& line) {
  using namespace shoal::ctl;
  shoal::ctl::Output out(line.json, std::cout, std::cerr);
  // Before the client starts its threads, so that they inherit the blocked signals.
  std::optional<sigset_t> stopSignals;
  if (line.command == "watch" || line.command == "subscribe") stopSignals = blockStopSignals();
  try {
    shoal::ClientOptions options;
    options.servers = line.servers;
    options.requestTimeout = line.timeout;
    options.connectTimeout = std::min(line.timeout, MAX_CONNECT_TIMEOUT);
    auto client = shoal::Client::connect(options);
    if (line.command == "subscribe") return runSubscribe(line, *client, out, *stopSignals);
    if (stopSignals) return runWatch(line, *client, out, *stopSignals);
    return runCommand(line, *client, out);
  } catch (const shoal::Error& e) {
    return reportError(e, line, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "shoalctl: " << line.command << " failed unexpectedly: " << e.what()
              << "\nshoalctl: this is a bug in shoalctl: report it with the command line" << std::endl;
    return EXIT_SERVER_ERROR;
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = shoal::ctl::parseCommandLine(argc, argv);
  if (auto* exitCode = std::get_if<int>(&parsed)) return *exitCode;
  return run(std::get<shoal::ctl::CommandLine>(parsed));
}

// shoalctl's command line: global options, the commands and their arguments, parsed with CLI11
// into a plain struct. Usage errors end the program with exit code 2 before anything connects.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace shoal::ctl {

// shoalctl's exit codes; documented in --help.
enum ExitCode : int {
  EXIT_OK = 0,
  EXIT_ABSENT = 1,        // get / remove: the key is not in the map
  EXIT_USAGE = 2,         // bad command line
  EXIT_UNAVAILABLE = 3,   // no member reachable, timed out, or overloaded: retry later
  EXIT_SERVER_ERROR = 4,  // any other error reported by the cluster or the client library
  EXIT_DEAD_LETTERS = 5,  // flush: done, but the map has dead letters (writes its store refused)
  EXIT_CUT_OFF = 6,       // subscribe: the member ended the subscription (it fell too far behind)
};

struct CommandLine {
  std::vector<std::string> servers;         // --servers / SHOAL_SERVERS, HOST:PORT each
  std::chrono::milliseconds timeout{5000};  // --timeout: deadline of each operation
  bool json = false;                        // --json
  std::string command;          // ping, put, get, remove, size, keys, clear, maps, watch, cluster, flush,
                                // dead-letters, replay, publish, subscribe, topics
  std::string map, key, value;  // publish: key is --key, value the message
  std::string topic;            // publish, subscribe
  std::vector<std::pair<std::string, std::string>> headers;  // publish --header NAME=VALUE, in order
  std::string from = "latest";                   // subscribe --from: earliest, latest or a sequence number
  std::optional<std::chrono::milliseconds> ttl;  // put --ttl
  uint64_t limit = 0;  // keys / dead-letters --limit; 0: all (keys), 1000 (dead-letters)
  uint64_t count = 0;  // watch / subscribe --count; 0: until SIGINT / SIGTERM
};

// The parsed command line, or the exit code to end with (0 after --help, 2 after a usage error,
// whose message has been printed to stderr).
std::variant<CommandLine, int> parseCommandLine(int argc, char** argv);

}  // namespace shoal::ctl

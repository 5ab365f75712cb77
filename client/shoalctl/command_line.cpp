// Parsing of shoalctl's command line with CLI11; see command_line.h.
#include "command_line.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "duration.h"
#include "shoal/client/topic.h"

namespace shoal::ctl {
namespace {

constexpr const char* DEFAULT_SERVERS = "127.0.0.1:5701";

constexpr const char* FOOTER = R"(Environment:
  SHOAL_SERVERS   default for --servers (otherwise 127.0.0.1:5701)

Durations: a whole number and a unit: 500ms, 30s, 5m, 2h, 1d.

Output: human-readable by default; get prints just the value, put and remove print the
previous value (nothing when there was none). With --json, every command prints one JSON
document on stdout, and watch prints one JSON object per line. Keys and values that are not
valid UTF-8 appear in JSON as {"base64": "<standard base64 of the bytes>"} in place of the
string. Errors always go to stderr as text.

Exit codes:
  0  success
  1  the key is absent (get, remove)
  2  usage error (bad command, argument or option)
  3  the cluster is unavailable, timed out or overloaded: retry later or raise --timeout
  4  any other error reported by the cluster (invalid or too large request, conflict, internal)
  5  flush: the queue was flushed, but the map has dead letters (writes its store refused);
     list them with dead-letters MAP, retry them with replay MAP
  6  subscribe: the member cut the subscription off (it fell too far behind the topic); stderr
     says the sequence number to resume from: subscribe again with --from it

Topics: publish prints the message's sequence number (1, 2, 3, ... per topic). subscribe prints
each message's value on its own line as it arrives (--json: one object per line with topic,
seq, key, value, headers, publishTimeMs, receivedTimeMs); it survives member failures without
duplicates, and reports messages the topic dropped before they could be delivered as
"gap: messages FROM..TO were dropped" on stderr (--json: a {"gap":{"from":..,"to":..}} line).)";

bool isHostPort(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() || s.size() - colon > 6) return false;
  long port = 0;
  for (size_t i = colon + 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    port = port * 10 + (s[i] - '0');
  }
  return port >= 1 && port <= 65535;
}

// Splits "a:1, b:2" into HOST:PORT items; throws CLI::ValidationError naming a bad one.
std::vector<std::string> serverList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    auto item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      if (!isHostPort(item)) {
        throw CLI::ValidationError("--servers", "'" + item +
                                                    "' is not HOST:PORT (e.g. 10.0.0.5:5701); fix "
                                                    "--servers or SHOAL_SERVERS");
      }
      out.push_back(item);
    }
    start = end + 1;
  }
  if (out.empty()) throw CLI::ValidationError("--servers", "give at least one HOST:PORT");
  return out;
}

CLI::Validator durationCheck() {
  return CLI::Validator(
      [](std::string& text) { return parseDuration(text) ? std::string() : durationUsage(text); },
      "DURATION");
}

// CLI11 reports an unknown command as "a subcommand is required"; say what was wrong instead.
int reportParseError(CLI::App& app, const CLI::ParseError& e) {
  if (app.get_subcommands().empty() && !app.remaining().empty() && app.remaining().front()[0] != '-') {
    std::cerr << "unknown command '" << app.remaining().front()
              << "'; the commands are ping, put, get, remove, "
              << "size, keys, clear, maps, watch, cluster, partitions, flush, dead-letters, replay, publish, "
              << "subscribe and topics\n"
              << "Run with --help for more information." << std::endl;
    return EXIT_USAGE;
  }
  return app.exit(e) == 0 ? EXIT_OK : EXIT_USAGE;  // help to stdout, or the error and a hint to stderr
}

void addMapArg(CLI::App* cmd, CommandLine& line) {
  cmd->add_option("MAP", line.map, "map name")->required()->check([](const std::string& s) {
    return s.empty() ? std::string("MAP must not be empty") : std::string();
  });
}

void addTopicArg(CLI::App* cmd, CommandLine& line) {
  cmd->add_option("TOPIC", line.topic, "topic name")->required()->check([](const std::string& s) {
    auto problem = topicNameProblem(s);
    return problem ? *problem : std::string();
  });
}

// "NAME=VALUE" -> (NAME, VALUE); throws CLI::ValidationError for anything else.
std::pair<std::string, std::string> header(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw CLI::ValidationError("--header", "'" + text + "' is not NAME=VALUE (e.g. --header source=billing)");
  }
  return {text.substr(0, eq), text.substr(eq + 1)};
}

void addTopicCommands(CLI::App& app, CommandLine& line, std::vector<std::string>& headers) {
  auto publish = app.add_subcommand("publish", "publish MESSAGE to TOPIC; prints its sequence number");
  addTopicArg(publish, line);
  publish->add_option("MESSAGE", line.value, "message value")->required();
  publish->add_option("--key", line.key, "message key (default: none)");
  publish->add_option("--header", headers, "a header NAME=VALUE; repeat for more")->allow_extra_args(false);
  auto subscribe = app.add_subcommand(
      "subscribe", "print messages of TOPIC as they arrive until interrupted (Ctrl-C, SIGTERM) or --count");
  addTopicArg(subscribe, line);
  subscribe
      ->add_option("--from", line.from,
                   "where to start: latest (messages published from now on), earliest (the oldest held) "
                   "or a sequence number")
      ->capture_default_str()
      ->check([](const std::string& s) {
        if (s == "latest" || s == "earliest") return std::string();
        bool digits = !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
        return digits && std::stoull(s) > 0
                   ? std::string()
                   : "--from must be earliest, latest or a sequence number >= 1, not '" + s + "'";
      });
  subscribe->add_option("--count", line.count, "exit after N messages")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  app.add_subcommand("topics", "list topics: sequence numbers, messages held, subscribers and configuration");
}

// The commands and their arguments; `ttl` and `timeout` receive the raw duration text.
void addCommands(CLI::App& app, CommandLine& line, std::string& ttl) {
  app.add_subcommand("ping", "check that a member answers, and how fast");
  auto put = app.add_subcommand("put", "store VALUE under KEY; prints the previous value, if any");
  addMapArg(put, line);
  put->add_option("KEY", line.key, "key")->required();
  put->add_option("VALUE", line.value, "value")->required();
  put->add_option("--ttl", ttl, "time to live, e.g. 30s (0s: never expires; default: the map's)")
      ->check(durationCheck());
  auto get = app.add_subcommand("get", "print the value of KEY (exit code 1 when absent)");
  addMapArg(get, line);
  get->add_option("KEY", line.key, "key")->required();
  auto remove =
      app.add_subcommand("remove", "remove KEY; prints the removed value (exit code 1 when absent)");
  addMapArg(remove, line);
  remove->add_option("KEY", line.key, "key")->required();
  addMapArg(app.add_subcommand("size", "print the number of entries"), line);
  auto keys = app.add_subcommand("keys", "list keys, one per line, paging through the map");
  addMapArg(keys, line);
  keys->add_option("--limit", line.limit, "stop after N keys (default: all)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  addMapArg(app.add_subcommand("clear", "remove every entry; prints how many were removed"), line);
  app.add_subcommand("maps", "list maps with their entry counts and sizes");
  auto watch = app.add_subcommand("watch", "print entry events of MAP until interrupted (Ctrl-C, SIGTERM)");
  addMapArg(watch, line);
  watch->add_option("--count", line.count, "exit after N events")->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  app.add_subcommand("cluster", "print members (primaries, backups), the table epoch and migration progress");
  app.add_subcommand("partitions", "print the partition table: primary, backups and replicas being filled");
  addMapArg(app.add_subcommand("flush",
                               "write-behind MAP: store every queued write now and wait until the queue is "
                               "empty (up to --timeout); reports writes that failed (exit code 5)"),
            line);
  auto dead = app.add_subcommand("dead-letters", "write-behind MAP: list writes its store refused for good");
  addMapArg(dead, line);
  dead->add_option("--limit", line.limit, "list at most N (default 1000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10000}));
  addMapArg(app.add_subcommand("replay", "write-behind MAP: queue its dead letters again"), line);
}

}  // namespace

std::variant<CommandLine, int> parseCommandLine(int argc, char** argv) {
  CommandLine line;
  CLI::App app("shoalctl: Shoal maps and cluster from the shell", "shoalctl");
  app.footer(FOOTER);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  std::string servers = DEFAULT_SERVERS;
  std::string timeout = "5s";
  std::string ttl;
  std::vector<std::string> headers;
  app.add_option("--servers", servers, "members to contact, HOST:PORT,...")
      ->envname("SHOAL_SERVERS")
      ->capture_default_str();
  app.add_option("--timeout", timeout, "deadline of each operation")
      ->check(durationCheck())
      ->capture_default_str();
  app.add_flag("--json", line.json, "print JSON for scripts");
  addCommands(app, line, ttl);
  addTopicCommands(app, line, headers);
  try {
    app.parse(argc, argv);
    line.command = app.get_subcommands().front()->get_name();
    line.servers = serverList(servers);
    line.timeout = *parseDuration(timeout);
    if (line.timeout.count() == 0) throw CLI::ValidationError("--timeout", "must be more than 0ms");
    if (!ttl.empty()) line.ttl = parseDuration(ttl);
    for (auto& h : headers) line.headers.push_back(header(h));
  } catch (const CLI::ParseError& e) {
    return reportParseError(app, e);
  }
  return line;
}

}  // namespace shoal::ctl

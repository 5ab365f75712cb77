// shoalctl's write-behind commands: flush, dead-letters, replay.
#include "write_behind_commands.h"

#include <chrono>
#include <ctime>

namespace shoal::ctl {
namespace {

using nlohmann::json;

constexpr uint32_t DEFAULT_DEAD_LETTER_LIMIT = 1000;

// "2024-05-01 12:00:03" (UTC) for a Unix-ms time.
std::string utcTime(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

int flush(const CommandLine& line, Client& client, Output& out) {
  auto report = client.flushWriteBehind(line.map, line.timeout);
  int exitCode = report.deadLetters > 0 || !report.failed.empty() ? EXIT_DEAD_LETTERS : EXIT_OK;
  if (out.json()) {
    json failed = json::array();
    for (auto& f : report.failed) {
      failed.push_back({{"key", textJson(f.key)}, {"attempts", f.attempts}, {"error", f.error}});
    }
    out.document({{"map", textJson(line.map)},
                  {"written", report.written},
                  {"failed", failed},
                  {"deadLetters", report.deadLetters}});
    return exitCode;
  }
  out.line("flushed map '" + line.map + "': " + std::to_string(report.written) + " writes stored, " +
           std::to_string(report.failed.size()) + " failed");
  if (!report.failed.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (auto& f : report.failed) rows.push_back({f.key, std::to_string(f.attempts), f.error});
    out.table({"KEY", "ATTEMPTS", "ERROR"}, rows);
  }
  if (report.deadLetters > 0) {
    out.note("map '" + line.map + "' has " + std::to_string(report.deadLetters) +
             " dead letters: list them with `shoalctl dead-letters " + line.map +
             "`, fix the store, then `shoalctl replay " + line.map + "`");
  }
  return exitCode;
}

int deadLetters(const CommandLine& line, Client& client, Output& out) {
  uint32_t limit = line.limit == 0 ? DEFAULT_DEAD_LETTER_LIMIT : static_cast<uint32_t>(line.limit);
  auto page = client.deadLetters(line.map, limit);
  if (out.json()) {
    json letters = json::array();
    for (auto& d : page.letters) {
      letters.push_back({{"key", textJson(d.key)},
                         {"value", d.value ? textJson(*d.value) : json(nullptr)},
                         {"op", d.value ? "store" : "remove"},
                         {"version", d.version},
                         {"expirationTimeMs", d.expirationTimeMs},
                         {"attempts", d.attempts},
                         {"error", d.error},
                         {"deadAtMs", d.deadAtMs}});
    }
    out.document({{"map", textJson(line.map)}, {"total", page.total}, {"letters", letters}});
    return EXIT_OK;
  }
  if (page.letters.empty()) {
    out.line("(no dead letters in map '" + line.map + "')");
    return EXIT_OK;
  }
  std::vector<std::vector<std::string>> rows;
  for (auto& d : page.letters) {
    rows.push_back({d.key, d.value ? "store" : "remove", std::to_string(d.version),
                    std::to_string(d.attempts), utcTime(d.deadAtMs), d.error});
  }
  out.table({"KEY", "OP", "VERSION", "ATTEMPTS", "DEAD SINCE (UTC)", "ERROR"}, rows);
  if (page.total > page.letters.size()) {
    out.note("showing " + std::to_string(page.letters.size()) + " of " + std::to_string(page.total) +
             " dead letters (--limit)");
  }
  return EXIT_OK;
}

int replay(const CommandLine& line, Client& client, Output& out) {
  auto requeued = client.replayDeadLetters(line.map);
  if (out.json()) {
    out.document({{"map", textJson(line.map)}, {"requeued", requeued}});
  } else {
    out.line("re-queued " + std::to_string(requeued) + " dead letters of map '" + line.map +
             "'; `shoalctl flush " + line.map + "` waits until they are stored");
  }
  return EXIT_OK;
}

}  // namespace

std::optional<int> runWriteBehindCommand(const CommandLine& line, Client& client, Output& out) {
  if (line.command == "flush") return flush(line, client, out);
  if (line.command == "dead-letters") return deadLetters(line, client, out);
  if (line.command == "replay") return replay(line, client, out);
  return std::nullopt;
}

}  // namespace shoal::ctl

// shoalctl's request/response commands: ping, put, get, remove, size, keys, clear, maps, cluster
// (and, in their own files, the write-behind and topic commands).
#include "commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "duration.h"
#include "topic_commands.h"
#include "write_behind_commands.h"

namespace shoal::ctl {
namespace {

using nlohmann::json;

constexpr uint32_t SCAN_PAGE = 1000;  // keys per scan call

json optionalText(const std::optional<std::string>& v) {
  return v ? textJson(*v) : json(nullptr);
}

json memberJson(const MemberInfo& m) {
  return {{"name", m.name},
          {"address", m.address},
          {"state", m.state},
          {"version", m.version},
          {"uptimeMs", m.uptimeMs},
          {"partitions", m.partitionsOwned},
          {"backups", m.partitionsBackedUp},
          {"id", m.id},
          {"zone", m.zone}};
}

int ping(Client& client, Output& out) {
  auto start = std::chrono::steady_clock::now();
  auto m = client.ping();
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  double ms = static_cast<double>(micros.count()) / 1000.0;
  if (out.json()) {
    auto doc = memberJson(m);
    doc["latencyMs"] = ms;
    out.document(doc);
    return EXIT_OK;
  }
  char latency[32];
  std::snprintf(latency, sizeof latency, "%.2f ms", ms);
  out.line("pong from " + m.name + " at " + m.address + " in " + latency + " (" + m.state + ", version " +
           m.version + ", up " + formatDuration(std::chrono::milliseconds(m.uptimeMs)) + ", " +
           std::to_string(m.partitionsOwned) + " partitions)");
  return EXIT_OK;
}

int put(const CommandLine& line, RawMap& map, Output& out) {
  auto previous = map.put(line.key, line.value, WriteOptions{.ttl = line.ttl, .maxIdle = std::nullopt});
  if (out.json()) {
    out.document(
        {{"map", textJson(line.map)}, {"key", textJson(line.key)}, {"previous", optionalText(previous)}});
  } else if (previous) {
    out.line(*previous);
  }
  return EXIT_OK;
}

// get and remove: the value (or removed value), exit code 1 when the key was absent.
int printValueOrAbsent(const CommandLine& line, const std::optional<std::string>& value, Output& out) {
  if (out.json()) {
    out.document({{"map", textJson(line.map)},
                  {"key", textJson(line.key)},
                  {"found", value.has_value()},
                  {"value", optionalText(value)}});
  } else if (value) {
    out.line(*value);
  } else {
    out.note("key '" + line.key + "' is not in map '" + line.map + "'");
  }
  return value ? EXIT_OK : EXIT_ABSENT;
}

int keys(const CommandLine& line, RawMap& map, Output& out) {
  json list = json::array();
  uint64_t printed = 0;
  uint64_t cursor = 0;
  bool more = false;
  do {
    auto want = line.limit == 0 ? SCAN_PAGE
                                : static_cast<uint32_t>(std::min<uint64_t>(SCAN_PAGE, line.limit - printed));
    auto page = map.scan(cursor, want, false);
    cursor = page.cursor;
    for (auto& entry : page.entries) {
      if (line.limit != 0 && printed == line.limit) {
        more = true;  // the member sent more than asked for
        break;
      }
      ++printed;
      if (out.json()) {
        list.push_back(textJson(entry.first));
      } else {
        out.line(entry.first);
      }
    }
  } while (cursor != 0 && (line.limit == 0 || printed < line.limit));
  more = more || cursor != 0;
  if (out.json()) {
    out.document({{"map", textJson(line.map)}, {"keys", list}, {"count", printed}, {"complete", !more}});
  } else if (more) {
    out.note("stopped after --limit " + std::to_string(line.limit) + " keys; more may follow");
  }
  return EXIT_OK;
}

int maps(Client& client, Output& out) {
  auto all = client.maps();
  std::sort(all.begin(), all.end(), [](const MapInfo& a, const MapInfo& b) { return a.name < b.name; });
  if (out.json()) {
    json list = json::array();
    for (auto& m : all)
      list.push_back({{"name", textJson(m.name)}, {"entries", m.entries}, {"bytes", m.bytes}});
    out.document({{"maps", list}});
  } else if (all.empty()) {
    out.line("(no maps)");
  } else {
    std::vector<std::vector<std::string>> rows;
    for (auto& m : all) rows.push_back({m.name, std::to_string(m.entries), std::to_string(m.bytes)});
    out.table({"NAME", "ENTRIES", "BYTES"}, rows);
  }
  return EXIT_OK;
}

int cluster(Client& client, Output& out) {
  auto c = client.cluster();
  if (out.json()) {
    json members = json::array();
    for (auto& m : c.members) members.push_back(memberJson(m));
    out.document({{"members", members},
                  {"partitionCount", c.partitionCount},
                  {"tableEpoch", c.tableEpoch},
                  {"migrating", c.migrating}});
    return EXIT_OK;
  }
  std::vector<std::vector<std::string>> rows;
  for (auto& m : c.members) {
    rows.push_back({m.name, m.address, m.state, formatDuration(std::chrono::milliseconds(m.uptimeMs)),
                    std::to_string(m.partitionsOwned), std::to_string(m.partitionsBackedUp),
                    m.zone.empty() ? "-" : m.zone, m.version});
  }
  out.table({"NAME", "ADDRESS", "STATE", "AGE", "PRIMARIES", "BACKUPS", "ZONE", "VERSION"}, rows);
  out.line("");
  out.line(std::to_string(c.members.size()) + " member(s), " + std::to_string(c.partitionCount) +
           " partitions, partition table epoch " + std::to_string(c.tableEpoch) +
           (c.migrating == 0
                ? ", no migration under way"
                : ", migrating: " + std::to_string(c.migrating) + " replica(s) still being copied"));
  return EXIT_OK;
}

int partitions(Client& client, Output& out) {
  auto c = client.cluster();
  std::map<uint64_t, std::string> nameOf;
  for (auto& m : c.members) nameOf[m.id] = m.name;
  auto name = [&](uint64_t id) {
    auto it = nameOf.find(id);
    return it == nameOf.end() ? std::to_string(id) : it->second;
  };
  if (out.json()) {
    json list = json::array();
    for (size_t p = 0; p < c.partitions.size(); ++p) {
      json replicas = json::array(), filling = json::array();
      for (auto id : c.partitions[p].replicas) replicas.push_back(name(id));
      for (auto id : c.partitions[p].filling) filling.push_back(name(id));
      list.push_back({{"partition", p}, {"replicas", replicas}, {"filling", filling}});
    }
    out.document({{"tableEpoch", c.tableEpoch}, {"partitions", list}});
    return EXIT_OK;
  }
  std::vector<std::vector<std::string>> rows;
  for (size_t p = 0; p < c.partitions.size(); ++p) {
    auto& r = c.partitions[p];
    std::string backups, filling;
    for (size_t i = 1; i < r.replicas.size(); ++i)
      backups += (backups.empty() ? "" : ",") + name(r.replicas[i]);
    for (auto id : r.filling) filling += (filling.empty() ? "" : ",") + name(id);
    rows.push_back({std::to_string(p), r.replicas.empty() ? "-" : name(r.replicas[0]),
                    backups.empty() ? "-" : backups, filling.empty() ? "-" : filling});
  }
  out.table({"PARTITION", "PRIMARY", "BACKUPS", "FILLING"}, rows);
  out.line("");
  out.line("partition table epoch " + std::to_string(c.tableEpoch));
  return EXIT_OK;
}

}  // namespace

int runCommand(const CommandLine& line, Client& client, Output& out) {
  const auto& cmd = line.command;
  if (cmd == "ping") return ping(client, out);
  if (cmd == "maps") return maps(client, out);
  if (cmd == "cluster") return cluster(client, out);
  if (cmd == "partitions") return partitions(client, out);
  if (auto exitCode = runWriteBehindCommand(line, client, out)) return *exitCode;
  if (auto exitCode = runTopicCommand(line, client, out)) return *exitCode;
  auto map = client.rawMap(line.map);
  if (cmd == "put") return put(line, map, out);
  if (cmd == "get") return printValueOrAbsent(line, map.get(line.key), out);
  if (cmd == "remove") return printValueOrAbsent(line, map.remove(line.key), out);
  if (cmd == "keys") return keys(line, map, out);
  if (cmd == "size") {
    auto n = map.size();
    if (out.json()) {
      out.document({{"map", textJson(line.map)}, {"size", n}});
    } else {
      out.line(std::to_string(n));
    }
    return EXIT_OK;
  }
  if (cmd == "clear") {
    auto n = map.clear();
    if (out.json()) {
      out.document({{"map", textJson(line.map)}, {"removed", n}});
    } else {
      out.line("removed " + std::to_string(n) + " entries from map '" + line.map + "'");
    }
    return EXIT_OK;
  }
  throw Error(ErrorCode::INTERNAL, "shoalctl has no handler for command '" + cmd + "'");
}

}  // namespace shoal::ctl

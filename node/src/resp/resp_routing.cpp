// Routing of Redis commands in a cluster; see resp_routing.h.
#include "resp_routing.h"

#include <charconv>

namespace shoal::node::resp {
namespace {

const char* const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";
const char* const TRYAGAIN = "TRYAGAIN the key's partition is moving between members; retry";

enum class Keys { NONE, FIRST, ALL, EVERY_OTHER, CLUSTER_WIDE, SCAN };

Keys keysOf(std::string_view name) {
  static const char* const FIRST_KEY[] = {
      "get",  "set",    "setnx",   "setex",    "psetex",      "getset", "getdel", "getex",
      "type", "expire", "pexpire", "expireat", "pexpireat",   "ttl",    "pttl",   "persist",
      "incr", "decr",   "incrby",  "decrby",   "incrbyfloat", "append", "strlen"};
  for (auto* n : FIRST_KEY)
    if (name == n) return Keys::FIRST;
  if (name == "mget" || name == "del" || name == "unlink" || name == "exists") return Keys::ALL;
  if (name == "mset" || name == "msetnx") return Keys::EVERY_OTHER;
  if (name == "dbsize" || name == "flushdb" || name == "flushall" || name == "keys")
    return Keys::CLUSTER_WIDE;
  if (name == "scan") return Keys::SCAN;
  return Keys::NONE;
}

Route routeToPartition(partition::PartitionId p, const ClusterAccess& cluster, bool localOnly) {
  if (cluster.owns(p)) return {};
  if (localOnly) return Route{Route::Kind::REFUSE, "", TRYAGAIN};
  auto owner = cluster.ownerAddress(p);
  if (!owner) return Route{Route::Kind::REFUSE, "", TRYAGAIN};
  return Route{Route::Kind::THERE, *owner, ""};
}

}  // namespace

Route routeCommand(std::string_view lowerName, const std::vector<std::string_view>& args,
                   const partition::Partitioner& partitioner, const ClusterAccess& cluster, bool localOnly) {
  auto kind = keysOf(lowerName);
  if (kind == Keys::NONE) return {};
  if (kind == Keys::CLUSTER_WIDE) {
    return localOnly || cluster.memberCount() <= 1 ? Route{} : Route{Route::Kind::EVERYWHERE, "", ""};
  }
  if (args.size() < 2) return {};  // the command reports its own arity error
  if (kind == Keys::SCAN) {
    uint64_t cursor = 0;
    auto c = args[1];
    auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), cursor);
    if (ec != std::errc() || end != c.data() + c.size()) return {};  // SCAN itself reports it
    auto p = partitionOfCursor(cursor);
    if (p >= partitioner.partitionCount()) return {};
    if (cluster.owns(p)) return {};
    // Another member's partition: it answers from there (and stops where its partitions end).
    if (localOnly) return {};
    auto owner = cluster.ownerAddress(p);
    if (!owner) return Route{Route::Kind::REFUSE, "", TRYAGAIN};
    return Route{Route::Kind::THERE, *owner, ""};
  }
  // Keyed commands: every key must be on the same member.
  size_t step = kind == Keys::EVERY_OTHER ? 2 : 1;
  size_t last = kind == Keys::FIRST ? 1 : args.size() - 1;
  std::optional<Route> route;
  for (size_t i = 1; i <= last && i < args.size(); i += step) {
    auto r = routeToPartition(partitioner.partitionOf(args[i]), cluster, localOnly);
    if (r.kind == Route::Kind::REFUSE) return r;
    if (!route) {
      route = r;
    } else if (route->kind != r.kind || route->address != r.address) {
      return Route{Route::Kind::REFUSE, "", CROSSSLOT};
    }
  }
  return route ? *route : Route{};
}

std::vector<std::string_view> keysOfCommand(std::string_view lowerName,
                                            const std::vector<std::string_view>& args) {
  auto kind = keysOf(lowerName);
  if (kind != Keys::FIRST && kind != Keys::ALL && kind != Keys::EVERY_OTHER) return {};
  std::vector<std::string_view> keys;
  size_t step = kind == Keys::EVERY_OTHER ? 2 : 1;
  size_t last = kind == Keys::FIRST ? 1 : args.size() - 1;
  for (size_t i = 1; i <= last && i < args.size(); i += step) keys.push_back(args[i]);
  return keys;
}

bool isWriteCommand(std::string_view name) {
  static const char* const WRITES[] = {
      "set",    "setnx", "setex",  "psetex", "getset",      "getdel",   "getex",     "mset",
      "msetnx", "del",   "unlink", "expire", "pexpire",     "expireat", "pexpireat", "persist",
      "incr",   "decr",  "incrby", "decrby", "incrbyfloat", "append",   "flushdb",   "flushall"};
  for (auto* w : WRITES)
    if (name == w) return true;
  return false;
}

std::string combineReplies(std::string_view lowerName, const std::vector<std::string>& replies) {
  for (auto& r : replies) {
    if (!r.empty() && r[0] == '-') return r;
  }
  if (lowerName == "dbsize") {
    int64_t total = 0;
    for (auto& r : replies) {
      int64_t n = 0;
      if (r.size() > 3 && r[0] == ':') std::from_chars(r.data() + 1, r.data() + r.size() - 2, n);
      total += n;
    }
    return ":" + std::to_string(total) + "\r\n";
  }
  if (lowerName == "keys") {
    // Arrays of bulk strings: add up the counts, concatenate the elements.
    int64_t total = 0;
    std::string body;
    for (auto& r : replies) {
      auto eol = r.find("\r\n");
      if (r.empty() || r[0] != '*' || eol == std::string::npos) continue;
      int64_t n = 0;
      std::from_chars(r.data() + 1, r.data() + eol, n);
      total += n;
      body.append(r, eol + 2, std::string::npos);
    }
    return "*" + std::to_string(total) + "\r\n" + body;
  }
  return replies.empty() ? "+OK\r\n" : replies.front();  // flushdb / flushall: +OK everywhere
}

}  // namespace shoal::node::resp

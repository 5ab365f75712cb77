// Command dispatch and the connection / server commands; see resp_commands.h.
#include "resp_commands.h"

#include <kj/vector.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "resp_routing.h"
#include "shoal/version.h"

namespace shoal::node::resp {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return tolower(x) == tolower(y); });
}

}  // namespace

Commands::Commands(MapService& maps, std::string mapName, const Clock& clock, ServerStats& stats,
                   std::string address)
    : maps_(maps), mapName_(std::move(mapName)), clock_(clock), stats_(stats), address_(std::move(address)) {
  table_ = {
      {"ping", {&Commands::ping, -1}},
      {"echo", {&Commands::echo, 2}},
      {"hello", {&Commands::hello, -1}},
      {"quit", {&Commands::quit, -1}},
      {"select", {&Commands::select, 2}},
      {"client", {&Commands::client, -2}},
      {"command", {&Commands::command, -1}},
      {"config", {&Commands::config, -2}},
      {"info", {&Commands::info, -1}},
      {"dbsize", {&Commands::dbsize, 1}},
      {"flushdb", {&Commands::flushdb, -1}},
      {"flushall", {&Commands::flushdb, -1}},
      {"time", {&Commands::time, 1}},
      {"get", {&Commands::get, 2}},
      {"set", {&Commands::set, -3}},
      {"setnx", {&Commands::setnx, 3}},
      {"setex", {&Commands::setex, 4}},
      {"psetex", {&Commands::psetex, 4}},
      {"getset", {&Commands::getset, 3}},
      {"getdel", {&Commands::getdel, 2}},
      {"getex", {&Commands::getex, -2}},
      {"mget", {&Commands::mget, -2}},
      {"mset", {&Commands::mset, -3}},
      {"msetnx", {&Commands::msetnx, -3}},
      {"del", {&Commands::del, -2}},
      {"unlink", {&Commands::del, -2}},
      {"exists", {&Commands::exists, -2}},
      {"type", {&Commands::type, 2}},
      {"expire", {&Commands::expire, -3}},
      {"pexpire", {&Commands::pexpire, -3}},
      {"expireat", {&Commands::expireat, -3}},
      {"pexpireat", {&Commands::pexpireat, -3}},
      {"ttl", {&Commands::ttl, 2}},
      {"pttl", {&Commands::pttl, 2}},
      {"persist", {&Commands::persist, 2}},
      {"incr", {&Commands::incr, 2}},
      {"decr", {&Commands::decr, 2}},
      {"incrby", {&Commands::incrby, 3}},
      {"decrby", {&Commands::decrby, 3}},
      {"incrbyfloat", {&Commands::incrbyfloat, 3}},
      {"append", {&Commands::append, 3}},
      {"strlen", {&Commands::strlen, 2}},
      {"keys", {&Commands::keys, 2}},
      {"scan", {&Commands::scan, -2}},
  };
}

kj::Maybe<kj::Promise<void>> Commands::loadEvicted(const Args& args) {
  if (args.empty() || !maps_.mayNeedLoads()) return nullptr;
  std::string name(args[0]);
  for (auto& ch : name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  kj::Vector<kj::Promise<void>> loads;
  for (auto key : keysOfCommand(name, args)) {
    if (maps_.needsLoad(mapName_, key)) loads.add(maps_.load(mapName_, std::string(key)));
  }
  if (loads.empty()) return nullptr;
  return kj::joinPromises(loads.releaseAsArray());
}

void Commands::execute(const Args& args, Session& session, ReplyWriter& out) {
  if (args.empty()) return;
  stats_.commandsProcessed++;
  lower_.assign(args[0]);
  std::transform(lower_.begin(), lower_.end(), lower_.begin(), [](char c) { return tolower(c); });
  auto it = table_.find(lower_);
  if (it == table_.end()) {
    std::string message =
        "ERR unknown command '" + std::string(args[0].substr(0, 128)) + "', with args beginning with: ";
    for (size_t i = 1; i < args.size() && message.size() < 256; ++i) {
      message += "'" + std::string(args[i].substr(0, 128)) + "' ";
    }
    out.error(message);
    return;
  }
  auto& spec = it->second;
  int n = static_cast<int>(args.size());
  if ((spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity)) {
    out.error("ERR wrong number of arguments for '" + lower_ + "' command");
    return;
  }
  (this->*spec.handler)(args, session, out);
}

bool Commands::knows(const std::string& lowerName, size_t argc) const {
  auto it = table_.find(lowerName);
  if (it == table_.end()) return false;
  int n = static_cast<int>(argc);
  return it->second.arity > 0 ? n == it->second.arity : n >= -it->second.arity;
}

void Commands::ping(const Args& args, Session&, ReplyWriter& out) {
  if (args.size() > 2) return out.error("ERR wrong number of arguments for 'ping' command");
  if (args.size() == 2) return out.bulk(args[1]);
  out.simple("PONG");
}

void Commands::echo(const Args& args, Session&, ReplyWriter& out) {
  out.bulk(args[1]);
}

void Commands::hello(const Args& args, Session& session, ReplyWriter& out) {
  size_t i = 1;
  int64_t version = session.protocol;
  if (args.size() > 1) {
    auto v = args[1];
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
    if (ec != std::errc() || end != v.data() + v.size()) {
      return out.error("ERR Protocol version is not an integer or out of range");
    }
    if (version != 2 && version != 3) {
      return out.error("NOPROTO unsupported protocol version");
    }
    i = 2;
  }
  std::string name = session.name;
  for (; i < args.size(); ++i) {
    if (equalsIgnoreCase(args[i], "setname") && i + 1 < args.size()) {
      name = std::string(args[++i]);
    } else if (equalsIgnoreCase(args[i], "auth") && i + 2 < args.size()) {
      i += 2;  // no authentication configured: any credentials are accepted, as Redis without ACLs
    } else {
      return out.error("ERR Syntax error in HELLO option '" + std::string(args[i]) + "'");
    }
  }
  // Options are checked before anything changes; the reply is in the new protocol.
  session.name = std::move(name);
  session.protocol = int(version);
  out.setProtocol(session.protocol);
  out.mapHeader(7);
  out.bulk("server");
  out.bulk("redis");
  out.bulk("version");
  out.bulk("7.0.15");
  out.bulk("proto");
  out.integer(session.protocol);
  out.bulk("id");
  out.integer(session.id);
  out.bulk("mode");
  out.bulk("standalone");
  out.bulk("role");
  out.bulk("master");
  out.bulk("modules");
  out.arrayHeader(0);
}

void Commands::quit(const Args&, Session& session, ReplyWriter& out) {
  session.closeAfterReply = true;
  out.ok();
}

void Commands::select(const Args& args, Session&, ReplyWriter& out) {
  if (args[1] == "0") return out.ok();
  int64_t db = 0;
  auto [end, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), db);
  if (ec != std::errc() || end != args[1].data() + args[1].size()) {
    return out.error("ERR value is not an integer or out of range");
  }
  out.error("ERR DB index is out of range");
}

void Commands::client(const Args& args, Session& session, ReplyWriter& out) {
  auto sub = args[1];
  if (equalsIgnoreCase(sub, "setname") && args.size() == 3) {
    for (char c : args[2]) {
      if (c < '!' || c > '~') {
        return out.error("ERR Client names cannot contain spaces, newlines or special characters.");
      }
    }
    session.name = std::string(args[2]);
    return out.ok();
  }
  if (equalsIgnoreCase(sub, "getname") && args.size() == 2) {
    return session.name.empty() ? out.null() : out.bulk(session.name);
  }
  if (equalsIgnoreCase(sub, "id") && args.size() == 2) return out.integer(session.id);
  if (equalsIgnoreCase(sub, "setinfo")) return out.ok();
  out.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) +
            "'. Try CLIENT HELP.");
}

void Commands::command(const Args& args, Session&, ReplyWriter& out) {
  if (args.size() >= 2 && equalsIgnoreCase(args[1], "count")) return out.integer(int64_t(table_.size()));
  // COMMAND and COMMAND DOCS: an empty list (a map for DOCS) is enough for redis-cli and client
  // libraries.
  if (args.size() >= 2 && equalsIgnoreCase(args[1], "docs")) return out.mapHeader(0);
  out.arrayHeader(0);
}

void Commands::config(const Args& args, Session&, ReplyWriter& out) {
  auto sub = args[1];
  if (equalsIgnoreCase(sub, "get") && args.size() >= 3) {
    static const std::pair<const char*, const char*> PARAMS[] = {{"save", ""},
                                                                 {"appendonly", "no"},
                                                                 {"maxmemory", "0"},
                                                                 {"databases", "1"},
                                                                 {"maxmemory-policy", "noeviction"},
                                                                 {"port", ""}};
    std::vector<std::pair<std::string, std::string>> found;
    for (size_t i = 2; i < args.size(); ++i) {
      for (auto& [name, value] : PARAMS) {
        if (!globMatch(args[i], name, true)) continue;
        std::string v = value;
        if (std::string_view(name) == "port") v = address_.substr(address_.rfind(':') + 1);
        if (std::none_of(found.begin(), found.end(), [&](auto& f) { return f.first == name; })) {
          found.emplace_back(name, v);
        }
      }
    }
    out.mapHeader(found.size());
    for (auto& [k, v] : found) {
      out.bulk(k);
      out.bulk(v);
    }
    return;
  }
  if (equalsIgnoreCase(sub, "resetstat") && args.size() == 2) return out.ok();
  if (equalsIgnoreCase(sub, "set"))
    return out.error("ERR CONFIG SET is not supported by Shoal; use shoald's config file");
  out.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) +
            "'. Try CONFIG HELP.");
}

void Commands::info(const Args& args, Session&, ReplyWriter& out) {
  auto& map = records();
  auto now = clock_.nowMs();
  std::string section = args.size() > 1 ? std::string(args[1]) : "default";
  std::transform(section.begin(), section.end(), section.begin(), [](char c) { return tolower(c); });
  bool all = section == "default" || section == "all" || section == "everything";
  std::string text;
  if (all || section == "server") {
    text += "# Server\r\nredis_version:7.0.15\r\nshoal_version:" SHOAL_VERSION
            "\r\nredis_mode:standalone\r\n"
            "tcp_port:" +
            address_.substr(address_.rfind(':') + 1) +
            "\r\nuptime_in_seconds:" + std::to_string((now - stats_.startedAtMs) / 1000) + "\r\n\r\n";
  }
  if (all || section == "clients") {
    text += "# Clients\r\nconnected_clients:" + std::to_string(stats_.connectedClients) + "\r\n\r\n";
  }
  if (all || section == "memory") {
    text += "# Memory\r\nused_memory:" + std::to_string(map.bytes()) + "\r\n\r\n";
  }
  if (all || section == "stats") {
    text += "# Stats\r\ntotal_connections_received:" + std::to_string(stats_.connectionsReceived) +
            "\r\ntotal_commands_processed:" + std::to_string(stats_.commandsProcessed) + "\r\n\r\n";
  }
  if (all || section == "keyspace") {
    text += "# Keyspace\r\n";
    if (map.size() > 0) text += "db0:keys=" + std::to_string(map.size()) + ",expires=0,avg_ttl=0\r\n";
  }
  out.verbatim(text);
}

void Commands::dbsize(const Args&, Session&, ReplyWriter& out) {
  out.integer(int64_t(maps_.ownedSize(records())));
}

void Commands::flushdb(const Args& args, Session&, ReplyWriter& out) {
  if (args.size() > 2 ||
      (args.size() == 2 && !equalsIgnoreCase(args[1], "async") && !equalsIgnoreCase(args[1], "sync"))) {
    return out.error("ERR syntax error");
  }
  maps_.clearOwned(records());
  out.ok();
}

void Commands::time(const Args&, Session&, ReplyWriter& out) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  out.arrayHeader(2);
  out.bulk(std::to_string(micros / 1000000));
  out.bulk(std::to_string(micros % 1000000));
}

}  // namespace shoal::node::resp

// The Redis commands Shoal answers, executed on the shard thread against one Shoal map (so
// shoalctl, the client library and Redis clients see the same data). Replies and error texts
// follow redis-server 7.0 wherever the semantics are the same.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../map_service.h"
#include "resp_protocol.h"
#include "shoal/glob.h"

namespace shoal::node::resp {

struct Session {
  int64_t id = 0;
  std::string name;
  bool closeAfterReply = false;  // QUIT
  int protocol = 2;              // RESP2, or 3 after HELLO 3
};

struct ServerStats {
  uint64_t connectionsReceived = 0;
  uint64_t connectedClients = 0;
  uint64_t commandsProcessed = 0;
  int64_t startedAtMs = 0;
};

class Commands {
 public:
  using Args = std::vector<std::string_view>;

  Commands(MapService& maps, std::string mapName, const Clock& clock, ServerStats& stats,
           std::string address);
  void execute(const Args& args, Session& session, ReplyWriter& out);
  // Read-through: resolves once the keys `args` names that were evicted from memory (persistent
  // map with a memory limit) are loaded back from the store; null when all are in memory (the
  // common case, decided without I/O). Run the command after it, not before.
  kj::Maybe<kj::Promise<void>> loadEvicted(const Args& args);
  // Whether `lowerName` is a command here that accepts `argc` arguments (the name included).
  bool knows(const std::string& lowerName, size_t argc) const;

 private:
  using Handler = void (Commands::*)(const Args&, Session&, ReplyWriter&);
  struct Spec {
    Handler handler;
    int arity;  // Redis convention: n = exactly n (with the name), -n = at least n
  };

  // connection and server (resp_commands.cpp)
  void ping(const Args&, Session&, ReplyWriter&);
  void echo(const Args&, Session&, ReplyWriter&);
  void hello(const Args&, Session&, ReplyWriter&);
  void quit(const Args&, Session&, ReplyWriter&);
  void select(const Args&, Session&, ReplyWriter&);
  void client(const Args&, Session&, ReplyWriter&);
  void command(const Args&, Session&, ReplyWriter&);
  void config(const Args&, Session&, ReplyWriter&);
  void info(const Args&, Session&, ReplyWriter&);
  void dbsize(const Args&, Session&, ReplyWriter&);
  void flushdb(const Args&, Session&, ReplyWriter&);
  void time(const Args&, Session&, ReplyWriter&);
  // strings and keys (resp_string_commands.cpp)
  void get(const Args&, Session&, ReplyWriter&);
  void set(const Args&, Session&, ReplyWriter&);
  void setnx(const Args&, Session&, ReplyWriter&);
  void setex(const Args&, Session&, ReplyWriter&);
  void psetex(const Args&, Session&, ReplyWriter&);
  void getset(const Args&, Session&, ReplyWriter&);
  void getdel(const Args&, Session&, ReplyWriter&);
  void getex(const Args&, Session&, ReplyWriter&);
  void mget(const Args&, Session&, ReplyWriter&);
  void mset(const Args&, Session&, ReplyWriter&);
  void msetnx(const Args&, Session&, ReplyWriter&);
  void del(const Args&, Session&, ReplyWriter&);
  void exists(const Args&, Session&, ReplyWriter&);
  void type(const Args&, Session&, ReplyWriter&);
  void expire(const Args&, Session&, ReplyWriter&);
  void pexpire(const Args&, Session&, ReplyWriter&);
  void expireat(const Args&, Session&, ReplyWriter&);
  void pexpireat(const Args&, Session&, ReplyWriter&);
  void ttl(const Args&, Session&, ReplyWriter&);
  void pttl(const Args&, Session&, ReplyWriter&);
  void persist(const Args&, Session&, ReplyWriter&);
  void incr(const Args&, Session&, ReplyWriter&);
  void decr(const Args&, Session&, ReplyWriter&);
  void incrby(const Args&, Session&, ReplyWriter&);
  void decrby(const Args&, Session&, ReplyWriter&);
  void incrbyfloat(const Args&, Session&, ReplyWriter&);
  void append(const Args&, Session&, ReplyWriter&);
  void strlen(const Args&, Session&, ReplyWriter&);
  void keys(const Args&, Session&, ReplyWriter&);
  void scan(const Args&, Session&, ReplyWriter&);

  // helpers
  // The map lives as long as the member (maps are never dropped), so its address is kept.
  MapRecords& records() {
    if (records_ == nullptr) records_ = &maps_.records(mapName_);
    return *records_;
  }
  PartitionId partitionOf(std::string_view key) const { return maps_.partitioner().partitionOf(key); }
  bool checkKey(std::string_view key, ReplyWriter& out);
  bool checkValue(size_t size, ReplyWriter& out);
  // Remaining TTL of a live key in ms (0: none), for writes that keep the TTL (INCR, KEEPTTL).
  int64_t remainingTtlMs(std::string_view key);
  void expireGeneric(const Args& args, ReplyWriter& out, int64_t unitMs, bool absolute);
  void incrGeneric(std::string_view key, int64_t delta, ReplyWriter& out);
  void ttlGeneric(std::string_view key, bool millis, ReplyWriter& out);
  void writeValue(std::string_view key, std::string_view value, int64_t ttlMs);

  MapService& maps_;
  std::string mapName_;
  const Clock& clock_;
  ServerStats& stats_;
  std::string address_;
  std::unordered_map<std::string, Spec> table_;
  std::string lower_;  // scratch for the lower-cased command name
  MapRecords* records_ = nullptr;
};

// KEYS, SCAN MATCH, PSUBSCRIBE and pattern subscriptions share the one matcher (shoal/glob.h).
using shoal::globMatch;

}  // namespace shoal::node::resp

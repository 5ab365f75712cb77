// RESP conformance: the same command script through redis-cli against a real redis-server and a
// real shoald --resp; every reply must match (KEYS / SCAN replies compared as sets).
#include <algorithm>
#include <catch2/catch.hpp>
#include <sstream>

#include "redis_process.h"
#include "shoald_process.h"

using shoal::test::RedisProcess;
using shoal::test::runCommand;
using shoal::test::ShoaldProcess;

namespace {

using Script = std::vector<std::vector<std::string>>;

const Script SCRIPT = {
    {"FLUSHDB"},
    {"PING"},
    {"PING", "hello"},
    {"ECHO", "hi there"},
    {"SET", "k1", "v1"},
    {"GET", "k1"},
    {"GET", "missing"},
    {"SET", "k1", "v2", "GET"},
    {"SET", "k1", "v3", "NX"},
    {"SET", "k1", "v3", "XX"},
    {"SET", "newk", "v", "NX"},
    {"SET", "newk", "w", "NX", "GET"},
    {"SET", "k2", "v", "EX", "0"},
    {"SET", "k2", "v", "EX", "notanumber"},
    {"SET", "k2", "v", "EX", "100", "PX", "100"},
    {"SET", "k2", "v", "KEEPTTL", "EX", "10"},
    {"SET", "k2", "v", "NX", "XX"},
    {"SET", "k2", "v", "BOGUS"},
    {"SETNX", "k1", "x"},
    {"SETNX", "k3", "x"},
    {"SETEX", "k4", "100", "v"},
    {"SETEX", "k4", "-1", "v"},
    {"SETEX", "k4", "abc", "v"},
    {"PSETEX", "k5", "100000", "v"},
    {"PSETEX", "k5", "0", "v"},
    {"GETSET", "k1", "v9"},
    {"GETSET", "nokey", "v"},
    {"GETDEL", "nokey"},
    {"GETDEL", "k3"},
    {"GETDEL", "k3"},
    {"GETEX", "k1", "PERSIST"},
    {"GETEX", "k1", "EX", "100"},
    {"TTL", "k1"},
    {"GETEX", "k1", "EX", "1", "PX", "1"},
    {"GETEX", "missing"},
    {"MSET", "a", "1", "b", "2", "c", "3"},
    {"MSET", "a"},
    {"MSET", "a", "1", "b"},
    {"MGET", "a", "b", "nokey", "c"},
    {"MSETNX", "a", "5", "z", "6"},
    {"MSETNX", "y", "1", "z", "2"},
    {"DEL", "a", "b", "nokey"},
    {"UNLINK", "c"},
    {"EXISTS", "y", "z", "y", "nokey"},
    {"TYPE", "y"},
    {"TYPE", "nokey"},
    {"EXPIRE", "y", "100"},
    {"EXPIRE", "nokey", "100"},
    {"EXPIRE", "y", "100", "NX"},
    {"EXPIRE", "y", "200", "XX"},
    {"EXPIRE", "y", "50", "GT"},
    {"EXPIRE", "y", "50", "LT"},
    {"EXPIRE", "y", "10", "NX", "XX"},
    {"EXPIRE", "y", "abc"},
    {"TTL", "y"},
    {"PERSIST", "y"},
    {"PERSIST", "y"},
    {"TTL", "y"},
    {"TTL", "nokey"},
    {"PTTL", "nokey"},
    {"PEXPIRE", "y", "100000"},
    {"TTL", "y"},
    {"EXPIRE", "z", "-1"},
    {"EXISTS", "z"},
    {"PEXPIREAT", "y", "1"},
    {"EXISTS", "y"},
    {"INCR", "cnt"},
    {"INCR", "cnt"},
    {"INCRBY", "cnt", "10"},
    {"DECR", "cnt"},
    {"DECRBY", "cnt", "5"},
    {"INCRBY", "cnt", "abc"},
    {"INCR", "k1"},
    {"SET", "big", "9223372036854775807"},
    {"INCR", "big"},
    {"DECRBY", "big", "-1"},
    {"SET", "sp", " 1"},
    {"INCR", "sp"},
    {"INCRBYFLOAT", "f", "10.5"},
    {"INCRBYFLOAT", "f", "0.1"},
    {"INCRBYFLOAT", "f", "abc"},
    {"INCRBYFLOAT", "f", "5.0e3"},
    {"INCRBYFLOAT", "f", "-5010.6"},
    {"GET", "f"},
    {"APPEND", "ap", "hello"},
    {"APPEND", "ap", " world"},
    {"GET", "ap"},
    {"STRLEN", "ap"},
    {"STRLEN", "nokey"},
    {"SETEX", "ttlkeep", "100", "1"},
    {"INCR", "ttlkeep"},
    {"TTL", "ttlkeep"},
    {"SET", "ttlkeep", "5", "KEEPTTL"},
    {"TTL", "ttlkeep"},
    {"SET", "ttlkeep", "6"},
    {"TTL", "ttlkeep"},
    {"SELECT", "0"},
    {"SELECT", "16"},
    {"SELECT", "x"},
    {"DBSIZE"},
    {"GET"},
    {"FOO", "bar", "baz"},
    {"CLIENT", "SETNAME", "myname"},
    {"CLIENT", "SETNAME", "my name"},
    {"CLIENT", "GETNAME"},
    {"KEYS", "*"},
    {"KEYS", "k*"},
    {"KEYS", "[kn]?"},
    {"SCAN", "0", "COUNT", "1000"},
    {"SCAN", "0", "MATCH", "k*", "COUNT", "1000"},
    {"SCAN", "notacursor"},
    {"FLUSHDB"},
    {"DBSIZE"},
    {"KEYS", "*"},
};

std::string reply(int port, const std::vector<std::string>& command) {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-p", std::to_string(port)};
  argv.insert(argv.end(), command.begin(), command.end());
  auto r = runCommand(argv, 10000);
  auto out = r.out + r.err;
  // KEYS and SCAN list keys in each server's own order: compare them as sets.
  if (command[0] == "KEYS" || command[0] == "SCAN") {
    std::istringstream in(out);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    out.clear();
    for (auto& l : lines) out += l + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("resp: redis-cli gets the same replies from shoald as from redis-server", "[resp][integration]") {
  if (!RedisProcess::available()) {
    WARN("redis-server is not installed; run scripts/setup.sh as root");
    return;
  }
  RedisProcess redis;
  ShoaldProcess shoal({"--resp", "127.0.0.1:0"});
  int shoalPort = std::stoi(shoal.respAddress().substr(shoal.respAddress().rfind(':') + 1));
  for (auto& command : SCRIPT) {
    std::string text;
    for (auto& part : command) text += part + " ";
    INFO("command: " << text);
    CHECK(reply(shoalPort, command) == reply(redis.port(), command));
  }
  CHECK(shoal.alive());
}

TEST_CASE("resp: pipelined and malformed input through a raw socket", "[resp][integration]") {
  ShoaldProcess shoal({"--resp", "127.0.0.1:0"});
  auto port = shoal.respAddress().substr(shoal.respAddress().rfind(':') + 1);
  // Pipelined: three commands in one write, three replies in order.
  auto r =
      runCommand({"/bin/bash", "-c",
                  "exec 3<>/dev/tcp/127.0.0.1/" + port +
                      "; printf 'SET p 1\\r\\nINCR p\\r\\nGET p\\r\\nQUIT\\r\\n' >&3; timeout 5 cat <&3"});
  CHECK(r.out == "+OK\r\n:2\r\n$1\r\n2\r\n+OK\r\n");
  // Malformed: an error reply, then that connection is closed; the member keeps serving.
  r = runCommand(
      {"/bin/bash", "-c",
       "exec 3<>/dev/tcp/127.0.0.1/" + port + "; printf '*1\\r\\n:oops\\r\\n' >&3; timeout 5 cat <&3"});
  CHECK(r.out == "-ERR Protocol error: expected '$', got ':'\r\n");
  r = runCommand({"/usr/bin/redis-cli", "-p", port, "GET", "p"});
  CHECK(r.out == "2\n");
  CHECK(shoal.alive());
}

// RESP3 through the gateway: after HELLO 3 the replies use RESP3's null, map, verbatim and push
// types, byte for byte as redis-server sends them; HELLO 2 and RESET go back to RESP2; in a
// cluster a command routed to another member is answered in the client's protocol.
#include <catch2/catch.hpp>
#include <chrono>

#include "../cluster/cluster_support.h"
#include "raw_resp_client.h"
#include "redis_process.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::portOf;
using shoal::test::RawClient;
using shoal::test::RedisProcess;
using shoal::test::runCommand;
using shoal::test::ShoaldProcess;

namespace {

// Commands whose replies differ between RESP2 and RESP3 (or must not), run after HELLO 3.
const std::vector<std::string> SCRIPT = {
    "FLUSHDB",
    "INFO keyspace",
    "SET k v",
    "GET k",
    "GET missing",
    "SET k v2 NX",
    "SET k v3 XX GET",
    "SET fresh v NX GET",
    "GETDEL nokey",
    "GETEX nokey",
    "MGET k nokey k",
    "CLIENT GETNAME",
    "CONFIG GET maxmemory",
    "INCR cnt",
    "INCRBYFLOAT f 1.5",
    "TTL k",
    "EXISTS k nokey",
    "TYPE k",
    "TIME extra",
    "HELLO 4",
    "HELLO 3 BOGUS",
    "SUBSCRIBE ch1 ch2",
    "PING",
    "GET k",
    "UNSUBSCRIBE ch1",
    "UNSUBSCRIBE",
    "RESET",
    "GET missing",
    "CONFIG GET maxmemory",
};

// The session's replies, each followed by a PING marker so the transcript can be read command
// by command; the HELLO 3 reply itself (it holds the server's connection id) is checked apart.
std::string transcript(int port) {
  RawClient c(port);
  c.send("HELLO 3\r\n");
  auto hello = c.readUntil("$7\r\nmodules\r\n*0\r\n");
  CHECK(hello.rfind("%7\r\n$6\r\nserver\r\n", 0) == 0);
  CHECK(hello.find("$5\r\nproto\r\n:3\r\n") != std::string::npos);
  std::string t;
  for (size_t i = 0; i < SCRIPT.size(); ++i) {
    auto marker = "m" + std::to_string(i);
    c.send(SCRIPT[i] + "\r\nPING " + marker + "\r\n");
    t += "> " + SCRIPT[i] + "\n" + c.readUntil(marker + "\r\n");
  }
  return t;
}

// A subscriber's RESP3 session: confirmations and a published message are pushes.
std::string pushTranscript(int port) {
  RawClient sub(port);
  sub.send("HELLO 3\r\n");
  sub.readUntil("$7\r\nmodules\r\n*0\r\n");
  sub.send("SUBSCRIBE news\r\nPSUBSCRIBE n*\r\nPING\r\n");
  std::string t = sub.readUntil("+PONG\r\n");
  auto r = runCommand({"/usr/bin/redis-cli", "-p", std::to_string(port), "PUBLISH", "news", "hello"}, 10000);
  t += "PUBLISH -> " + r.out;
  t += sub.readUntil("$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
  return t;
}

// The same transcript taken against a real redis-server (first) and a real shoald (second).
template <typename Transcript>
std::pair<std::string, std::string> againstRedisAndShoal(Transcript transcript) {
  RedisProcess redis;
  ShoaldProcess shoal({"--resp", "127.0.0.1:0"});
  auto expected = transcript(redis.port());
  auto got = transcript(portOf(shoal.respAddress()));
  REQUIRE(shoal.alive());
  return {expected, got};
}

}  // namespace

TEST_CASE("resp: after HELLO 3 shoald answers in RESP3 byte for byte like redis-server",
          "[resp][integration]") {
  if (!RedisProcess::available()) {
    WARN("redis-server is not installed; run scripts/setup.sh as root");
    return;
  }
  auto [expected, got] = againstRedisAndShoal(transcript);
  CHECK(got == expected);
  // The RESP3 types really are on the wire (not a transcript that is RESP2 on both sides).
  CHECK(got.find("> GET missing\n_\r\n") != std::string::npos);
  CHECK(got.find("> SUBSCRIBE ch1 ch2\n>3\r\n$9\r\nsubscribe\r\n") != std::string::npos);
  CHECK(got.find("> RESET\n+RESET\r\n$3\r\nm26\r\n> GET missing\n$-1\r\n") != std::string::npos);
}

TEST_CASE("resp: a RESP3 subscriber gets confirmations and messages as pushes, like redis-server",
          "[resp][integration]") {
  if (!RedisProcess::available()) {
    WARN("redis-server is not installed; run scripts/setup.sh as root");
    return;
  }
  auto [expected, got] = againstRedisAndShoal(pushTranscript);
  CHECK(got == expected);
  CHECK(got.find(">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n") != std::string::npos);
}

TEST_CASE("cluster: commands routed to another member are answered in the client's RESP3",
          "[cluster][resp]") {
  shoal::test::TestCluster cluster(3, {"--resp", "127.0.0.1:0"});
  cluster.waitSettled(3);
  for (size_t m = 0; m < 3; ++m) {
    INFO("through m" << m + 1);
    RawClient c(portOf(cluster.member(m).respAddress()));
    c.send("HELLO 3\r\n");
    c.readUntil("$7\r\nmodules\r\n*0\r\n");
    // Twenty missing keys: most are owned by another member; every null is RESP3's.
    std::string expected;
    for (int i = 0; i < 20; ++i) {
      c.send("GET absent" + std::to_string(i) + "\r\n");
      expected += "_\r\n";
    }
    c.send("PING end\r\n");
    CHECK(c.readUntil("$3\r\nend\r\n") == expected + "$3\r\nend\r\n");
    c.send("HELLO 2\r\n");
    c.readUntil("$7\r\nmodules\r\n*0\r\n");
    c.send("GET absent1\r\nGET absent2\r\nGET absent3\r\nPING end\r\n");
    CHECK(c.readUntil("$3\r\nend\r\n") == "$-1\r\n$-1\r\n$-1\r\n$3\r\nend\r\n");
  }
}

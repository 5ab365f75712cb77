// Redis pub/sub on Shoal topics through the RESP gateway: reply shapes and subscribed-mode rules
// byte for byte against a real redis-server, a python3-redis subscriber receiving both RESP and
// Shoal (embedded API) publishes, and a subscriber that never reads being disconnected.

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "../cluster/cluster_support.h"
#include "raw_resp_client.h"
#include "redis_process.h"
#include "shoal/node/node.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::portOf;
using shoal::test::RawClient;
using shoal::test::RedisProcess;
using shoal::test::runCommand;
using shoal::test::ShoaldProcess;

namespace {

std::string cli(int port, std::vector<std::string> command) {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-p", std::to_string(port)};
  argv.insert(argv.end(), command.begin(), command.end());
  auto r = runCommand(argv, 10000);
  return r.out + r.err;
}

// One subscriber's session; the same steps against redis-server and shoald give the same bytes.
std::string pubsubTranscript(int port) {
  RawClient sub(port);
  std::string t;
  sub.send("SUBSCRIBE a b\r\nPSUBSCRIBE news.*\r\nSUBSCRIBE a\r\nPING s1\r\n");
  t += sub.readUntil("$2\r\ns1\r\n");
  t += "PUBLISH a -> " + cli(port, {"PUBLISH", "a", "hello"});
  t += "PUBLISH news.sport -> " + cli(port, {"PUBLISH", "news.sport", "goal"});
  t += "PUBLISH nobody -> " + cli(port, {"PUBLISH", "nobody", "x"});
  t += sub.readUntil("goal\r\n");
  sub.send(
      "GET x\r\nPUBLISH a b\r\nFOO\r\nSUBSCRIBE\r\nPING\r\nUNSUBSCRIBE a\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE "
      "nope\r\n"
      "UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nPING\r\nGET x\r\nSUBSCRIBE z\r\nRESET\r\nPING s3\r\n");
  t += sub.readUntil("$2\r\ns3\r\n");
  return t;
}

const std::string SUBSCRIBED_MODE_ERROR =
    "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
    "this context\r\n";

// Collects a topic's messages (embedded subscriber); waits with a deadline.
struct Inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> values;
  shoal::TopicHandler handler() {
    shoal::TopicHandler h;
    h.onMessage = [this](const shoal::TopicMessage& m) {
      std::lock_guard<std::mutex> lock(mutex);
      values.push_back(m.value);
      changed.notify_all();
    };
    return h;
  }
  bool waitFor(const std::string& value, std::chrono::milliseconds timeout = 15s) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout,
                            [&] { return std::find(values.begin(), values.end(), value) != values.end(); });
  }
};

std::unique_ptr<shoal::Node> startNode(uint64_t subscriberOutputBytes = 32ull << 20) {
  shoal::NodeOptions o;
  o.name = "resp-pubsub";
  o.listen = "";
  o.resp = "127.0.0.1:0";
  o.logLevel = "warn";
  o.limits.respSubscriberOutputBytes = subscriberOutputBytes;
  return shoal::Node::start(o);
}

}  // namespace

TEST_CASE("resp: pub/sub replies and subscribed-mode rules match redis-server", "[resp][integration]") {
  ShoaldProcess shoal({"--resp", "127.0.0.1:0"});
  auto mine = pubsubTranscript(portOf(shoal.respAddress()));
  INFO("shoald transcript:\n" << mine);
  // What users rely on, whether or not redis-server is here to compare with.
  CHECK(mine.find("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n") ==
        0);
  CHECK(mine.find("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n") != std::string::npos);
  CHECK(mine.find("*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$10\r\nnews.sport\r\n$4\r\ngoal\r\n") !=
        std::string::npos);
  CHECK(mine.find(SUBSCRIBED_MODE_ERROR) != std::string::npos);
  CHECK(mine.find("*2\r\n$4\r\npong\r\n$0\r\n\r\n") != std::string::npos);
  CHECK(shoal.alive());
  if (!RedisProcess::available()) {
    WARN("redis-server is not installed; run scripts/setup.sh as root");
    return;
  }
  RedisProcess redis;
  CHECK(mine == pubsubTranscript(redis.port()));
}

TEST_CASE("resp: a python3-redis subscriber receives RESP and Shoal publishes", "[resp][integration]") {
  auto node = startNode();
  int port = portOf(node->respAddress());
  // A Shoal subscriber: the script's signals, and what it publishes over RESP.
  Inbox signals, orders;
  node->topic("orders-ready").subscribe(signals.handler());
  node->topic("orders").subscribe(orders.handler());
  // A topic that exists before the script's PSUBSCRIBE: a pattern finds it at once.
  node->topic("metrics.cpu").publish("old");

  shoal::test::CommandResult script;
  std::thread python([&script, port]() {
    script =
        runCommand({"/usr/bin/python3", std::string(SHOAL_TEST_DIR) + "/integration/resp_pubsub_py_client.py",
                    std::to_string(port)},
                   60000);
  });
  bool ready = signals.waitFor("ready");
  if (ready) node->topic("orders").publish("from-shoal");
  bool pattern = signals.waitFor("pattern");
  if (pattern) node->topic("metrics.cpu").publish("new");
  python.join();
  INFO("script output:\n" << script.out << script.err);
  CHECK(ready);
  CHECK(pattern);
  CHECK(script.exitCode == 0);
  CHECK(script.out.find("1 passed") != std::string::npos);
  // The Shoal subscriber saw the Redis client's PUBLISH.
  CHECK(orders.waitFor("from-redis"));
}

TEST_CASE("resp: a subscriber that never reads is disconnected over the output limit",
          "[resp][integration]") {
  auto node = startNode(1 << 20);
  int port = portOf(node->respAddress());
  RawClient slow(port, 4096);
  slow.send("SUBSCRIBE firehose\r\n");
  REQUIRE(slow.readUntil(":1\r\n") == "*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n");
  RawClient healthy(port);
  healthy.send("SUBSCRIBE firehose\r\n");
  REQUIRE(healthy.readUntil(":1\r\n") == "*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n");
  // 16 MiB: far beyond the 1 MiB limit plus what the kernel's socket buffers hold. The healthy
  // subscriber reads as it goes.
  std::string payload(256 * 1024, 'x');
  std::string expected = "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
  std::string frame = "*3\r\n$7\r\nmessage\r\n$8\r\nfirehose\r\n" + expected;
  size_t received = 0;
  for (int i = 0; i < 64; ++i) {
    node->topic("firehose").publish(payload);
    received += healthy.readUntil(expected).size();
  }
  CHECK(received == 64 * frame.size());
  CHECK(slow.waitClosed(10s));
  // The member is up and the closed subscriber's subscription is gone: only one receiver left.
  CHECK(cli(port, {"PING"}) == "PONG\n");
  CHECK(cli(port, {"PUBLISH", "firehose", "x"}) == "1\n");
}

TEST_CASE("resp: pub/sub across a cluster reaches subscribers on another member", "[resp][cluster]") {
  shoal::test::TestCluster cluster(2, {"--resp", "127.0.0.1:0"});
  cluster.waitSettled(2);
  int subscriberPort = portOf(cluster.member(0).respAddress());
  int publisherPort = portOf(cluster.member(1).respAddress());
  // Twenty channels: their topics' owners are spread over both members.
  std::string subscribe = "SUBSCRIBE";
  for (int i = 0; i < 20; ++i) subscribe += " ch" + std::to_string(i);
  RawClient sub(subscriberPort);
  sub.send(subscribe + "\r\nPSUBSCRIBE ch1?\r\nPING sync\r\n");
  auto confirmations = sub.readUntil("$4\r\nsync\r\n");
  CHECK(confirmations.find("$4\r\nch19\r\n:20\r\n") != std::string::npos);
  CHECK(confirmations.find("*3\r\n$10\r\npsubscribe\r\n$4\r\nch1?\r\n:21\r\n") != std::string::npos);
  // Published through the other member: the receivers it counts are its own RESP clients (none).
  for (int i = 0; i < 20; ++i) {
    CHECK(cli(publisherPort, {"PUBLISH", "ch" + std::to_string(i), "m" + std::to_string(i)}) == "0\n");
  }
  std::string received;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  auto complete = [&received]() {
    for (int i = 0; i < 20; ++i) {
      auto m = "*3\r\n$7\r\nmessage\r\n$" + std::to_string(3 + (i >= 10)) + "\r\nch" + std::to_string(i) +
               "\r\n$" + std::to_string(2 + (i >= 10)) + "\r\nm" + std::to_string(i) + "\r\n";
      if (received.find(m) == std::string::npos) return false;
    }
    // ch10..ch19 match the pattern too (their topics existed when PSUBSCRIBE listed them).
    return received.find("*4\r\n$8\r\npmessage\r\n$4\r\nch1?\r\n$4\r\nch19\r\n$3\r\nm19\r\n") !=
           std::string::npos;
  };
  while (!complete() && std::chrono::steady_clock::now() < deadline) received += sub.readUntil("\r\n", 1s);
  INFO("received:\n" << received);
  CHECK(complete());
}

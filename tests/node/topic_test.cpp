// Topics through the embedding API: sequence numbers, subscriptions from latest / earliest / a
// sequence number, the gap signal, overload policies, limits and the slow-subscriber cut-off.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "shoal/node/node.h"

using namespace std::chrono_literals;

namespace {

shoal::NodeOptions topicOptions() {
  shoal::NodeOptions o;
  o.name = "topic-test";
  o.listen = "";
  o.logLevel = "warn";
  return o;
}

// Collects what a subscription delivers; waits for a condition with a deadline.
struct Inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<shoal::TopicMessage> messages;
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  std::optional<std::string> closed;
  uint64_t closedNext = 0;

  shoal::TopicHandler handler() {
    shoal::TopicHandler h;
    h.onMessage = [this](const shoal::TopicMessage& m) {
      std::lock_guard<std::mutex> lock(mutex);
      messages.push_back(m);
      changed.notify_all();
    };
    h.onGap = [this](const std::string&, uint64_t from, uint64_t to) {
      std::lock_guard<std::mutex> lock(mutex);
      gaps.emplace_back(from, to);
      changed.notify_all();
    };
    h.onClosed = [this](const std::string&, const shoal::Error& e, uint64_t next) {
      std::lock_guard<std::mutex> lock(mutex);
      closed = e.what();
      closedNext = next;
      changed.notify_all();
    };
    return h;
  }
  bool waitFor(size_t count, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return messages.size() >= count; });
  }
  std::vector<uint64_t> seqs() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<uint64_t> out;
    for (auto& m : messages) out.push_back(m.seq);
    return out;
  }
};

std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (auto s = from; s <= to; ++s) out.push_back(s);
  return out;
}

}  // namespace

TEST_CASE("topics: publish returns consecutive sequence numbers and subscribers get messages in order",
          "[topic][node]") {
  auto node = shoal::Node::start(topicOptions());
  auto orders = node->topic("orders");
  CHECK(orders.publish("a") == 1);
  CHECK(orders.publish(shoal::OutgoingMessage{"b", "key-b", {{"kind", "test"}}}) == 2);

  Inbox fromStart, fromNow, fromTwo;
  orders.subscribe(fromStart.handler(), shoal::SubscribeFrom::earliest());
  orders.subscribe(fromNow.handler(), shoal::SubscribeFrom::latest());
  orders.subscribe(fromTwo.handler(), shoal::SubscribeFrom::at(2));
  auto seqs = orders.publishAll({{"c", {}, {}}, {"d", {}, {}}, {"e", {}, {}}});
  CHECK(seqs == std::vector<uint64_t>{3, 4, 5});

  REQUIRE(fromStart.waitFor(5));
  REQUIRE(fromNow.waitFor(3));
  REQUIRE(fromTwo.waitFor(4));
  CHECK(fromStart.seqs() == range(1, 5));
  CHECK(fromNow.seqs() == range(3, 5));
  CHECK(fromTwo.seqs() == range(2, 5));
  {
    std::lock_guard<std::mutex> lock(fromStart.mutex);
    auto& b = fromStart.messages[1];
    CHECK(b.value == "b");
    CHECK(b.key == "key-b");
    CHECK(b.topic == "orders");
    REQUIRE(b.headers.size() == 1);
    CHECK(b.headers[0] == std::make_pair(std::string("kind"), std::string("test")));
    CHECK(b.publishTimeMs > 0);
    CHECK(fromStart.messages[4].value == "e");
  }
  // Another topic numbers its own messages.
  CHECK(node->topic("payments").publish("x") == 1);
  // Topics are not maps.
  for (auto& name : node->mapNames()) CHECK(name.rfind("$", 0) == std::string::npos);
}

TEST_CASE("topics: a subscriber asking for overwritten messages gets a gap signal, then the rest",
          "[topic][node]") {
  auto options = topicOptions();
  options.topics["small"].capacity = 5;
  auto node = shoal::Node::start(options);
  auto small = node->topic("small");
  for (int i = 1; i <= 12; ++i) small.publish("m" + std::to_string(i));
  Inbox inbox;
  small.subscribe(inbox.handler(), shoal::SubscribeFrom::at(3));
  REQUIRE(inbox.waitFor(5));
  CHECK(inbox.seqs() == range(8, 12));
  std::lock_guard<std::mutex> lock(inbox.mutex);
  REQUIRE(inbox.gaps.size() == 1);
  CHECK(inbox.gaps[0] == std::make_pair(uint64_t{3}, uint64_t{7}));
}

TEST_CASE("topics: earliest starts at the oldest message held", "[topic][node]") {
  auto options = topicOptions();
  options.topics["ring"].capacity = 3;
  auto node = shoal::Node::start(options);
  auto ring = node->topic("ring");
  for (int i = 1; i <= 10; ++i) ring.publish(std::to_string(i));
  Inbox inbox;
  ring.subscribe(inbox.handler(), shoal::SubscribeFrom::earliest());
  REQUIRE(inbox.waitFor(3));
  CHECK(inbox.seqs() == range(8, 10));
  std::lock_guard<std::mutex> lock(inbox.mutex);
  CHECK(inbox.gaps.empty());
}

TEST_CASE("topics: overload reject refuses publishes while the ring is full, then accepts again",
          "[topic][node]") {
  auto options = topicOptions();
  auto& t = options.topics["strict"];
  t.capacity = 3;
  t.retentionMs = 300;
  t.overload = shoal::TopicOverload::REJECT;
  auto node = shoal::Node::start(options);
  auto strict = node->topic("strict");
  for (int i = 0; i < 3; ++i) strict.publish("m");
  try {
    strict.publish("one too many");
    FAIL("a publish to a full reject topic succeeded");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::OVERLOADED);
    CHECK(std::string(e.what()).find("full") != std::string::npos);
  }
  std::this_thread::sleep_for(400ms);  // the messages age out of the retention
  CHECK(strict.publish("again") == 4);
}

TEST_CASE("topics: bad names and oversized messages are refused with a clear error", "[topic][node]") {
  auto options = topicOptions();
  options.limits.maxValueBytes = 1000;
  auto node = shoal::Node::start(options);
  for (std::string bad :
       {std::string(""), std::string("a{b}"), std::string("$internal"), std::string(201, 'x')}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(node->topic(bad).publish("m"), shoal::Error);
    CHECK_THROWS_AS(node->topic(bad).subscribe({}), shoal::Error);
  }
  try {
    node->topic("t").publish(std::string(1001, 'v'));
    FAIL("an oversized message was published");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::TOO_LARGE);
  }
  // Nothing was published by the refused calls.
  CHECK(node->topic("t").publish("ok") == 1);
  // Topic ring buffers cannot be reached as maps.
  CHECK_THROWS_AS(node->map("$topic:t").get("{t}"), shoal::Error);
}

TEST_CASE("topics: a subscriber that stops taking messages is cut off with a reason and may resume",
          "[topic][node]") {
  auto options = topicOptions();
  options.topics["fast"].capacity = 1000;
  options.topics["fast"].maxSubscriberLag = 100;
  auto node = shoal::Node::start(options);
  auto fast = node->topic("fast");
  std::mutex gate;
  std::unique_lock<std::mutex> blocked(gate);  // the subscriber's first callback waits on it
  Inbox inbox;
  auto handler = inbox.handler();
  auto onMessage = handler.onMessage;
  handler.onMessage = [&gate, onMessage](const shoal::TopicMessage& m) {
    std::lock_guard<std::mutex> wait(gate);
    onMessage(m);
  };
  fast.subscribe(handler, shoal::SubscribeFrom::latest());
  for (int i = 0; i < 300; ++i) fast.publish("m" + std::to_string(i));
  blocked.unlock();
  {
    std::unique_lock<std::mutex> lock(inbox.mutex);
    REQUIRE(inbox.changed.wait_for(lock, 5s, [&] { return inbox.closed.has_value(); }));
    CHECK(inbox.closed->find("behind") != std::string::npos);
    CHECK(inbox.closedNext >= 1);
  }
  // Resuming from where it was cut off delivers the rest, in order, without duplicates.
  auto next = inbox.closedNext;
  auto seen = inbox.seqs();
  CHECK(seen == range(1, next - 1));
  Inbox resumed;
  fast.subscribe(resumed.handler(), shoal::SubscribeFrom::at(next));
  REQUIRE(resumed.waitFor(300 - (next - 1)));
  CHECK(resumed.seqs() == range(next, 300));
}

TEST_CASE("topics: a durable topic survives a restart of its member and numbering goes on", "[topic][node]") {
  auto dir = std::filesystem::temp_directory_path() / ("shoal-topic-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto options = topicOptions();
  options.dataDir = dir.string();
  options.topics["audit"].durable = true;
  {
    auto node = shoal::Node::start(options);
    for (int i = 1; i <= 50; ++i) node->topic("audit").publish("a" + std::to_string(i));
    node->topic("volatile").publish("gone after restart");
  }
  {
    auto node = shoal::Node::start(options);
    CHECK(node->topic("audit").publish("a51") == 51);
    Inbox inbox;
    node->topic("audit").subscribe(inbox.handler(), shoal::SubscribeFrom::earliest());
    REQUIRE(inbox.waitFor(51));
    CHECK(inbox.seqs() == range(1, 51));
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK(inbox.messages[0].value == "a1");
    CHECK(inbox.messages[50].value == "a51");
    // A topic that is not durable starts over.
    CHECK(node->topic("volatile").publish("again") == 1);
  }
  std::filesystem::remove_all(dir);
}

// Pattern subscriptions through the embedding API (Node::subscribePattern): existing matching
// topics from latest, topics created later from earliest, nothing from other topics, per-topic
// order, unsubscribe.
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "shoal/node/node.h"

using namespace std::chrono_literals;

namespace {

shoal::NodeOptions patternOptions() {
  shoal::NodeOptions o;
  o.name = "topic-pattern-test";
  o.listen = "";
  o.logLevel = "warn";
  return o;
}

// What a pattern subscription delivered, per topic; waits with a deadline.
struct PatternInbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, std::vector<uint64_t>> seqs;
  std::map<std::string, std::vector<std::string>> values;
  size_t count = 0;
  size_t gaps = 0;

  shoal::TopicHandler handler() {
    shoal::TopicHandler h;
    h.onMessage = [this](const shoal::TopicMessage& m) {
      std::lock_guard<std::mutex> lock(mutex);
      seqs[m.topic].push_back(m.seq);
      values[m.topic].push_back(m.value);
      ++count;
      changed.notify_all();
    };
    h.onGap = [this](const std::string&, uint64_t, uint64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      ++gaps;
    };
    return h;
  }
  bool waitFor(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return count >= n; });
  }
};

std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (auto s = from; s <= to; ++s) out.push_back(s);
  return out;
}

std::vector<shoal::OutgoingMessage> messages(int n) {
  std::vector<shoal::OutgoingMessage> out;
  for (int i = 0; i < n; ++i) out.push_back({"m" + std::to_string(i), {}, {}});
  return out;
}

}  // namespace

TEST_CASE(
    "topics: an embedded pattern subscriber gets existing topics from latest and new ones from earliest",
    "[topic][node]") {
  auto node = shoal::Node::start(patternOptions());
  auto eu = node->topic("orders.eu");
  eu.publishAll(messages(3));  // before the pattern: not delivered
  node->topic("payments").publish("x");

  PatternInbox inbox;
  auto id = node->subscribePattern("orders.*", inbox.handler());
  eu.publishAll(messages(4));  // 4..7
  auto us = node->topic("orders.us");
  us.publishAll(messages(3));  // 1..3: created after the pattern, so all of them
  node->topic("payments").publishAll(messages(3));
  node->topic("ordersX").publish("not a match");

  REQUIRE(inbox.waitFor(7));
  us.publish("late");
  REQUIRE(inbox.waitFor(8));
  {
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK(inbox.seqs.size() == 2);
    CHECK(inbox.seqs["orders.eu"] == range(4, 7));
    CHECK(inbox.seqs["orders.us"] == range(1, 4));
    CHECK(inbox.values["orders.us"].back() == "late");
    CHECK(inbox.gaps == 0);
  }

  node->unsubscribe(id);
  node->unsubscribe(id);  // ended ids are ignored
  eu.publish("after");
  node->topic("orders.asia").publish("after");
  PatternInbox witness;  // shows the messages were delivered to subscribers
  eu.subscribe(witness.handler(), shoal::SubscribeFrom::at(8));
  REQUIRE(witness.waitFor(1));
  CHECK_FALSE(inbox.waitFor(9, 2500ms));  // longer than a listing period
}

TEST_CASE("topics: Node::unsubscribe also ends a plain topic subscription", "[topic][node]") {
  auto node = shoal::Node::start(patternOptions());
  auto topic = node->topic("plain");
  PatternInbox inbox;
  auto id = topic.subscribe(inbox.handler());
  topic.publish("a");
  REQUIRE(inbox.waitFor(1));
  node->unsubscribe(id);
  topic.publish("b");
  PatternInbox witness;
  topic.subscribe(witness.handler(), shoal::SubscribeFrom::at(2));
  REQUIRE(witness.waitFor(1));
  CHECK_FALSE(inbox.waitFor(2, 300ms));
}

TEST_CASE("topics: Node::subscribePattern refuses a handler without onMessage", "[topic][node]") {
  auto node = shoal::Node::start(patternOptions());
  try {
    node->subscribePattern("orders.*", shoal::TopicHandler{});
    FAIL("no error");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::INVALID_ARGUMENT);
  }
}

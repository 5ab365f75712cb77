// Pattern subscriptions through the client library against a real shoald process: existing
// matching topics from latest, topics created later from earliest, nothing from other topics,
// per-topic order, unsubscribe.
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shoal/client/client.h"
#include "shoald_process.h"
#include "topic_inbox.h"

using namespace std::chrono_literals;
using shoal::test::seqRange;
using shoal::test::ShoaldProcess;
using shoal::test::TopicInbox;

namespace {

std::unique_ptr<shoal::Client> connectTo(const ShoaldProcess& member) {
  shoal::ClientOptions options;
  options.servers = {member.address()};
  options.requestTimeout = 5000ms;
  return shoal::Client::connect(options);
}

std::vector<shoal::OutgoingMessage> messages(int n, const std::string& prefix = "m") {
  std::vector<shoal::OutgoingMessage> out;
  for (int i = 0; i < n; ++i) out.push_back({prefix + std::to_string(i), {}, {}});
  return out;
}

// Sequence numbers delivered per topic, in delivery order.
std::map<std::string, std::vector<uint64_t>> byTopic(TopicInbox& inbox) {
  std::lock_guard<std::mutex> lock(inbox.mutex);
  std::map<std::string, std::vector<uint64_t>> out;
  for (auto& m : inbox.messages) out[m.topic].push_back(m.seq);
  return out;
}

}  // namespace

TEST_CASE("topics: a pattern subscriber gets existing topics from latest and new topics from earliest",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto eu = client->topic("orders.eu");
  auto payments = client->topic("payments");
  eu.publishAll(messages(3, "before"));  // published before the pattern started: not delivered
  payments.publish("x");

  TopicInbox inbox;
  auto id = client->subscribePattern("orders.*", inbox.handler());
  eu.publishAll(messages(5));  // 4..8
  // Created after the pattern started: every message, including those published before the next
  // listing saw the topic.
  auto us = client->topic("orders.us");
  us.publishAll(messages(4));  // 1..4
  payments.publishAll(messages(3));
  client->topic("ordersX").publish("not a match");
  client->topic("archive.orders.eu").publish("not a match either");

  REQUIRE(inbox.waitFor(9, 10s));
  us.publish("late");  // 5, on the now-followed topic
  REQUIRE(inbox.waitFor(10, 10s));
  auto seen = byTopic(inbox);
  CHECK(seen.size() == 2);
  CHECK(seen["orders.eu"] == seqRange(4, 8));
  CHECK(seen["orders.us"] == seqRange(1, 5));
  {
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK(inbox.gaps.empty());
    CHECK_FALSE(inbox.closed);
  }

  // After unsubscribe nothing more arrives, from old or new matching topics.
  client->unsubscribe(id);
  client->unsubscribe(id);  // ended ids are ignored
  eu.publish("after");
  client->topic("orders.asia").publish("after");
  TopicInbox witness;  // shows the message was delivered to subscribers
  eu.subscribe(witness.handler(), shoal::SubscribeFrom::at(9));
  REQUIRE(witness.waitFor(1));
  CHECK_FALSE(inbox.waitFor(11, 2500ms));  // longer than a listing period
}

TEST_CASE("topics: a pattern subscriber keeps per-topic order under interleaved publishers",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  std::vector<std::string> names{"sensor.1", "sensor.2", "sensor.3"};
  for (auto& n : names) client->topic(n).publish("exists");
  TopicInbox inbox;
  client->subscribePattern("sensor.[0-9]", inbox.handler());
  constexpr int ROUNDS = 40;
  for (int i = 0; i < ROUNDS; ++i) {
    for (auto& n : names) client->topic(n).publishAsync({std::to_string(i), {}, {}}, [](auto) {});
  }
  REQUIRE(inbox.waitFor(ROUNDS * names.size(), 15s));
  auto seen = byTopic(inbox);
  REQUIRE(seen.size() == names.size());
  for (auto& n : names) CHECK(seen[n] == seqRange(2, ROUNDS + 1));
}

TEST_CASE("topics: subscribePattern without onMessage or with an empty pattern is refused",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  try {
    client->subscribePattern("orders.*", shoal::TopicHandler{});
    FAIL("no error");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::INVALID_ARGUMENT);
  }
  TopicInbox inbox;
  try {
    client->subscribePattern("", inbox.handler());
    FAIL("no error");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::INVALID_ARGUMENT);
  }
}

TEST_CASE("topics: a pattern topic that is cut off reports onClosed and is not followed again",
          "[topic][client][integration][slow]") {
  ShoaldProcess member;  // default capacity and max subscriber lag: 10000 messages
  auto client = connectTo(member);
  auto a = client->topic("cut.a");
  auto b = client->topic("cut.b");
  a.publish("exists");
  b.publish("exists");

  TopicInbox inbox;
  auto handler = inbox.handler();
  std::mutex closedMutex;
  std::vector<std::string> closedTopics;
  handler.onClosed = [&, onClosed = handler.onClosed](const std::string& topic, const shoal::Error& e,
                                                      uint64_t next) {
    {
      std::lock_guard<std::mutex> lock(closedMutex);
      closedTopics.push_back(topic);
    }
    onClosed(topic, e, next);
  };
  std::mutex gate;
  std::unique_lock<std::mutex> blocked(gate);  // the handler waits on it: the subscriber falls behind
  handler.onMessage = [&gate, onMessage = handler.onMessage](const shoal::TopicMessage& m) {
    std::lock_guard<std::mutex> wait(gate);
    onMessage(m);
  };
  client->subscribePattern("cut.*", handler);
  // As in the single-topic cut-off test: enough that the subscriber ends up over 10000 behind.
  constexpr int TOTAL = 16'000;
  std::vector<shoal::OutgoingMessage> big;
  for (int i = 0; i < TOTAL; ++i) big.push_back({std::to_string(i) + std::string(4096, 'x'), {}, {}});
  a.publishAll(big);
  blocked.unlock();
  REQUIRE(inbox.waitClosed(20s));
  CHECK(inbox.closed->code() == shoal::ErrorCode::OVERLOADED);
  {
    std::lock_guard<std::mutex> lock(closedMutex);
    CHECK(closedTopics == std::vector<std::string>{"cut.a"});
  }

  // The other topic goes on; the cut-off one is not taken up again by later listings.
  auto before = [&] {
    std::lock_guard<std::mutex> lock(inbox.mutex);
    return inbox.messages.size();
  }();
  std::this_thread::sleep_for(2500ms);  // longer than two listing periods
  a.publish("after the cut-off");
  b.publish("still followed");
  REQUIRE(inbox.waitFor(before + 1, 10s));
  CHECK_FALSE(inbox.waitFor(before + 2, 2500ms));
  std::lock_guard<std::mutex> lock(inbox.mutex);
  CHECK(inbox.messages.back().topic == "cut.b");
  CHECK(inbox.messages.back().value == "still followed");
}

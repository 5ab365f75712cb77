// Topics through the client library against a real shoald process: name validation, sequence
// numbers (also from concurrent publishers), subscriptions from latest / earliest / a sequence
// number, gaps, the slow-subscriber cut-off, callbacks that throw, and the topic listing.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

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

}  // namespace

TEST_CASE("topics: topic names are checked by the client", "[topic][client][unit]") {
  CHECK_FALSE(shoal::topicNameProblem("orders"));
  CHECK_FALSE(shoal::topicNameProblem(std::string(200, 'x')));
  CHECK_FALSE(shoal::topicNameProblem("a$b"));
  for (std::string bad :
       {std::string(), std::string(201, 'x'), std::string("a{b"), std::string("tag}"), std::string("$sys")}) {
    INFO("name: " << bad);
    CHECK(shoal::topicNameProblem(bad));
  }
}

TEST_CASE("topics: a bad topic name is refused with INVALID_ARGUMENT before anything is sent",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  for (std::string bad :
       {std::string(), std::string(201, 'x'), std::string("{hot}"), std::string("$internal")}) {
    INFO("name: " << bad);
    try {
      client->topic(bad);
      FAIL("no error");
    } catch (const shoal::Error& e) {
      CHECK(e.code() == shoal::ErrorCode::INVALID_ARGUMENT);
    }
  }
  CHECK(client->topic(std::string(200, 'x')).publish("fits") == 1);
}

TEST_CASE("topics: publish returns consecutive sequence numbers per topic", "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto orders = client->topic("orders");
  CHECK(orders.name() == "orders");
  CHECK(orders.publish("a") == 1);
  CHECK(orders.publish(shoal::OutgoingMessage{"b", "key", {{"h", "v"}}}) == 2);
  CHECK(orders.publishAll(messages(5)) == seqRange(3, 7));
  CHECK(client->topic("other").publish("x") == 1);  // numbered per topic

  std::promise<shoal::Result<uint64_t>> asyncDone;
  orders.publishAsync({"c", {}, {}}, [&](shoal::Result<uint64_t> r) { asyncDone.set_value(std::move(r)); });
  auto future = asyncDone.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  CHECK(future.get().value() == 8);
}

TEST_CASE("topics: concurrent publishers get every sequence number exactly once",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto topic = client->topic("busy");
  constexpr int THREADS = 4, EACH = 250;
  std::mutex mutex;
  std::vector<uint64_t> seqs;
  std::vector<std::thread> threads;
  for (int t = 0; t < THREADS; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < EACH; ++i) {
        auto seq = topic.publish("t" + std::to_string(t) + "-" + std::to_string(i));
        std::lock_guard<std::mutex> lock(mutex);
        seqs.push_back(seq);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(seqs.begin(), seqs.end());
  CHECK(seqs == seqRange(1, THREADS * EACH));
}

TEST_CASE("topics: subscribers start at latest, earliest or a sequence number and get key and headers",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto news = client->topic("news");
  news.publishAll(messages(5));  // seqs 1..5

  TopicInbox latest, earliest, fromThree;
  news.subscribe(latest.handler());  // latest is the default
  news.subscribe(earliest.handler(), shoal::SubscribeFrom::earliest());
  news.subscribe(fromThree.handler(), shoal::SubscribeFrom::at(3));
  REQUIRE(earliest.waitFor(5));
  REQUIRE(fromThree.waitFor(3));

  CHECK(news.publish(
            shoal::OutgoingMessage{"six", "k6", {{"source", "test"}, {"bin", std::string("\0\1", 2)}}}) == 6);
  REQUIRE(latest.waitFor(1));
  REQUIRE(earliest.waitFor(6));
  REQUIRE(fromThree.waitFor(4));
  CHECK(latest.seqs() == std::vector<uint64_t>{6});
  CHECK(earliest.seqs() == seqRange(1, 6));
  CHECK(fromThree.seqs() == seqRange(3, 6));
  std::lock_guard<std::mutex> lock(latest.mutex);
  auto& m = latest.messages.at(0);
  CHECK(m.topic == "news");
  CHECK(m.value == "six");
  CHECK(m.key == "k6");
  CHECK(m.headers == shoal::Headers{{"source", "test"}, {"bin", std::string("\0\1", 2)}});
  CHECK(m.publishTimeMs > 0);
  CHECK(latest.gaps.empty());
}

TEST_CASE("topics: messages dropped before delivery arrive as a gap, then the rest in order",
          "[topic][client][integration]") {
  ShoaldProcess member;  // default topic capacity: 10000 messages
  auto client = connectTo(member);
  auto ring = client->topic("ring");
  ring.publishAll(messages(10'020));  // 1..20 overwritten

  TopicInbox resumed, earliest;
  ring.subscribe(resumed.handler(), shoal::SubscribeFrom::at(5));
  ring.subscribe(earliest.handler(), shoal::SubscribeFrom::earliest());
  REQUIRE(resumed.waitForSeq(10'020, 20s));
  REQUIRE(earliest.waitForSeq(10'020, 20s));
  {
    std::lock_guard<std::mutex> lock(resumed.mutex);
    CHECK(resumed.gaps == std::vector<std::pair<uint64_t, uint64_t>>{{5, 20}});
  }
  CHECK(resumed.seqs() == seqRange(21, 10'020));
  CHECK(earliest.seqs() == seqRange(21, 10'020));  // the oldest held: no gap
  std::lock_guard<std::mutex> lock(earliest.mutex);
  CHECK(earliest.gaps.empty());
}

TEST_CASE("topics: a subscriber that falls too far behind is cut off and can resume without loss",
          "[topic][client][integration]") {
  ShoaldProcess member;  // default capacity and max subscriber lag: 10000 messages
  auto client = connectTo(member);
  auto fast = client->topic("fast");
  TopicInbox slow;
  auto handler = slow.handler();
  std::mutex gate;
  std::unique_lock<std::mutex> blocked(gate);  // the handler waits on it: the subscriber falls behind
  handler.onMessage = [&gate, onMessage = handler.onMessage](const shoal::TopicMessage& m) {
    std::lock_guard<std::mutex> wait(gate);
    onMessage(m);
  };
  fast.subscribe(handler);
  // Large enough that what the subscriber takes before it stops acknowledging leaves it more than
  // 10000 behind: the client acknowledges up to 4 batches (<= 512 messages, 1 MiB each) ahead of
  // its handler, and the connection's flow-control window holds a few MiB more.
  constexpr int TOTAL = 16'000;
  std::vector<shoal::OutgoingMessage> big;
  for (int i = 0; i < TOTAL; ++i) big.push_back({std::to_string(i) + std::string(4096, 'x'), {}, {}});
  fast.publishAll(big);
  blocked.unlock();
  REQUIRE(slow.waitClosed(20s));
  CHECK(slow.closed->code() == shoal::ErrorCode::OVERLOADED);
  auto next = slow.closedNext;
  CHECK(slow.seqs() == seqRange(1, next - 1));  // everything before `next`, nothing twice

  // Resuming from `next`: what the topic still holds, after a gap for what it no longer does.
  TopicInbox rest;
  fast.subscribe(rest.handler(), shoal::SubscribeFrom::at(next));
  REQUIRE(rest.waitForSeq(TOTAL, 20s));
  uint64_t firstHeld = TOTAL - 10'000 + 1;
  CHECK(rest.seqs() == seqRange(std::max(next, firstHeld), TOTAL));
  std::lock_guard<std::mutex> lock(rest.mutex);
  if (next < firstHeld) {
    CHECK(rest.gaps == std::vector<std::pair<uint64_t, uint64_t>>{{next, firstHeld - 1}});
  } else {
    CHECK(rest.gaps.empty());
  }
}

TEST_CASE("topics: a throwing handler does not stop delivery, and unsubscribe stops it",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto topic = client->topic("flaky");
  TopicInbox inbox;
  auto handler = inbox.handler();
  handler.onMessage = [onMessage = handler.onMessage](const shoal::TopicMessage& m) {
    onMessage(m);
    if (m.seq % 2 == 1) throw std::runtime_error("odd");
  };
  auto id = topic.subscribe(handler);
  topic.publishAll(messages(10));
  REQUIRE(inbox.waitFor(10));
  CHECK(inbox.seqs() == seqRange(1, 10));

  topic.unsubscribe(id);
  topic.unsubscribe(id);  // ended ids are ignored
  topic.publish("after");
  TopicInbox witness;  // a second subscriber shows that the message was delivered to subscribers
  topic.subscribe(witness.handler(), shoal::SubscribeFrom::at(11));
  REQUIRE(witness.waitFor(1));
  CHECK_FALSE(inbox.waitFor(11, 300ms));
}

TEST_CASE("topics: subscribe without onMessage is refused", "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  try {
    client->topic("t").subscribe(shoal::TopicHandler{});
    FAIL("no error");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::INVALID_ARGUMENT);
  }
}

TEST_CASE("topics: Client::topics lists every topic with its sequence numbers and subscribers",
          "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  CHECK(client->topics().empty());
  client->topic("alpha").publishAll(messages(3));
  client->topic("beta").publish("x");
  TopicInbox inbox;
  client->topic("beta").subscribe(inbox.handler());
  auto topics = client->topics();
  REQUIRE(topics.size() == 2);
  CHECK(topics[0].name == "alpha");
  CHECK(topics[0].firstSeq == 1);
  CHECK(topics[0].lastSeq == 3);
  CHECK(topics[0].retained == 3);
  CHECK(topics[0].capacity == 10'000);
  CHECK(topics[0].subscribers == 0);
  CHECK_FALSE(topics[0].durable);
  CHECK(topics[1].name == "beta");
  CHECK(topics[1].lastSeq == 1);
  CHECK(topics[1].subscribers == 1);
}

TEST_CASE("topics: close ends subscriptions without calling onClosed", "[topic][client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  TopicInbox inbox;
  client->topic("t").subscribe(inbox.handler());
  client->topic("t").publish("one");
  REQUIRE(inbox.waitFor(1));
  client->close();
  {
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK_FALSE(inbox.closed);
  }
  // Calls after close fail cleanly or do nothing.
  CHECK_NOTHROW(client->topic("t").unsubscribe(1));
  try {
    client->topic("t").publish("late");
    FAIL("no error");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::UNAVAILABLE);
  }
  try {
    client->topic("t").subscribe(inbox.handler());
    FAIL("no error");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::UNAVAILABLE);
  }
}

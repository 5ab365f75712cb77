// Topic subscriptions across a kill -9 and a join, with real shoald processes: the client notices
// (connection loss, failed position checks, the owner's "wrong owner" close), subscribes again from
// the next sequence number it expects, and its handler sees every acknowledged message once, in
// order — whether the topic's owner or the member the subscription was made through died, or the
// topic moved to a new member.
#include <catch2/catch.hpp>
#include <set>

#include "cluster_support.h"
#include "shoal/partition/partitioner.h"
#include "topic_inbox.h"

using namespace std::chrono_literals;
using shoal::test::TestCluster;
using shoal::test::TopicInbox;

namespace {

// Index (in `cluster`) of the member that owns `topic` by `info`'s partition table.
size_t ownerOf(TestCluster& cluster, const shoal::ClusterInfo& info, const std::string& topic) {
  auto p = shoal::partition::Partitioner(info.partitionCount).partitionOf(topic);
  auto primary = info.partitions.at(p).replicas.at(0);
  for (auto& m : info.members) {
    if (m.id != primary) continue;
    for (size_t j = 0; j < cluster.size(); ++j) {
      if (cluster.member(j).address() == m.address) return j;
    }
  }
  FAIL("no member owns topic " << topic);
  return 0;
}

// Publishes to `topic` in a loop and remembers the sequence numbers acknowledged.
class Publisher {
 public:
  Publisher(shoal::Client& client, std::string topic) : topic_(client.topic(topic)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Publisher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<uint64_t> acked() {
    std::lock_guard<std::mutex> lock(mutex_);
    return acked_;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return acked_.size();
  }
  uint64_t failures() const { return failures_; }

 private:
  void run() {
    for (int i = 0; !stop_; ++i) {
      try {
        auto seq = topic_.publish("p" + std::to_string(i));
        std::lock_guard<std::mutex> lock(mutex_);
        acked_.push_back(seq);
      } catch (const shoal::Error&) {
        ++failures_;
      }
      std::this_thread::sleep_for(2ms);
    }
  }
  shoal::Topic topic_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> failures_{0};
  std::mutex mutex_;
  std::vector<uint64_t> acked_;
  std::thread thread_;
};

void waitUntil(const std::function<bool()>& done, std::chrono::milliseconds limit, const std::string& what) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) FAIL("timed out waiting for " << what);
    std::this_thread::sleep_for(20ms);
  }
}

}  // namespace

TEST_CASE("topics: a subscription survives kill -9 of the topic's owner or of its home member",
          "[cluster][topic][fault]") {
  TestCluster cluster(3);
  auto info = cluster.waitSettled(3);
  bool killHome = GENERATE(false, true);
  INFO((killHome ? "killing the subscriber's home member" : "killing the topic's owner"));
  // A topic owned by m2 or m3, so that the subscriber's home (m1) and the owner are different members.
  std::string topic;
  size_t owner = 0;
  for (int i = 0; owner == 0; ++i) {
    topic = "events-" + std::to_string(i);
    owner = ownerOf(cluster, info, topic);
  }
  size_t victim = killHome ? 0 : owner;

  std::mutex logMutex;
  std::vector<std::string> debug;
  shoal::ClientOptions options;
  options.servers = cluster.addresses();  // home: m1
  options.requestTimeout = 10s;
  options.debugLog = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(logMutex);
    debug.push_back(line);
  };
  auto subscriber = shoal::Client::connect(options);
  TopicInbox inbox;
  subscriber->topic(topic).subscribe(inbox.handler(), shoal::SubscribeFrom::earliest());

  auto publisherClient = cluster.client();
  Publisher publisher(*publisherClient, topic);
  REQUIRE(inbox.waitFor(200, 20s));
  cluster.member(victim).kill9();
  auto before = publisher.count();
  waitUntil([&] { return publisher.count() >= before + 500; }, 30s, "500 publishes after the kill");
  publisher.stop();
  auto acked = publisher.acked();
  REQUIRE_FALSE(acked.empty());
  auto last = *std::max_element(acked.begin(), acked.end());
  bool caughtUp = inbox.waitForSeq(last, 20s);

  std::string log;
  {
    std::lock_guard<std::mutex> lock(logMutex);
    for (auto& line : debug) log += line + "\n";
  }
  INFO("client debug log:\n" << log);
  INFO(acked.size() << " publishes acknowledged (last seq " << last << "), " << publisher.failures()
                    << " failed");
  CHECK(caughtUp);
  auto seqs = inbox.seqs();
  // In order, nothing twice.
  CHECK(std::adjacent_find(seqs.begin(), seqs.end(), [](uint64_t a, uint64_t b) { return b <= a; }) ==
        seqs.end());
  // Every acknowledged message was delivered (none was dropped: the topic holds 10000).
  std::set<uint64_t> seen(seqs.begin(), seqs.end());
  std::vector<uint64_t> missing;
  for (auto seq : acked) {
    if (!seen.count(seq)) missing.push_back(seq);
  }
  CHECK(missing.empty());
  std::lock_guard<std::mutex> lock(inbox.mutex);
  CHECK(inbox.gaps.empty());
  CHECK_FALSE(inbox.closed);
  // It did have to resubscribe (else this test tested nothing).
  CHECK_THAT(log, Catch::Contains("resubscribes"));
}

TEST_CASE("topics: subscriptions follow their topics when a member joins", "[cluster][topic]") {
  TestCluster cluster(2);
  cluster.waitSettled(2);
  std::mutex logMutex;
  std::string log;
  shoal::ClientOptions options;
  options.servers = cluster.addresses();
  options.requestTimeout = 10s;
  options.debugLog = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(logMutex);
    log += line + "\n";
  };
  auto subscriber = shoal::Client::connect(options);
  auto publisher = cluster.client();
  // Enough topics that some move to the new member (about a third of the partitions do); the
  // member closes their subscriptions with "wrong owner" and the client makes them again.
  constexpr int TOPICS = 30, EACH = 20;
  std::vector<std::unique_ptr<TopicInbox>> inboxes;
  auto publishRound = [&](int round) {
    for (int t = 0; t < TOPICS; ++t) {
      std::vector<shoal::OutgoingMessage> batch;
      for (int i = 0; i < EACH; ++i)
        batch.push_back({"r" + std::to_string(round) + "-" + std::to_string(i), {}, {}});
      publisher->topic("joined-" + std::to_string(t)).publishAll(batch);
    }
  };
  for (int t = 0; t < TOPICS; ++t) {
    inboxes.push_back(std::make_unique<TopicInbox>());
    subscriber->topic("joined-" + std::to_string(t))
        .subscribe(inboxes.back()->handler(), shoal::SubscribeFrom::earliest());
  }
  publishRound(0);
  cluster.addMember();
  cluster.waitSettled(3);
  publishRound(1);
  for (int t = 0; t < TOPICS; ++t) {
    auto& inbox = *inboxes[t];
    INFO("topic joined-" << t);
    CHECK(inbox.waitForSeq(2 * EACH, 20s));
    CHECK(inbox.seqs() == shoal::test::seqRange(1, 2 * EACH));
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK(inbox.gaps.empty());
    CHECK_FALSE(inbox.closed);
  }
  std::lock_guard<std::mutex> lock(logMutex);
  INFO("client debug log:\n" << log);
  CHECK_THAT(log, Catch::Contains("resubscribes"));  // some topics did move
}

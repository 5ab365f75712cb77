// Topics in a grid of real shoald processes: three publishers and several subscribers while the
// topic's owner is killed with SIGKILL. Every acknowledged message must reach every subscriber
// exactly once, in sequence order, with the value it was published with; subscribers resume from
// their next sequence number at the new owner by themselves.
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <thread>

#include "cluster_support.h"
#include "shoal/partition/partitioner.h"

using namespace std::chrono_literals;
using shoal::test::TestCluster;

namespace {

// Everything one subscriber received, checked after the run.
struct Received {
  std::mutex mutex;
  std::vector<std::pair<uint64_t, std::string>> messages;  // seq, value in arrival order
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  std::optional<std::string> closed;

  shoal::TopicHandler handler() {
    shoal::TopicHandler h;
    h.onMessage = [this](const shoal::TopicMessage& m) {
      std::lock_guard<std::mutex> lock(mutex);
      messages.emplace_back(m.seq, m.value);
    };
    h.onGap = [this](const std::string&, uint64_t from, uint64_t to) {
      std::lock_guard<std::mutex> lock(mutex);
      gaps.emplace_back(from, to);
    };
    h.onClosed = [this](const std::string&, const shoal::Error& e, uint64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      closed = e.what();
    };
    return h;
  }
  uint64_t lastSeq() {
    std::lock_guard<std::mutex> lock(mutex);
    return messages.empty() ? 0 : messages.back().first;
  }
};

// The index of the member that owns `topic` (primary of its partition).
size_t ownerOf(TestCluster& cluster, const std::string& topic) {
  auto info = cluster.clientOf(0)->cluster();
  auto p = shoal::partition::Partitioner(info.partitionCount).partitionOf(topic);
  auto owner = info.partitions.at(p).replicas.at(0);
  std::string address;
  for (auto& m : info.members) {
    if (m.id == owner) address = m.address;
  }
  for (size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.member(i).address() == address) return i;
  }
  throw std::runtime_error("no member owns topic " + topic);
}

}  // namespace

TEST_CASE(
    "cluster topics: kill -9 of the topic's owner loses, duplicates and reorders no acknowledged message",
    "[cluster][fault][topic]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  const std::string topic = "events";
  auto owner = ownerOf(cluster, topic);
  INFO("topic owner: m" << owner + 1);

  constexpr int SUBSCRIBERS = 4;
  std::vector<std::unique_ptr<shoal::Client>> subscriberClients;
  std::vector<std::unique_ptr<Received>> received;
  for (int i = 0; i < SUBSCRIBERS; ++i) {
    subscriberClients.push_back(cluster.client());
    received.push_back(std::make_unique<Received>());
    subscriberClients.back()->topic(topic).subscribe(received.back()->handler(),
                                                     shoal::SubscribeFrom::earliest());
  }

  // Three publishers, each its own client; acknowledged (seq -> value) recorded.
  std::mutex ackMutex;
  std::map<uint64_t, std::string> acked;
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<shoal::Client>> publisherClients;
  std::vector<std::thread> publishers;
  for (int p = 0; p < 3; ++p) publisherClients.push_back(cluster.client());
  for (int p = 0; p < 3; ++p) {
    publishers.emplace_back([&, p] {
      auto t = publisherClients[p]->topic(topic);
      for (int n = 0; !stop; ++n) {
        auto value = "p" + std::to_string(p) + "-" + std::to_string(n);
        try {
          auto seq = t.publish(value);
          std::lock_guard<std::mutex> lock(ackMutex);
          acked[seq] = value;
        } catch (const shoal::Error&) {
          ++failures;
        }
      }
    });
  }
  auto ackedCount = [&] {
    std::lock_guard<std::mutex> lock(ackMutex);
    return acked.size();
  };
  auto waitAcks = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (ackedCount() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    REQUIRE(ackedCount() >= n);
  };
  waitAcks(500);
  cluster.member(owner).kill9();
  auto before = ackedCount();
  waitAcks(before + 1000);  // publishing goes on at the new owner
  stop = true;
  for (auto& t : publishers) t.join();

  uint64_t last = 0;
  {
    std::lock_guard<std::mutex> lock(ackMutex);
    last = acked.rbegin()->first;
  }
  // Every subscriber catches up with the last acknowledged message.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (auto& r : received) {
    while (r->lastSeq() < last && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
  }
  INFO(ackedCount() << " acknowledged publishes (last seq " << last << "), " << failures.load() << " failed");
  for (int i = 0; i < SUBSCRIBERS; ++i) {
    auto& r = *received[i];
    std::lock_guard<std::mutex> lock(r.mutex);
    INFO("subscriber " << i << ": " << r.messages.size() << " messages, last seq "
                       << (r.messages.empty() ? 0 : r.messages.back().first));
    CHECK(r.gaps.empty());
    CHECK_FALSE(r.closed.has_value());
    // In order, no duplicates, nothing skipped: seqs are exactly 1, 2, 3, ...
    size_t disorder = 0, wrongValue = 0, missing = 0;
    for (size_t k = 0; k < r.messages.size(); ++k) {
      if (r.messages[k].first != k + 1) ++disorder;
    }
    std::map<uint64_t, std::string> got(r.messages.begin(), r.messages.end());
    std::lock_guard<std::mutex> ackLock(ackMutex);
    for (auto& [seq, value] : acked) {
      auto it = got.find(seq);
      if (it == got.end()) {
        ++missing;
      } else if (it->second != value) {
        ++wrongValue;
      }
    }
    CHECK(disorder == 0);
    CHECK(missing == 0);
    CHECK(wrongValue == 0);
  }
  CHECK(failures == 0);  // retries within the deadline hide the failover
}

TEST_CASE("cluster topics: a subscriber through a member that is not the owner gets every message",
          "[cluster][topic]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  const std::string topic = "routed";
  auto owner = ownerOf(cluster, topic);
  auto other = (owner + 1) % 3;
  // A client that knows only a member that does not own the topic: it passes the subscription on.
  shoal::ClientOptions options;
  options.servers = {cluster.member(other).address()};
  options.smartRouting = false;
  auto subscriberClient = shoal::Client::connect(options);
  Received r;
  subscriberClient->topic(topic).subscribe(r.handler(), shoal::SubscribeFrom::latest());
  auto publisher = cluster.client();
  auto t = publisher->topic(topic);
  std::vector<shoal::OutgoingMessage> batch;
  for (int i = 0; i < 100; ++i) batch.push_back({"m" + std::to_string(i), {}, {}});
  auto seqs = t.publishAll(batch);
  REQUIRE(seqs.size() == 100);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (r.lastSeq() < seqs.back() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  std::lock_guard<std::mutex> lock(r.mutex);
  REQUIRE(r.messages.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(r.messages[i].second == "m" + std::to_string(i));
  // Every member lists the topic, wherever it lives.
  auto topics = cluster.clientOf(other)->topics();
  REQUIRE(topics.size() == 1);
  CHECK(topics[0].name == topic);
  CHECK(topics[0].lastSeq == seqs.back());
  CHECK(topics[0].subscribers == 1);
}

// Pattern subscriptions in a grid of real shoald processes: the matching topics live on different
// members (the listing fans out), topics created after the pattern arrive whole, and a followed
// topic's subscription resumes by itself after kill -9 of its owner — in order, nothing twice.
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cluster_support.h"
#include "shoal/partition/partitioner.h"
#include "topic_inbox.h"

using namespace std::chrono_literals;
using shoal::test::seqRange;
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

std::map<std::string, std::vector<uint64_t>> byTopic(TopicInbox& inbox) {
  std::lock_guard<std::mutex> lock(inbox.mutex);
  std::map<std::string, std::vector<uint64_t>> out;
  for (auto& m : inbox.messages) out[m.topic].push_back(m.seq);
  return out;
}

std::vector<shoal::OutgoingMessage> messages(int n) {
  std::vector<shoal::OutgoingMessage> out;
  for (int i = 0; i < n; ++i) out.push_back({"m" + std::to_string(i), {}, {}});
  return out;
}

}  // namespace

TEST_CASE("cluster topics: a pattern follows matching topics on every member and through kill -9 of an owner",
          "[cluster][topic][fault]") {
  TestCluster cluster(3);
  auto info = cluster.waitSettled(3);
  std::vector<std::string> names;
  for (int i = 0; i < 6; ++i) names.push_back("grid." + std::to_string(i));
  // A followed topic owned by m2 or m3, so killing its owner leaves the subscriber's home (m1).
  std::string victimTopic;
  size_t victim = 0;
  for (auto& n : names) {
    victim = ownerOf(cluster, info, n);
    if (victim != 0) {
      victimTopic = n;
      break;
    }
  }
  REQUIRE(victim != 0);

  shoal::ClientOptions options;
  options.servers = cluster.addresses();  // home: m1
  options.requestTimeout = 10s;
  auto subscriber = shoal::Client::connect(options);
  auto publisher = cluster.client();
  publisher->topic("grid.pre").publish("before the pattern");  // not delivered: from latest

  TopicInbox inbox;
  subscriber->subscribePattern("grid.*", inbox.handler());
  publisher->topic("grid.pre").publishAll(messages(10));               // 2..11
  for (auto& n : names) publisher->topic(n).publishAll(messages(20));  // created now: 1..20 each
  publisher->topic("other").publishAll(messages(5));
  REQUIRE(inbox.waitFor(10 + 20 * names.size(), 20s));

  cluster.member(victim).kill9();
  for (auto& n : names)
    publisher->topic(n).publishAll(messages(20));  // 21..40 each, retried over the failover
  REQUIRE(inbox.waitFor(10 + 40 * names.size(), 30s));

  auto seen = byTopic(inbox);
  CHECK(seen.size() == names.size() + 1);
  CHECK(seen["grid.pre"] == seqRange(2, 11));
  for (auto& n : names) {
    INFO("topic " << n << (n == victimTopic ? " (its owner was killed)" : ""));
    CHECK(seen[n] == seqRange(1, 40));
  }
  std::lock_guard<std::mutex> lock(inbox.mutex);
  CHECK(inbox.gaps.empty());
  CHECK_FALSE(inbox.closed);
}

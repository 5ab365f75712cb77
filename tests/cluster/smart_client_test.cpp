// The smart client against real shoald processes: keyed operations go straight to their
// partition's primary (no member forwards them), and the client follows the table across a
// kill -9 and a join without a failed operation or a lost acknowledged write.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "cluster_support.h"
#include "shoal/partition/partitioner.h"

using namespace std::chrono_literals;
using shoal::test::AckedWriters;
using shoal::test::missingWrites;
using shoal::test::TestCluster;
using shoal::test::waitForAcks;

namespace {

// Ops each live member has forwarded to another member since it started, by member index.
std::vector<uint64_t> forwardedByMember(TestCluster& cluster) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < cluster.size(); ++i)
    out.push_back(cluster.member(i).alive() ? cluster.clientOf(i)->ping().opsForwarded : 0);
  return out;
}

uint64_t total(const std::vector<uint64_t>& v) {
  uint64_t n = 0;
  for (auto x : v) n += x;
  return n;
}

// Waits until every live member serves the same table epoch (publication reached them all), so
// that no member still forwards because of an older view.
void waitSameEpoch(TestCluster& cluster) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::set<uint64_t> epochs;
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (cluster.member(i).alive()) epochs.insert(cluster.clientOf(i)->cluster().tableEpoch);
    }
    if (epochs.size() == 1) return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL("members did not agree on a table epoch within 10 s");
}

}  // namespace

TEST_CASE("smart client: keyed operations go straight to their primary", "[cluster][smart-client]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  waitSameEpoch(cluster);
  auto before = forwardedByMember(cluster);

  auto client = cluster.clientOf(0);  // knows one member, learns the others from its table
  auto map = client->rawMap("direct");
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 3000; ++i) entries.emplace_back("k" + std::to_string(i), "v" + std::to_string(i));
  map.putAll(entries);                                                     // batched per member
  for (int i = 0; i < 300; ++i) map.set("one-" + std::to_string(i), "x");  // one at a time
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; i += 7) keys.push_back("k" + std::to_string(i));
  CHECK(map.getAll(keys).size() == keys.size());
  CHECK(map.get("k42") == std::optional<std::string>("v42"));
  CHECK(map.replaceIfEqual("k42", "v42", "w42"));
  CHECK(map.size() == 3300);  // keyless: through the home member, which fans out

  auto after = forwardedByMember(cluster);
  INFO("forwarded before " << total(before) << ", after " << total(after));
  CHECK(total(after) == total(before));

  // The same traffic from a client without smart routing is forwarded by its member: the
  // counter does see forwarding (about 2/3 of the keys live elsewhere).
  shoal::ClientOptions options;
  options.servers = {cluster.member(0).address()};
  options.smartRouting = false;
  auto plain = shoal::Client::connect(options);
  for (int i = 0; i < 300; ++i) plain->rawMap("direct").set("plain-" + std::to_string(i), "x");
  auto plainAfter = forwardedByMember(cluster);
  CHECK(plainAfter[0] - after[0] >= 120);
  CHECK(plainAfter[0] - after[0] <= 280);
}

TEST_CASE("smart client: kill -9 of a member under load fails no op and loses no acknowledged write",
          "[cluster][smart-client][fault]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  bool killHome = GENERATE(false, true);
  INFO((killHome ? "killing the client's home member" : "killing another member"));
  auto client = cluster.client();  // home: m1, the first server
  AckedWriters writers(*client, "orders", 8);
  waitForAcks(writers, 1000);
  size_t victim = killHome ? 0 : 2;
  cluster.member(victim).kill9();
  auto before = writers.count();
  waitForAcks(writers, before + 2000);
  size_t survivor = victim == 0 ? 1 : 0;
  cluster.waitSettled(2, survivor);
  waitSameEpoch(cluster);
  // After the failover the client routes by the new table again: nothing is forwarded.
  std::this_thread::sleep_for(300ms);
  auto forwardedBefore = total(forwardedByMember(cluster));
  before = writers.count();
  waitForAcks(writers, before + 2000);
  auto forwardedAfter = total(forwardedByMember(cluster));
  writers.stop();
  auto acked = writers.acked();
  INFO(acked.size() << " acknowledged writes, " << writers.failures()
                    << " failed calls (last: " << writers.lastFailure() << "), longest gap without an ack "
                    << writers.longestGap().count() << " ms");
  CHECK(writers.failures() == 0);
  CHECK(missingWrites(*cluster.clientOf(survivor), "orders", acked).empty());
  CHECK(forwardedAfter == forwardedBefore);
}

TEST_CASE("smart client: a member joining under load gets its keys directly once the table changes",
          "[cluster][smart-client][fault]") {
  TestCluster cluster(2);
  cluster.waitSettled(2);
  auto client = cluster.client();
  AckedWriters writers(*client, "orders", 8);
  waitForAcks(writers, 1000);
  auto joined = cluster.addMember();
  auto info = cluster.waitSettled(3);
  waitSameEpoch(cluster);
  std::this_thread::sleep_for(300ms);
  auto forwardedBefore = forwardedByMember(cluster);
  auto before = writers.count();
  waitForAcks(writers, before + 2000);
  auto forwardedAfter = forwardedByMember(cluster);
  writers.stop();
  auto acked = writers.acked();
  INFO(acked.size() << " acknowledged writes, " << writers.failures()
                    << " failed calls (last: " << writers.lastFailure() << ")");
  CHECK(writers.failures() == 0);
  CHECK(missingWrites(*cluster.clientOf(joined), "orders", acked).empty());
  // The new member owns partitions, and the old members forward nothing to it: the client sends
  // those keys to it straight away.
  for (auto& m : info.members) CHECK(m.partitionsOwned > 0);
  CHECK(total(forwardedAfter) == total(forwardedBefore));
}

TEST_CASE("smart client: listeners move to the next member when the home member dies",
          "[cluster][smart-client][fault]") {
  TestCluster cluster(3);
  auto info = cluster.waitSettled(3);
  auto client = cluster.client();  // home: m1
  std::mutex mutex;
  std::set<std::string> seen;
  client->rawMap("events").addListener([&](const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.insert(e.key);
  });
  // Events are raised by the member that applies a write: use keys whose primary is m2 (the next
  // server, so the next home) — it ranks above m3 for them, so it stays their primary once m1 is
  // gone, whatever replicas are still being filled then.
  auto m2 = cluster.clientOf(1)->ping().id;
  shoal::partition::Partitioner partitioner(info.partitionCount);
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 20; ++i) {
    auto key = "e" + std::to_string(i);
    if (info.partitions[partitioner.partitionOf(key)].replicas.at(0) == m2) keys.push_back(key);
  }
  cluster.member(0).kill9();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  bool all = false;
  while (!all && std::chrono::steady_clock::now() < deadline) {
    for (auto& k : keys) client->rawMap("events").set(k, "x");
    std::this_thread::sleep_for(100ms);
    std::lock_guard<std::mutex> lock(mutex);
    all = true;
    for (auto& k : keys) all = all && seen.count(k);
  }
  CHECK(all);
}

TEST_CASE("smart client: a listener hears the events of every member's partitions, also after failover",
          "[cluster][smart-client][fault]") {
  TestCluster cluster(3);
  auto info = cluster.waitSettled(3);
  auto client = cluster.client();  // home: m1
  std::mutex mutex;
  std::map<std::string, int> heard;  // key -> events
  client->rawMap("all").addListener([&](const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    heard[e.key]++;
  });
  auto heardAll = [&](const std::vector<std::string>& keys, int times, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        bool all = true;
        for (auto& k : keys) all = all && heard[k] >= times;
        if (all) return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  // Keys of every member's partitions, written through another client: one event each.
  shoal::partition::Partitioner partitioner(info.partitionCount);
  std::map<uint64_t, std::vector<std::string>> byPrimary;
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 300; ++i) {
    auto key = "a" + std::to_string(i);
    keys.push_back(key);
    byPrimary[info.partitions[partitioner.partitionOf(key)].replicas.at(0)].push_back(key);
  }
  REQUIRE(byPrimary.size() == 3);
  auto writer = cluster.client();
  for (auto& k : keys) writer->rawMap("all").set(k, "1");
  CHECK(heardAll(keys, 1, 10s));
  {
    std::lock_guard<std::mutex> lock(mutex);
    size_t twice = 0;
    for (auto& k : keys) twice += heard[k] > 1;
    CHECK(twice == 0);  // each event once, from its primary alone
  }
  // m3 dies: its partitions' backups become primaries and raise the events of the next writes.
  auto m3 = cluster.clientOf(2)->ping().id;
  cluster.member(2).kill9();
  cluster.waitSettled(2, 0, 30s);
  auto& wasOnM3 = byPrimary[m3];
  for (auto& k : wasOnM3) writer->rawMap("all").set(k, "2");
  CHECK(heardAll(wasOnM3, 2, 10s));
}

// Anti-entropy with real members: a backup that silently lost changes (fault injection:
// SHOAL_FAULT_DROP_REPLICATED) is found by the periodic digest check and copied again, so a
// failover to it loses nothing; and under a steady write load the check finds nothing.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "cluster_support.h"

using namespace std::chrono_literals;
using shoal::test::TestCluster;

namespace {

std::vector<std::pair<std::string, std::string>> numbered(int n) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < n; ++i) out.emplace_back("k" + std::to_string(i), "v" + std::to_string(i));
  return out;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool waitForLog(shoal::test::ShoaldProcess& member, const std::string& text,
                std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (member.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

TEST_CASE("cluster: anti-entropy finds a backup that lost changes and copies it again",
          "[cluster][anti-entropy][fault]") {
  auto config = shoal::test::writeTempFile("[cluster]\nanti-entropy-interval = \"300ms\"\n");
  TestCluster cluster(1, {"--config", config});
  setenv("SHOAL_FAULT_DROP_REPLICATED", "50", 1);  // m2 drops the first 50 changes it backs up
  cluster.addMember();
  unsetenv("SHOAL_FAULT_DROP_REPLICATED");
  cluster.waitSettled(2);
  auto entries = numbered(2000);
  cluster.client()->rawMap("orders").putAll(entries);
  // m1 is primary of about half the partitions; m2 backs them up with 50 of their writes missing.
  REQUIRE(waitForLog(cluster.member(0), "anti-entropy: backup", 5000ms));
  std::this_thread::sleep_for(1500ms);  // a full round more (300 ms) and the copies
  cluster.member(0).kill9();
  cluster.waitSettled(1, 1);
  auto client = cluster.clientOf(1);
  std::vector<std::string> keys;
  for (auto& [k, _] : entries) keys.push_back(k);
  size_t found = 0;
  for (size_t i = 0; i < keys.size(); i += 500) {
    std::vector<std::string> part(keys.begin() + i, keys.begin() + std::min(keys.size(), i + 500));
    found += client->rawMap("orders").getAll(part).size();
  }
  CHECK(found == entries.size());  // without the repair, m2 lacks the 50 writes it dropped
  std::remove(config.c_str());
}

TEST_CASE("cluster: anti-entropy finds no difference under a steady write load", "[cluster][anti-entropy]") {
  auto config = shoal::test::writeTempFile("[cluster]\nanti-entropy-interval = \"200ms\"\n");
  TestCluster cluster(3, {"--config", config});
  cluster.waitSettled(3);
  auto client = cluster.client();
  {
    shoal::test::AckedWriters writers(*client, "orders", 4);
    std::this_thread::sleep_for(3s);  // about 15 rounds over every partition, under writes
    writers.stop();
    CHECK(writers.count() > 1000);
  }
  // Removals and TTLs too.
  auto m = client->rawMap("orders");
  for (int i = 0; i < 300; ++i) {
    m.erase("w0:" + std::to_string(i));
    m.setTtl("w1:" + std::to_string(i), 60s);
  }
  std::this_thread::sleep_for(600ms);
  for (size_t i = 0; i < 3; ++i) {
    auto log = cluster.member(i).log();
    CHECK_THAT(log, !Catch::Contains("anti-entropy: backup"));
    // The checks did run: rounds that compared copies and found them all equal.
    CHECK_THAT(log, Catch::Contains("backup copies compared, 0 differed"));
    CHECK(occurrences(log, " differed") == occurrences(log, ", 0 differed"));  // no round found one
  }
  std::remove(config.c_str());
}

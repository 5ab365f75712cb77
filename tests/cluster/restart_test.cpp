// Restarts with data directories in a cluster: a whole cluster killed and started again comes back
// with every acknowledged write (the newest copy of each partition wins), a member restarted in
// a running cluster brings back nothing that was deleted while it was down, and a member that
// restarts faster than the failure detector replaces its old incarnation.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "cluster_support.h"

using namespace std::chrono_literals;
using shoal::test::ShoaldProcess;
namespace fs = std::filesystem;

namespace {

// Members m1..mN, each with its own data directory, that can be killed and started again with it.
class PersistentCluster {
 public:
  PersistentCluster(int size, const std::string& config) : config_(config) {
    char tmpl[] = "/tmp/shoal-restart-XXXXXX";
    root_ = mkdtemp(tmpl);
    members_.resize(size);
    for (int i = 0; i < size; ++i) start(i, i == 0 ? "" : member(0).address());
  }
  ~PersistentCluster() {
    members_.clear();  // kills the processes first
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Starts member `i` with its data directory, joining through `seed` ("": it starts the cluster).
  void start(size_t i, const std::string& seed, const std::string& config = "") {
    std::vector<std::string> args{"--data-dir", root_ + "/m" + std::to_string(i + 1), "--config",
                                  config.empty() ? config_ : config};
    if (!seed.empty()) args.insert(args.end(), {"--seeds", seed});
    members_.at(i) = std::make_unique<ShoaldProcess>(args, "m" + std::to_string(i + 1));
  }
  ShoaldProcess& member(size_t i) { return *members_.at(i); }
  bool running(size_t i) const { return members_.at(i) && members_.at(i)->alive(); }
  void kill9(size_t i) { members_.at(i)->kill9(); }

  std::unique_ptr<shoal::Client> client() {
    shoal::ClientOptions options;
    for (size_t i = 0; i < members_.size(); ++i) {
      if (running(i)) options.servers.push_back(member(i).address());
    }
    options.requestTimeout = 10000ms;
    return shoal::Client::connect(options);
  }

  shoal::ClusterInfo waitSettled(size_t members, size_t via, std::chrono::milliseconds limit = 20000ms) {
    shoal::ClientOptions options;
    options.servers = {member(via).address()};
    options.requestTimeout = 2000ms;
    auto c = shoal::Client::connect(options);
    auto deadline = std::chrono::steady_clock::now() + limit;
    shoal::ClusterInfo info;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        info = c->cluster();
        if (info.members.size() == members && info.migrating == 0 && info.tableEpoch != 0) return info;
      } catch (const shoal::Error&) {
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL("the cluster did not settle at " << members << " members (last: " << info.members.size()
                                          << " members, " << info.migrating << " replicas migrating)");
    return info;
  }

 private:
  std::string config_;
  std::string root_;
  std::vector<std::unique_ptr<ShoaldProcess>> members_;
};

std::vector<std::pair<std::string, std::string>> entries(const std::string& prefix, int from, int to,
                                                         const std::string& tag) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = from; i < to; ++i) out.emplace_back(prefix + std::to_string(i), tag + std::to_string(i));
  return out;
}

std::vector<std::string> keysOf(const std::vector<std::pair<std::string, std::string>>& es) {
  std::vector<std::string> out;
  for (auto& [k, _] : es) out.push_back(k);
  return out;
}

// What the cluster returns for `keys`, as a map.
std::map<std::string, std::string> read(shoal::Client& client, const std::string& map,
                                        const std::vector<std::string>& keys) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < keys.size(); i += 500) {
    std::vector<std::string> part(keys.begin() + i, keys.begin() + std::min(keys.size(), i + 500));
    for (auto& [k, v] : client.rawMap(map).getAll(part)) out[k] = v;
  }
  return out;
}

}  // namespace

TEST_CASE(
    "cluster: a whole cluster killed and restarted from its data directories has every acknowledged write",
    "[cluster][restart]") {
  // No initial-min-cluster-size: partitions wait for the members of the last view by themselves.
  auto config = shoal::test::writeTempFile(
      "[maps.behind]\npersistence = \"write-behind\"\nwrite-delay = \"1h\"\nwrite-batch-size = 100000\n");
  PersistentCluster cluster(3, config);
  auto before = cluster.waitSettled(3, 0);
  auto kept = entries("order-", 0, 3000, "v1-");
  auto deleted = entries("gone-", 0, 300, "x");
  auto queued = entries("queued-", 0, 1000, "q");
  {
    auto client = cluster.client();
    client->rawMap("orders").putAll(kept);
    client->rawMap("orders").putAll(deleted);
    for (auto& k : keysOf(deleted)) REQUIRE(client->rawMap("orders").erase(k));
    auto updated = entries("order-", 0, 1000, "v2-");  // later versions of a third of the keys
    client->rawMap("orders").putAll(updated);
    for (int i = 0; i < 1000; ++i) kept[i] = updated[i];
    client->rawMap("behind").putAll(queued);  // still in the write-behind queues (1 h delay)
  }
  for (size_t i = 0; i < 3; ++i) cluster.kill9(i);

  // Back in another order, one by one: m3 starts the cluster alone, the others join it later.
  cluster.start(2, "");
  std::this_thread::sleep_for(500ms);
  cluster.start(0, cluster.member(2).address());
  std::this_thread::sleep_for(500ms);
  cluster.start(1, cluster.member(2).address());
  auto after = cluster.waitSettled(3, 2);
  CHECK(after.tableEpoch > before.tableEpoch);  // views continue above the copies' versions
  auto client = cluster.client();
  auto got = read(*client, "orders", keysOf(kept));
  size_t wrong = 0;
  for (auto& [k, v] : kept) wrong += got.count(k) && got[k] == v ? 0 : 1;
  CHECK(wrong == 0);
  CHECK(read(*client, "orders", keysOf(deleted)).empty());
  CHECK(read(*client, "behind", keysOf(queued)).size() == queued.size());
  CHECK_THAT(cluster.member(2).log(), Catch::Contains("queued write-behind writes"));  // from its queue
  CHECK_THAT(cluster.member(2).log(),
             Catch::Contains("partitions wait for the 3 members of the last view") &&
                 Catch::Contains("partitions assigned from the copies the 3 members"));
  CHECK_THAT(cluster.member(2).log(), !Catch::Contains("start empty"));
  std::remove(config.c_str());
}

TEST_CASE("cluster: a member restarted in a running cluster brings back nothing deleted while it was down",
          "[cluster][restart]") {
  auto config = shoal::test::writeTempFile("");
  PersistentCluster cluster(3, config);
  cluster.waitSettled(3, 0);
  auto old = entries("old-", 0, 1000, "o");
  cluster.client()->rawMap("orders").putAll(old);
  cluster.kill9(2);
  cluster.waitSettled(2, 0);
  auto fresh = entries("new-", 0, 500, "n");
  {
    auto client = cluster.client();
    for (auto& k : keysOf(old)) REQUIRE(client->rawMap("orders").erase(k));
    client->rawMap("orders").putAll(fresh);
  }
  cluster.start(2, cluster.member(0).address());
  cluster.waitSettled(3, 0);
  CHECK(read(*cluster.client(), "orders", keysOf(old)).empty());

  // Only m3 is left, started alone from its data directory: it has what it held after its
  // rejoin (copied from the others), never the entries deleted while it was down. It waits
  // restart-wait for the other two members of its last view, then goes on without them.
  for (size_t i = 0; i < 3; ++i) cluster.kill9(i);
  auto alone = shoal::test::writeTempFile("[cluster]\nrestart-wait = \"1500ms\"\n");
  cluster.start(2, "", alone);
  cluster.waitSettled(1, 2);
  CHECK_THAT(cluster.member(2).log(), Catch::Contains("restart-wait ran out with 1 of the 3 members"));
  std::remove(alone.c_str());
  auto client = cluster.client();
  CHECK(read(*client, "orders", keysOf(old)).empty());
  auto got = read(*client, "orders", keysOf(fresh));
  INFO(got.size() << " of " << fresh.size() << " new entries on m3 alone");
  CHECK(got.size() > fresh.size() / 3);  // it held about two thirds of the partitions
  for (auto& [k, v] : got) CHECK(v == "n" + k.substr(4));
  std::remove(config.c_str());
}

TEST_CASE("cluster: a member restarted before it is declared dead replaces its old incarnation, under load",
          "[cluster][restart][fault]") {
  auto config = shoal::test::writeTempFile("");
  PersistentCluster cluster(3, config);
  cluster.waitSettled(3, 0);
  size_t restarted = GENERATE(2, 0);  // a member, and the coordinator
  INFO("restarting m" << restarted + 1);
  size_t via = restarted == 0 ? 1 : 0;
  auto client = cluster.client();
  shoal::test::AckedWriters writers(*client, "orders", 4);
  shoal::test::waitForAcks(writers, 500);
  cluster.kill9(restarted);
  cluster.start(restarted, cluster.member(via).address());  // well within the 1 s failure timeout
  auto count = writers.count();
  shoal::test::waitForAcks(writers, count + 2000);
  auto info = cluster.waitSettled(3, via);
  writers.stop();
  std::set<std::string> names;
  for (auto& m : info.members) names.insert(m.name);
  CHECK(names.size() == 3);  // one entry per member: the old incarnation is gone
  auto acked = writers.acked();
  auto missing = shoal::test::missingWrites(*cluster.client(), "orders", acked);
  INFO(acked.size() << " acknowledged writes, " << writers.failures()
                    << " failed calls (last: " << writers.lastFailure() << ")");
  CHECK(missing.empty());
  CHECK(writers.failures() == 0);
  std::remove(config.c_str());
}

TEST_CASE("cluster: writes queued for write-behind survive kill -9 of their primary in its backup's queue",
          "[cluster][restart][write-behind]") {
  auto config = shoal::test::writeTempFile(
      "[maps.behind]\npersistence = \"write-behind\"\nwrite-delay = \"1h\"\nwrite-batch-size = 100000\n");
  PersistentCluster cluster(2, config);
  cluster.waitSettled(2, 0);
  auto queued = entries("queued-", 0, 1000, "q");
  cluster.client()->rawMap("behind").putAll(queued);  // acknowledged once queued on both members
  cluster.kill9(0);
  cluster.waitSettled(1, 1);
  // m2's own durable queue holds every write, also those of the partitions m1 was primary of.
  auto report = cluster.client()->flushWriteBehind("behind", 20000ms);
  CHECK(report.written == queued.size());
  CHECK(report.failed.empty());
  // Stored for good: m2 killed too and started alone, with nothing left in its queue, has them all.
  cluster.kill9(1);
  cluster.start(1, "");
  cluster.waitSettled(1, 1);
  CHECK(read(*cluster.client(), "behind", keysOf(queued)).size() == queued.size());
  CHECK_THAT(cluster.member(1).log(), !Catch::Contains("re-applied"));  // the queue was empty
  std::remove(config.c_str());
}

TEST_CASE("cluster: after a rolling stop, the cluster started again in any order has every write",
          "[cluster][restart]") {
  auto config = shoal::test::writeTempFile("");
  PersistentCluster cluster(3, config);
  cluster.waitSettled(3, 0);
  auto kept = entries("order-", 0, 2000, "v");
  cluster.client()->rawMap("orders").putAll(kept);
  // SIGTERM one by one: each hands its partitions off, so m3, the last, holds everything and the
  // others keep nothing in their directories.
  REQUIRE(cluster.member(0).terminate() == 0);
  cluster.waitSettled(2, 1);
  REQUIRE(cluster.member(1).terminate() == 0);
  cluster.waitSettled(1, 2);
  cluster.kill9(2);
  // m1 first: it has no copy, but remembers a view of 3 members, so it does not assign the
  // partitions to itself (empty) before the member with the data is back.
  cluster.start(0, "");
  std::this_thread::sleep_for(500ms);
  cluster.start(1, cluster.member(0).address());
  cluster.start(2, cluster.member(0).address());
  cluster.waitSettled(3, 0);
  auto got = read(*cluster.client(), "orders", keysOf(kept));
  CHECK(got.size() == kept.size());
  CHECK_THAT(cluster.member(0).log(), Catch::Contains("partitions wait for the 3 members of the last view"));
  std::remove(config.c_str());
}

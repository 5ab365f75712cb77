// An embedded member (shoal::Node) in a cluster with a real shoald: reads from its backup copies
// (read-backup-data) while the primary is stopped, and a graceful stop of a two-member cluster.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "shoal/client/client.h"
#include "shoal/node/node.h"
#include "shoal/partition/partitioner.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::ShoaldProcess;

namespace {

// Options of an embedded member joining the cluster of `seed`.
shoal::NodeOptions embeddedJoining(const ShoaldProcess& seed) {
  shoal::NodeOptions o;
  o.name = "embedded";
  o.listen = "127.0.0.1:0";
  o.seeds = {seed.address()};
  o.logLevel = "warn";
  return o;
}

std::unique_ptr<shoal::Client> clientOf(const ShoaldProcess& member) {
  shoal::ClientOptions co;
  co.servers = {member.address()};
  co.requestTimeout = 5000ms;
  return shoal::Client::connect(co);
}

// The cluster once it has two members and no migration under way.
shoal::ClusterInfo waitTwoSettled(shoal::Client& client) {
  shoal::ClusterInfo info;
  for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
    info = client.cluster();
    if (info.members.size() == 2 && info.migrating == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(info.members.size() == 2);
  REQUIRE(info.migrating == 0);
  return info;
}

}  // namespace

TEST_CASE("cluster: an embedded member with read-backup-data answers reads from its backup copy",
          "[cluster][fault]") {
  // A failure timeout of 10 s: a read forwarded to the stopped primary would wait at least that.
  std::string config = shoal::test::writeTempFile("[cluster]\nfailure-timeout = \"10s\"\n");
  ShoaldProcess primary({"--config", config}, "m1");
  std::remove(config.c_str());
  auto o = embeddedJoining(primary);
  o.cluster.failureTimeoutMs = 10'000;
  o.maps["near"].readBackupData = true;
  auto node = shoal::Node::start(o);
  auto client = clientOf(primary);
  auto info = waitTwoSettled(*client);
  uint64_t primaryId = info.members[0].name == "m1" ? info.members[0].id : info.members[1].id;

  // Written through the embedded member: keys of m1's partitions go to m1, whose synchronous
  // backup (the embedded member, backup-count 1) has them before the write returns.
  auto near = node->map("near");
  shoal::partition::Partitioner partitioner(info.partitionCount);
  std::vector<std::string> onM1;
  int written = 0;
  for (int i = 0; onM1.size() < 200; ++i, ++written) {
    auto key = "k-" + std::to_string(i);
    near.set(key, "v-" + std::to_string(i));
    if (info.partitions[partitioner.partitionOf(key)].replicas[0] == primaryId) onM1.push_back(key);
  }

  ::kill(primary.pid(), SIGSTOP);
  auto started = std::chrono::steady_clock::now();
  size_t wrong = 0;
  for (auto& key : onM1) wrong += near.get(key) != std::optional<std::string>("v-" + key.substr(2));
  CHECK(near.containsKey(onM1.front()));
  auto entry = near.getEntry(onM1.back());
  auto elapsed = std::chrono::steady_clock::now() - started;
  ::kill(primary.pid(), SIGCONT);
  CHECK(wrong == 0);
  REQUIRE(entry);
  CHECK(entry->version == 1);
  // Answered here, not by the stopped primary (which would have taken the 10 s failure timeout).
  CHECK(elapsed < 5s);

  // A graceful stop hands the embedded member's partitions to m1 (which backs them up) at once:
  // nothing to copy, and nothing lost.
  started = std::chrono::steady_clock::now();
  node->stop();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  auto m = client->rawMap("near");
  uint64_t size = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < deadline;) {
    try {
      size = m.size();  // the client may still count the member that left: "retry"
      break;
    } catch (const shoal::Error&) {
      std::this_thread::sleep_for(100ms);
    }
  }
  CHECK(size == uint64_t(written));
  CHECK(m.get("k-0") == std::optional<std::string>("v-0"));
}

TEST_CASE("cluster: an embedded member's listener hears the events of every member's partitions",
          "[cluster]") {
  ShoaldProcess other({}, "m1");
  auto node = shoal::Node::start(embeddedJoining(other));
  auto client = clientOf(other);
  auto info = waitTwoSettled(*client);

  std::mutex mutex;
  std::map<std::string, int> heard;
  auto id = node->map("ev").addListener([&](const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    heard[e.key]++;
  });
  // Keys of both members' partitions, written by a client: the embedded member hears each once.
  shoal::partition::Partitioner partitioner(info.partitionCount);
  std::set<uint64_t> primaries;
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back("e" + std::to_string(i));
    primaries.insert(info.partitions[partitioner.partitionOf(keys.back())].replicas[0]);
  }
  REQUIRE(primaries.size() == 2);
  for (auto& k : keys) client->rawMap("ev").set(k, "1");
  bool all = false;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       !all && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(50ms);
    std::lock_guard<std::mutex> lock(mutex);
    all = true;
    for (auto& k : keys) all = all && heard[k] >= 1;
  }
  CHECK(all);
  {
    std::lock_guard<std::mutex> lock(mutex);
    size_t twice = 0;
    for (auto& k : keys) twice += heard[k] > 1;
    CHECK(twice == 0);
  }
  // Removed: no more events, from either member.
  node->map("ev").removeListener(id);
  for (auto& k : keys) client->rawMap("ev").set(k, "2");
  std::this_thread::sleep_for(500ms);
  std::lock_guard<std::mutex> lock(mutex);
  size_t after = 0;
  for (auto& k : keys) after += heard[k] > 1;
  CHECK(after == 0);
}

// An embedded member (shoal::Node) in a cluster with a real shoald: reads from its backup copies
// (read-backup-data) while the primary is stopped, and a graceful stop of a two-member cluster.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "shoal/client/client.h"
#include "shoal/node/node.h"
#include "shoal/partition/partitioner.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::ShoaldProcess;

TEST_CASE("cluster: an embedded member with read-backup-data answers reads from its backup copy",
          "[cluster][fault]") {
  // A failure timeout of 10 s: a read forwarded to the stopped primary would wait at least that.
  std::string config = shoal::test::writeTempFile("[cluster]\nfailure-timeout = \"10s\"\n");
  ShoaldProcess primary({"--config", config}, "m1");
  std::remove(config.c_str());
  shoal::NodeOptions o;
  o.name = "embedded";
  o.listen = "127.0.0.1:0";
  o.seeds = {primary.address()};
  o.logLevel = "warn";
  o.cluster.failureTimeoutMs = 10'000;
  o.maps["near"].readBackupData = true;
  auto node = shoal::Node::start(o);

  shoal::ClientOptions co;
  co.servers = {primary.address()};
  co.requestTimeout = 5000ms;
  auto client = shoal::Client::connect(co);
  shoal::ClusterInfo info;
  for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
    info = client->cluster();
    if (info.members.size() == 2 && info.migrating == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(info.members.size() == 2);
  REQUIRE(info.migrating == 0);
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

// A register workload (read / write / compare-and-set on a few keys) from several clients while a
// member is killed (-9): the recorded history must be linearizable per key, and the values read
// after the failover must keep every acknowledged write (tests/support/history checks both).
#include "history/linearizability.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>

#include "cluster_support.h"
#include "history/history.h"
#include "history/lost_writes.h"

using namespace std::chrono_literals;
using namespace shoal::history;
using shoal::test::TestCluster;

namespace {

uint64_t seedOfRun() {
  if (const char* s = std::getenv("SHOAL_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

// An error that guarantees the write was not applied: the request was refused before it ran.
bool definitelyNotApplied(const shoal::Error& e) {
  return e.code() == shoal::ErrorCode::INVALID_ARGUMENT || e.code() == shoal::ErrorCode::TOO_LARGE;
}

}  // namespace

TEST_CASE("cluster: a register workload stays linearizable per key across kill -9 of a member",
          "[cluster][fault][linearizability]") {
  auto seed = seedOfRun();
  WARN("seed " << seed << " (rerun with SHOAL_TEST_SEED=" << seed << ")");
  TestCluster cluster(3);
  cluster.waitSettled(3);
  const int KEYS = 8, PROCESSES = 6;
  Recorder recorder;
  std::atomic<bool> stop{false};
  std::vector<std::thread> processes;
  std::vector<std::unique_ptr<shoal::Client>> clients;
  for (int p = 0; p < PROCESSES; ++p) clients.push_back(cluster.client(3000ms));
  for (int p = 0; p < PROCESSES; ++p) {
    processes.emplace_back([&, p] {
      std::mt19937_64 rng(seed + p);
      auto map = clients[p]->rawMap("registers");
      for (int i = 0; !stop; ++i) {
        auto key = "r" + std::to_string(rng() % KEYS);
        auto value = "p" + std::to_string(p) + "-" + std::to_string(i);
        auto dice = rng() % 10;
        if (dice < 4) {
          auto id = recorder.invoke(p, key, Op::read());
          try {
            recorder.complete(id, Outcome::readOk(map.get(key)));
          } catch (const shoal::Error& e) {
            recorder.complete(id, Outcome::fail(e.what()));  // a failed read constrains nothing
          }
        } else if (dice < 7) {
          auto id = recorder.invoke(p, key, Op::write(value));
          try {
            map.set(key, value);
            recorder.complete(id, Outcome::ok());
          } catch (const shoal::Error& e) {
            recorder.complete(id,
                              definitelyNotApplied(e) ? Outcome::fail(e.what()) : Outcome::unknown(e.what()));
          }
        } else {
          // Compare-and-set from the value last read by anyone (often stale: then it must fail).
          auto current = map.get(key);
          if (!current) continue;
          auto id = recorder.invoke(p, key, Op::cas(*current, value));
          try {
            recorder.complete(id, Outcome::casOk(map.replaceIfEqual(key, *current, value)));
          } catch (const shoal::Error& e) {
            recorder.complete(id,
                              definitelyNotApplied(e) ? Outcome::fail(e.what()) : Outcome::unknown(e.what()));
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(1500ms);
  cluster.member(1).kill9();
  std::this_thread::sleep_for(3000ms);
  stop = true;
  for (auto& t : processes) t.join();
  clients.clear();

  cluster.waitSettled(2);
  auto reader = cluster.clientOf(0);
  std::map<std::string, Value> finals;
  for (int k = 0; k < KEYS; ++k) {
    auto key = "r" + std::to_string(k);
    finals[key] = reader->rawMap("registers").get(key);
  }
  auto history = recorder.history();
  INFO("history of " << history.ops.size() << " operations");
  REQUIRE(history.ops.size() > 500);
  WARN(history.ops.size() << " operations recorded");
  auto linear = checkLinearizable(history);
  INFO(linear.describe(20));
  CHECK(linear.ok());
  auto lost = checkNoLostWrites(history, finals);
  INFO(lost.describe(20));
  CHECK(lost.ok());
}

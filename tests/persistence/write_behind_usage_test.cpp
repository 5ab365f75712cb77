// WriteBehindQueue as the member uses it: enqueues and flushes concurrently on a thread pool, the
// embedded store as the target, several queues in one store, partition hand-over, bad options.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <random>

#include "shoal/persistence/write_behind_queue.h"
#include "test_support.h"

using namespace shoal::persistence;
using shoal::persistence::test::ManualClock;
using shoal::persistence::test::MemoryStore;
using shoal::persistence::test::TempDir;

namespace {

std::unique_ptr<RocksDbStore> openLog(const TempDir& dir) {
  RocksDbStoreOptions options;
  options.path = dir.sub("data");
  options.partitionCount = 16;
  auto opened = RocksDbStore::open(options);
  REQUIRE(opened.ok());
  return std::move(*opened);
}

}  // namespace

TEST_CASE("persistence: write-behind under concurrent enqueues and flushes ends with the last writes",
          "[persistence][unit]") {
  const uint64_t seed = shoal::persistence::test::testSeed("write-behind concurrency");
  TempDir dir;
  auto log = openLog(dir);
  MemoryStore target;
  ManualClock clock;
  auto opened =
      WriteBehindQueue::open(*log, target, {.name = "c", .delayMs = 0, .batchSize = 16}, clock.fn());
  REQUIRE(opened.ok());
  WriteBehindQueue& queue = **opened;

  constexpr int WRITERS = 4, KEYS = 40, OPS = 300;
  // Each writer owns its keys (a partition has one owner), so per-key order is its enqueue order.
  std::vector<std::map<std::string, std::optional<std::string>>> expected(WRITERS);
  std::atomic<int> writersLeft{WRITERS};
  std::atomic<bool> failed{false};
  boost::asio::thread_pool pool(WRITERS + 1);
  for (int w = 0; w < WRITERS; ++w) {
    boost::asio::post(pool, [&, w] {
      std::mt19937_64 rng(seed + w);
      std::map<std::string, uint64_t> versions;
      for (int op = 0; op < OPS; ++op) {
        std::string key = "w" + std::to_string(w) + "-" + std::to_string(rng() % KEYS);
        uint32_t partition = static_cast<uint32_t>(std::hash<std::string>()(key) % 16);
        std::optional<std::string> value;
        if (rng() % 5 != 0) value = "v" + std::to_string(op);
        uint64_t version = value ? ++versions[key] : std::exchange(versions[key], 0);
        std::optional<std::string_view> view = value ? std::optional<std::string_view>(*value) : std::nullopt;
        auto outcome = queue.enqueue({"m", partition, key, view, {version, 0, 0}});
        if (!outcome || *outcome == EnqueueOutcome::STALE) failed = true;
        expected[w][key] = value;
      }
      --writersLeft;
    });
  }
  boost::asio::post(pool, [&] {
    while (writersLeft > 0) {
      if (!queue.flushDue().ok()) failed = true;
    }
  });
  pool.join();
  REQUIRE_FALSE(failed);
  auto report = queue.flush();
  REQUIRE(report.ok());
  CHECK(report->deadLettered.empty());
  CHECK(queue.pending() == 0);
  for (const auto& perWriter : expected) {
    for (const auto& [key, value] : perWriter) {
      uint32_t partition = static_cast<uint32_t>(std::hash<std::string>()(key) % 16);
      INFO("key " << key);
      CHECK(target.valueOf("m", partition, key) == value);
    }
  }
  opened->reset();
}

TEST_CASE("persistence: write-behind into the embedded store, beside other queues", "[persistence][unit]") {
  TempDir dir;
  auto store = openLog(dir);
  ManualClock clock;
  auto users = WriteBehindQueue::open(*store, *store, {.name = "users", .delayMs = 10}, clock.fn());
  auto carts = WriteBehindQueue::open(*store, *store, {.name = "carts", .delayMs = 10}, clock.fn());
  REQUIRE(users.ok());
  REQUIRE(carts.ok());
  auto twice = WriteBehindQueue::open(*store, *store, {.name = "users"}, clock.fn());
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().code == StoreErrorCode::INVALID_ARGUMENT);

  REQUIRE((*users)->enqueue({"users", 3, "u1", "alice", {1, 0, 0}}).ok());
  REQUIRE((*carts)->enqueue({"carts", 3, "c1", "3 apples", {1, 0, 0}}).ok());
  CHECK((*users)->pending() == 1);
  CHECK((*carts)->pending() == 1);
  CHECK_FALSE(store->load("users", 3, "u1")->has_value());  // not yet written behind
  clock.advance(10);
  REQUIRE((*users)->flushDue().ok());
  CHECK(store->load("users", 3, "u1")->value().value == "alice");
  CHECK((*carts)->pending() == 1);  // untouched by the other queue's flush
  users->reset();
  carts->reset();
  auto reopened = WriteBehindQueue::open(*store, *store, {.name = "carts"}, clock.fn());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->pending() == 1);
  CHECK((*reopened)->listDeadLetters(10)->empty());
  reopened->reset();
}

TEST_CASE("persistence: write-behind into its own store under concurrent flushes ends with the last writes",
          "[persistence][unit]") {
  // The target is the log's store: a flush stores an entry and removes its record in one batch.
  const uint64_t seed = shoal::persistence::test::testSeed("write-behind own store");
  TempDir dir;
  auto store = openLog(dir);
  ManualClock clock;
  for (bool sync : {false, true}) {
    auto opened = WriteBehindQueue::open(
        *store, *store, {.name = "own", .delayMs = 0, .batchSize = 8, .sync = sync}, clock.fn());
    REQUIRE(opened.ok());
    WriteBehindQueue& queue = **opened;
    std::map<std::string, std::optional<std::string>> expected;
    std::atomic<bool> writing{true};
    std::atomic<bool> failed{false};
    boost::asio::thread_pool pool(2);
    boost::asio::post(pool, [&] {
      std::mt19937_64 rng(seed + sync);
      std::map<std::string, uint64_t> versions;
      for (int op = 0; op < 600; ++op) {
        std::vector<StoreWrite> group;          // a group commit, keys may repeat
        std::vector<std::string> keys, values;  // what `group` views; reserved, so never moved
        keys.reserve(4);
        values.reserve(4);
        for (int i = 0; i < 4; ++i) {
          const std::string& key = keys.emplace_back("k" + std::to_string(rng() % 50));
          std::optional<std::string_view> view;
          if (rng() % 4 != 0) view = values.emplace_back("v" + std::to_string(op) + "." + std::to_string(i));
          uint64_t version = view ? ++versions[key] : std::exchange(versions[key], 0);
          expected[key] = view ? std::optional<std::string>(*view) : std::nullopt;
          group.push_back({"m", 7, key, view, {version, 0, 0}});
        }
        auto outcome = queue.enqueueMany(group);
        if (!outcome) failed = true;
        if (outcome && std::count(outcome->begin(), outcome->end(), EnqueueOutcome::STALE) > 0) failed = true;
      }
      writing = false;
    });
    boost::asio::post(pool, [&] {
      while (writing) {
        if (!queue.flushDue().ok()) failed = true;
      }
    });
    pool.join();
    REQUIRE_FALSE(failed);
    REQUIRE(queue.flush().ok());
    CHECK(queue.pending() == 0);
    for (const auto& [key, value] : expected) {
      INFO("key " << key << " sync " << sync);
      auto loaded = store->load("m", 7, key);
      REQUIRE(loaded.ok());
      CHECK((*loaded ? std::optional<std::string>((*loaded)->value) : std::nullopt) == value);
    }
    opened->reset();
    auto reopened = WriteBehindQueue::open(*store, *store, {.name = "own"}, clock.fn());
    REQUIRE(reopened.ok());
    CHECK((*reopened)->pending() == 0);  // the removals were logged with the stores
    reopened->reset();
  }
}

TEST_CASE("persistence: write-behind into its own store loses nothing when the process dies mid-flush",
          "[persistence][unit]") {
  // Not fsynced (the default): what an enqueue returned for survives the death of the process.
  TempDir dir;
  ManualClock clock;
  constexpr int KEYS = 300;
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // enqueue and flush, then die without any destructor or close
    RocksDbStoreOptions options;
    options.path = dir.sub("data");
    options.partitionCount = 16;
    auto store = RocksDbStore::open(options);
    if (!store) ::_exit(2);
    auto queue =
        WriteBehindQueue::open(**store, **store, {.name = "own", .delayMs = 0, .batchSize = 7}, clock.fn());
    if (!queue) ::_exit(3);
    for (int round = 1; round <= 3; ++round) {
      for (int i = 0; i < KEYS; ++i) {
        std::string value = "r" + std::to_string(round);
        if (!(*queue)
                 ->enqueue({"m", uint32_t(i % 16), "k" + std::to_string(i), value, {uint64_t(round), 0, 0}})
                 .ok())
          ::_exit(4);
        if (i % 50 == 0 && !(*queue)->flushDue().ok()) ::_exit(5);
      }
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WEXITSTATUS(status) == 0);
  auto store = openLog(dir);
  auto queue = WriteBehindQueue::open(*store, *store, {.name = "own"}, clock.fn());
  REQUIRE(queue.ok());
  CHECK((*queue)->pending() > 0);  // it died with writes still queued
  REQUIRE((*queue)->flush().ok());
  for (int i = 0; i < KEYS; ++i) {
    auto loaded = store->load("m", uint32_t(i % 16), "k" + std::to_string(i));
    REQUIRE(loaded.ok());
    REQUIRE(loaded->has_value());
    CHECK((*loaded)->value == "r3");
    CHECK((*loaded)->meta.version == 3);
  }
  queue->reset();
}

TEST_CASE("persistence: write-behind hands a partition's pending writes over", "[persistence][unit]") {
  TempDir dir;
  auto log = openLog(dir);
  MemoryStore target;
  ManualClock clock;
  auto queue = WriteBehindQueue::open(*log, target, {.name = "q"}, clock.fn());
  REQUIRE(queue.ok());
  REQUIRE((*queue)->enqueue({"m", 5, "a", "1", {1, 0, 0}}).ok());
  clock.advance(1);
  REQUIRE((*queue)->enqueue({"m", 5, "b", std::nullopt, {4, 0, 0}}).ok());
  REQUIRE((*queue)->enqueue({"m", 6, "c", "3", {1, 0, 0}}).ok());

  auto moving = (*queue)->pendingWrites(5);
  REQUIRE(moving.ok());
  REQUIRE(moving->size() == 2);
  CHECK((*moving)[0].key == "a");  // oldest first
  CHECK((*moving)[0].value == "1");
  CHECK((*moving)[1].key == "b");
  CHECK_FALSE((*moving)[1].value.has_value());
  CHECK((*moving)[1].meta.version == 4);

  CHECK((*queue)->discardPartition(5).value() == 2);
  CHECK((*queue)->pending() == 1);
  queue->reset();
  queue = WriteBehindQueue::open(*log, target, {.name = "q"}, clock.fn());
  REQUIRE(queue.ok());
  CHECK((*queue)->pending() == 1);  // the discard was durable
  CHECK((*queue)->pendingWrites(5)->empty());
  queue->reset();
}

TEST_CASE("persistence: write-behind options are checked with the field named", "[persistence][unit]") {
  TempDir dir;
  auto log = openLog(dir);
  MemoryStore target;
  auto refusal = [&](WriteBehindOptions options) {
    auto queue = WriteBehindQueue::open(*log, target, options);
    REQUIRE_FALSE(queue.ok());
    CHECK(queue.error().code == StoreErrorCode::INVALID_ARGUMENT);
    return queue.error().message;
  };
  CHECK_THAT(refusal({}), Catch::Contains("WriteBehindOptions.name"));
  CHECK_THAT(refusal({.name = std::string(256, 'n')}), Catch::Contains("name"));
  CHECK_THAT(refusal({.name = "q", .delayMs = -1}), Catch::Contains("delayMs"));
  CHECK_THAT(refusal({.name = "q", .batchSize = 0}), Catch::Contains("batchSize"));
  CHECK_THAT(refusal({.name = "q", .maxAttempts = 0}), Catch::Contains("maxAttempts"));
  CHECK_THAT(refusal({.name = "q", .initialBackoffMs = 10, .maxBackoffMs = 5}),
             Catch::Contains("maxBackoffMs"));
  auto fine = WriteBehindQueue::open(*log, target, {.name = "q"});  // a refusal leaves the name free
  CHECK(fine.ok());
  if (fine) fine->reset();
}

TEST_CASE("persistence: a directory left by an interrupted first start is initialised",
          "[persistence][unit]") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  std::ofstream(dir.path() / "data/SHOAL_DATA_DIR.tmp") << "format-ver";  // crashed mid-write
  RocksDbStoreOptions options;
  options.path = dir.sub("data");
  auto store = RocksDbStore::open(options);
  REQUIRE(store.ok());
  CHECK((*store)->marker().formatVersion == 1);
}

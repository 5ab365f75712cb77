// The WriteBehindQueue calls a member relies on beyond enqueue / flushDue: the operator's flushNow,
// the pending writes re-applied at restart, the per-key lookup of read-through, and the names of
// the queues to reopen after a crash.
#include <catch2/catch.hpp>

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

TEST_CASE("persistence: write-behind flushNow skips the delay but not the backoff", "[persistence][unit]") {
  TempDir dir;
  auto log = openLog(dir);
  MemoryStore target;
  ManualClock clock;
  auto queue = WriteBehindQueue::open(
      *log, target, {.name = "q", .delayMs = 60'000, .maxAttempts = 3, .initialBackoffMs = 1000}, clock.fn());
  REQUIRE(queue.ok());
  REQUIRE((*queue)->enqueue({"m", 1, "a", "1", {1, 0, 0}}).ok());
  REQUIRE((*queue)->flushDue()->written == 0);  // still in its delay
  REQUIRE((*queue)->flushNow()->written == 1);  // an operator's flush does not wait for it
  CHECK(target.valueOf("m", 1, "a") == std::optional<std::string>("1"));

  target.down = StoreErrorCode::IO_ERROR;
  REQUIRE((*queue)->enqueue({"m", 1, "b", "2", {1, 0, 0}}).ok());
  CHECK((*queue)->flushNow()->failedAttempts == 1);
  CHECK((*queue)->flushNow()->failedAttempts == 0);  // waiting out its backoff: not tried again
  clock.advance(1000);
  CHECK((*queue)->flushNow()->failedAttempts == 1);
  clock.advance(2000);
  auto last = (*queue)->flushNow();
  REQUIRE(last->deadLettered.size() == 1);
  CHECK(last->deadLettered[0].key == "b");
  CHECK((*queue)->pending() == 0);
  queue->reset();
}

TEST_CASE("persistence: write-behind exposes pending writes by key and all at once, and its queue names",
          "[persistence][unit]") {
  TempDir dir;
  auto log = openLog(dir);
  MemoryStore target;
  ManualClock clock;
  {
    auto orders = WriteBehindQueue::open(*log, target, {.name = "orders"}, clock.fn());
    auto carts = WriteBehindQueue::open(*log, target, {.name = "carts"}, clock.fn());
    auto idle = WriteBehindQueue::open(*log, target, {.name = "idle"}, clock.fn());
    REQUIRE((orders.ok() && carts.ok() && idle.ok()));
    REQUIRE((*orders)->enqueue({"orders", 2, "o1", "x", {1, 0, 0}}).ok());
    clock.advance(1);
    REQUIRE((*orders)->enqueue({"orders", 9, "o2", std::nullopt, {3, 0, 0}}).ok());
    REQUIRE((*carts)->enqueue({"carts", 4, "c1", "y", {2, 0, 0}}).ok());

    auto o1 = (*orders)->pendingWrite("orders", 2, "o1");
    REQUIRE(o1.ok());
    REQUIRE(o1->has_value());
    CHECK((*o1)->value == std::optional<std::string>("x"));
    auto o2 = (*orders)->pendingWrite("orders", 9, "o2");
    REQUIRE(o2->has_value());
    CHECK_FALSE((*o2)->value.has_value());  // a pending removal
    CHECK_FALSE((*orders)->pendingWrite("orders", 2, "nope")->has_value());
    CHECK_FALSE((*orders)->pendingWrite("orders", 99, "o1").ok());  // partition out of range

    auto all = (*orders)->pendingWrites();
    REQUIRE(all.size() == 2);
    CHECK(all[0].key == "o1");  // oldest first
    CHECK(all[1].key == "o2");
  }
  // Queues with records are found again after a restart; one that never held anything is not.
  auto names = WriteBehindQueue::queueNames(*log);
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"carts", "orders"});
}

// WriteBehindQueue: coalescing, delay and batching, retry with backoff, dead letters and their
// replay, and that nothing pending is lost by a flush race or a crash.
#include "shoal/persistence/write_behind_queue.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "test_support.h"

using namespace shoal::persistence;
using shoal::persistence::test::ManualClock;
using shoal::persistence::test::MemoryStore;
using shoal::persistence::test::TempDir;

namespace {

struct Fixture {
  TempDir dir;
  ManualClock clock;
  MemoryStore target;
  std::unique_ptr<RocksDbStore> log;
  std::unique_ptr<WriteBehindQueue> queue;
  WriteBehindOptions options;

  Fixture() {
    options.name = "orders";
    options.delayMs = 1000;
    options.batchSize = 10;
    options.maxAttempts = 3;
    options.initialBackoffMs = 100;
    options.maxBackoffMs = 1000;
    reopen();
  }
  void reopen() {
    queue.reset();
    log.reset();
    RocksDbStoreOptions storeOptions;
    storeOptions.path = dir.sub("data");
    storeOptions.partitionCount = 16;
    auto opened = RocksDbStore::open(storeOptions);
    REQUIRE(opened.ok());
    log = std::move(*opened);
    auto q = WriteBehindQueue::open(*log, target, options, clock.fn());
    REQUIRE(q.ok());
    queue = std::move(*q);
  }
  EnqueueOutcome put(const std::string& key, const std::string& value, uint64_t version, uint32_t p = 1) {
    auto outcome = queue->enqueue({"m", p, key, value, {version, 0, 0}});
    REQUIRE(outcome.ok());
    return *outcome;
  }
  FlushReport flushDue() {
    auto report = queue->flushDue();
    REQUIRE(report.ok());
    return std::move(*report);
  }
};

}  // namespace

TEST_CASE("persistence: write-behind coalesces writes of a key and waits out the delay",
          "[persistence][unit]") {
  Fixture f;
  CHECK(f.put("k", "v1", 1) == EnqueueOutcome::QUEUED);
  for (uint64_t v = 2; v <= 5; ++v)
    CHECK(f.put("k", "v" + std::to_string(v), v) == EnqueueOutcome::COALESCED);
  CHECK(f.put("k", "old", 3) == EnqueueOutcome::STALE);  // a replayed older write loses
  CHECK(f.queue->pending() == 1);

  f.clock.advance(999);
  CHECK(f.flushDue().written == 0);
  CHECK(f.target.storeManyCalls == 0);
  f.clock.advance(1);
  CHECK(f.flushDue().written == 1);
  CHECK(f.target.valueOf("m", 1, "k") == "v5");
  CHECK(f.target.stores["k"] == 1);
  CHECK(f.target.load("m", 1, "k")->value().meta.version == 5);
  CHECK(f.queue->pending() == 0);

  // Versions restart after an erase: erase(v5) then a store of version 1 is not stale.
  CHECK(f.queue->enqueue({"m", 1, "k", std::nullopt, {5, 0, 0}}).value() == EnqueueOutcome::QUEUED);
  CHECK(f.put("k", "reborn", 1) == EnqueueOutcome::COALESCED);
  f.clock.advance(1000);
  f.flushDue();
  CHECK(f.target.valueOf("m", 1, "k") == "reborn");
  CHECK(f.queue->enqueue({"m", 1, "k", std::nullopt, {1, 0, 0}}).ok());
  f.clock.advance(1000);
  f.flushDue();
  CHECK(f.target.valueOf("m", 1, "k") == std::nullopt);
  CHECK(f.target.erases["k"] == 1);
}

TEST_CASE("persistence: write-behind writes full batches without waiting", "[persistence][unit]") {
  Fixture f;
  std::vector<std::string> keys;
  for (int i = 0; i < 25; ++i) keys.push_back("k" + std::to_string(i));
  std::vector<StoreWrite> writes;
  for (const std::string& key : keys) writes.push_back({"m", 2, key, "v", {1, 0, 0}});
  auto outcomes = f.queue->enqueueMany(writes);  // one fsync for all 25
  REQUIRE(outcomes.ok());
  CHECK(outcomes->size() == 25);

  auto report = f.flushDue();
  CHECK(report.written == 20);  // two whole batches of 10, oldest first
  CHECK(f.target.storeManyCalls == 2);
  CHECK(f.queue->pending() == 5);
  CHECK(f.target.valueOf("m", 2, "k0") == "v");
  f.clock.advance(1000);
  CHECK(f.flushDue().written == 5);
  CHECK(f.target.size() == 25);
}

TEST_CASE("persistence: write-behind retries with backoff, then dead-letters, then replays",
          "[persistence][unit]") {
  Fixture f;
  f.target.poisonKeys = {"bad"};
  f.put("good1", "g", 1);
  f.put("bad", "b", 1);
  f.put("good2", "g", 1);
  f.clock.advance(1000);

  auto first = f.flushDue();  // the batch fails; each entry is then tried alone
  CHECK(first.written == 2);
  CHECK(first.failedAttempts == 1);
  CHECK(f.target.valueOf("m", 1, "good1") == "g");
  CHECK(f.queue->pending() == 1);

  int calls = f.target.storeManyCalls;
  f.clock.advance(99);
  f.flushDue();
  CHECK(f.target.storeManyCalls == calls);  // still backing off (100 ms after attempt 1)
  f.clock.advance(1);
  CHECK(f.flushDue().failedAttempts == 1);  // attempt 2; next wait 200 ms
  f.clock.advance(199);
  f.flushDue();
  CHECK(f.target.storeManyCalls == calls + 1);
  f.clock.advance(1);
  auto last = f.flushDue();  // attempt 3 = maxAttempts
  REQUIRE(last.deadLettered.size() == 1);
  CHECK(last.deadLettered[0].key == "bad");
  CHECK(last.deadLettered[0].attempts == 3);
  CHECK(last.deadLettered[0].error.code == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(f.queue->pending() == 0);
  CHECK(f.queue->deadLetterCount() == 1);

  f.reopen();  // dead letters are persisted
  auto letters = f.queue->listDeadLetters(10);
  REQUIRE(letters.ok());
  REQUIRE(letters->size() == 1);
  CHECK((*letters)[0].key == "bad");
  CHECK((*letters)[0].value == "b");
  CHECK((*letters)[0].attempts == 3);
  CHECK_THAT((*letters)[0].lastError.message, Catch::Contains("poison key bad"));
  CHECK((*letters)[0].deadAtMs == f.clock.now());

  f.target.poisonKeys.clear();  // the operator fixed the target
  CHECK(f.queue->replayDeadLetters().value() == 1);
  CHECK(f.queue->deadLetterCount() == 0);
  CHECK(f.queue->pending() == 1);
  CHECK(f.flushDue().written == 1);  // due at once
  CHECK(f.target.valueOf("m", 1, "bad") == "b");
  CHECK(f.queue->listDeadLetters(10)->empty());
}

TEST_CASE("persistence: write-behind dead letters are superseded by newer writes", "[persistence][unit]") {
  Fixture f;
  f.options.maxAttempts = 1;
  f.reopen();
  f.target.failNextWrites = 1;
  f.put("k", "lost-race", 1);
  f.clock.advance(1000);
  CHECK(f.flushDue().deadLettered.size() == 1);
  f.put("k", "newer", 2);
  f.clock.advance(1000);
  CHECK(f.flushDue().written == 1);
  CHECK(f.queue->deadLetterCount() == 0);  // replaying v1 now would undo v2
  CHECK(f.queue->listDeadLetters(10)->empty());

  f.target.failNextWrites = 1;
  f.put("j", "a", 1);
  f.clock.advance(1000);
  f.flushDue();
  f.put("j", "b", 2);
  CHECK(f.queue->replayDeadLetters().value() == 0);  // superseded by the pending write
  CHECK(f.queue->deadLetterCount() == 0);
  CHECK(f.queue->discardDeadLetter("m", 1, "j").value() == false);
}

TEST_CASE("persistence: write-behind keeps entries while the target is down", "[persistence][unit]") {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.put("k" + std::to_string(i), "v", 1);
  f.target.down = StoreErrorCode::UNAVAILABLE;
  auto report = f.flushDue();  // one batch call, one probe alone, then no more calls
  CHECK(f.target.storeManyCalls == 2);
  CHECK(report.failedAttempts == 10);
  CHECK(f.queue->pending() == 10);
  f.target.down.reset();
  f.clock.advance(100);
  CHECK(f.flushDue().written == 10);
}

TEST_CASE("persistence: write-behind flush() drains the queue and reports what it gave up on",
          "[persistence][unit]") {
  Fixture f;
  f.options.initialBackoffMs = 1;  // flush() sleeps real time between attempts
  f.options.maxAttempts = 4;
  f.reopen();
  for (int i = 0; i < 30; ++i) f.put("k" + std::to_string(i), "v", 1);
  f.put("poison", "p", 1);
  f.target.poisonKeys = {"poison"};
  f.target.failNextWrites = 5;  // transient failures on top
  auto report = f.queue->flush();
  REQUIRE(report.ok());
  CHECK(report->written == 30);
  REQUIRE(report->deadLettered.size() == 1);
  CHECK(report->deadLettered[0].key == "poison");
  CHECK(f.queue->pending() == 0);
  CHECK(f.target.size() == 30);
}

TEST_CASE("persistence: write-behind never loses a write enqueued during its flush", "[persistence][unit]") {
  Fixture f;
  f.put("k", "v1", 1);
  f.clock.advance(1000);
  bool once = true;
  f.target.duringWrite = [&] {
    if (once) {
      once = false;
      REQUIRE(f.queue->enqueue({"m", 1, "k", "v2", {2, 0, 0}}).ok());
    }
  };
  CHECK(f.flushDue().written == 1);  // v1 reached the target
  f.target.duringWrite = nullptr;
  CHECK(f.target.valueOf("m", 1, "k") == "v1");
  CHECK(f.queue->pending() == 1);  // v2 is still queued, in memory and in the log
  f.reopen();
  CHECK(f.queue->pending() == 1);
  f.clock.advance(1000);
  f.flushDue();
  CHECK(f.target.valueOf("m", 1, "k") == "v2");
}

TEST_CASE("persistence: write-behind entries survive a crash and are written after reopen",
          "[persistence][unit]") {
  Fixture f;
  f.put("closed", "cleanly", 1);
  f.reopen();  // destroyed without flush
  CHECK(f.queue->pending() == 1);
  f.queue.reset();
  f.log.reset();

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // enqueue, then die without any destructor or close
    RocksDbStoreOptions storeOptions;
    storeOptions.path = f.dir.sub("data");
    storeOptions.partitionCount = 16;
    auto log = RocksDbStore::open(storeOptions);
    if (!log) ::_exit(2);
    auto queue = WriteBehindQueue::open(**log, f.target, f.options, f.clock.fn());
    if (!queue) ::_exit(3);
    for (int i = 0; i < 200; ++i) {
      if (!(*queue)->enqueue({"m", uint32_t(i % 16), "c" + std::to_string(i), "v", {1, 0, 0}}).ok())
        ::_exit(4);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WEXITSTATUS(status) == 0);
  f.reopen();
  CHECK(f.queue->pending() == 201);
  REQUIRE(f.queue->flush().ok());
  CHECK(f.target.size() == 201);
  CHECK(f.target.valueOf("m", 1, "closed") == "cleanly");
  f.reopen();
  CHECK(f.queue->pending() == 0);  // flushed entries left the log
}

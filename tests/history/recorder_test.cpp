// The history recorder: thread safety, real-time order, outcomes, and the bounded text dump.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "history/history.h"

using namespace shoal::history;

TEST_CASE("history: concurrent clients record every operation in real-time order", "[history][unit]") {
  Recorder recorder;
  constexpr int THREADS = 4;
  constexpr int OPS = 2000;
  std::vector<std::thread> clients;
  for (int t = 0; t < THREADS; ++t) {
    clients.emplace_back([&recorder, t] {
      for (int i = 0; i < OPS; ++i) {
        const OpId id =
            recorder.invoke(t, "k" + std::to_string(i % 3), Op::write(std::to_string(t * OPS + i)));
        recorder.complete(id, i % 7 == 0 ? Outcome::unknown("timeout") : Outcome::ok());
      }
    });
  }
  for (auto& c : clients) c.join();

  const History history = recorder.history();
  REQUIRE(history.ops.size() == THREADS * OPS);
  std::set<uint64_t> seqs;
  std::vector<uint64_t> lastCompleteOf(THREADS, 0);
  std::vector<bool> first(THREADS, true);
  for (size_t i = 0; i < history.ops.size(); ++i) {
    const Operation& op = history.ops[i];
    REQUIRE(op.id == i);
    REQUIRE(op.invokeSeq < op.completeSeq);
    REQUIRE(op.completedAt);
    REQUIRE(op.invokedAt <= *op.completedAt);
    seqs.insert(op.invokeSeq);
    seqs.insert(op.completeSeq);
    // One thread's operations are sequential, so each starts after its previous one completed.
    if (!first[op.process]) REQUIRE(op.invokeSeq > lastCompleteOf[op.process]);
    first[op.process] = false;
    lastCompleteOf[op.process] = op.completeSeq;
  }
  REQUIRE(seqs.size() == 2 * history.ops.size());
}

TEST_CASE("history: unknown and never-completed operations take effect until +infinity", "[history][unit]") {
  Recorder recorder;
  const OpId timedOut = recorder.invoke(1, "k", Op::write("a"));
  const OpId pending = recorder.invoke(2, "k", Op::cas("a", "b"));
  const OpId done = recorder.invoke(3, "k", Op::read());
  recorder.complete(timedOut, Outcome::unknown("timeout"));
  recorder.complete(done, Outcome::readOk(std::nullopt));

  const History history = recorder.history();
  CHECK(history.ops[timedOut].effectDeadline() == NEVER);
  CHECK(history.ops[timedOut].maybeWrite());
  CHECK(history.ops[pending].outcome.status == Status::UNKNOWN);
  CHECK(history.ops[pending].completeSeq == NEVER);
  CHECK(history.ops[pending].maybeWrite());
  CHECK(history.ops[done].effectDeadline() == history.ops[done].completeSeq);
  CHECK_FALSE(history.ops[done].maybeWrite());
}

TEST_CASE("history: completing an operation twice or an unknown one is a bug", "[history][unit]") {
  Recorder recorder;
  const OpId id = recorder.invoke(1, "k", Op::read());
  recorder.complete(id, Outcome::readOk("x"));
  CHECK_THROWS_AS(recorder.complete(id, Outcome::readOk("x")), std::logic_error);
  CHECK_THROWS_AS(recorder.complete(id + 1, Outcome::ok()), std::logic_error);
}

TEST_CASE("history: the dump has one line per event and respects its size limit", "[history][unit]") {
  Recorder recorder;
  const OpId w = recorder.invoke(1, "user:1", Op::write("v\"1"));
  const OpId c = recorder.invoke(2, "user:1", Op::cas(std::nullopt, "v2"));
  recorder.complete(w, Outcome::ok());
  recorder.complete(c, Outcome::casOk(false));
  const OpId r = recorder.invoke(3, "user:1", Op::read());
  recorder.invoke(4, "user:1", Op::write("v3"));
  recorder.complete(r, Outcome::unknown("connection lost"));

  const std::string dump = recorder.dump();
  CHECK(std::count(dump.begin(), dump.end(), '\n') == 7);  // 4 invocations, 3 completions
  CHECK(dump.find("#0 p1 k=\"user:1\" write \"v\\\"1\" invoked") != std::string::npos);
  CHECK(dump.find("#1 p2 k=\"user:1\" cas absent -> \"v2\" => ok not-swapped") != std::string::npos);
  CHECK(dump.find("#2 p3 k=\"user:1\" read => unknown (connection lost)") != std::string::npos);
  CHECK(describeOperation(recorder.history().ops[3], recorder.history().startedAt).find("pending") !=
        std::string::npos);

  for (int i = 0; i < 1000; ++i) recorder.complete(recorder.invoke(1, "k", Op::read()), Outcome::readOk("x"));
  const std::string limited = recorder.dump(20);
  CHECK(std::count(limited.begin(), limited.end(), '\n') == 21);
  CHECK(limited.find("1987 events left out") != std::string::npos);
  CHECK(limited.find("#0 p1") != std::string::npos);     // the start
  CHECK(limited.find("#1003 p1") != std::string::npos);  // the end
}

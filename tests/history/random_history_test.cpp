// Randomised: histories of a simulated linearizable register store pass both checkers; the same
// histories with one planted violation fail, on the planted key. The seed is printed; rerun one
// with SHOAL_TEST_SEED=<seed>.
#include <catch2/catch.hpp>
#include <chrono>

#include "history/linearizability.h"
#include "history/lost_writes.h"
#include "simulated_register.h"

using namespace shoal::history;
using namespace shoal::history::test;

namespace {

std::vector<const Operation*> opsOf(const History& h, const std::string& key) {
  std::vector<const Operation*> out;
  for (const auto& op : h.ops)
    if (op.key == key) out.push_back(&op);
  return out;
}

// Finds acknowledged writes w1, w2 and an OK read r on `key` with w1 < w2 < r in real time, and
// makes r return w1's value — which w2 overwrote before r began (all values are distinct).
std::optional<OpId> plantStaleRead(History& h, const std::string& key) {
  const auto ops = opsOf(h, key);
  for (const Operation* r : ops) {
    if (r->op.kind != OpKind::READ || r->outcome.status != Status::OK) continue;
    for (const Operation* w2 : ops) {
      if (!w2->acknowledgedWrite() || w2->completeSeq >= r->invokeSeq) continue;
      for (const Operation* w1 : ops) {
        if (!w1->acknowledgedWrite() || w1->completeSeq >= w2->invokeSeq) continue;
        h.ops[r->id].outcome.value = w1->op.value;
        return r->id;
      }
    }
  }
  return std::nullopt;
}

std::optional<OpId> plantNeverWrittenRead(History& h, const std::string& key) {
  for (const Operation* r : opsOf(h, key)) {
    if (r->op.kind == OpKind::READ && r->outcome.status == Status::OK) {
      h.ops[r->id].outcome.value = "never-written";
      return r->id;
    }
  }
  return std::nullopt;
}

// Adds a second CAS that succeeds from the same expected value as an acknowledged one, invoked
// after that one completed: the expected value was stored once, so it cannot come back.
std::optional<OpId> plantDoubleCas(History& h, const std::string& key) {
  for (const Operation* c : opsOf(h, key)) {
    if (c->op.kind != OpKind::CAS || !c->acknowledgedWrite()) continue;
    for (auto& op : h.ops) {  // make room for two events right after c completes
      op.invokeSeq *= 4;
      if (op.completeSeq != NEVER) op.completeSeq *= 4;
    }
    Operation twin = *c;
    twin.id = h.ops.size();
    twin.process = -1;
    twin.op.value = "planted";
    twin.invokeSeq = c->completeSeq + 1;
    twin.completeSeq = c->completeSeq + 2;
    h.ops.push_back(twin);
    return twin.id;
  }
  return std::nullopt;
}

// The value of a possibly-applied write that completed before the last acknowledged write began.
std::optional<Value> staleFinalValue(const History& h, const std::string& key) {
  const auto ops = opsOf(h, key);
  uint64_t lastAcknowledgedInvoke = 0;
  for (const Operation* op : ops)
    if (op->acknowledgedWrite()) lastAcknowledgedInvoke = std::max(lastAcknowledgedInvoke, op->invokeSeq);
  for (const Operation* op : ops) {
    if (op->acknowledgedWrite() && op->completeSeq < lastAcknowledgedInvoke) return op->op.value;
  }
  return std::nullopt;
}

void requireCaught(const History& h, const std::string& key, OpId planted) {
  const LinearizabilityReport report = checkLinearizable(h);
  INFO("planted at #" << planted << "\n" << report.describe());
  REQUIRE(report.verdict == Verdict::NOT_LINEARIZABLE);
  CHECK(report.problems.front().key == key);
}

}  // namespace

TEST_CASE("history: simulated linearizable histories pass and planted violations are caught",
          "[history][unit]") {
  const uint64_t seed = testSeed("history random");
  INFO("seed " << seed << " (rerun with SHOAL_TEST_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  SimulationOptions options;  // 20 keys x 2,000 ops, 8 processes per key
  const SimulatedRun run = simulateRegisters(rng, options);
  REQUIRE(run.history.ops.size() == static_cast<size_t>(options.keys * options.opsPerKey));

  const auto started = std::chrono::steady_clock::now();
  const LinearizabilityReport report = checkLinearizable(run.history);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::printf("history random: %zu ops, %zu keys checked in %.0f ms, %llu states\n", run.history.ops.size(),
              report.keysChecked, ms, static_cast<unsigned long long>(report.statesExplored));
  {
    INFO(report.describe() << dumpHistory(run.history, 60));
    REQUIRE(report.verdict == Verdict::LINEARIZABLE);
  }
  const LostWriteReport lost = checkNoLostWrites(run.history, run.finalValues);
  {
    INFO(lost.describe());
    REQUIRE(lost.ok());
  }

  const std::string key =
      "key-" + std::to_string(std::uniform_int_distribution<int>(0, options.keys - 1)(rng));
  INFO("planted on " << key);
  {  // a stale read
    History h = run.history;
    const auto planted = plantStaleRead(h, key);
    REQUIRE(planted);
    requireCaught(h, key, *planted);
  }
  {  // a read of a value never written
    History h = run.history;
    const auto planted = plantNeverWrittenRead(h, key);
    REQUIRE(planted);
    requireCaught(h, key, *planted);
  }
  {  // two CASes succeeding from the same expected value
    History h = run.history;
    const auto planted = plantDoubleCas(h, key);
    REQUIRE(planted);
    requireCaught(h, key, *planted);
  }
  {  // a lost write in the final read
    const auto stale = staleFinalValue(run.history, key);
    REQUIRE(stale);
    auto finalValues = run.finalValues;
    finalValues[key] = *stale;
    const LostWriteReport planted = checkNoLostWrites(run.history, finalValues);
    INFO(planted.describe());
    REQUIRE(planted.problems.size() == 1);
    CHECK(planted.problems.front().key == key);
  }
}

// The per-key linearizability checker on hand-written histories: linearizable ones (overlap, CAS,
// unknown outcomes) pass; planted violations are caught and explained.
#include "history/linearizability.h"

#include <catch2/catch.hpp>

#include "script.h"

using namespace shoal::history;
using shoal::history::test::Script;

namespace {

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Checks `script` and requires the verdict NOT_LINEARIZABLE with `culprit` as the op to blame.
KeyVerdict requireViolation(const Script& script, OpId culprit, const LinearizabilityOptions& options = {}) {
  const LinearizabilityReport report = checkLinearizable(script.history(), options);
  INFO(report.describe());
  REQUIRE(report.verdict == Verdict::NOT_LINEARIZABLE);
  REQUIRE(report.problems.size() == 1);
  const KeyVerdict& problem = report.problems.front();
  CHECK(mentions(problem.explanation, "#" + std::to_string(culprit) + " cannot be linearized"));
  bool culpritListed = false;
  for (const auto& op : problem.relevantOps) culpritListed |= op.id == culprit;
  CHECK(culpritListed);
  return problem;
}

void requireLinearizable(const Script& script, const LinearizabilityOptions& options = {}) {
  const LinearizabilityReport report = checkLinearizable(script.history(), options);
  INFO(report.describe());
  REQUIRE(report.verdict == Verdict::LINEARIZABLE);
  CHECK(report.problems.empty());
}

}  // namespace

TEST_CASE("history: sequential reads, writes and CASes are linearizable", "[history][unit]") {
  Script s;
  requireLinearizable(s);  // empty
  s.read(1, std::nullopt);
  s.write(1, "a");
  s.read(2, "a");
  s.cas(2, "a", "b", true);
  s.cas(3, "a", "c", false);
  s.read(1, "b");
  s.write(3, std::nullopt);  // a delete
  s.read(2, std::nullopt);
  requireLinearizable(s);
}

TEST_CASE("history: overlapping operations may take effect in any order consistent with real time",
          "[history][unit]") {
  Script s;
  // p1 writes a while p2 reads a and p3 reads absent: p3's read goes first, then the write.
  const OpId w = s.invoke(1, Op::write("a"));
  const OpId r2 = s.invoke(2, Op::read());
  const OpId r3 = s.invoke(3, Op::read());
  s.complete(r2, Outcome::readOk("a"));
  s.complete(r3, Outcome::readOk(std::nullopt));
  s.complete(w, Outcome::ok());
  // Two concurrent writes; a read concurrent with both sees the first, later reads the second.
  const OpId wb = s.invoke(1, Op::write("b"));
  const OpId wc = s.invoke(2, Op::write("c"));
  const OpId during = s.invoke(3, Op::read());
  s.complete(wc, Outcome::ok());
  s.complete(during, Outcome::readOk("c"));
  s.complete(wb, Outcome::ok());
  s.read(4, "b");
  s.read(5, "b");
  requireLinearizable(s);
}

TEST_CASE("history: of two concurrent CASes from the same value one wins", "[history][unit]") {
  Script s;
  s.write(1, "a");
  const OpId toB = s.invoke(1, Op::cas("a", "b"));
  const OpId toC = s.invoke(2, Op::cas("a", "c"));
  const OpId reader = s.invoke(3, Op::read());
  s.complete(toB, Outcome::casOk(false));
  s.complete(reader, Outcome::readOk("a"));
  s.complete(toC, Outcome::casOk(true));
  s.read(3, "c");
  // A CAS recorded as FAIL says nothing about the value.
  const OpId failed = s.invoke(1, Op::cas("c", "d"));
  s.complete(failed, Outcome::fail("cas returned false"));
  s.read(2, "c");
  requireLinearizable(s);
}

TEST_CASE("history: an unknown write may take effect later or never, a failed one never", "[history][unit]") {
  SECTION("took effect before a later read") {
    Script s;
    s.complete(s.invoke(1, Op::write("a")), Outcome::unknown("timeout"));
    s.read(2, "a");
    requireLinearizable(s);
  }
  SECTION("never took effect") {
    Script s;
    s.complete(s.invoke(1, Op::write("a")), Outcome::unknown("timeout"));
    s.read(2, std::nullopt);
    s.write(3, "b");
    s.read(2, "b");
    requireLinearizable(s);
  }
  SECTION("took effect long after its timeout") {
    Script s;
    s.write(1, "a");
    const OpId late = s.invoke(1, Op::cas("a", "x"));
    s.read(2, "a");
    s.complete(late, Outcome::unknown("connection lost"));
    s.read(2, "a");
    s.read(3, "x");
    s.read(2, "x");
    requireLinearizable(s);
  }
  SECTION("never completed, observed by a read") {
    Script s;
    s.invoke(1, Op::write("a"));
    s.read(2, std::nullopt);
    s.read(3, "a");
    requireLinearizable(s);
  }
  SECTION("failed operations are left out") {
    Script s;
    s.complete(s.invoke(1, Op::write("a")), Outcome::fail("member down"));
    s.complete(s.invoke(1, Op::read()), Outcome::fail("member down"));
    s.complete(s.invoke(1, Op::read()), Outcome::unknown("timeout"));
    s.read(2, std::nullopt);
    requireLinearizable(s);
  }
}

TEST_CASE("history: a given initial value is the register's first state", "[history][unit]") {
  Script s;
  s.read(1, "seed", "a");
  s.read(1, std::nullopt, "b");
  LinearizabilityOptions options;
  options.initialValueByKey["a"] = "seed";
  requireLinearizable(s, options);
  CHECK(checkLinearizable(s.history()).verdict == Verdict::NOT_LINEARIZABLE);
}

TEST_CASE("history: a stale read after a completed write is caught", "[history][unit]") {
  Script s;
  s.write(1, "a");
  const OpId stale = s.read(2, std::nullopt);
  const KeyVerdict problem = requireViolation(s, stale);
  CHECK(mentions(problem.explanation, "held \"a\""));
}

TEST_CASE("history: a lost acknowledged write is caught", "[history][unit]") {
  Script s;
  s.write(1, "a");
  const OpId lost = s.invoke(2, Op::write("b"));
  const OpId concurrent = s.invoke(3, Op::read());
  s.complete(lost, Outcome::ok());
  s.complete(concurrent, Outcome::readOk("a"));  // fine: may precede the write
  const OpId stale = s.read(3, "a");             // not fine: b was acknowledged before
  requireViolation(s, stale);
}

TEST_CASE("history: a read of a value never written is caught", "[history][unit]") {
  Script s;
  s.write(1, "a");
  const OpId failedWrite = s.invoke(2, Op::write("zz"));
  s.complete(failedWrite, Outcome::fail("rejected"));
  const OpId bogus = s.read(3, "zz");
  const KeyVerdict problem = requireViolation(s, bogus);
  CHECK(mentions(problem.explanation, "nothing on this key ever wrote \"zz\""));
}

TEST_CASE("history: two CASes both succeeding from the same expected value are caught", "[history][unit]") {
  Script s;
  s.write(1, "a");
  const OpId toB = s.invoke(1, Op::cas("a", "b"));
  const OpId toC = s.invoke(2, Op::cas("a", "c"));
  s.complete(toB, Outcome::casOk(true));
  s.complete(toC, Outcome::casOk(true));
  requireViolation(s, toC);
}

TEST_CASE("history: other violations are caught", "[history][unit]") {
  SECTION("a value read before the write that stores it was invoked") {
    Script s;
    const OpId early = s.read(1, "a");
    s.complete(s.invoke(2, Op::write("a")), Outcome::unknown("timeout"));
    requireViolation(s, early);
  }
  SECTION("a CAS that says the value differed when it did not") {
    Script s;
    s.write(1, "a");
    const OpId wrong = s.cas(2, "a", "b", false);
    requireViolation(s, wrong);
  }
  SECTION("a value that comes back after being overwritten") {
    Script s;
    s.write(1, "a");
    const OpId b = s.invoke(2, Op::write("b"));
    s.read(3, "b");
    s.complete(b, Outcome::ok());
    const OpId flip = s.read(3, "a");
    requireViolation(s, flip);
  }
}

TEST_CASE("history: the report names the offending key among correct ones", "[history][unit]") {
  Script s;
  OpId culprit = 0;
  for (int k = 0; k < 10; ++k) {
    const std::string key = "key-" + std::to_string(k);
    s.write(1, "v" + std::to_string(k), key);
    if (k == 6)
      culprit = s.read(2, "old", key);
    else
      s.read(2, "v" + std::to_string(k), key);
  }
  const LinearizabilityReport report = checkLinearizable(s.history());
  INFO(report.describe());
  REQUIRE(report.verdict == Verdict::NOT_LINEARIZABLE);
  CHECK(report.keysChecked == 10);
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems.front().key == "key-6");
  const std::string text = report.describe();
  CHECK(mentions(text, "key \"key-6\": #" + std::to_string(culprit) + " cannot be linearized"));
  CHECK(mentions(text, "#" + std::to_string(culprit) + " p2 k=\"key-6\" read -> ok \"old\""));
}

TEST_CASE("history: a search over its bound reports TOO_COMPLEX, not a verdict", "[history][unit]") {
  Script s;
  // Eight concurrent writes, then reads that force one particular order.
  std::vector<OpId> writes;
  for (int p = 0; p < 8; ++p) writes.push_back(s.invoke(p, Op::write("w" + std::to_string(p))));
  for (OpId w : writes) s.complete(w, Outcome::ok());
  s.read(9, "w0");  // the first write invoked must be the last to take effect
  LinearizabilityOptions options;
  options.maxStatesPerKey = 5;
  const LinearizabilityReport report = checkLinearizable(s.history(), options);
  CHECK(report.verdict == Verdict::TOO_COMPLEX);
  REQUIRE(report.problems.size() == 1);
  CHECK(mentions(report.problems.front().explanation, "maxStatesPerKey=5"));
  CHECK(checkLinearizable(s.history()).verdict == Verdict::LINEARIZABLE);
}

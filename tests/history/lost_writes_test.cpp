// The lost-write check: the value read after the faults healed must be one that the last
// acknowledged write, or a write that may have taken effect after it, left behind.
#include "history/lost_writes.h"

#include <catch2/catch.hpp>

#include "script.h"

using namespace shoal::history;
using shoal::history::test::Script;

namespace {

LostWriteReport check(const Script& s, Value finalValue) {
  return checkNoLostWrites(s.history(), {{"k", std::move(finalValue)}});
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("history: the final value may be the last acknowledged write or one that overlaps it",
          "[history][unit]") {
  Script s;
  s.write(1, "a");
  const OpId b = s.invoke(1, Op::write("b"));
  const OpId c = s.invoke(2, Op::cas("a", "c"));
  s.complete(b, Outcome::ok());
  const OpId d = s.invoke(3, Op::write("d"));  // invoked after b completed, never completes
  s.complete(c, Outcome::unknown("timeout"));
  for (const char* accepted : {"b", "c", "d"}) {
    INFO(accepted);
    CHECK(check(s, accepted).ok());
  }
  CHECK_FALSE(check(s, "a").ok());
  CHECK_FALSE(check(s, std::nullopt).ok());
  (void)d;
}

TEST_CASE("history: an unknown write may be the final value however early it was invoked",
          "[history][unit]") {
  Script s;
  const OpId early = s.invoke(1, Op::write("early"));
  s.complete(early, Outcome::unknown("member killed"));
  s.write(2, "a");
  s.write(2, "b");
  CHECK(check(s, "early").ok());
  CHECK(check(s, "b").ok());
}

TEST_CASE("history: without acknowledged writes the initial value or any possible write is fine",
          "[history][unit]") {
  Script s;
  s.complete(s.invoke(1, Op::write("maybe")), Outcome::unknown("timeout"));
  s.complete(s.invoke(2, Op::write("never")), Outcome::fail("rejected"));
  s.cas(3, "x", "y", false);
  CHECK(check(s, std::nullopt).ok());
  CHECK(check(s, "maybe").ok());
  CHECK_FALSE(check(s, "never").ok());
  CHECK_FALSE(check(s, "y").ok());
  CHECK(checkNoLostWrites(s.history(), {{"k", "init"}}, "init").ok());
}

TEST_CASE("history: a final value older than the last acknowledged write is a lost write",
          "[history][unit]") {
  Script s;
  const OpId a = s.write(1, "a");
  const OpId b = s.write(2, "b");
  const LostWriteReport report = check(s, "a");
  INFO(report.describe());
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems.front().key == "k");
  CHECK(mentions(report.problems.front().explanation, "stored by #" + std::to_string(a) +
                                                          ", which completed before acknowledged write #" +
                                                          std::to_string(b)));
  CHECK(mentions(report.describe(), "#" + std::to_string(b) + " p2 k=\"k\" write \"b\" -> ok"));
}

TEST_CASE("history: an absent or never-written final value after acknowledged writes is caught",
          "[history][unit]") {
  Script s;
  s.write(1, "a");
  s.complete(s.invoke(2, Op::write("rejected")), Outcome::fail());
  const LostWriteReport absent = check(s, std::nullopt);
  REQUIRE(absent.problems.size() == 1);
  CHECK(mentions(absent.problems.front().explanation, "is the initial value, but acknowledged write #0"));
  const LostWriteReport bogus = check(s, "zz");
  REQUIRE(bogus.problems.size() == 1);
  CHECK(mentions(bogus.problems.front().explanation, "never stored"));
  CHECK_FALSE(check(s, "rejected").ok());
}

TEST_CASE("history: every key is checked and a missing final read is reported", "[history][unit]") {
  Script s;
  s.write(1, "a", "k1");
  s.write(1, "b", "k2");
  s.read(1, std::nullopt, "k3");
  const LostWriteReport report =
      checkNoLostWrites(s.history(), {{"k1", "a"}, {"k3", std::nullopt}, {"k4", "ghost"}});
  INFO(report.describe());
  CHECK(report.keysChecked == 3);
  REQUIRE(report.problems.size() == 2);
  CHECK(report.problems[0].key == "k2");
  CHECK(mentions(report.problems[0].explanation, "no final value"));
  CHECK(report.problems[1].key == "k4");
}

// The split-brain merge's decisions: which side merges, and which entry a merge keeps.
#include <catch2/catch.hpp>

#include "cluster/split_merge.h"
#include "record_store_fixture.h"

using shoal::node::EntryMeta;
using shoal::node::cluster::mergedEntryWins;
using shoal::node::cluster::mergesInto;
using shoal::node::cluster::SplitSide;

TEST_CASE("split merge: the higher version wins, then the later update; absent keys are added",
          "[split-merge]") {
  EntryMeta here;
  here.version = 3;
  here.updateTimeMs = 5000;
  CHECK(mergedEntryWins(1, 0, std::nullopt));
  CHECK(mergedEntryWins(4, 1000, here));        // higher version, even if older
  CHECK_FALSE(mergedEntryWins(2, 9000, here));  // lower version, even if newer
  CHECK(mergedEntryWins(3, 6000, here));        // same version, updated later
  CHECK_FALSE(mergedEntryWins(3, 5000, here));  // the same entry: nothing to do (merging twice is harmless)
  CHECK_FALSE(mergedEntryWins(3, 4000, here));
}

TEST_CASE("split merge: of two sides exactly one merges — the smaller, else the younger coordinator",
          "[split-merge]") {
  SplitSide big{1, 1000, 3}, small{2, 500, 1};
  CHECK(mergesInto(small, big));
  CHECK_FALSE(mergesInto(big, small));
  SplitSide older{7, 1000, 2}, younger{3, 2000, 2};
  CHECK(mergesInto(younger, older));
  CHECK_FALSE(mergesInto(older, younger));
  SplitSide a{5, 1000, 2}, b{9, 1000, 2};
  CHECK(mergesInto(b, a) != mergesInto(a, b));
}

TEST_CASE("split merge: peeking at an entry's metadata is not an access", "[split-merge]") {
  shoal::node::test::Store s;
  s.put("k", "v");
  s.put("k", "w");
  auto before = s.entry("k");
  REQUIRE(before);
  auto meta = s.map.peekMeta(s.pid("k"), "k");
  REQUIRE(meta);
  CHECK(meta->version == 2);
  CHECK(meta->hits == before->meta.hits);
  CHECK(s.entry("k")->meta.hits == before->meta.hits + 1);
  CHECK_FALSE(s.map.peekMeta(s.pid("absent"), "absent"));
}

// Key placement: hash tags, range, stability and spread of partition ids.
#include "shoal/partition/partitioner.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using shoal::partition::Partitioner;
using shoal::partition::partitionKeyOf;

TEST_CASE("partition: hash tag selects the partition key", "[partition][unit]") {
  CHECK(partitionKeyOf("user:{42}:name") == "42");
  CHECK(partitionKeyOf("{a}b{c}") == "a");
  CHECK(partitionKeyOf("no-tag") == "no-tag");
  CHECK(partitionKeyOf("empty{}tag") == "empty{}tag");
  CHECK(partitionKeyOf("open{only") == "open{only");

  Partitioner p;
  CHECK(p.partitionOf("user:{42}:name") == p.partitionOf("cart:{42}"));
  CHECK(p.partitionOf("user:{42}:name") == p.partitionOf("42"));
}

TEST_CASE("partition: ids are stable and within range", "[partition][unit]") {
  Partitioner p;
  REQUIRE(p.partitionCount() == 271);
  // xxh3_64("hello") is a published constant; the placement is part of the wire contract.
  CHECK(shoal::partition::hashKey("hello") == 0x9555e8555c62dcfdull);
  CHECK(p.partitionOf("hello") == 0x9555e8555c62dcfdull % 271);
  for (int i = 0; i < 1000; ++i) CHECK(p.partitionOf("key" + std::to_string(i)) < 271);
}

TEST_CASE("partition: keys spread evenly over partitions", "[partition][unit]") {
  Partitioner p;
  std::vector<int> counts(p.partitionCount());
  const int n = 271 * 200;
  for (int i = 0; i < n; ++i) counts[p.partitionOf("k:" + std::to_string(i))]++;
  for (int c : counts) {
    CHECK(c > 120);  // mean 200; a binomial tail this far out would signal a broken hash
    CHECK(c < 280);
  }
}

TEST_CASE("partition: invalid partition counts are refused", "[partition][unit]") {
  CHECK_THROWS_WITH(Partitioner(0), Catch::Contains("partition-count"));
  CHECK_THROWS(Partitioner(70000));
  CHECK_NOTHROW(Partitioner(1));
}

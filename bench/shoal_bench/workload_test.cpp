// shoal-bench's key names and option parsing.
#include "workload.h"

#include <catch2/catch.hpp>

using namespace shoal::bench;

TEST_CASE("bench: key names match redis-benchmark's key:%012d at 16 bytes", "[bench][unit]") {
  REQUIRE(keyName(0, 16) == "key:000000000000");
  REQUIRE(keyName(999999, 16) == "key:000000999999");
  REQUIRE(keyName(42, 8) == "key:0042");
  std::string reused(16, '0');
  formatKey(12345, reused);
  REQUIRE(reused == "key:000000012345");
}

TEST_CASE("bench: ratio and duration parsing", "[bench][unit]") {
  REQUIRE(parseRatio("9:1") == std::pair<uint32_t, uint32_t>{9, 1});
  REQUIRE(parseRatio("0:1") == std::pair<uint32_t, uint32_t>{0, 1});
  REQUIRE_THROWS_AS(parseRatio("0:0"), std::invalid_argument);
  REQUIRE_THROWS_AS(parseRatio("9"), std::invalid_argument);
  REQUIRE_THROWS_AS(parseRatio("a:1"), std::invalid_argument);
  REQUIRE(parseDuration("30s") == std::chrono::seconds(30));
  REQUIRE(parseDuration("250ms") == std::chrono::milliseconds(250));
  REQUIRE(parseDuration("2m") == std::chrono::minutes(2));
  REQUIRE(parseDuration("5") == std::chrono::seconds(5));
  REQUIRE_THROWS_AS(parseDuration("fast"), std::invalid_argument);
  REQUIRE_THROWS_AS(parseDuration("10y"), std::invalid_argument);
}

TEST_CASE("bench: options name the field that is wrong", "[bench][unit]") {
  WorkloadOptions o;
  REQUIRE_NOTHROW(o.validate());
  o.keyspace = 10'000'000'000'000ull;  // 13 digits do not fit a 16-byte key with "key:"
  REQUIRE_THROWS_WITH(o.validate(), Catch::Contains("--key-size"));
  o = WorkloadOptions{};
  o.connections = 51;
  REQUIRE_THROWS_WITH(o.validate(), Catch::Contains("--connections"));
}

// The client's copy of the partition table: where a key goes, what it refuses to route by, and
// which members a newer table removed.
#include "routing_table.h"

#include <catch2/catch.hpp>

using shoal::client::RoutingTable;

namespace {

RoutingTable::Snapshot threeMembers(uint64_t epoch) {
  RoutingTable::Snapshot s;
  s.epoch = epoch;
  s.partitionCount = 7;
  for (uint32_t p = 0; p < 7; ++p) s.primaries.push_back(1 + p % 3);
  s.members = {{1, "127.0.0.1:1001"}, {2, "127.0.0.1:1002"}, {3, "127.0.0.1:1003"}};
  return s;
}

}  // namespace

TEST_CASE("client: routing table sends a key to its partition's primary", "[client][unit]") {
  RoutingTable table;
  CHECK(table.primaryOf("k") == nullptr);  // nothing known yet
  REQUIRE(table.update(threeMembers(5)));
  CHECK(table.epoch() == 5);
  shoal::partition::Partitioner partitioner(7);
  for (std::string key : {"a", "b", "c", "user:{42}:name", "user:{42}:mail"}) {
    auto p = partitioner.partitionOf(key);
    auto* address = table.primaryOf(key);
    REQUIRE(address != nullptr);
    CHECK(*address == "127.0.0.1:100" + std::to_string(1 + p % 3));
  }
  CHECK(*table.primaryOf("user:{42}:name") == *table.primaryOf("user:{42}:mail"));
  CHECK(table.hasMember("127.0.0.1:1002"));
  CHECK_FALSE(table.hasMember("127.0.0.1:9999"));
}

TEST_CASE("client: routing table ignores older tables and reports removed members", "[client][unit]") {
  RoutingTable table;
  REQUIRE(table.update(threeMembers(5)));
  CHECK_FALSE(table.update(threeMembers(4)));  // older: ignored
  CHECK(table.epoch() == 5);
  auto two = threeMembers(6);
  two.members.pop_back();  // member 3 died; its partitions are unassigned in this snapshot
  for (auto& id : two.primaries) id = id == 3 ? 0 : id;
  auto removed = table.update(two);
  REQUIRE(removed);
  CHECK(*removed == std::vector<std::string>{"127.0.0.1:1003"});
  shoal::partition::Partitioner partitioner(7);
  for (std::string key : {"a", "b", "c", "d", "e", "f"}) {
    auto* address = table.primaryOf(key);
    if (partitioner.partitionOf(key) % 3 == 2) {
      CHECK(address == nullptr);  // unassigned: goes through the home member
    } else {
      CHECK(address != nullptr);
    }
  }
}

TEST_CASE("client: routing table routes nothing for one member, no table or wildcard addresses",
          "[client][unit]") {
  RoutingTable table;
  auto alone = threeMembers(3);
  alone.members.resize(1);
  REQUIRE(table.update(alone));
  CHECK(table.primaryOf("a") == nullptr);
  RoutingTable none;
  REQUIRE(none.update(RoutingTable::Snapshot{}));
  CHECK(none.primaryOf("a") == nullptr);
  RoutingTable wildcard;
  auto s = threeMembers(3);
  for (auto& [id, address] : s.members) address = "0.0.0.0:" + address.substr(address.rfind(':') + 1);
  REQUIRE(wildcard.update(s));
  CHECK(wildcard.primaryOf("a") == nullptr);
}

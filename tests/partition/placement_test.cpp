// Replica placement (rendezvous hashing) and the steps of the partition table towards it.
#include "shoal/partition/placement.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

using namespace shoal::partition;

namespace {

std::vector<MemberSlot> membersNamed(std::initializer_list<MemberId> ids) {
  std::vector<MemberSlot> out;
  for (auto id : ids) out.push_back({id, ""});
  return out;
}

// Applies steps (marking every filling replica filled in between) until the table is stable.
PartitionTable settle(PartitionTable table, const std::vector<std::vector<MemberId>>& target,
                      const std::vector<MemberId>& alive, int* steps = nullptr) {
  for (int i = 0; i < 10; ++i) {
    auto next = nextTable(table, target, alive);
    if (next.partitions == table.partitions && next.fillingCount() == 0) {
      if (steps) *steps = i;
      return next;
    }
    for (PartitionId p = 0; p < next.partitions.size(); ++p) next.partitions[p].filling.clear();
    table = next;
  }
  FAIL("the table did not settle in 10 steps");
  return table;
}

}  // namespace

TEST_CASE("placement: every partition gets a primary and distinct backups", "[partition][unit]") {
  auto members = membersNamed({11, 22, 33});
  auto target = targetPlacement(271, members, 1);
  REQUIRE(target.size() == 271);
  std::map<MemberId, int> primaries;
  for (auto& r : target) {
    REQUIRE(r.size() == 2);
    CHECK(r[0] != r[1]);
    ++primaries[r[0]];
  }
  // Spread: each of 3 members gets roughly a third (rendezvous is random-like, allow +-35%).
  for (auto& [m, n] : primaries) CHECK((n > 271 / 3 * 0.65 && n < 271 / 3 * 1.35));
  // More backups than members: capped at the member count.
  CHECK(targetPlacement(7, membersNamed({1, 2}), 6)[0].size() == 2);
  CHECK(targetPlacement(7, {}, 1)[0].empty());
}

TEST_CASE("placement: adding a member moves about P/(N+1) primaries, removing one only its own",
          "[partition][unit]") {
  const uint32_t P = 271;
  std::vector<MemberSlot> members;
  for (MemberId id = 1; id <= 4; ++id) members.push_back({id * 7919, ""});
  auto before = targetPlacement(P, members, 1);
  members.push_back({99991, ""});
  auto after = targetPlacement(P, members, 1);
  int moved = 0;
  for (PartitionId p = 0; p < P; ++p) {
    if (before[p][0] != after[p][0]) {
      ++moved;
      CHECK(after[p][0] == 99991);  // only to the newcomer, never between old members
    }
  }
  INFO("moved " << moved << " of " << P << " primaries; P/(N+1) = " << P / 5);
  CHECK(moved > P / 5 * 0.6);
  CHECK(moved < P / 5 * 1.4);

  members.erase(members.begin());  // member 7919 leaves
  auto without = targetPlacement(P, members, 1);
  for (PartitionId p = 0; p < P; ++p) {
    if (after[p][0] != 7919) CHECK(without[p][0] == after[p][0]);
  }
}

TEST_CASE("placement: replicas go to distinct zones when zones allow", "[partition][unit]") {
  std::vector<MemberSlot> members = {{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}};
  for (auto& r : targetPlacement(271, members, 2)) {
    std::set<std::string> zones;
    for (auto m : r) zones.insert(m <= 2 ? "a" : m <= 4 ? "b" : "c");
    CHECK(zones.size() == 3);
  }
  // Fewer zones than replicas: still backupCount + 1 replicas.
  for (auto& r : targetPlacement(271, {{1, "a"}, {2, "a"}, {3, "a"}}, 2)) CHECK(r.size() == 3);
}

TEST_CASE("partition table: first assignment, join, failover and total loss", "[partition][unit]") {
  const uint32_t P = 31;
  PartitionTable empty;
  auto two = targetPlacement(P, membersNamed({1, 2}), 1);
  auto table = nextTable(empty, two, {1, 2});
  for (PartitionId p = 0; p < P; ++p) {
    CHECK(table.partitions[p].replicas == two[p]);  // nothing held yet: straight to the target
    CHECK(table.partitions[p].filling.empty());
  }

  SECTION("a joining member is filled before it becomes primary") {
    auto three = targetPlacement(P, membersNamed({1, 2, 3}), 1);
    auto step = nextTable(table, three, {1, 2, 3});
    for (PartitionId p = 0; p < P; ++p) {
      auto& r = step.partitions[p];
      CHECK(r.primary() != 3);  // never primary without the data
      if (std::count(three[p].begin(), three[p].end(), 3)) {
        CHECK(r.holds(3));
        CHECK(r.isFilling(3));
      }
    }
    int steps = 0;
    auto settled = settle(step, three, {1, 2, 3}, &steps);
    for (PartitionId p = 0; p < P; ++p) CHECK(settled.partitions[p].replicas == three[p]);
    CHECK(steps <= 3);
  }

  SECTION("when a primary dies its backup takes over and a new backup is filled") {
    auto three = targetPlacement(P, membersNamed({1, 2, 3}), 1);
    auto full = settle(nextTable(nextTable(empty, three, {1, 2, 3}), three, {1, 2, 3}), three, {1, 2, 3});
    auto survivors = targetPlacement(P, membersNamed({2, 3}), 1);
    auto step = nextTable(full, survivors, {2, 3});
    for (PartitionId p = 0; p < P; ++p) {
      auto& before = full.partitions[p];
      auto& r = step.partitions[p];
      CHECK_FALSE(r.holds(1));
      if (before.primary() == 1) {
        CHECK(r.primary() == before.replicas[1]);  // the backup, which has every acknowledged write
        CHECK(r.filling.size() == r.replicas.size() - 1);
      } else {
        CHECK(r.primary() == before.primary());  // untouched partitions keep their primary
      }
    }
  }

  SECTION("a partition whose replicas all died restarts empty at the target") {
    auto only3 = targetPlacement(P, membersNamed({3}), 1);
    auto step = nextTable(table, only3, {3});
    for (PartitionId p = 0; p < P; ++p) {
      CHECK(step.partitions[p].replicas == std::vector<MemberId>{3});
      CHECK(step.partitions[p].filling.empty());
    }
  }

  SECTION("markFilled makes a replica promotable") {
    PartitionTable t;
    t.partitions = {{{1, 2}, {2}}};
    CHECK(t.partitions[0].isFilling(2));
    markFilled(t, 0, 2);
    CHECK_FALSE(t.partitions[0].isFilling(2));
    CHECK(t.primariesOf(1) == 1);
    CHECK(t.backupsOf(2) == 1);
  }
}

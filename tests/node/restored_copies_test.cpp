// The first assignment after a whole-cluster restart: each partition starts on the member with
// its newest copy; the other replicas are filled from it.
#include "cluster/restored_copies.h"

#include <catch2/catch.hpp>

using shoal::node::cluster::RestoredCopies;
using shoal::partition::MemberId;

namespace {
const MemberId A = 11, B = 22, C = 33;
}

TEST_CASE("restart: each partition starts on the member with its newest copy", "[node][unit][restart]") {
  RestoredCopies copies;
  copies.add(A, {{0, 7}, {1, 9}, {2, 5}}, 3);
  copies.add(B, {{0, 8}, {1, 9}}, 3);
  copies.add(C, {{2, 0}, {3, 0}}, 2);  // data without a recorded copy: unknown age
  // Target ranking per partition (primary first): 0 -> A,B; 1 -> B,A; 2 -> C,A; 3 -> A,C; 4 -> A,B.
  std::vector<std::vector<MemberId>> target{{A, B}, {B, A}, {C, A}, {A, C}, {A, B}};
  auto base = copies.baseTable(target, {A, B, C});
  CHECK(base.partitions[0].replicas == std::vector<MemberId>{B});     // 8 beats 7: the stale copy loses
  CHECK(base.partitions[1].replicas == std::vector<MemberId>{B, A});  // a tie: the target's primary first,
                                                                      // the equal copy kept
  CHECK(base.partitions[2].replicas == std::vector<MemberId>{A});  // any recorded copy beats an unknown one
  CHECK(base.partitions[3].replicas == std::vector<MemberId>{C});  // an unknown copy beats none
  CHECK(base.partitions[4].replicas.empty());                      // nobody has it: it starts empty
  CHECK(RestoredCopies::uncopied(base) == 1);
  CHECK(copies.highestVersion() == 9);
  CHECK(copies.expectedMembers() == 3);  // the members of the newest copy's view

  // Only members that joined count: without B, A's older copy of partition 0 is the best left.
  auto withoutB = copies.baseTable(target, {A, C});
  CHECK(withoutB.partitions[0].replicas == std::vector<MemberId>{A});
  CHECK(withoutB.partitions[1].replicas == std::vector<MemberId>{A});
}

TEST_CASE("restart: replicas whose copies are as new as the primary's are not copied again",
          "[node][unit][restart]") {
  RestoredCopies copies;
  copies.add(A, {{0, 8}}, 3);
  copies.add(B, {{0, 8}}, 3);
  copies.add(C, {{0, 5}}, 3);
  std::vector<std::vector<MemberId>> target{{A, B, C}};
  auto next = shoal::partition::nextTable(copies.baseTable(target, {A, B, C}), target, {A, B, C});
  CHECK(next.partitions[0].replicas == std::vector<MemberId>{A, B, C});
  CHECK(next.partitions[0].filling == std::vector<MemberId>{C});  // only the stale one
}

TEST_CASE("restart: from the restored table, the others are filled from the newest copy",
          "[node][unit][restart]") {
  RestoredCopies copies;
  copies.add(A, {{0, 7}}, 2);
  copies.add(B, {{0, 8}}, 2);
  std::vector<std::vector<MemberId>> target{{A, B}};
  auto next = shoal::partition::nextTable(copies.baseTable(target, {A, B}), target, {A, B});
  // B holds the newest copy: it stays primary until A (the target primary) is filled from it.
  CHECK(next.partitions[0].replicas == std::vector<MemberId>{B, A});
  CHECK(next.partitions[0].filling == std::vector<MemberId>{A});
}

// Replica placement and the versioned partition table. Pure logic: no I/O, no threads.
//
// Placement is rendezvous hashing: for each partition every member gets a score
// xxh3(partition, member id) and members are ranked by it; the first is the primary, the next
// `backupCount` are backups, preferring members of zones not yet used. Adding a member to N moves
// about 1/(N+1) of the primaries (only those the newcomer wins), removing one moves only its own.
//
// The table the cluster runs under moves towards that target without ever making a member that
// lacks a partition's data its primary: a target replica that does not hold the data yet joins
// as a "filling" backup (it receives live writes and a copy), and only once filled can it take
// over as primary. `nextTable` computes each step; the coordinator publishes them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shoal/partition/partitioner.h"

namespace shoal::partition {

using MemberId = uint64_t;

struct MemberSlot {
  MemberId id = 0;
  std::string zone;  // empty: no zone
};

// Members ranked for `p`, best first (ties broken by id, so every member computes the same).
std::vector<MemberId> rankMembers(PartitionId p, const std::vector<MemberSlot>& members);

// The target replicas of every partition: up to 1 + backupCount members each, primary first,
// on distinct zones where zones allow.
std::vector<std::vector<MemberId>> targetPlacement(uint32_t partitionCount,
                                                   const std::vector<MemberSlot>& members,
                                                   uint32_t backupCount);

struct PartitionReplicas {
  std::vector<MemberId> replicas;  // primary first; empty: not assigned yet
  std::vector<MemberId> filling;   // replicas still receiving their copy (not promotable)

  MemberId primary() const { return replicas.empty() ? 0 : replicas.front(); }
  bool isFilling(MemberId m) const;
  bool holds(MemberId m) const;  // a replica (filling or not)
  bool operator==(const PartitionReplicas&) const = default;
};

struct PartitionTable {
  uint64_t epoch = 0;  // 0: nothing assigned yet
  std::vector<PartitionReplicas> partitions;

  bool assigned() const { return epoch != 0 && !partitions.empty(); }
  MemberId primaryOf(PartitionId p) const { return p < partitions.size() ? partitions[p].primary() : 0; }
  uint32_t primariesOf(MemberId m) const;
  uint32_t backupsOf(MemberId m) const;
  uint32_t fillingCount() const;  // replicas still being filled, over all partitions
};

// The next step from `current` towards `target`, for members `alive`:
// - replicas that are not alive are dropped; a partition whose every filled replica is gone
//   restarts at the target (its data is lost unless the store has it);
// - the primary is the target's primary once that member holds the data, else the first filled
//   replica still alive (a backup takes over from a dead primary);
// - every target replica is present; those without the data are "filling"; a replica that loses
//   its primary role but stays is re-filled (it may hold a write its successor never saw);
// - replicas outside the target are dropped once the target primary is primary.
// The result has the same epoch as `current`; the caller bumps it when it differs.
PartitionTable nextTable(const PartitionTable& current, const std::vector<std::vector<MemberId>>& target,
                         const std::vector<MemberId>& alive);

// `table` with `member` marked filled for `p` (no-op if it was not filling).
void markFilled(PartitionTable& table, PartitionId p, MemberId member);

}  // namespace shoal::partition

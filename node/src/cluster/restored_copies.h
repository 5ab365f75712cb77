// Whole-cluster restart: the copies of partitions that members bring back from their data
// directories. Each member records, in its own store, the view version in which it last held a
// complete copy of each partition (MapPersistence::recordCopies); a restarted member reports them
// when it joins. The coordinator gathers them until partitions are first assigned, then places
// each partition on the member with its newest copy, so a stale copy never wins over a newer one
// and the others are filled from it. Pure logic, shard thread only.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "shoal/partition/placement.h"
#include "shoal/proto/cluster.capnp.h"

namespace shoal::node::cluster {

using CopyVersions = std::map<partition::PartitionId, uint64_t>;  // partition -> version (0: unknown)

void writeCopies(const CopyVersions& copies, capnp::List<wire::PartitionCopy>::Builder out);
CopyVersions readCopies(capnp::List<wire::PartitionCopy>::Reader in);

class RestoredCopies {
 public:
  // `member` restarted with `copies`, the newest recorded in a view of `lastMembers` members
  // (replaces what it reported before).
  void add(partition::MemberId member, CopyVersions copies, uint32_t lastMembers);
  // How many members the largest last view of any restarted member had (0: none known).
  uint32_t expectedMembers() const { return expected_; }
  bool empty() const { return byMember_.empty(); }
  // The highest version any restarted member reported, ever (views continue above it, so copies
  // recorded after the restart are newer than every copy recorded before it).
  uint64_t highestVersion() const { return highest_; }

  // The table to step from at the first assignment: each partition held (filled) by the member of
  // `members` with its newest copy — ties go to the member `target` ranks first — followed by
  // the members whose copy is as new (they need no copy), or unassigned when none of them has one.
  // The others are filled from the first by nextTable.
  partition::PartitionTable baseTable(const std::vector<std::vector<partition::MemberId>>& target,
                                      const std::vector<partition::MemberId>& members) const;
  // Partitions of `base` that no member had a copy of (they start empty).
  static uint32_t uncopied(const partition::PartitionTable& base);

  void clear() { byMember_.clear(); }

 private:
  std::map<partition::MemberId, CopyVersions> byMember_;
  uint64_t highest_ = 0;
  uint32_t expected_ = 0;
};

}  // namespace shoal::node::cluster

// The newest copy of each partition at a whole-cluster restart; see restored_copies.h.
#include "restored_copies.h"

#include <algorithm>

namespace shoal::node::cluster {

void writeCopies(const CopyVersions& copies, capnp::List<wire::PartitionCopy>::Builder out) {
  size_t i = 0;
  for (auto& [p, version] : copies) {
    out[i].setPartition(p);
    out[i].setVersion(version);
    ++i;
  }
}

CopyVersions readCopies(capnp::List<wire::PartitionCopy>::Reader in) {
  CopyVersions copies;
  for (auto c : in) copies[c.getPartition()] = c.getVersion();
  return copies;
}

void RestoredCopies::add(partition::MemberId member, CopyVersions copies, uint32_t lastMembers) {
  uint64_t newest = 0;
  for (auto& [_, version] : copies) newest = std::max(newest, version);
  // The largest last view any of them saw (a member that left holds no copy but knew the cluster).
  expected_ = std::max(expected_, lastMembers);
  highest_ = std::max(highest_, newest);
  if (copies.empty()) {
    byMember_.erase(member);
  } else {
    byMember_[member] = std::move(copies);
  }
}

partition::PartitionTable RestoredCopies::baseTable(
    const std::vector<std::vector<partition::MemberId>>& target,
    const std::vector<partition::MemberId>& members) const {
  partition::PartitionTable base;
  base.partitions.resize(target.size());
  for (partition::PartitionId p = 0; p < target.size(); ++p) {
    const auto& ranked = target[p];
    auto rank = [&](partition::MemberId m) {
      auto at = std::find(ranked.begin(), ranked.end(), m);
      return static_cast<size_t>(at - ranked.begin());  // not in the target: after every target replica
    };
    partition::MemberId best = 0;
    uint64_t bestVersion = 0;
    for (auto m : members) {
      auto held = byMember_.find(m);
      if (held == byMember_.end()) continue;
      auto copy = held->second.find(p);
      if (copy == held->second.end()) continue;
      bool better =
          best == 0 || copy->second > bestVersion ||
          (copy->second == bestVersion && (rank(m) < rank(best) || (rank(m) == rank(best) && m < best)));
      if (better) {
        best = m;
        bestVersion = copy->second;
      }
    }
    if (best == 0) continue;
    auto& replicas = base.partitions[p].replicas;
    replicas.push_back(best);
    // Copies as new as the best one (complete replicas in the same view) are kept too: they hold
    // every acknowledged write; what a crash left unacknowledged on one of them only is repaired
    // by anti-entropy. Copies of unknown age are not trusted that far.
    if (bestVersion == 0) continue;
    for (auto m : members) {
      if (m == best) continue;
      auto held = byMember_.find(m);
      if (held == byMember_.end()) continue;
      auto copy = held->second.find(p);
      if (copy != held->second.end() && copy->second == bestVersion) replicas.push_back(m);
    }
  }
  return base;
}

uint32_t RestoredCopies::uncopied(const partition::PartitionTable& base) {
  uint32_t n = 0;
  for (auto& r : base.partitions) n += r.replicas.empty() ? 1 : 0;
  return n;
}

}  // namespace shoal::node::cluster

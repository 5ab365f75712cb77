// Rendezvous placement and partition-table steps; see placement.h.
#include "shoal/partition/placement.h"

#include <xxhash.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace shoal::partition {
namespace {

uint64_t score(PartitionId p, MemberId m) {
  uint64_t input[2] = {p, m};
  return XXH3_64bits(input, sizeof input);
}

bool contains(const std::vector<MemberId>& v, MemberId m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

}  // namespace

std::vector<MemberId> rankMembers(PartitionId p, const std::vector<MemberSlot>& members) {
  std::vector<std::pair<uint64_t, MemberId>> scored;
  scored.reserve(members.size());
  for (auto& m : members) scored.emplace_back(score(p, m.id), m.id);
  std::sort(scored.begin(), scored.end(),
            [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::vector<MemberId> out;
  out.reserve(scored.size());
  for (auto& [_, id] : scored) out.push_back(id);
  return out;
}

std::vector<std::vector<MemberId>> targetPlacement(uint32_t partitionCount,
                                                   const std::vector<MemberSlot>& members,
                                                   uint32_t backupCount) {
  std::vector<std::vector<MemberId>> out(partitionCount);
  if (members.empty()) return out;
  std::unordered_map<MemberId, const std::string*> zoneOf;
  for (auto& m : members) zoneOf[m.id] = &m.zone;
  size_t want = std::min<size_t>(members.size(), size_t(backupCount) + 1);
  for (PartitionId p = 0; p < partitionCount; ++p) {
    auto ranked = rankMembers(p, members);
    auto& chosen = out[p];
    std::unordered_set<std::string> zones;
    // First pass: best-ranked members of zones not used yet; second: fill up with the rest.
    for (auto m : ranked) {
      if (chosen.size() == want) break;
      auto& zone = *zoneOf[m];
      if (!zone.empty() && zones.count(zone)) continue;
      chosen.push_back(m);
      if (!zone.empty()) zones.insert(zone);
    }
    for (auto m : ranked) {
      if (chosen.size() == want) break;
      if (!contains(chosen, m)) chosen.push_back(m);
    }
  }
  return out;
}

bool PartitionReplicas::isFilling(MemberId m) const {
  return contains(filling, m);
}

bool PartitionReplicas::holds(MemberId m) const {
  return contains(replicas, m);
}

uint32_t PartitionTable::primariesOf(MemberId m) const {
  uint32_t n = 0;
  for (auto& p : partitions) n += p.primary() == m;
  return n;
}

uint32_t PartitionTable::backupsOf(MemberId m) const {
  uint32_t n = 0;
  for (auto& p : partitions) n += p.holds(m) && p.primary() != m;
  return n;
}

uint32_t PartitionTable::fillingCount() const {
  uint32_t n = 0;
  for (auto& p : partitions) n += p.filling.size();
  return n;
}

PartitionTable nextTable(const PartitionTable& current, const std::vector<std::vector<MemberId>>& target,
                         const std::vector<MemberId>& alive) {
  PartitionTable next;
  next.epoch = current.epoch;
  next.partitions.resize(target.size());
  for (PartitionId p = 0; p < target.size(); ++p) {
    const auto& want = target[p];
    PartitionReplicas cur = p < current.partitions.size() ? current.partitions[p] : PartitionReplicas{};
    std::vector<MemberId> filled, filling;
    for (auto m : cur.replicas) {
      if (!contains(alive, m)) continue;
      (cur.isFilling(m) ? filling : filled).push_back(m);
    }
    auto& out = next.partitions[p];
    if (filled.empty() && !filling.empty()) {
      // Every filled replica is gone while a copy was under way: the partial copy is the best
      // data left, so its holder continues as if filled.
      filled.push_back(filling.front());
      filling.erase(filling.begin());
    }
    if (filled.empty() || want.empty()) {
      out.replicas = want;  // first assignment, or the data is gone with its members
      continue;
    }
    MemberId primary = contains(filled, want.front()) ? want.front() : filled.front();
    out.replicas.push_back(primary);
    for (auto m : want) {
      if (m != primary) out.replicas.push_back(m);
    }
    bool primaryChanged = primary != cur.primary();
    for (size_t i = 1; i < out.replicas.size(); ++i) {
      auto m = out.replicas[i];
      // A backup that has not got the data, or that served under another primary (it may hold a
      // write the new primary never saw), is filled from the primary.
      if (!contains(filled, m) || primaryChanged) out.filling.push_back(m);
    }
  }
  return next;
}

void markFilled(PartitionTable& table, PartitionId p, MemberId member) {
  if (p >= table.partitions.size()) return;
  auto& f = table.partitions[p].filling;
  f.erase(std::remove(f.begin(), f.end(), member), f.end());
}

}  // namespace shoal::partition

// The client's copy of the partition table; see routing_table.h.
#include "routing_table.h"

#include <algorithm>

namespace shoal::client {
namespace {

// A member listening on every interface advertises that wildcard, which only means "this host"
// to a client on the same machine: such a member is reached by forwarding instead.
bool dialable(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  auto host = address.substr(0, colon);
  return host != "0.0.0.0" && host != "[::]" && host != "::" && host != "*";
}

}  // namespace

std::optional<std::vector<std::string>> RoutingTable::update(const Snapshot& s) {
  if (s.epoch < epoch_) return std::nullopt;
  std::vector<std::string> members;
  for (auto& [id, address] : s.members) members.push_back(address);
  std::vector<std::string> removed;
  for (auto& a : members_) {
    if (std::find(members.begin(), members.end(), a) == members.end()) removed.push_back(a);
  }
  epoch_ = s.epoch;
  members_ = std::move(members);
  addresses_.clear();
  primaries_.clear();
  partitioner_.reset();
  // A table of one member routes nothing: that member is the home member anyway.
  if (s.epoch == 0 || s.partitionCount == 0 || s.members.size() < 2 ||
      s.primaries.size() != s.partitionCount || s.partitionCount > partition::MAX_PARTITION_COUNT)
    return removed;
  for (auto& [id, address] : s.members) {
    if (id != 0 && dialable(address)) addresses_[id] = address;
  }
  primaries_ = s.primaries;
  partitioner_.emplace(s.partitionCount);
  return removed;
}

const std::string* RoutingTable::primaryOf(std::string_view key) const {
  if (!partitioner_) return nullptr;
  auto id = primaries_[partitioner_->partitionOf(key)];
  if (id == 0) return nullptr;
  auto it = addresses_.find(id);
  return it == addresses_.end() ? nullptr : &it->second;
}

bool RoutingTable::hasMember(const std::string& address) const {
  return std::find(members_.begin(), members_.end(), address) != members_.end();
}

}  // namespace shoal::client

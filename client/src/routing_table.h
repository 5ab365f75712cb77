// What the client knows of the cluster's partition table: which member is the primary of each
// partition, and where that member listens. Pure logic (no I/O, no KJ): the transport feeds it a
// member's answer to cluster() and asks it where a key should go.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shoal/partition/partitioner.h"

namespace shoal::client {

class RoutingTable {
 public:
  struct Snapshot {
    uint64_t epoch = 0;  // 0: the member has no table (a member alone, or not yet assigned)
    uint32_t partitionCount = 0;
    std::vector<uint64_t> primaries;                        // per partition; 0: unassigned
    std::vector<std::pair<uint64_t, std::string>> members;  // id, HOST:PORT
  };

  // Takes `s` unless it is older than the table held. Returns the addresses of members that were
  // in the previous table and are not in this one (removed: dead or left); nullopt when `s` was
  // older and ignored.
  std::optional<std::vector<std::string>> update(const Snapshot& s);

  uint64_t epoch() const { return epoch_; }
  // The address of the primary of `key`'s partition; nullptr when there is nothing to route by:
  // no table, a table of one member, an unassigned partition, or an address a client cannot dial
  // (a wildcard listen address).
  const std::string* primaryOf(std::string_view key) const;
  bool hasMember(const std::string& address) const;

 private:
  uint64_t epoch_ = 0;
  std::optional<partition::Partitioner> partitioner_;
  std::vector<uint64_t> primaries_;
  std::unordered_map<uint64_t, std::string> addresses_;  // routable members only
  std::vector<std::string> members_;                     // every member's address
};

}  // namespace shoal::client

// Where a Redis command runs in a cluster: here (every key it names is in a partition this member
// is primary of), at one other member (every key's partition has that primary: the command is
// sent there whole and its reply relayed), at every member (DBSIZE, FLUSHDB, KEYS: each answers
// for its own partitions and the replies are combined), or nowhere (keys on several members of a
// multi-key command: Redis Cluster's CROSSSLOT error). SCAN goes to the member owning the
// partition its cursor points into. Pure logic plus the interface the gateway calls the cluster
// through.
#pragma once

#include <kj/async.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/partition/partitioner.h"

namespace shoal::node::resp {

// The cluster as the RESP gateway sees it (implemented over node/src/cluster).
class ClusterAccess {
 public:
  virtual ~ClusterAccess() = default;
  virtual size_t memberCount() const = 0;
  virtual bool owns(partition::PartitionId p) const = 0;
  virtual std::optional<std::string> ownerAddress(partition::PartitionId p) const = 0;
  virtual std::vector<std::string> otherMemberAddresses() const = 0;
  // Why writes are refused here now (cluster.min-cluster-size), else nullopt.
  virtual std::optional<std::string> writesRefused() const = 0;
  // Runs `args` at the member at `address` and returns its RESP reply bytes. localOnly: answer
  // for that member's own partitions only (fan-out and SCAN), never route further. The reply is
  // in RESP `protocol` (2 or 3), the Redis client's.
  virtual kj::Promise<std::string> forward(const std::string& address, std::vector<std::string> args,
                                           bool localOnly, int protocol) = 0;
};

struct Route {
  enum class Kind { HERE, THERE, EVERYWHERE, REFUSE } kind = Kind::HERE;
  std::string address;  // THERE
  std::string error;    // REFUSE: the error reply (without '-')
};

// `lowerName` is the command name in lower case. `localOnly`: the command was routed here by
// another member; it must run here or be refused (TRYAGAIN), never go further.
Route routeCommand(std::string_view lowerName, const std::vector<std::string_view>& args,
                   const partition::Partitioner& partitioner, const ClusterAccess& cluster, bool localOnly);

// The keys a command names (none for keyless and cluster-wide commands).
std::vector<std::string_view> keysOfCommand(std::string_view lowerName,
                                            const std::vector<std::string_view>& args);

// Whether the command changes data (refused on the minority side of a network partition).
bool isWriteCommand(std::string_view lowerName);

// Combines the replies of every member to a fanned-out command (`mine` first). Any error wins.
std::string combineReplies(std::string_view lowerName, const std::vector<std::string>& replies);

// SCAN cursors in a cluster: partition id in the top 16 bits, the partition's own cursor below.
inline partition::PartitionId partitionOfCursor(uint64_t cursor) {
  return static_cast<partition::PartitionId>(cursor >> 48);
}

}  // namespace shoal::node::resp

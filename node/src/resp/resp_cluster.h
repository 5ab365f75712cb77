// The RESP gateway's view of the cluster (ClusterAccess over node/src/cluster), and the runner of
// Redis commands other members route to this one. Shard thread only.
#pragma once

#include <string>
#include <vector>

#include "../cluster/cluster.h"
#include "resp_commands.h"
#include "resp_routing.h"

namespace shoal::node::resp {

class ClusterGateway final : public ClusterAccess {
 public:
  ClusterGateway(cluster::Cluster& cluster, MapService& maps, std::string mapName, const Clock& clock,
                 std::string address);

  size_t memberCount() const override;
  bool owns(partition::PartitionId p) const override;
  std::optional<std::string> ownerAddress(partition::PartitionId p) const override;
  std::vector<std::string> otherMemberAddresses() const override;
  std::optional<std::string> writesRefused() const override;
  kj::Promise<std::string> forward(const std::string& address, const std::vector<std::string>& args,
                                   bool localOnly, int protocol) override;

  // Runs a command another member routed here; the reply is sent once its writes are stored and
  // replicated, in RESP `protocol`. A key this member does not own (the table moved meanwhile)
  // gets TRYAGAIN.
  kj::Promise<std::string> run(std::vector<std::string> args, int protocol);

 private:
  cluster::Cluster& cluster_;
  MapService& maps_;
  ServerStats stats_;
  Commands commands_;
  Session session_;
};

}  // namespace shoal::node::resp

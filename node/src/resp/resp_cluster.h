// The RESP gateway's view of the cluster (ClusterAccess over node/src/cluster), and the runner of
// Redis commands other members route to this one. Shard thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../cluster/cluster.h"
#include "resp_commands.h"
#include "resp_routing.h"

namespace shoal::node::resp {

class ClusterGateway final : public ClusterAccess, private kj::TaskSet::ErrorHandler {
 public:
  ClusterGateway(cluster::Cluster& cluster, MapService& maps, std::string mapName, const Clock& clock,
                 std::string address);
  ~ClusterGateway() noexcept override;

  size_t memberCount() const override;
  bool owns(partition::PartitionId p) const override;
  std::optional<std::string> ownerAddress(partition::PartitionId p) const override;
  std::vector<std::string> otherMemberAddresses() const override;
  std::optional<std::string> writesRefused() const override;
  // Queues the command; every command queued for a member in this turn of the loop goes there in
  // one call, in the order queued.
  kj::Promise<std::string> forward(const std::string& address, std::vector<std::string> args, bool localOnly,
                                   int protocol) override;

  // Runs commands another member routed here, in order; the replies are sent once their writes
  // are stored and replicated, each in its command's protocol. A key this member does not own
  // (the table moved meanwhile) gets TRYAGAIN.
  kj::Promise<std::vector<std::string>> run(std::vector<cluster::RespCall> calls);

 private:
  struct Run;  // one run() call's commands and replies
  kj::Promise<std::vector<std::string>> runFrom(std::shared_ptr<Run> run, size_t first);
  struct Queued {
    cluster::RespCall call;
    kj::Own<kj::PromiseFulfiller<std::string>> reply;
  };
  void flush();
  void send(const std::string& address, std::vector<Queued> batch);
  void taskFailed(kj::Exception&& exception) override;

  cluster::Cluster& cluster_;
  MapService& maps_;
  ServerStats stats_;
  Commands commands_;
  Session session_;
  std::map<std::string, std::vector<Queued>> queued_;  // by member address
  bool flushScheduled_ = false;
  kj::TaskSet tasks_;
};

}  // namespace shoal::node::resp

// The Cap'n Proto face of a member: wire::Member::Server. Translates calls into MapService
// operations on the shard thread. One instance serves every connection of a shard.
#pragma once

#include <cstdint>
#include <string>

#include "cluster/cluster.h"
#include "cluster_listeners.h"
#include "map_service.h"
#include "shoal/proto/shoal.capnp.h"
#include "topic/topic_hub.h"
#include "write_behind_driver.h"

namespace shoal::node {

struct MemberIdentity {
  std::string name;
  std::string address;
  int64_t startedAtMs;
};

class MemberService final : public wire::Member::Server {
 public:
  // `writeBehind` is null when the member has no data-dir (no map can be write-behind).
  MemberService(MapService& maps, cluster::Cluster& cluster, const MemberIdentity& identity,
                const Clock& clock, WriteBehindDriver* writeBehind, topic::TopicHub& topics,
                ClusterListeners& listeners)
      : maps_(maps),
        cluster_(cluster),
        identity_(identity),
        clock_(clock),
        writeBehind_(writeBehind),
        topics_(topics),
        listeners_(listeners) {}

  kj::Promise<void> execute(ExecuteContext context) override;
  kj::Promise<void> scan(ScanContext context) override;
  kj::Promise<void> addListener(AddListenerContext context) override;
  kj::Promise<void> ping(PingContext context) override;
  kj::Promise<void> listMaps(ListMapsContext context) override;
  kj::Promise<void> cluster(ClusterContext context) override;
  kj::Promise<void> peer(PeerContext context) override;
  // Write-behind administration (member_write_behind.cpp).
  kj::Promise<void> flushWriteBehind(FlushWriteBehindContext context) override;
  kj::Promise<void> listDeadLetters(ListDeadLettersContext context) override;
  kj::Promise<void> replayDeadLetters(ReplayDeadLettersContext context) override;
  // Topics (member_topics.cpp).
  kj::Promise<void> subscribe(SubscribeContext context) override;
  kj::Promise<void> listTopics(ListTopicsContext context) override;

 private:
  struct Routing;
  void fillMember(wire::MemberInfo::Builder out, const cluster::MemberEntry& member);
  // Applies the batch's ops owned here, in order, pausing for read-through loads; then waits for
  // the backups and the store.
  kj::Promise<void> applyFrom(ExecuteContext context, Routing& routing, uint32_t first);
  kj::Promise<void> finishLocal(ExecuteContext context, Routing& routing);
  // Sends the ops at `indices` to the member at `address`, which owns their partitions.
  kj::Promise<void> forwardTo(ExecuteContext context, const std::string& address,
                              std::vector<uint32_t> indices);
  // Tells the topic hub which of the batch's publishes are committed (replicated, stored).
  void notifyPublished(ExecuteContext context, const Routing& routing);
  static bool isLocal(const Routing& routing, uint32_t i);
  // size / clear: adds what every other member counts for its own partitions.
  kj::Promise<void> fanOut(ExecuteContext context, std::vector<uint32_t> indices);

  MapService& maps_;
  cluster::Cluster& cluster_;
  const MemberIdentity& identity_;
  const Clock& clock_;
  WriteBehindDriver* writeBehind_;
  topic::TopicHub& topics_;
  ClusterListeners& listeners_;
  uint64_t opsForwarded_ = 0;  // ops sent on to their owner (MemberInfo.opsForwarded)
};

}  // namespace shoal::node

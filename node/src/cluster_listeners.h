// Cluster-wide entry listeners. A listener added at this member (its home) hears the events of the
// partitions this member is primary of (ListenerHub); this class registers the same listener
// capability at every other member of the view ("local only" there), so it hears every partition
// wherever its primary is — also after failover and migration, since every member already has it.
// Registrations follow the view: a member that joins gets them, a member that leaves drops them
// with its connection. Events from another member travel to the listener through this member's
// connection (Cap'n Proto proxies the capability), in that member's order. Shard thread only.
#pragma once

#include <kj/async.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::node {

namespace cluster {
class Cluster;
}

class ClusterListeners final : private kj::TaskSet::ErrorHandler {
 public:
  explicit ClusterListeners(cluster::Cluster& cluster);
  ~ClusterListeners();

  // One listener's registrations at the other members; dropping it cancels them.
  class Fanout;
  struct Added {
    std::shared_ptr<Fanout> fanout;
    kj::Promise<void> registered;  // once every member of the view answered (or failed) the first time
  };
  Added add(std::string map, wire::EntryListener::Client listener, bool includeValues);
  // Registers live listeners at members that joined, forgets the ones at members that left.
  void onView(const cluster::View& current);

 private:
  // Resolves after the first attempt (failures are retried in the background while `member` stays).
  kj::Promise<void> registerAt(const std::shared_ptr<Fanout>& f, cluster::MemberId member,
                               const std::string& address);
  void taskFailed(kj::Exception&& e) override;

  cluster::Cluster& cluster_;
  std::vector<std::weak_ptr<Fanout>> fanouts_;
  kj::TaskSet tasks_;
};

class ClusterListeners::Fanout {
 public:
  Fanout(std::string map, wire::EntryListener::Client listener, bool includeValues)
      : map_(std::move(map)), listener_(kj::mv(listener)), includeValues_(includeValues) {}

 private:
  friend class ClusterListeners;
  std::string map_;
  wire::EntryListener::Client listener_;
  bool includeValues_;
  // Per member: the address it was registered at, and its registration once granted.
  struct At {
    std::string address;
    kj::Maybe<wire::Registration::Client> registration;
  };
  std::map<cluster::MemberId, At> at_;
};

}  // namespace shoal::node

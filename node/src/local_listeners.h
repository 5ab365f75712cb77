// Entry listeners of the embedding API (Node::map(...).addListener), on the shard thread. Each is
// a plain callback in this member's ListenerHub (the partitions it is primary of) and, through
// ClusterListeners, a registration at every other member for theirs, whose events arrive here as
// calls and go to the same callback on the event thread. A registration another member cut off
// (the listener fell too far behind) is made again; events meanwhile are not replayed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cluster_listeners.h"
#include "map_service.h"
#include "shoal/types.h"

namespace shoal::node {

class LocalListeners {
 public:
  using PostEvent = std::function<void(std::function<void()>)>;
  LocalListeners(MapService& maps, ClusterListeners& cluster, PostEvent postEvent);
  ~LocalListeners();

  // Returns the listener's id once the other members have it (or failed to answer once).
  kj::Promise<uint64_t> add(const std::string& map, shoal::EntryListener fn, bool includeValues);
  void remove(uint64_t id);

 private:
  class Receiver;
  struct Entry {
    std::string map;
    shoal::EntryListener fn;
    bool includeValues;
    std::shared_ptr<ClusterListeners::Fanout> fanout;
  };
  void registerElsewhere(uint64_t id, Entry& entry, kj::Promise<void>* registered);

  MapService& maps_;
  ClusterListeners& cluster_;
  PostEvent postEvent_;
  std::map<uint64_t, Entry> entries_;      // by the hub's listener id
  std::shared_ptr<LocalListeners*> self_;  // receivers reach this object while it lives
};

}  // namespace shoal::node

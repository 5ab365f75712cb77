// Embedded entry listeners across the cluster; see local_listeners.h.
#include "local_listeners.h"

#include "listener_hub.h"
#include "member_log.h"

namespace shoal::node {
namespace {

shoal::EntryEventType publicType(wire::EventType type) {
  switch (type) {
    case wire::EventType::ADDED:
      return shoal::EntryEventType::ADDED;
    case wire::EventType::UPDATED:
      return shoal::EntryEventType::UPDATED;
    case wire::EventType::REMOVED:
      return shoal::EntryEventType::REMOVED;
    case wire::EventType::EXPIRED:
      return shoal::EntryEventType::EXPIRED;
    case wire::EventType::EVICTED:
      return shoal::EntryEventType::EVICTED;
  }
  return shoal::EntryEventType::UPDATED;
}

std::string stringOf(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}

}  // namespace

// What the other members call with the events of their partitions.
class LocalListeners::Receiver final : public wire::EntryListener::Server {
 public:
  Receiver(std::weak_ptr<LocalListeners*> owner, uint64_t id, shoal::EntryListener fn, PostEvent post)
      : owner_(std::move(owner)), id_(id), fn_(std::move(fn)), post_(std::move(post)) {}

  kj::Promise<void> onEvents(OnEventsContext context) override {
    std::vector<shoal::EntryEvent> events;
    for (auto e : context.getParams().getEvents()) {
      events.push_back(shoal::EntryEvent{publicType(e.getType()), e.getMap(), stringOf(e.getKey()),
                                         stringOf(e.getValue()), stringOf(e.getOldValue()), e.getVersion()});
    }
    // The call returns once the callbacks ran: a slow listener slows that member's stream.
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    auto done = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>(kj::mv(paf.fulfiller));
    post_([fn = fn_, events = std::move(events), done]() {
      for (auto& e : events) {
        try {
          fn(e);
        } catch (const std::exception& x) {
          memberLog().warn("entry listener on map '{}' threw: {}", e.map, x.what());
        } catch (...) {
          memberLog().warn("entry listener on map '{}' threw", e.map);
        }
      }
      (*done)->fulfill();
    });
    return kj::mv(paf.promise);
  }

  kj::Promise<void> onClosed(OnClosedContext context) override {
    memberLog().warn("embedded listener {} was cut off by another member ({}); registering it again", id_,
                     context.getParams().getReason().getMessage().cStr());
    auto owner = owner_.lock();
    if (owner && *owner) {
      auto it = (*owner)->entries_.find(id_);
      if (it != (*owner)->entries_.end()) (*owner)->registerElsewhere(id_, it->second, nullptr);
    }
    return kj::READY_NOW;
  }

 private:
  std::weak_ptr<LocalListeners*> owner_;
  uint64_t id_;
  shoal::EntryListener fn_;
  PostEvent post_;
};

LocalListeners::LocalListeners(MapService& maps, ClusterListeners& cluster, PostEvent postEvent)
    : maps_(maps),
      cluster_(cluster),
      postEvent_(std::move(postEvent)),
      self_(std::make_shared<LocalListeners*>(this)) {}

LocalListeners::~LocalListeners() {
  *self_ = nullptr;
}

kj::Promise<uint64_t> LocalListeners::add(const std::string& map, shoal::EntryListener fn,
                                          bool includeValues) {
  auto id = maps_.hub(map)->addLocal(fn, includeValues);
  auto& entry = entries_[id];
  entry = Entry{map, std::move(fn), includeValues, nullptr};
  kj::Promise<void> registered = kj::READY_NOW;
  registerElsewhere(id, entry, &registered);
  return registered.then([id]() { return id; });
}

void LocalListeners::registerElsewhere(uint64_t id, Entry& entry, kj::Promise<void>* registered) {
  wire::EntryListener::Client receiver = kj::heap<Receiver>(self_, id, entry.fn, postEvent_);
  auto added = cluster_.add(entry.map, kj::mv(receiver), entry.includeValues);
  entry.fanout = added.fanout;  // replaces (and so cancels) the previous registrations, if any
  if (registered) *registered = kj::mv(added.registered);
}

void LocalListeners::remove(uint64_t id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    maps_.hub(it->second.map)->remove(id);
    entries_.erase(it);
  }
}

}  // namespace shoal::node

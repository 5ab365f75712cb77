// Entry-event fan-out; see listener_hub.h.
#include "listener_hub.h"

#include "member_log.h"

namespace shoal::node {
namespace {

constexpr size_t EVENTS_PER_CALL = 512;  // events in one onEvents call

struct OwnedEvent {
  EntryEventType type;
  std::string key, value, oldValue;
  uint64_t version;
};

wire::EventType toWire(EntryEventType type) {
  switch (type) {
    case EntryEventType::ADDED:
      return wire::EventType::ADDED;
    case EntryEventType::UPDATED:
      return wire::EventType::UPDATED;
    case EntryEventType::REMOVED:
      return wire::EventType::REMOVED;
    case EntryEventType::EXPIRED:
      return wire::EventType::EXPIRED;
    case EntryEventType::EVICTED:
      return wire::EventType::EVICTED;
  }
  return wire::EventType::ADDED;
}

shoal::EntryEventType toPublic(EntryEventType type) {
  return static_cast<shoal::EntryEventType>(static_cast<int>(type));
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

}  // namespace

struct ListenerHub::Remote {
  wire::EntryListener::Client cap;
  bool includeValues;
  std::deque<OwnedEvent> queue;
  bool inFlight = false;
};

ListenerHub::ListenerHub(std::string mapName, uint32_t bufferLimit,
                         std::function<void(std::function<void()>)> postEvent)
    : mapName_(std::move(mapName)),
      bufferLimit_(bufferLimit),
      postEvent_(std::move(postEvent)),
      tasks_(*this) {}

ListenerHub::~ListenerHub() = default;

uint64_t ListenerHub::addRemote(wire::EntryListener::Client listener, bool includeValues) {
  auto id = nextId_++;
  auto remote = std::make_unique<Remote>(Remote{kj::mv(listener), includeValues, {}, false});
  remotes_.emplace(id, std::move(remote));
  return id;
}

uint64_t ListenerHub::addLocal(shoal::EntryListener listener, bool includeValues) {
  auto id = nextId_++;
  locals_.emplace(id, Local{std::move(listener), includeValues});
  return id;
}

void ListenerHub::remove(uint64_t id) {
  remotes_.erase(id);
  locals_.erase(id);
}

void ListenerHub::publish(const EntryEvent& event) {
  for (auto& [id, local] : locals_) {
    shoal::EntryEvent copy{toPublic(event.type),
                           mapName_,
                           std::string(event.key),
                           local.includeValues ? std::string(event.value) : std::string(),
                           local.includeValues ? std::string(event.oldValue) : std::string(),
                           event.version};
    postEvent_([fn = local.fn, copy = std::move(copy)] {
      try {
        fn(copy);
      } catch (const std::exception& e) {
        memberLog().warn("entry listener on map '{}' threw: {}", copy.map, e.what());
      }
    });
  }
  std::vector<uint64_t> overflowing;
  for (auto& [id, remote] : remotes_) {
    if (remote->queue.size() >= bufferLimit_) {
      overflowing.push_back(id);
      continue;
    }
    remote->queue.push_back(OwnedEvent{
        event.type, std::string(event.key), remote->includeValues ? std::string(event.value) : std::string(),
        remote->includeValues ? std::string(event.oldValue) : std::string(), event.version});
    if (!remote->inFlight) pump(id);
  }
  for (auto id : overflowing) {
    cutOff(id, wire::ErrorCode::OVERLOADED,
           "listener on map '" + mapName_ + "' fell " + std::to_string(bufferLimit_) +
               " events behind (limits.listener-buffer-events); add it again to resume");
  }
}

void ListenerHub::pump(uint64_t id) {
  auto it = remotes_.find(id);
  if (it == remotes_.end()) return;
  auto& remote = *it->second;
  if (remote.queue.empty()) {
    remote.inFlight = false;
    return;
  }
  remote.inFlight = true;
  auto request = remote.cap.onEventsRequest();
  auto n = std::min(remote.queue.size(), EVENTS_PER_CALL);
  auto events = request.initEvents(n);
  for (size_t i = 0; i < n; ++i) {
    auto& e = remote.queue.front();
    auto out = events[i];
    out.setType(toWire(e.type));
    out.setMap(mapName_);
    out.setKey(bytesOf(e.key));
    out.setValue(bytesOf(e.value));
    out.setOldValue(bytesOf(e.oldValue));
    out.setVersion(e.version);
    remote.queue.pop_front();
  }
  std::weak_ptr<ListenerHub> weak = weak_from_this();
  tasks_.add(request.send().then(
      [weak, id]() {
        if (auto hub = weak.lock()) hub->pump(id);
      },
      [weak, id](kj::Exception&& e) {
        // The client went away: drop the listener quietly; a disconnect is not an error here.
        if (auto hub = weak.lock()) hub->remotes_.erase(id);
      }));
}

void ListenerHub::cutOff(uint64_t id, wire::ErrorCode code, const std::string& reason) {
  auto it = remotes_.find(id);
  if (it == remotes_.end()) return;
  memberLog().warn("closing listener {} on map '{}': {}", id, mapName_, reason);
  auto request = it->second->cap.onClosedRequest();
  request.initReason().setCode(code);
  request.getReason().setMessage(reason);
  tasks_.add(request.send().ignoreResult().catch_([](kj::Exception&&) {}));
  remotes_.erase(it);
}

void ListenerHub::closeAll(const std::string& reason) {
  std::vector<uint64_t> ids;
  for (auto& [id, _] : remotes_) ids.push_back(id);
  for (auto id : ids) cutOff(id, wire::ErrorCode::UNAVAILABLE, reason);
  locals_.clear();
}

void ListenerHub::taskFailed(kj::Exception&& exception) {
  memberLog().debug("listener task on map '{}' failed: {}", mapName_, exception.getDescription().cStr());
}

RegistrationImpl::~RegistrationImpl() {
  if (auto hub = hub_.lock()) hub->remove(id_);
}

kj::Promise<void> RegistrationImpl::cancel(CancelContext context) {
  if (auto hub = hub_.lock()) hub->remove(id_);
  fanout_ = nullptr;
  return kj::READY_NOW;
}

}  // namespace shoal::node

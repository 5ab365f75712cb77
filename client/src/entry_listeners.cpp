// Entry listeners: registration at the home member, re-registration, event delivery; see
// entry_listeners.h.
#include "entry_listeners.h"

#include <kj/debug.h>

#include <atomic>
#include <cstdio>

#include "shoal/wire_error_code.h"
#include "wire_conversion.h"

namespace shoal::client {
namespace {

// The listener and whether it may still be called; shared with the event thread.
struct Callback {
  explicit Callback(EntryListener f) : fn(std::move(f)) {}
  EntryListener fn;
  std::atomic<bool> active{true};
};

}  // namespace

struct EntryListeners::Listener {
  ListenerId id = 0;
  std::string map;
  bool includeValues = true;
  std::shared_ptr<Callback> callback;
  uint64_t attempt = 0;  // +1 per registration; calls from an older one's receiver are ignored
  uint32_t failures = 0;
  bool registered = false;
  bool everRegistered = false;
  kj::Maybe<wire::Registration::Client> registration;  // dropping it removes it on the member
  uint64_t connectionId = 0;
  std::optional<Error> lastProblem;
  kj::Own<kj::PromiseFulfiller<std::shared_ptr<const Error>>> started;  // add()'s promise, until resolved
};

// Receives one registration's events.
class EntryListeners::Receiver final : public wire::EntryListener::Server {
 public:
  Receiver(std::shared_ptr<EntryListeners*> owner, ListenerId id, uint64_t attempt)
      : owner_(std::move(owner)), id_(id), attempt_(attempt) {}
  kj::Promise<void> onEvents(OnEventsContext context) override {
    if (*owner_ != nullptr) (*owner_)->onEvents(id_, attempt_, context.getParams().getEvents());
    return kj::READY_NOW;
  }
  kj::Promise<void> onClosed(OnClosedContext context) override {
    if (*owner_ != nullptr) (*owner_)->onClosed(id_, attempt_, context.getParams().getReason());
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<EntryListeners*> owner_;
  ListenerId id_;
  uint64_t attempt_;
};

EntryListeners::EntryListeners(RegistrationHost& host)
    : host_(host), self_(std::make_shared<EntryListeners*>(this)), tasks_(*this) {}

EntryListeners::~EntryListeners() {
  *self_ = nullptr;
  closeAll();
}

void EntryListeners::taskFailed(kj::Exception&& e) {
  // Every task handles its own failures; reaching here is a bug worth seeing.
  fprintf(stderr, "shoal client: unexpected listener task failure: %s\n", e.getDescription().cStr());
}

kj::Promise<std::shared_ptr<const Error>> EntryListeners::add(std::string map, EntryListener fn,
                                                              bool includeValues, ListenerId& idOut) {
  auto l = std::make_unique<Listener>();
  l->id = idOut = nextId_++;
  l->map = std::move(map);
  l->includeValues = includeValues;
  l->callback = std::make_shared<Callback>(std::move(fn));
  auto paf = kj::newPromiseAndFulfiller<std::shared_ptr<const Error>>();
  l->started = kj::mv(paf.fulfiller);
  auto& ref = *l;
  listeners_[l->id] = std::move(l);
  attempt(ref);
  return kj::mv(paf.promise);
}

std::optional<Error> EntryListeners::lastProblem(ListenerId id) const {
  auto it = listeners_.find(id);
  return it == listeners_.end() ? std::nullopt : it->second->lastProblem;
}

void EntryListeners::remove(ListenerId id) {
  auto it = listeners_.find(id);
  if (it == listeners_.end()) return;
  it->second->callback->active = false;
  listeners_.erase(it);
}

void EntryListeners::closeAll() {
  for (auto& [id, l] : listeners_) l->callback->active = false;
  listeners_.clear();
}

EntryListeners::Listener* EntryListeners::find(ListenerId id, uint64_t attempt) {
  auto it = listeners_.find(id);
  if (it == listeners_.end() || it->second->attempt != attempt) return nullptr;
  return it->second.get();
}

void EntryListeners::attempt(Listener& l) {
  auto id = l.id;
  auto attempt = ++l.attempt;
  auto timeout = host_.callTimeout();
  tasks_.add(host_.home()
                 .then([this, id, attempt](RegistrationHost::Home home) -> kj::Promise<void> {
                   auto* l = find(id, attempt);
                   if (l == nullptr) return kj::READY_NOW;
                   auto request = home.member.addListenerRequest();
                   request.setMap(l->map);
                   request.setIncludeValues(l->includeValues);
                   request.setListener(kj::heap<Receiver>(self_, id, attempt));
                   auto connectionId = home.connectionId;
                   return request.send().then([this, id, attempt, connectionId](
                                                  capnp::Response<wire::Member::AddListenerResults>&& r) {
                     auto* l = find(id, attempt);
                     if (l == nullptr) return;
                     l->registration = r.getRegistration();
                     l->connectionId = connectionId;
                     l->registered = l->everRegistered = true;
                     l->failures = 0;
                     l->lastProblem.reset();
                     if (l->started) {
                       l->started->fulfill(nullptr);
                       l->started = nullptr;
                     }
                   });
                 })
                 .exclusiveJoin(host_.timer()
                                    .afterDelay(timeout.count() * kj::MILLISECONDS)
                                    .then([this, id, attempt, timeout]() {
                                      onAttemptFailed(id, attempt,
                                                      Error(ErrorCode::TIMEOUT,
                                                            "no answer to addListener within " +
                                                                std::to_string(timeout.count()) + " ms"));
                                    }))
                 .catch_([this, id, attempt](kj::Exception&& e) {
                   onAttemptFailed(id, attempt, errorOfCall(e, "the home member"));
                 }));
}

void EntryListeners::onAttemptFailed(ListenerId id, uint64_t attempt, const Error& error) {
  auto* l = find(id, attempt);
  if (l == nullptr) return;
  l->lastProblem = error;
  auto code = error.code();
  bool final = code == ErrorCode::INVALID_ARGUMENT || code == ErrorCode::TOO_LARGE ||
               code == ErrorCode::UNAUTHORIZED || (!l->everRegistered && code == ErrorCode::INTERNAL);
  if (!final) {
    restart(*l, error.what());
    return;
  }
  if (l->started) l->started->fulfill(std::make_shared<const Error>(error));
  host_.debug("map '" + l->map + "': listener " + std::to_string(id) + " dropped: " + error.what());
  l->callback->active = false;
  listeners_.erase(id);
}

void EntryListeners::restart(Listener& l, const std::string& why) {
  l.registration = nullptr;
  l.registered = false;
  auto id = l.id;
  auto attempt = ++l.attempt;
  auto delay = host_.backoff(l.failures++);
  host_.debug("map '" + l.map + "': listener " + std::to_string(id) + " registers again in " +
              std::to_string(delay.count()) + " ms: " + why);
  tasks_.add(host_.timer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, id, attempt]() {
    if (auto* l = find(id, attempt)) this->attempt(*l);
  }));
}

void EntryListeners::connectionLost(uint64_t connectionId) {
  std::vector<Listener*> lost;
  for (auto& [id, l] : listeners_) {
    if (l->registered && l->connectionId == connectionId) lost.push_back(l.get());
  }
  for (auto* l : lost) restart(*l, "the connection it was registered on was lost");
}

void EntryListeners::onEvents(ListenerId id, uint64_t attempt, capnp::List<wire::EntryEvent>::Reader list) {
  auto* l = find(id, attempt);
  if (l == nullptr) return;
  std::vector<shoal::EntryEvent> events;
  events.reserve(list.size());
  for (auto e : list) {
    events.push_back(shoal::EntryEvent{publicType(e.getType()), e.getMap(), stringOf(e.getKey()),
                                       stringOf(e.getValue()), stringOf(e.getOldValue()), e.getVersion()});
  }
  auto shared = std::make_shared<std::vector<shoal::EntryEvent>>(std::move(events));
  host_.postEvent([callback = l->callback, shared] {
    for (auto& e : *shared) {
      if (!callback->active) return;
      try {
        callback->fn(e);
      } catch (...) {
        // A throwing listener must not stop the others or the client.
      }
    }
  });
}

void EntryListeners::onClosed(ListenerId id, uint64_t attempt, wire::Failure::Reader reason) {
  // The member cut this listener off (it fell behind, or the member is stopping): register again
  // so events keep flowing.
  if (auto* l = find(id, attempt))
    restart(*l, std::string("closed by the member: ") + reason.getMessage().cStr());
}

}  // namespace shoal::client

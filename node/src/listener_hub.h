// Fan-out of one map's entry events to its listeners: remote ones (Cap'n Proto callbacks, pushed
// in order, one call in flight, bounded queue then cut off) and embedded ones (std::function run
// in order on the member's event thread). Lives on the shard thread.
#pragma once

#include <kj/async.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "record_store.h"
#include "shoal/node/node.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::node {

class ListenerHub : public std::enable_shared_from_this<ListenerHub>, private kj::TaskSet::ErrorHandler {
 public:
  // `postEvent` runs a function on the event thread (embedded listeners never run on the shard).
  ListenerHub(std::string mapName, uint32_t bufferLimit,
              std::function<void(std::function<void()>)> postEvent);
  ~ListenerHub();

  uint64_t addRemote(wire::EntryListener::Client listener, bool includeValues);
  uint64_t addLocal(shoal::EntryListener listener, bool includeValues);
  void remove(uint64_t id);
  bool empty() const { return remotes_.empty() && locals_.empty(); }

  void publish(const EntryEvent& event);
  // Tells remote listeners the member is stopping, drops all listeners.
  void closeAll(const std::string& reason);

 private:
  struct Remote;
  struct Local {
    shoal::EntryListener fn;
    bool includeValues;
  };
  void pump(uint64_t id);
  void cutOff(uint64_t id, wire::ErrorCode code, const std::string& reason);

  std::string mapName_;
  uint32_t bufferLimit_;
  std::function<void(std::function<void()>)> postEvent_;
  std::map<uint64_t, std::unique_ptr<Remote>> remotes_;
  std::map<uint64_t, Local> locals_;
  uint64_t nextId_ = 1;
  kj::TaskSet tasks_;
  void taskFailed(kj::Exception&& exception) override;
};

// The capability a remote listener holds; dropping it (or cancel()) removes the listener, here
// and (`fanout`, its registrations at the other members) everywhere else.
class RegistrationImpl final : public wire::Registration::Server {
 public:
  RegistrationImpl(std::weak_ptr<ListenerHub> hub, uint64_t id, std::shared_ptr<void> fanout = nullptr)
      : hub_(std::move(hub)), id_(id), fanout_(std::move(fanout)) {}
  ~RegistrationImpl();
  kj::Promise<void> cancel(CancelContext context) override;

 private:
  std::weak_ptr<ListenerHub> hub_;
  uint64_t id_;
  std::shared_ptr<void> fanout_;
};

}  // namespace shoal::node

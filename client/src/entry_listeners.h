// Entry listeners, on the client's I/O thread: each is registered at the home member and
// registered again (after a backoff, without end while the client is open) when the connection it
// was registered on is lost or the member cuts it off. Events that happen meanwhile are not
// replayed. Events go to the event thread in the order the member sent them.
#pragma once

#include <kj/async.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "registration_host.h"
#include "shoal/error.h"
#include "shoal/types.h"

namespace shoal::client {

class EntryListeners final : private kj::TaskSet::ErrorHandler {
 public:
  explicit EntryListeners(RegistrationHost& host);
  ~EntryListeners();
  EntryListeners(const EntryListeners&) = delete;
  EntryListeners& operator=(const EntryListeners&) = delete;

  // Starts registering a listener and sets `idOut` at once. The promise resolves when the member
  // has registered it (null), or with the error that ends it before that (a rejected request).
  // Retriable failures are retried without end: the caller bounds the wait and calls remove().
  kj::Promise<std::shared_ptr<const Error>> add(std::string map, EntryListener fn, bool includeValues,
                                                ListenerId& idOut);
  std::optional<Error> lastProblem(ListenerId id) const;
  // Removes it (dropping the registration removes it on the member); events not yet handed to
  // the listener are dropped.
  void remove(ListenerId id);
  // The connection `connectionId` is gone: listeners registered on it are registered again.
  void connectionLost(uint64_t connectionId);
  void closeAll();
  bool empty() const { return listeners_.empty(); }

 private:
  struct Listener;
  class Receiver;

  void taskFailed(kj::Exception&& e) override;
  Listener* find(ListenerId id, uint64_t attempt);
  void attempt(Listener& l);
  void onAttemptFailed(ListenerId id, uint64_t attempt, const Error& error);
  void restart(Listener& l, const std::string& why);
  void onEvents(ListenerId id, uint64_t attempt, capnp::List<wire::EntryEvent>::Reader events);
  void onClosed(ListenerId id, uint64_t attempt, wire::Failure::Reader reason);

  RegistrationHost& host_;
  // Receivers (owned by the RPC system, which may outlive this object) reach it through this.
  std::shared_ptr<EntryListeners*> self_;
  std::map<ListenerId, std::unique_ptr<Listener>> listeners_;
  ListenerId nextId_ = 1;
  kj::TaskSet tasks_;
};

}  // namespace shoal::client

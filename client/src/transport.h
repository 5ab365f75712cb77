// The client's I/O side: one KJ event-loop thread holding the member connections. Callers on any
// thread submit operations into an inbox; the I/O thread routes each keyed operation to the queue
// of its partition's primary (by the partition table it learns from the members; through the
// "home" member, which forwards, when the table or the owner is unknown or unreachable) and sends
// each member's queue in batches — at once when no call is in flight, otherwise when the call in
// flight returns or a batch fills. Deadlines, retries with backoff (same request id), reconnects,
// table refreshes and the circuit breakers (one per member) live here too.
#pragma once

#include <kj/async-io.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "operation.h"
#include "registration_host.h"
#include "shoal/client/client.h"
#include "shoal/client/options.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::client {

class Transport {
 public:
  explicit Transport(const ClientOptions& options);
  ~Transport();
  void close();

  const ClientOptions& options() const { return options_; }

  // Any thread. The operation's `done` runs on the I/O thread exactly once.
  void submit(std::unique_ptr<Operation> op);
  // Throws INVALID_ARGUMENT when called on the I/O thread (a blocking call there would deadlock).
  void requireNotIoThread(const char* what) const;

  // Runs `fn` against the connected member on the I/O thread and waits for its result, retrying
  // after a disconnect until `timeout` passes. For idempotent calls (ping, scan, listings).
  // `fn` stores its result in variables the caller captured.
  void call(std::function<kj::Promise<void>(wire::Member::Client&)> fn, std::chrono::milliseconds timeout);

  // Entry listeners and topic subscriptions (entry_listeners.h, subscriptions.h): each waits until
  // the member took the registration, or throws (INVALID_ARGUMENT; TIMEOUT / UNAVAILABLE after
  // requestTimeout, and then forgets it). Removal never blocks on the network.
  ListenerId addListener(const std::string& map, EntryListener listener, bool includeValues);
  void removeListener(ListenerId id);
  SubscriptionId subscribe(const std::string& topic, TopicHandler handler, SubscribeFrom from);
  // A pattern subscription (pattern_subscriptions.h): waits for the first listing and the
  // subscriptions of the topics it matched. unsubscribe() ends either kind.
  SubscriptionId subscribePattern(const std::string& pattern, TopicHandler handler);
  void unsubscribe(SubscriptionId id);

  // Fetches the partition table from the home member and waits for it (at connect). Keyed
  // operations go through the home member until a table is known; failures are not errors.
  void learnTable(std::chrono::milliseconds timeout);

 private:
  struct Link;
  struct Io;
  class Host;

  void ioMain(std::promise<void>& ready);
  kj::Promise<void> waitForWork();
  void drainInbox();
  void route(std::unique_ptr<Operation> op);
  Link* ownerLink(const Operation& op);
  Link& linkFor(const std::string& address);
  void reroute(Link& link);
  void pumpAll();
  std::vector<Link*> allLinks() const;
  Link& homeLink();
  void moveHome(Link& failed);
  void refreshTable(Link* via);
  void applyTable(wire::Member::ClusterResults::Reader r);
  void ensureConnected(Link& link);
  void connect(Link& link);
  void onConnected(Link& link, kj::Own<kj::AsyncIoStream> stream);
  void onConnectFailed(Link& link, const kj::Exception& e);
  void onReady(Link& link);
  void disconnect(Link& link, const std::string& why);
  void scheduleReconnect(Link& link);
  void pump(Link& link);
  void sendBatch(Link& link);
  void onBatchDone(Link& link, uint64_t generation, std::vector<std::unique_ptr<Operation>>& ops,
                   wire::Member::ExecuteResults::Reader results);
  void onBatchFailed(Link& link, uint64_t generation, std::vector<std::unique_ptr<Operation>>& ops,
                     const kj::Exception& e);
  void onBatchTimedOut(Link& link, uint64_t generation, std::vector<std::unique_ptr<Operation>>& ops);
  void retryLater(std::unique_ptr<Operation> op, const Error& cause);
  void requeueFront(Link& link, std::vector<std::unique_ptr<Operation>>& ops, const Error& cause);
  void complete(std::unique_ptr<Operation>& op, Result<Outcome> result);
  void failAll(Link& link, const Error& error);
  void tick();
  kj::Promise<void> tickLoop();
  kj::Promise<RegistrationHost::Home> whenReady(Link& link);
  // Runs `start` (which sets the registration's id) on the I/O thread and waits up to
  // requestTimeout for the registration; on failure `cancel(id)` forgets it and the error is thrown.
  uint64_t awaitRegistration(
      const char* what, std::function<kj::Promise<std::shared_ptr<const Error>>(Io&, uint64_t& id)> start,
      std::function<std::optional<Error>(Io&, uint64_t id)> lastProblem,
      std::function<void(Io&, uint64_t id)> cancel);
  std::chrono::milliseconds backoff(uint32_t attempt);
  kj::Promise<void> callWithRetry(std::function<kj::Promise<void>(wire::Member::Client&)> fn,
                                  Clock::time_point deadline);

  ClientOptions options_;
  uint64_t clientId_;
  std::atomic<uint64_t> nextTrace_{1};

  std::mutex inboxMutex_;
  std::vector<std::unique_ptr<Operation>> inbox_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> wake_;  // under inboxMutex_
  bool closed_ = false;                                  // under inboxMutex_
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop_;  // under inboxMutex_

  std::thread ioThread_;
  std::thread::id ioThreadId_;
  kj::Own<const kj::Executor> executor_;
  boost::asio::thread_pool eventThread_{1};

  // I/O-thread state.
  Io* io_ = nullptr;
};

}  // namespace shoal::client

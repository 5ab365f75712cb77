// Topic subscriptions, on the client's I/O thread. Each is made at the home member (which passes
// it on to the topic's owner) and watched: the member's onClosed (wrong owner, stopping), a
// position() check every 500 ms that fails or takes over 1.5 s (the owner died), and the loss of
// the connection it was made through all make it again, after a backoff, from the next sequence
// number it expects — without end while the client is open. Only a cut-off for falling behind
// (or a request the members reject as invalid) ends it, through the handler's onClosed.
//
// Invariants, per subscription: `next` is the sequence number after the last message handed to
// the event thread; a message below it is dropped (never delivered twice), a jump past it is
// reported as a gap (never a silent skip); only the current attempt's subscriber is listened to.
// Delivery is flow-controlled: a batch is acknowledged to the member at once while at most a few
// (BATCHES_AHEAD) wait for the event thread, and otherwise once the oldest of them ran its
// callbacks, so a slow handler slows the owner's stream instead of filling the client's memory.
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

class Subscriptions final : private kj::TaskSet::ErrorHandler {
 public:
  explicit Subscriptions(RegistrationHost& host);
  ~Subscriptions();
  Subscriptions(const Subscriptions&) = delete;
  Subscriptions& operator=(const Subscriptions&) = delete;

  // Starts a subscription and sets `idOut` at once. The promise resolves when the topic's owner
  // has taken it (null), or with the error that ends it before that (a rejected request).
  // Retriable failures are retried without end: the caller bounds the wait and calls remove().
  kj::Promise<std::shared_ptr<const Error>> add(std::string topic, TopicHandler handler, SubscribeFrom from,
                                                SubscriptionId& idOut);
  // The last failure of `id`'s attempts (to explain a timeout), if any.
  std::optional<Error> lastProblem(SubscriptionId id) const;
  // Ends it without calling onClosed; callbacks not yet started are dropped.
  void remove(SubscriptionId id);
  // The connection `connectionId` is gone: subscriptions made through it are made again.
  void connectionLost(uint64_t connectionId);
  // Ends every subscription, as remove() does.
  void closeAll();
  bool empty() const { return subscriptions_.empty(); }
  // An id from the subscriptions' own counter, for a registration made of several (a pattern).
  SubscriptionId reserveId() { return nextId_++; }

 private:
  struct Subscription;
  struct Event;
  class Subscriber;

  void taskFailed(kj::Exception&& e) override;
  Subscription* find(SubscriptionId id, uint64_t attempt);
  void attempt(Subscription& s);
  void onSubscribed(SubscriptionId id, uint64_t attempt, uint64_t connectionId, uint64_t next,
                    wire::TopicSubscription::Client subscription);
  void onAttemptFailed(SubscriptionId id, uint64_t attempt, const Error& error);
  void restart(Subscription& s, const std::string& why);
  void finish(Subscription& s, const Error& reason, uint64_t next);
  kj::Promise<void> onMessages(SubscriptionId id, uint64_t attempt,
                               capnp::List<wire::TopicMessage>::Reader list);
  kj::Promise<void> onGap(SubscriptionId id, uint64_t attempt, uint64_t from, uint64_t to);
  void onClosed(SubscriptionId id, uint64_t attempt, wire::Failure::Reader reason, uint64_t next);
  kj::Promise<void> deliver(Subscription& s, std::vector<Event> events);
  kj::Promise<void> positionLoop();
  void checkPositions();
  void positionFailed(SubscriptionId id, uint64_t attempt, const std::string& why);

  RegistrationHost& host_;
  // Subscribers (owned by the RPC system, which may outlive this object) reach it through this.
  std::shared_ptr<Subscriptions*> self_;
  std::map<SubscriptionId, std::unique_ptr<Subscription>> subscriptions_;
  SubscriptionId nextId_ = 1;
  kj::TaskSet tasks_;
  kj::Promise<void> positions_;
};

}  // namespace shoal::client

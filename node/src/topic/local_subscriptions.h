// Subscriptions made through the embedding API (Node::topic(...).subscribe). Each one subscribes
// through the member's own RPC face (so it reaches the topic's owner wherever it is), runs the
// host's callbacks on the member's event thread in sequence order (the next batch is taken only
// once the callbacks of the previous one ran: a slow callback slows delivery, never grows memory),
// and resumes from its next sequence number when the topic moves or its owner dies (a position
// check every 500 ms notices a dead owner). Shard thread only.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "shoal/proto/shoal.capnp.h"
#include "shoal/types.h"

namespace shoal::node::topic {

class LocalSubscriptions : private kj::TaskSet::ErrorHandler {
 public:
  using PostEvent = std::function<void(std::function<void()>)>;
  LocalSubscriptions(wire::Member::Client member, kj::Timer& timer, PostEvent postEvent);
  ~LocalSubscriptions();

  // Subscribes; resolves once the topic's owner took the subscription (rejects with the member's
  // failure, e.g. an invalid topic name). `idOut`, if given, is set at once (to remove() it early).
  kj::Promise<SubscriptionId> add(std::string topic, SubscribeFrom from, TopicHandler handler,
                                  SubscriptionId* idOut = nullptr);
  // An id from the same counter, for a registration made of several (a pattern).
  SubscriptionId reserveId() { return nextId_++; }
  void remove(SubscriptionId id);
  void closeAll();

 private:
  struct Sub;
  class Receiver;
  kj::Promise<void> subscribe(Sub& sub, SubscribeFrom from);
  kj::Promise<void> watch(SubscriptionId id, uint64_t generation);
  void resubscribe(SubscriptionId id, uint64_t generation, const std::string& why);
  // The owner cut the subscription off (too far behind): the host's onClosed, once; then gone.
  void endCutOff(SubscriptionId id, const std::string& reason);
  void taskFailed(kj::Exception&& exception) override;

  wire::Member::Client member_;
  kj::Timer& timer_;
  PostEvent postEvent_;
  std::shared_ptr<LocalSubscriptions*> self_;  // receivers' way back; null once this is gone
  std::map<SubscriptionId, std::unique_ptr<Sub>> subs_;
  SubscriptionId nextId_ = 1;
  kj::TaskSet tasks_;
};

}  // namespace shoal::node::topic

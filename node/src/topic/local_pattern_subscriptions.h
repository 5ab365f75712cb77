// Pattern subscriptions of the embedding API (Node::subscribePattern), on the shard thread. Like
// the RESP gateway's PSUBSCRIBE, there is no member-side pattern subscription: a pattern lists the
// cluster's topics (the member's own Member.listTopics) when it starts and every second after,
// and follows each matching topic with an ordinary LocalSubscriptions subscription — topics that
// matched at the start from `latest`, topics seen later from `earliest` (so a topic created after
// the pattern loses nothing its ring still holds). Per-topic order, resume and no-duplicate
// guarantees are LocalSubscriptions'.
//
// Invariants: a topic is followed at most once per pattern and never again once cut off (its
// onClosed reached the host); a failed listing, or a topic subscription the member refused, is
// retried at the next tick; removing a pattern removes every subscription it made. Pattern ids
// come from LocalSubscriptions' counter, so one remove(id) serves both kinds.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "local_subscriptions.h"
#include "shoal/proto/shoal.capnp.h"
#include "shoal/types.h"

namespace shoal::node::topic {

class LocalPatternSubscriptions : private kj::TaskSet::ErrorHandler {
 public:
  LocalPatternSubscriptions(wire::Member::Client member, kj::Timer& timer, LocalSubscriptions& subscriptions);
  ~LocalPatternSubscriptions();

  // Resolves once the first listing is done and the matching topics' owners took their
  // subscriptions; rejects (UNAVAILABLE) when the topics cannot be listed within 5 s.
  kj::Promise<SubscriptionId> add(std::string pattern, TopicHandler handler);
  // Ends pattern `id` and all its topics' subscriptions, or else the plain subscription `id`.
  void remove(SubscriptionId id);
  void closeAll();

 private:
  struct Pattern;
  struct Followed {
    SubscriptionId id = 0;  // 0: its subscription was refused; retried at the next tick
    SubscribeFrom from;
  };
  using Listing = std::vector<std::string>;

  kj::Promise<Listing> list();
  kj::Promise<void> firstListing(SubscriptionId id);
  kj::Promise<void> follow(Pattern& p, const std::string& topic, SubscribeFrom from);
  kj::Promise<void> scanLoop();
  void scan(const Listing& topics);
  void taskFailed(kj::Exception&& exception) override;

  wire::Member::Client member_;
  kj::Timer& timer_;
  LocalSubscriptions& subscriptions_;
  std::map<SubscriptionId, std::unique_ptr<Pattern>> patterns_;
  bool listing_ = false;  // a periodic listing is in flight
  kj::TaskSet tasks_;
  kj::Promise<void> scanning_;
};

}  // namespace shoal::node::topic

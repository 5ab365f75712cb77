// Pattern subscriptions (Client::subscribePattern), on the client's I/O thread. There is no
// member-side pattern subscription: a pattern lists the cluster's topics (Member.listTopics at
// the home member) when it starts and every second after, and follows each matching topic with
// an ordinary subscription of `Subscriptions` — topics that matched at the start from `latest`,
// topics seen later from `earliest` (so a topic created after the pattern loses nothing its ring
// still holds). Each followed topic therefore keeps the per-topic guarantees (order, resume after
// failover, no duplicates, gaps signalled).
//
// Invariants: a topic is followed at most once per pattern, and never again once its subscription
// ended (a cut-off reported through the handler's onClosed); a failed listing is retried at the
// next tick; removing a pattern removes every subscription it made. Pattern ids come from the
// same counter as subscription ids, so one unsubscribe(id) serves both.
#pragma once

#include <kj/async.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "registration_host.h"
#include "shoal/error.h"
#include "shoal/types.h"
#include "subscriptions.h"

namespace shoal::client {

class PatternSubscriptions final : private kj::TaskSet::ErrorHandler {
 public:
  PatternSubscriptions(RegistrationHost& host, Subscriptions& subscriptions);
  ~PatternSubscriptions();
  PatternSubscriptions(const PatternSubscriptions&) = delete;
  PatternSubscriptions& operator=(const PatternSubscriptions&) = delete;

  // Starts a pattern subscription and sets `idOut` at once. The promise resolves (null) once the
  // first listing succeeded and the owners of the topics it matched took their subscriptions.
  // Listing failures are retried without end: the caller bounds the wait and calls remove().
  kj::Promise<std::shared_ptr<const Error>> add(std::string pattern, TopicHandler handler,
                                                SubscriptionId& idOut);
  // The last listing failure of `id` (to explain a timeout), if any.
  std::optional<Error> lastProblem(SubscriptionId id) const;
  // Ends the pattern and every topic subscription it made; false when `id` is no pattern.
  bool remove(SubscriptionId id);
  void closeAll();
  bool empty() const { return patterns_.empty(); }

 private:
  struct Pattern;
  using Listing = std::vector<std::string>;

  void taskFailed(kj::Exception&& e) override;
  kj::Promise<Listing> list();
  kj::Promise<void> firstListing(SubscriptionId id, uint32_t attempt);
  // Follows `topic` for pattern `p` (once); the promise resolves when its owner took it.
  kj::Promise<void> follow(Pattern& p, const std::string& topic, SubscribeFrom from);
  kj::Promise<void> scanLoop();
  void scan(const Listing& topics);

  RegistrationHost& host_;
  Subscriptions& subscriptions_;
  std::map<SubscriptionId, std::unique_ptr<Pattern>> patterns_;
  bool listing_ = false;  // a periodic listing is in flight
  kj::TaskSet tasks_;
  kj::Promise<void> scanning_;
};

}  // namespace shoal::client

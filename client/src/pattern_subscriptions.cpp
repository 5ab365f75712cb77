// Pattern subscriptions: listings, matching, one topic subscription per match; see
// pattern_subscriptions.h.
#include "pattern_subscriptions.h"

#include <kj/debug.h>
#include <kj/vector.h>

#include <cstdio>

#include "shoal/glob.h"
#include "wire_conversion.h"

namespace shoal::client {
namespace {

// How often the cluster's topics are listed while a pattern exists (the RESP gateway's PSUBSCRIBE
// uses the same period).
constexpr auto SCAN_INTERVAL = std::chrono::milliseconds(1000);

}  // namespace

struct PatternSubscriptions::Pattern {
  SubscriptionId id = 0;
  std::string pattern;
  std::shared_ptr<TopicHandler> handler;
  bool started = false;                            // the first listing is done: later ones scan it
  std::map<std::string, SubscriptionId> followed;  // every topic ever followed (ended ones too)
  std::optional<Error> lastProblem;
};

PatternSubscriptions::PatternSubscriptions(RegistrationHost& host, Subscriptions& subscriptions)
    : host_(host),
      subscriptions_(subscriptions),
      tasks_(*this),
      scanning_(scanLoop().eagerlyEvaluate(nullptr)) {}

PatternSubscriptions::~PatternSubscriptions() {
  closeAll();
}

void PatternSubscriptions::taskFailed(kj::Exception&& e) {
  fprintf(stderr, "shoal client: unexpected pattern subscription task failure: %s\n",
          e.getDescription().cStr());
}

kj::Promise<std::shared_ptr<const Error>> PatternSubscriptions::add(std::string pattern, TopicHandler handler,
                                                                    SubscriptionId& idOut) {
  auto p = std::make_unique<Pattern>();
  p->id = idOut = subscriptions_.reserveId();
  p->pattern = std::move(pattern);
  p->handler = std::make_shared<TopicHandler>(std::move(handler));
  auto id = p->id;
  patterns_[id] = std::move(p);
  return firstListing(id, 0).then([]() { return std::shared_ptr<const Error>(); });
}

std::optional<Error> PatternSubscriptions::lastProblem(SubscriptionId id) const {
  auto it = patterns_.find(id);
  return it == patterns_.end() ? std::nullopt : it->second->lastProblem;
}

bool PatternSubscriptions::remove(SubscriptionId id) {
  auto it = patterns_.find(id);
  if (it == patterns_.end()) return false;
  for (auto& [topic, sub] : it->second->followed) subscriptions_.remove(sub);
  patterns_.erase(it);
  return true;
}

void PatternSubscriptions::closeAll() {
  while (!patterns_.empty()) remove(patterns_.begin()->first);
}

kj::Promise<PatternSubscriptions::Listing> PatternSubscriptions::list() {
  auto timeout = host_.callTimeout();
  return host_.home()
      .then([](RegistrationHost::Home home) {
        auto request = home.member.listTopicsRequest();
        request.setForwarded(false);
        return request.send().then([](capnp::Response<wire::Member::ListTopicsResults>&& r) {
          Listing names;
          for (auto t : r.getTopics()) names.push_back(t.getName());
          return names;
        });
      })
      .exclusiveJoin(
          host_.timer().afterDelay(timeout.count() * kj::MILLISECONDS).then([timeout]() -> Listing {
            kj::throwFatalException(
                KJ_EXCEPTION(FAILED, "shoal:unavailable: no answer to listTopics within " +
                                         std::to_string(timeout.count()) + " ms"));
          }));
}

kj::Promise<void> PatternSubscriptions::firstListing(SubscriptionId id, uint32_t attempt) {
  return list().then(
      [this, id](Listing topics) -> kj::Promise<void> {
        auto it = patterns_.find(id);
        if (it == patterns_.end()) return kj::READY_NOW;
        auto& p = *it->second;
        p.started = true;
        p.lastProblem.reset();
        // Topics that match now are followed from `latest`: the caller asked for what comes next.
        kj::Vector<kj::Promise<void>> taken;
        for (auto& topic : topics) {
          if (globMatch(p.pattern, topic)) taken.add(follow(p, topic, SubscribeFrom::latest()));
        }
        return kj::joinPromises(taken.releaseAsArray());
      },
      [this, id, attempt](kj::Exception&& e) -> kj::Promise<void> {
        auto it = patterns_.find(id);
        if (it == patterns_.end()) return kj::READY_NOW;
        auto error = errorOfCall(e, "the home member");
        it->second->lastProblem = error;
        auto delay = host_.backoff(attempt);
        host_.debug("pattern '" + it->second->pattern + "': listing topics failed (" + error.what() +
                    "); retrying in " + std::to_string(delay.count()) + " ms");
        return host_.timer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, id, attempt]() {
          return firstListing(id, attempt + 1);
        });
      });
}

kj::Promise<void> PatternSubscriptions::follow(Pattern& p, const std::string& topic, SubscribeFrom from) {
  auto handler = p.handler;
  TopicHandler perTopic;
  perTopic.onMessage = [handler](const TopicMessage& m) { handler->onMessage(m); };
  perTopic.onGap = [handler](const std::string& t, uint64_t from, uint64_t to) {
    if (handler->onGap) handler->onGap(t, from, to);
  };
  perTopic.onClosed = [handler](const std::string& t, const Error& reason, uint64_t next) {
    if (handler->onClosed) handler->onClosed(t, reason, next);
  };
  SubscriptionId sub = 0;
  auto started = subscriptions_.add(topic, std::move(perTopic), from, sub);
  p.followed[topic] = sub;  // kept after the subscription ends: an ended topic is not followed again
  auto patternId = p.id;
  return started.then(
      [this, patternId, topic, handler](std::shared_ptr<const Error> failed) {
        if (!failed || patterns_.count(patternId) == 0) return;
        // Rejected for good before it started: say so, as a cut-off would.
        host_.debug("pattern topic '" + topic + "': subscription refused: " + failed->what());
        host_.postEvent([handler, topic, failed] {
          try {
            if (handler->onClosed) handler->onClosed(topic, *failed, 0);
          } catch (...) {
            // A throwing handler must not break the client.
          }
        });
      },
      [](kj::Exception&&) {
        // Removed before its owner took it (the pattern was unsubscribed): nothing to report.
      });
}

kj::Promise<void> PatternSubscriptions::scanLoop() {
  return host_.timer().afterDelay(SCAN_INTERVAL.count() * kj::MILLISECONDS).then([this]() {
    bool any = false;
    for (auto& [id, p] : patterns_) any = any || p->started;
    if (any && !listing_) {
      listing_ = true;
      tasks_.add(list().then(
          [this](Listing topics) {
            listing_ = false;
            scan(topics);
          },
          [this](kj::Exception&& e) {
            listing_ = false;  // retried at the next tick
            host_.debug(std::string("pattern subscriptions: listing topics failed (") +
                        errorOfCall(e, "the home member").what() + "); the next tick retries");
          }));
    }
    return scanLoop();
  });
}

void PatternSubscriptions::scan(const Listing& topics) {
  for (auto& [id, p] : patterns_) {
    if (!p->started) continue;
    for (auto& topic : topics) {
      if (p->followed.count(topic) > 0 || !globMatch(p->pattern, topic)) continue;
      // A topic that appeared after the pattern started: from `earliest`, so nothing it still
      // holds is missed (what its ring already overwrote arrives as a gap).
      host_.debug("pattern '" + p->pattern + "': following new topic '" + topic + "' from earliest");
      tasks_.add(follow(*p, topic, SubscribeFrom::earliest()));
    }
  }
}

}  // namespace shoal::client

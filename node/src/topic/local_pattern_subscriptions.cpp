// Embedded pattern subscriptions; see local_pattern_subscriptions.h.
#include "local_pattern_subscriptions.h"

#include <kj/debug.h>
#include <kj/vector.h>

#include "member_log.h"
#include "shoal/glob.h"

namespace shoal::node::topic {
namespace {

constexpr auto SCAN_INTERVAL = 1 * kj::SECONDS;  // as the RESP gateway's PSUBSCRIBE
constexpr auto LIST_TIMEOUT = 5 * kj::SECONDS;
constexpr auto FIRST_LISTING_TIMEOUT = 5 * kj::SECONDS;
constexpr auto FIRST_LISTING_RETRY = 200 * kj::MILLISECONDS;

}  // namespace

struct LocalPatternSubscriptions::Pattern {
  SubscriptionId id = 0;
  std::string pattern;
  std::shared_ptr<TopicHandler> handler;
  bool started = false;                      // the first listing is done: later ones scan it
  std::map<std::string, Followed> followed;  // every topic ever followed (cut-off ones too)
};

LocalPatternSubscriptions::LocalPatternSubscriptions(wire::Member::Client member, kj::Timer& timer,
                                                     LocalSubscriptions& subscriptions)
    : member_(kj::mv(member)),
      timer_(timer),
      subscriptions_(subscriptions),
      tasks_(*this),
      scanning_(scanLoop().eagerlyEvaluate(nullptr)) {}

LocalPatternSubscriptions::~LocalPatternSubscriptions() {
  closeAll();
}

kj::Promise<SubscriptionId> LocalPatternSubscriptions::add(std::string pattern, TopicHandler handler) {
  auto p = std::make_unique<Pattern>();
  auto id = p->id = subscriptions_.reserveId();
  p->pattern = std::move(pattern);
  p->handler = std::make_shared<TopicHandler>(std::move(handler));
  patterns_[id] = std::move(p);
  return timer_.timeoutAfter(FIRST_LISTING_TIMEOUT, firstListing(id))
      .then([id]() -> kj::Promise<SubscriptionId> { return id; },
            [this, id](kj::Exception&& e) -> kj::Promise<SubscriptionId> {
              remove(id);
              return KJ_EXCEPTION(
                  FAILED, std::string("shoal:unavailable: the cluster's topics could not be listed: ") +
                              e.getDescription().cStr());
            });
}

void LocalPatternSubscriptions::remove(SubscriptionId id) {
  auto it = patterns_.find(id);
  if (it == patterns_.end()) {
    subscriptions_.remove(id);
    return;
  }
  for (auto& [topic, f] : it->second->followed) {
    if (f.id != 0) subscriptions_.remove(f.id);
  }
  patterns_.erase(it);
}

void LocalPatternSubscriptions::closeAll() {
  while (!patterns_.empty()) remove(patterns_.begin()->first);
}

kj::Promise<LocalPatternSubscriptions::Listing> LocalPatternSubscriptions::list() {
  auto request = member_.listTopicsRequest();
  request.setForwarded(false);
  return timer_.timeoutAfter(LIST_TIMEOUT, request.send())
      .then([](capnp::Response<wire::Member::ListTopicsResults>&& response) {
        Listing names;
        for (auto t : response.getTopics()) names.push_back(t.getName());
        return names;
      });
}

kj::Promise<void> LocalPatternSubscriptions::firstListing(SubscriptionId id) {
  return list().then(
      [this, id](Listing topics) -> kj::Promise<void> {
        auto it = patterns_.find(id);
        if (it == patterns_.end()) return kj::READY_NOW;
        auto& p = *it->second;
        p.started = true;
        // Topics that match now are followed from `latest`: the caller asked for what comes next.
        kj::Vector<kj::Promise<void>> taken;
        for (auto& topic : topics) {
          if (globMatch(p.pattern, topic)) taken.add(follow(p, topic, SubscribeFrom::latest()));
        }
        return kj::joinPromises(taken.releaseAsArray());
      },
      [this, id](kj::Exception&& e) -> kj::Promise<void> {
        if (patterns_.count(id) == 0) return kj::READY_NOW;
        memberLog().debug("pattern subscription {}: listing topics failed ({}); retrying", id,
                          e.getDescription().cStr());
        return timer_.afterDelay(FIRST_LISTING_RETRY).then([this, id]() { return firstListing(id); });
      });
}

kj::Promise<void> LocalPatternSubscriptions::follow(Pattern& p, const std::string& topic,
                                                    SubscribeFrom from) {
  auto handler = p.handler;
  TopicHandler perTopic;
  perTopic.onMessage = [handler](const TopicMessage& m) { handler->onMessage(m); };
  perTopic.onGap = [handler](const std::string& t, uint64_t from, uint64_t to) {
    if (handler->onGap) handler->onGap(t, from, to);
  };
  perTopic.onClosed = [handler](const std::string& t, const Error& reason, uint64_t next) {
    if (handler->onClosed) handler->onClosed(t, reason, next);
  };
  auto& followed = p.followed[topic];
  followed.from = from;
  auto patternId = p.id;
  return subscriptions_.add(topic, from, std::move(perTopic), &followed.id)
      .then([](SubscriptionId) {},
            [this, patternId, topic](kj::Exception&& e) {
              auto it = patterns_.find(patternId);
              if (it == patterns_.end()) return;
              auto f = it->second->followed.find(topic);
              if (f != it->second->followed.end()) f->second.id = 0;  // the next tick tries again
              memberLog().debug("pattern subscription {}: topic '{}' refused ({}); the next tick retries",
                                patternId, topic, e.getDescription().cStr());
            });
}

kj::Promise<void> LocalPatternSubscriptions::scanLoop() {
  return timer_.afterDelay(SCAN_INTERVAL).then([this]() {
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
            memberLog().debug("pattern subscriptions: listing topics failed ({}); the next tick retries",
                              e.getDescription().cStr());
          }));
    }
    return scanLoop();
  });
}

void LocalPatternSubscriptions::scan(const Listing& topics) {
  for (auto& [id, p] : patterns_) {
    if (!p->started) continue;
    for (auto& topic : topics) {
      auto f = p->followed.find(topic);
      if (f != p->followed.end()) {
        if (f->second.id == 0) tasks_.add(follow(*p, topic, f->second.from));  // refused before
        continue;
      }
      if (!globMatch(p->pattern, topic)) continue;
      // A topic that appeared after the pattern started: from `earliest`, so nothing it still
      // holds is missed (what its ring already overwrote arrives as a gap).
      tasks_.add(follow(*p, topic, SubscribeFrom::earliest()));
    }
  }
}

void LocalPatternSubscriptions::taskFailed(kj::Exception&& exception) {
  memberLog().debug("embedded pattern subscription task failed: {}", exception.getDescription().cStr());
}

}  // namespace shoal::node::topic

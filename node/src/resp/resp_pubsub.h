// Redis pub/sub on Shoal topics for the RESP gateway: PUBLISH is a Shoal publish (an execute op
// through the member's own RPC face, so it reaches the topic's owner and returns once replicated);
// SUBSCRIBE / PSUBSCRIBE subscribe the gateway to topics through topic::LocalSubscriptions (which
// resumes by itself when a topic moves or its owner dies). One subscription per topic serves every
// Redis client of this gateway that wants it (by channel or by pattern); its messages are pushed
// to the clients' connections as Redis's `message` / `pmessage` replies. Patterns: the topics of
// the cluster are listed every second while a pattern exists and each newly seen match is
// subscribed from `latest` (a topic published through this gateway is subscribed from the
// published message on). Shard thread only.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../topic/local_subscriptions.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::node::resp {

class PubSub : private kj::TaskSet::ErrorHandler {
 public:
  // Appends a push to client `client`'s connection: one RESP2 array, which a RESP3 connection
  // sends as a push (`>` for `*`). Must not call back into PubSub
  // synchronously (a connection over its limit is closed later, not inside `push`).
  using Push = std::function<void(int64_t client, std::string_view bytes)>;
  PubSub(wire::Member::Client member, kj::Timer& timer, Push push);
  ~PubSub();

  // Each returns the full RESP reply of the command (one confirmation per channel / pattern), in
  // the client's protocol (2 or 3: confirmations are pushes in RESP3).
  kj::Promise<std::string> subscribe(int64_t client, std::vector<std::string> channels, int protocol);
  std::string unsubscribe(int64_t client, const std::vector<std::string>& channels,
                          int protocol);  // none: all
  kj::Promise<std::string> psubscribe(int64_t client, std::vector<std::string> patterns, int protocol);
  std::string punsubscribe(int64_t client, const std::vector<std::string>& patterns,
                           int protocol);  // none: all
  kj::Promise<std::string> publish(std::string channel, std::string message);

  // Channels plus patterns of `client` (Redis's subscription count; > 0: subscribed mode).
  size_t count(int64_t client) const;
  // The client's connection is gone (or RESET): ends all its subscriptions.
  void drop(int64_t client);

 private:
  struct Client {
    std::set<std::string> channels;
    std::set<std::string> patterns;
  };
  // A topic this gateway subscribed to, for its channel subscribers and matching patterns.
  struct Watched {
    uint64_t token = 0;             // this attempt (a late answer of an abandoned one is ignored)
    SubscriptionId id = 0;          // 0 until the owner took the subscription
    kj::ForkedPromise<void> ready;  // resolves once subscribed (rejects: the attempt failed)
    kj::Own<kj::PromiseFulfiller<void>> fulfiller;
    std::set<int64_t> clients;  // channel subscribers
  };

  Watched& watch(const std::string& topic, SubscribeFrom from);
  // Unsubscribes the gateway from `topic` when neither a client nor a pattern wants it.
  void release(const std::string& topic);
  bool matchesPattern(const std::string& topic) const;
  // Lists the cluster's topics and watches each new match of a pattern; resolves once they are
  // subscribed (failures are logged: the next scan retries).
  kj::Promise<void> scanTopics();
  kj::Promise<void> scanLoop();
  void deliver(const std::string& topic, const std::string& payload);
  size_t receivers(const std::string& channel) const;
  void taskFailed(kj::Exception&& exception) override;

  wire::Member::Client member_;
  kj::Timer& timer_;
  Push push_;
  topic::LocalSubscriptions subscriptions_;
  std::unordered_map<int64_t, Client> clients_;
  std::map<std::string, std::set<int64_t>> patterns_;  // pattern -> clients
  std::unordered_map<std::string, std::unique_ptr<Watched>> watched_;
  uint64_t nextToken_ = 1;
  kj::Promise<void> scanning_ = nullptr;  // the periodic topic scan, while a pattern exists
  bool scanRunning_ = false;
  kj::TaskSet tasks_;
};

}  // namespace shoal::node::resp

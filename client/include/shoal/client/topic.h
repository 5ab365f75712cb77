// Topics (publish / subscribe) in the client library: a Topic handle publishes messages (through
// the same batched, retried path as map writes: a retried publish is applied once and returns the
// first sequence number) and subscribes to them. A subscription survives failovers: the client
// resumes from the next sequence number it expects, drops anything it already delivered and
// reports dropped messages as gaps, so a handler sees each message at most once, in order.
//
//   auto orders = client->topic("orders");
//   orders.subscribe({.onMessage = [](const shoal::TopicMessage& m) { ... }},
//                    shoal::SubscribeFrom::earliest());
//   uint64_t seq = orders.publish("order 17 shipped");
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/client/result.h"
#include "shoal/error.h"
#include "shoal/types.h"

namespace shoal {

namespace client {
class Transport;
}

// What the cluster holds for one topic (Client::topics()).
struct TopicInfo {
  std::string name;
  uint64_t firstSeq = 0;     // the oldest message held (0: none)
  uint64_t lastSeq = 0;      // the newest message published (0: none yet)
  uint64_t retained = 0;     // messages held
  uint64_t bytes = 0;        // memory they take on the topic's owner
  uint32_t subscribers = 0;  // subscriptions its owner serves
  uint32_t capacity = 0;     // messages it keeps at most (ring buffer)
  int64_t retentionMs = 0;   // messages are dropped this long after publish; 0: kept until overwritten
  bool durable = false;      // kept in the members' store (survives a full restart)
};

// Why `name` cannot be a topic name (1..200 bytes, no '{' or '}', not starting with '$'), or
// nullopt when it can.
std::optional<std::string> topicNameProblem(std::string_view name);

// A topic. Cheap to copy. Synchronous methods block the calling thread and throw shoal::Error;
// publishAsync calls `done` on the client's I/O thread (keep it short, no synchronous calls there).
// Subscription callbacks run on the client's event thread, one at a time, in sequence order.
class Topic {
 public:
  // Publishes one message; returns its sequence number (1, 2, 3, ... per topic).
  uint64_t publish(std::string_view value) const;
  uint64_t publish(const OutgoingMessage& m) const;
  // Publishes `ms` together (one call per member batch, in the given order); returns their
  // sequence numbers in the same order. Throws the first failure (others may have been published).
  std::vector<uint64_t> publishAll(const std::vector<OutgoingMessage>& ms) const;
  void publishAsync(OutgoingMessage m, std::function<void(Result<uint64_t>)> done) const;

  // Subscribes `handler` (its onMessage is required) and returns once the topic's owner has taken
  // the subscription (throws INVALID_ARGUMENT, or TIMEOUT / UNAVAILABLE after requestTimeout).
  // From then on the client keeps it going across failovers, migrations and member restarts:
  //   - it resumes from the sequence number after the last message it delivered, and never hands
  //     a message to the handler twice or out of order;
  //   - messages the topic dropped before they could be delivered arrive as handler.onGap(from, to);
  //   - it ends only when the member cuts the subscriber off for falling too far behind: then
  //     handler.onClosed(topic, OVERLOADED, next) says where a new subscription resumes without loss
  //     (subscribe again with SubscribeFrom::at(next)). unsubscribe() and Client::close() end it
  //     without calling onClosed.
  SubscriptionId subscribe(TopicHandler handler, SubscribeFrom from = SubscribeFrom::latest()) const;
  // Ends the subscription; no callback of it starts afterwards (one already running finishes).
  // Unknown or ended ids are ignored.
  void unsubscribe(SubscriptionId id) const;

  // A handle whose publishes have a different deadline (0: the client's requestTimeout).
  Topic withTimeout(std::chrono::milliseconds timeout) const;

  const std::string& name() const { return name_; }

 private:
  friend class Client;
  Topic(std::shared_ptr<client::Transport> t, std::string name)
      : transport_(std::move(t)), name_(std::move(name)) {}
  std::shared_ptr<client::Transport> transport_;
  std::string name_;
  std::chrono::milliseconds timeout_{0};
};

}  // namespace shoal

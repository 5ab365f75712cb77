// The two systems shoal-pubsub-bench drives the same way: N subscribers of one channel/topic and
// one publisher with a window of unacknowledged publishes. Redis is spoken to in RESP over plain
// sockets (PUBLISH pipelined on one connection, one connection per subscriber); Shoal through the
// client library (publishAsync, batched by the client; one shoal::Client per subscriber).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace shoal::bench {

class PubSubTarget {
 public:
  using OnMessage = std::function<void(int subscriber, std::string_view payload)>;
  virtual ~PubSubTarget() = default;
  // Starts `count` subscribers of `channel`; returns once all are subscribed. `onMessage` runs on
  // one thread per subscriber.
  virtual void subscribe(const std::string& channel, int count, OnMessage onMessage) = 0;
  // Publishes one message; `acked` runs (on any thread) once the server acknowledged it.
  virtual void publish(const std::string& channel, std::string payload,
                       std::function<void(bool ok)> acked) = 0;
  virtual void close() = 0;
};

std::unique_ptr<PubSubTarget> redisTarget(const std::string& address);
std::unique_ptr<PubSubTarget> shoalTarget(const std::string& address);

}  // namespace shoal::bench

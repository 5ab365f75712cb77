// What push registrations (entry listeners, topic subscriptions) need from the transport — and
// all they may use of it: the home member's connection, the backoff policy, the timer and the
// event thread. Keeps their bookkeeping out of transport.cpp; everything here runs on the I/O thread.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <chrono>
#include <functional>
#include <string>

#include "shoal/proto/shoal.capnp.h"

namespace shoal::client {

class RegistrationHost {
 public:
  struct Home {
    wire::Member::Client member;
    uint64_t connectionId;  // new on every (re)connect; see connectionLost() of the registrations
  };

  // The home member once it is connected (the home moves on to another server when it cannot be
  // reached). Rejects (DISCONNECTED) when a connection attempt fails or none is made within
  // connectTimeout: retry after backoff().
  virtual kj::Promise<Home> home() = 0;
  // The jittered exponential delay before retry number `attempt` (0, 1, ...), capped at backoffMax.
  virtual std::chrono::milliseconds backoff(uint32_t attempt) = 0;
  virtual kj::Timer& timer() = 0;
  // Runs `fn` on the event thread after everything posted before it.
  virtual void postEvent(std::function<void()> fn) = 0;
  // Deadline of one registration call (subscribe, addListener): the client's requestTimeout.
  virtual std::chrono::milliseconds callTimeout() const = 0;
  // A debug message (resubscribes and why), for ClientOptions::debugLog.
  virtual void debug(const std::string& message) = 0;

 protected:
  ~RegistrationHost() = default;
};

}  // namespace shoal::client

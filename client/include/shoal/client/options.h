// Options of shoal::Client: a plain struct, every field defaulted and documented.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shoal {

struct ClientOptions {
  std::vector<std::string> servers = {"127.0.0.1:5701"};  // members, HOST:PORT; tried in order
  std::chrono::milliseconds requestTimeout{5000};         // deadline of one operation, retries included
  std::chrono::milliseconds connectTimeout{2000};         // deadline of one connection attempt
  uint32_t maxBatchOps = 1000;         // operations coalesced into one call (1 .. member's limit)
  uint64_t maxBatchBytes = 16u << 20;  // bytes of keys and values in one call (a larger op goes alone);
                                       // keep under the member's limits.max-message-bytes (64 MiB)
  uint32_t maxCallsInFlight = 2;       // calls in flight per member once a batch is full (>= 1)
  std::chrono::milliseconds backoffInitial{10};     // first retry / reconnect delay
  std::chrono::milliseconds backoffMax{1000};       // cap of the exponential backoff (jittered)
  uint32_t breakerFailureThreshold = 5;             // consecutive failures that open a member's circuit
  std::chrono::milliseconds breakerOpenTime{2000};  // how long an open circuit fails fast
  std::string traceIdPrefix = "c";                  // prefix of generated trace ids
  bool smartRouting = true;  // send each keyed op straight to its partition's primary (learning the
                             // table from the members); false: everything goes through one member
  // Receives debug messages (why a subscription or listener is made again, and when), on the
  // client's I/O thread: keep it short. Default: none.
  std::function<void(const std::string&)> debugLog;

  // Throws shoal::Error(INVALID_ARGUMENT) naming the first invalid field.
  void validate() const;
};

}  // namespace shoal

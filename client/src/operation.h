// One map operation (or topic publish) on its way through the client: what to do, its deadline, its request
// id (a retry reuses it so the member applies a write once) and the callback that receives the outcome.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "shoal/client/result.h"
#include "shoal/types.h"

namespace shoal::client {

enum class OpKind {
  GET,
  GET_ENTRY,
  CONTAINS_KEY,
  PUT,
  SET,
  PUT_IF_ABSENT,
  REPLACE,
  REPLACE_IF_VALUE,
  REPLACE_IF_VERSION,
  REMOVE,
  DELETE,
  REMOVE_IF_VALUE,
  REMOVE_IF_VERSION,
  SIZE,
  CLEAR,
  SET_TTL,
  PUBLISH,  // topics: `map` and `key` are the topic's name; the outcome's count is the sequence number
};

struct Outcome {
  enum Kind { VALUE, ABSENT, FLAG, COUNT, ENTRY, DONE } kind = DONE;
  std::string value;
  bool flag = false;
  uint64_t count = 0;
  EntryView entry;
};

using Clock = std::chrono::steady_clock;

struct Operation {
  OpKind kind = OpKind::GET;
  std::string map;
  std::string key;
  std::string value;
  std::string expected;  // REPLACE_IF_VALUE / REMOVE_IF_VALUE
  uint64_t version = 0;  // *_IF_VERSION
  int64_t ttlMs = -1;    // writes: -1 map default; SET_TTL: the new TTL
  int64_t maxIdleMs = -1;
  std::string messageKey;  // PUBLISH: the message's own key (empty: none)
  Headers headers;         // PUBLISH
  std::string traceId;
  uint64_t requestId = 0;  // set by the transport for writes
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  uint32_t attempts = 0;
  std::function<void(Result<Outcome>)> done;
};

inline bool isWrite(OpKind kind) {
  return !(kind == OpKind::GET || kind == OpKind::GET_ENTRY || kind == OpKind::CONTAINS_KEY ||
           kind == OpKind::SIZE);
}

}  // namespace shoal::client

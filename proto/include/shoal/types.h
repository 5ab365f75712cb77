// Value types shared by the client library and the embedding API: entry views, entry events and
// per-write options. Standard C++ only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace shoal {

enum class EntryEventType { ADDED, UPDATED, REMOVED, EXPIRED, EVICTED };

std::string_view entryEventTypeName(EntryEventType type);

struct EntryEvent {
  EntryEventType type;
  std::string map;
  std::string key;
  std::string value;     // new value for ADDED / UPDATED (when values were asked for)
  std::string oldValue;  // previous value for UPDATED / REMOVED / EXPIRED / EVICTED
  uint64_t version = 0;
};

struct EntryView {
  std::string key;
  std::string value;
  uint64_t version = 0;                                                // 1 on creation, +1 on every write
  int64_t creationTimeMs = 0, updateTimeMs = 0, lastAccessTimeMs = 0;  // ms since the Unix epoch
  int64_t expirationTimeMs = 0;                                        // 0: never
  int64_t ttlMs = 0, maxIdleMs = 0;
  uint64_t hits = 0;
};

// Per-write options. Unset TTL / max-idle take the map's defaults; zero means none.
struct WriteOptions {
  std::optional<std::chrono::milliseconds> ttl;
  std::optional<std::chrono::milliseconds> maxIdle;
};

using ListenerId = uint64_t;
using EntryListener = std::function<void(const EntryEvent&)>;

// Topics ----------------------------------------------------------------------------------------

using Headers = std::vector<std::pair<std::string, std::string>>;

// A message to publish: the value plus an optional key and headers (delivered as given).
struct OutgoingMessage {
  std::string value;
  std::string key;
  Headers headers;
};

// A delivered message. Sequence numbers start at 1 and grow by one per message of the topic.
struct TopicMessage {
  std::string topic;
  uint64_t seq = 0;
  std::string key;
  std::string value;
  Headers headers;
  int64_t publishTimeMs = 0;  // when the topic's owner took it (ms since the Unix epoch)
};

// Where a subscription starts.
struct SubscribeFrom {
  enum class Kind { LATEST, EARLIEST, SEQ };
  Kind kind = Kind::LATEST;
  uint64_t seq = 0;
  static SubscribeFrom latest() { return {}; }                         // messages published from now on
  static SubscribeFrom earliest() { return {Kind::EARLIEST, 0}; }      // the oldest message still held
  static SubscribeFrom at(uint64_t seq) { return {Kind::SEQ, seq}; }  // a resume: last received + 1
};

class Error;

// Callbacks of a subscription, called in sequence order on one thread (keep them short).
struct TopicHandler {
  std::function<void(const TopicMessage&)> onMessage;
  // Messages from..to (inclusive) were dropped (overwritten or expired) before delivery.
  std::function<void(const std::string& topic, uint64_t from, uint64_t to)> onGap;
  // The subscription ended for good (the subscriber fell too far behind, or the member/client is
  // stopping); `next` is where a new subscription resumes without loss. Optional.
  std::function<void(const std::string& topic, const Error& reason, uint64_t next)> onClosed;
};

using SubscriptionId = uint64_t;

inline std::string_view entryEventTypeName(EntryEventType type) {
  switch (type) {
    case EntryEventType::ADDED:
      return "added";
    case EntryEventType::UPDATED:
      return "updated";
    case EntryEventType::REMOVED:
      return "removed";
    case EntryEventType::EXPIRED:
      return "expired";
    case EntryEventType::EVICTED:
      return "evicted";
  }
  return "unknown";
}

}  // namespace shoal

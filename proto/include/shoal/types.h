// Value types shared by the client library and the embedding API: entry views, entry events and
// per-write options. Standard C++ only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

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

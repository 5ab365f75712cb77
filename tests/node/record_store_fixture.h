// The test fixture of MapRecords' unit tests: a map with a manual clock whose keys spread over
// partitions like the member's, recorded events, and seed handling for randomised tests.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "record_store.h"

namespace shoal::node::test {

inline constexpr uint32_t PARTITIONS = 271;

inline uint64_t testSeed() {
  if (const char* s = std::getenv("SHOAL_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

struct RecordedEvent {
  EntryEventType type;
  std::string key;
  std::string value;
  std::string oldValue;
  uint64_t version;
};

// A map under test with a manual clock, keys spread over partitions like the member does.
struct Store {
  explicit Store(MapConfig config = {}, uint32_t partitions = PARTITIONS)
      : partitions(partitions), map("test", config, partitions, clock) {}

  PartitionId pid(std::string_view key) const {
    return static_cast<PartitionId>(std::hash<std::string_view>{}(key) % partitions);
  }
  void recordEvents() {
    map.setEventSink([this](const EntryEvent& e) {
      events.push_back(
          {e.type, std::string(e.key), std::string(e.value), std::string(e.oldValue), e.version});
    });
  }
  size_t countEvents(EntryEventType type) const {
    size_t n = 0;
    for (auto& e : events) n += e.type == type;
    return n;
  }
  WriteResult put(std::string_view key, std::string_view value, int64_t ttlMs = -1, int64_t maxIdleMs = -1,
                  std::string* previous = nullptr) {
    return map.write(pid(key), key, WriteSpec{value, ttlMs, maxIdleMs}, WriteMode::ALWAYS, previous);
  }
  WriteResult putMode(std::string_view key, std::string_view value, WriteMode mode,
                      std::string* previous = nullptr) {
    return map.write(pid(key), key, WriteSpec{value}, mode, previous);
  }
  std::optional<std::string> get(std::string_view key) {
    std::string v;
    if (map.get(pid(key), key, &v)) return v;
    return std::nullopt;
  }
  bool contains(std::string_view key) { return map.containsKey(pid(key), key); }
  std::optional<EntryView> entry(std::string_view key) { return map.getEntry(pid(key), key); }
  bool remove(std::string_view key, std::string* previous = nullptr) {
    return map.remove(pid(key), key, previous);
  }

  // Every key a full scan returns, with how often it was returned.
  std::map<std::string, int> scanAll(uint32_t limit = 64) {
    std::map<std::string, int> seen;
    uint64_t cursor = 0;
    do {
      std::vector<MapRecords::ScanItem> items;
      cursor = map.scan(cursor, limit, false, &items);
      REQUIRE(items.size() <= limit);
      for (auto& item : items) ++seen[item.key];
    } while (cursor != 0);
    return seen;
  }

  uint32_t partitions;
  ManualClock clock;
  MapRecords map;
  std::vector<RecordedEvent> events;
};

inline std::string keyOf(int i) {
  return "key-" + std::to_string(i);
}

}  // namespace shoal::node::test

// Unit tests of MapRecords change capture (setChangeSink) and restore (node/src/record_store.h):
// what a persistent store is told after each kind of change, that evictions tell it nothing, and
// that entries loaded back keep their version and expiration.
#include <catch2/catch.hpp>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "record_store.h"

namespace {

using namespace shoal::node;
using Kind = RecordChange::Kind;

constexpr uint32_t PARTITIONS = 31;

struct Change {
  Kind kind;
  PartitionId partition;
  std::string key;
  std::string value;
  uint64_t version;
  int64_t expirationTimeMs;
  int64_t ttlMs;
  int64_t maxIdleMs;
};

struct Store {
  explicit Store(MapConfig config = {}) : map("changes", config, PARTITIONS, clock) {
    map.setChangeSink([this](const RecordChange& c) {
      changes.push_back({c.kind, c.partition, std::string(c.key), std::string(c.value), c.version,
                         c.expirationTimeMs, c.ttlMs, c.maxIdleMs});
    });
  }

  void recordEvents() {
    map.setEventSink([this](const EntryEvent& e) { events.push_back(e.type); });
  }
  size_t countEvents(EntryEventType type) const {
    size_t n = 0;
    for (auto t : events) n += t == type;
    return n;
  }
  size_t countChanges(Kind kind) const {
    size_t n = 0;
    for (auto& c : changes) n += c.kind == kind;
    return n;
  }
  PartitionId pid(std::string_view key) const {
    return static_cast<PartitionId>(std::hash<std::string_view>{}(key) % PARTITIONS);
  }
  WriteResult put(std::string_view key, std::string_view value, int64_t ttlMs = -1, int64_t maxIdleMs = -1,
                  WriteMode mode = WriteMode::ALWAYS) {
    return map.write(pid(key), key, WriteSpec{value, ttlMs, maxIdleMs}, mode, nullptr);
  }
  std::optional<std::string> get(std::string_view key) {
    std::string v;
    if (map.get(pid(key), key, &v)) return v;
    return std::nullopt;
  }
  bool restore(std::string_view key, std::string_view value, uint64_t version, int64_t expirationTimeMs,
               int64_t ttlMs = 0, int64_t maxIdleMs = 0) {
    return map.restore(pid(key), key, value, version, expirationTimeMs, ttlMs, maxIdleMs);
  }
  // The only change since the last call (fails the test if there is not exactly one).
  Change only() {
    REQUIRE(changes.size() == 1);
    Change c = changes.front();
    changes.clear();
    return c;
  }

  ManualClock clock;
  MapRecords map;
  std::vector<Change> changes;
  std::vector<EntryEventType> events;
};

std::string keyOf(int i) {
  return "key-" + std::to_string(i);
}

void checkStore(const Change& c, PartitionId p, std::string_view key, std::string_view value,
                uint64_t version, int64_t expirationTimeMs, int64_t ttlMs, int64_t maxIdleMs) {
  CHECK(c.kind == Kind::STORE);
  CHECK(c.partition == p);
  CHECK(c.key == key);
  CHECK(c.value == value);
  CHECK(c.version == version);
  CHECK(c.expirationTimeMs == expirationTimeMs);
  CHECK(c.ttlMs == ttlMs);
  CHECK(c.maxIdleMs == maxIdleMs);
}

void checkErase(const Change& c, PartitionId p, std::string_view key, uint64_t version) {
  CHECK(c.kind == Kind::ERASE);
  CHECK(c.partition == p);
  CHECK(c.key == key);
  CHECK(c.value.empty());
  CHECK(c.version == version);
}

}  // namespace

TEST_CASE("record store changes: every applied write stores the entry as it is now", "[node][unit]") {
  Store s;
  const int64_t t0 = s.clock.nowMs();
  const PartitionId p = s.pid("k");

  // The TTL deadline only, not the (earlier) idle deadline.
  s.put("k", "v1", 5000, 2000);
  checkStore(s.only(), p, "k", "v1", 1, t0 + 5000, 5000, 2000);

  s.clock.advance(100);
  s.put("k", "v2");  // no TTL now
  checkStore(s.only(), p, "k", "v2", 2, 0, 0, 0);

  // Same size: rewritten in place (no event sink), still reported.
  s.put("k", "v3");
  checkStore(s.only(), p, "k", "v3", 3, 0, 0, 0);

  s.put("k", "no", -1, -1, WriteMode::IF_ABSENT);
  CHECK(s.changes.empty());
  s.put("other", "o", 1000, -1, WriteMode::IF_ABSENT);
  checkStore(s.only(), s.pid("other"), "other", "o", 1, t0 + 100 + 1000, 1000, 0);

  s.put("absent", "no", -1, -1, WriteMode::IF_PRESENT);
  CHECK(s.changes.empty());
  s.put("k", "replaced", -1, -1, WriteMode::IF_PRESENT);
  checkStore(s.only(), p, "k", "replaced", 4, 0, 0, 0);

  CHECK_FALSE(s.map.replaceIfValue(p, "k", "wrong", WriteSpec{"x"}).applied);
  CHECK(s.changes.empty());
  CHECK(s.map.replaceIfValue(p, "k", "replaced", WriteSpec{"cas-value", 3000}).applied);
  checkStore(s.only(), p, "k", "cas-value", 5, t0 + 100 + 3000, 3000, 0);

  CHECK_FALSE(s.map.replaceIfVersion(p, "k", 4, WriteSpec{"x"}).applied);
  CHECK(s.changes.empty());
  CHECK(s.map.replaceIfVersion(p, "k", 5, WriteSpec{"cas-version"}).applied);
  checkStore(s.only(), p, "k", "cas-version", 6, 0, 0, 0);
}

TEST_CASE("record store changes: the map default ttl is reported as the entry's setting", "[node][unit]") {
  MapConfig config;
  config.defaultTtlMs = 60000;
  config.defaultMaxIdleMs = 7000;
  Store s(config);
  const int64_t t0 = s.clock.nowMs();
  s.put("k", "v");
  checkStore(s.only(), s.pid("k"), "k", "v", 1, t0 + 60000, 60000, 7000);
}

TEST_CASE("record store changes: writes with an event sink are reported too", "[node][unit]") {
  Store s;
  s.recordEvents();
  s.put("k", "v1");
  s.put("k", "v2");
  REQUIRE(s.changes.size() == 2);
  checkStore(s.changes[0], s.pid("k"), "k", "v1", 1, 0, 0, 0);
  checkStore(s.changes[1], s.pid("k"), "k", "v2", 2, 0, 0, 0);
  CHECK(s.countEvents(EntryEventType::ADDED) == 1);
  CHECK(s.countEvents(EntryEventType::UPDATED) == 1);
}

TEST_CASE("record store changes: setTtl stores the entry's new expiration", "[node][unit]") {
  Store s;
  const PartitionId p = s.pid("k");
  s.put("k", "v");  // no expiry block yet
  s.changes.clear();
  s.clock.advance(500);
  const int64_t t1 = s.clock.nowMs();

  CHECK(s.map.setTtl(p, "k", 2000));  // the expiry block appears (re-encoded)
  checkStore(s.only(), p, "k", "v", 1, t1 + 2000, 2000, 0);

  s.clock.advance(100);
  CHECK(s.map.setTtl(p, "k", 9000));  // changed in place
  checkStore(s.only(), p, "k", "v", 1, t1 + 100 + 9000, 9000, 0);

  CHECK(s.map.setTtl(p, "k", 0));  // cleared
  checkStore(s.only(), p, "k", "v", 1, 0, 0, 0);

  CHECK_FALSE(s.map.setTtl(s.pid("absent"), "absent", 1000));
  CHECK(s.changes.empty());

  // With max-idle the expiry block stays; the TTL deadline alone is reported.
  s.put("idle", "v", 0, 1000);
  s.changes.clear();
  CHECK(s.map.setTtl(s.pid("idle"), "idle", 5000));
  checkStore(s.only(), s.pid("idle"), "idle", "v", 1, s.clock.nowMs() + 5000, 5000, 1000);
}

TEST_CASE("record store changes: removals erase", "[node][unit]") {
  Store s;
  const PartitionId p = s.pid("k");
  s.put("k", "v");
  s.put("k", "v2");
  s.changes.clear();

  CHECK_FALSE(s.map.remove(s.pid("absent"), "absent", nullptr));
  CHECK(s.changes.empty());
  CHECK(s.map.remove(p, "k", nullptr));
  checkErase(s.only(), p, "k", 2);

  s.put("a", "va");
  s.put("b", "vb");
  s.changes.clear();
  CHECK_FALSE(s.map.removeIfValue(s.pid("a"), "a", "wrong"));
  CHECK(s.changes.empty());
  CHECK(s.map.removeIfValue(s.pid("a"), "a", "va"));
  checkErase(s.only(), s.pid("a"), "a", 1);

  CHECK_FALSE(s.map.removeIfVersion(s.pid("b"), "b", 2));
  CHECK(s.changes.empty());
  CHECK(s.map.removeIfVersion(s.pid("b"), "b", 1));
  checkErase(s.only(), s.pid("b"), "b", 1);
}

TEST_CASE("record store changes: clear erases every entry, expired ones included", "[node][unit]") {
  Store s;
  for (int i = 0; i < 50; ++i) s.put(keyOf(i), "v");
  s.put("short", "v", 1000);
  s.clock.advance(1001);  // "short" expired but not yet reclaimed
  s.changes.clear();

  CHECK(s.map.clear() == 50);
  REQUIRE(s.changes.size() == 51);
  std::set<std::string> erased;
  for (auto& c : s.changes) {
    CHECK(c.kind == Kind::ERASE);
    CHECK(c.partition == s.pid(c.key));
    CHECK(c.version == 1);
    erased.insert(c.key);
  }
  CHECK(erased.size() == 51);
  CHECK(erased.count("short") == 1);
  CHECK(erased.count(keyOf(49)) == 1);
}

TEST_CASE("record store changes: lazy expiry erases", "[node][unit]") {
  Store s;
  s.put("ttl", "v", 1000);
  s.put("idle", "v", 0, 1000);
  s.put("contains", "v", 1000);
  s.changes.clear();
  s.clock.advance(1001);

  CHECK_FALSE(s.get("ttl"));
  checkErase(s.only(), s.pid("ttl"), "ttl", 1);
  CHECK_FALSE(s.map.getEntry(s.pid("idle"), "idle"));
  checkErase(s.only(), s.pid("idle"), "idle", 1);
  CHECK_FALSE(s.map.containsKey(s.pid("contains"), "contains"));
  checkErase(s.only(), s.pid("contains"), "contains", 1);

  // A write over an expired entry: the expiry first, then the new entry.
  s.put("again", "old", 1000);
  s.clock.advance(1001);
  s.changes.clear();
  s.put("again", "new");
  REQUIRE(s.changes.size() == 2);
  checkErase(s.changes[0], s.pid("again"), "again", 1);
  checkStore(s.changes[1], s.pid("again"), "again", "new", 1, 0, 0, 0);
}

TEST_CASE("record store changes: the sweep erases what it expires", "[node][unit]") {
  Store s;
  for (int i = 0; i < 200; ++i) s.put(keyOf(i), "v", i < 150 ? 1000 : 0);
  s.changes.clear();
  s.clock.advance(1001);

  size_t removed = 0;
  for (int round = 0; round < 1000 && removed < 150; ++round) removed += s.map.sweepExpired(10);
  CHECK(removed == 150);
  REQUIRE(s.changes.size() == 150);
  std::set<std::string> erased;
  for (auto& c : s.changes) {
    CHECK(c.kind == Kind::ERASE);
    CHECK(c.partition == s.pid(c.key));
    erased.insert(c.key);
  }
  CHECK(erased.size() == 150);
  CHECK(erased.count(keyOf(0)) == 1);
  CHECK(erased.count(keyOf(150)) == 0);
  CHECK(s.map.size() == 50);
}

TEST_CASE("record store changes: eviction changes nothing persisted", "[node][unit]") {
  for (auto policy : {EvictionPolicy::LRU, EvictionPolicy::LFU}) {
    MapConfig config;
    config.maxEntries = 10;
    config.eviction = policy;
    Store s(config);
    s.recordEvents();
    for (int i = 0; i < 40; ++i) s.put(keyOf(i), "v");
    CHECK(s.map.size() == 10);
    CHECK(s.countEvents(EntryEventType::EVICTED) == 30);
    CHECK(s.countChanges(Kind::STORE) == 40);
    CHECK(s.countChanges(Kind::ERASE) == 0);

    // Limits lowered later: the sweep evicts, still nothing persisted changes.
    s.changes.clear();
    config.maxEntries = 3;
    s.map.setConfig(config);
    s.map.sweepExpired(100);
    CHECK(s.map.size() == 3);
    CHECK(s.changes.empty());
  }
}

TEST_CASE("record store changes: an empty sink stops reporting", "[node][unit]") {
  Store s;
  s.map.setChangeSink({});
  s.put("k", "v", 1000);
  s.map.setTtl(s.pid("k"), "k", 2000);
  s.map.remove(s.pid("k"), "k", nullptr);
  s.put("k2", "v");
  s.map.clear();
  CHECK(s.changes.empty());
}

TEST_CASE("record store restore: keeps version and expiration", "[node][unit]") {
  Store s;
  s.recordEvents();
  const int64_t t0 = s.clock.nowMs();
  const PartitionId p = s.pid("k");

  REQUIRE(s.restore("k", "loaded", 7, t0 + 5000, 10000, 0));
  auto e = s.map.getEntry(p, "k");
  REQUIRE(e);
  CHECK(e->value == "loaded");
  CHECK(e->meta.version == 7);
  CHECK(e->meta.expirationTimeMs == t0 + 5000);  // as given, not now + ttl
  CHECK(e->meta.ttlMs == 10000);
  CHECK(e->meta.maxIdleMs == 0);
  CHECK(e->meta.creationTimeMs <= t0);
  CHECK(e->meta.creationTimeMs > t0 - 1000);
  CHECK(e->meta.updateTimeMs == e->meta.creationTimeMs);

  s.clock.advance(5000);
  CHECK(s.get("k") == "loaded");
  s.clock.advance(1);
  CHECK_FALSE(s.get("k"));

  // 0: never expires, even with a TTL setting.
  REQUIRE(s.restore("forever", "v", 3, 0, 1000, 0));
  s.clock.advance(1000000);
  CHECK(s.get("forever") == "v");
  CHECK(s.map.getEntry(s.pid("forever"), "forever")->meta.expirationTimeMs == 0);

  // A deadline without a TTL setting still expires.
  const int64_t t1 = s.clock.nowMs();
  REQUIRE(s.restore("deadline", "v", 1, t1 + 100, 0, 0));
  CHECK(s.map.getEntry(s.pid("deadline"), "deadline")->meta.expirationTimeMs == t1 + 100);
  s.clock.advance(101);
  CHECK_FALSE(s.get("deadline"));
}

TEST_CASE("record store restore: an already expired entry is refused", "[node][unit]") {
  Store s;
  const int64_t now = s.clock.nowMs();
  CHECK_FALSE(s.restore("k", "v", 4, now - 1, 1000, 0));
  CHECK_FALSE(s.restore("k", "v", 4, 1, 0, 0));
  CHECK(s.map.size() == 0);
  CHECK_FALSE(s.get("k"));
  CHECK(s.restore("k", "v", 4, now, 1000, 0));  // expires after `now`, not at it
  CHECK(s.get("k") == "v");
  CHECK(s.changes.size() == 0);
}

TEST_CASE("record store restore: writes continue from the restored version", "[node][unit]") {
  Store s;
  const PartitionId p = s.pid("k");
  REQUIRE(s.restore("k", "v", 7, 0, 0, 0));
  CHECK(s.changes.empty());
  WriteResult r = s.put("k", "v2");
  CHECK(r.applied);
  CHECK(r.hadPrevious);
  CHECK(r.version == 8);
  checkStore(s.only(), p, "k", "v2", 8, 0, 0, 0);
  CHECK(s.map.replaceIfVersion(p, "k", 8, WriteSpec{"v3"}).version == 9);
  CHECK(s.map.getEntry(p, "k")->meta.version == 9);

  // A write after a restore with a deadline takes its own TTL, and its changes say so.
  s.changes.clear();
  REQUIRE(s.restore("d", "v", 41, s.clock.nowMs() + 100, 0, 0));
  s.put("d", "w");
  checkStore(s.only(), s.pid("d"), "d", "w", 42, 0, 0, 0);
  s.clock.advance(1000);
  CHECK(s.get("d") == "w");
}

TEST_CASE("record store restore: emits neither events nor changes", "[node][unit]") {
  Store s;
  s.recordEvents();
  const PartitionId p = s.pid("k");
  REQUIRE(s.restore("k", "v1", 3, 0, 0, 0));
  REQUIRE(s.restore("k", "v2", 9, 0, 0, 0));  // replaces silently
  CHECK(s.events.empty());
  CHECK(s.changes.empty());
  CHECK(s.get("k") == "v2");
  CHECK(s.map.getEntry(p, "k")->meta.version == 9);
  CHECK(s.map.size() == 1);

  // Over an expired in-memory copy: replaced, not reported as an expiry.
  s.put("x", "old", 1000);
  s.changes.clear();
  s.events.clear();
  s.clock.advance(1001);
  REQUIRE(s.restore("x", "new", 5, 0, 0, 0));
  CHECK(s.events.empty());
  CHECK(s.changes.empty());
  CHECK(s.get("x") == "new");
  CHECK(s.map.size() == 2);
}

TEST_CASE("record store restore: ttl and max idle as given, -1 for the map default", "[node][unit]") {
  MapConfig config;
  config.defaultTtlMs = 60000;
  config.defaultMaxIdleMs = 3000;
  Store s(config);
  const int64_t t0 = s.clock.nowMs();
  REQUIRE(s.restore("k", "v", 2, t0 + 60000, -1, -1));
  auto e = s.map.getEntry(s.pid("k"), "k");
  REQUIRE(e);
  CHECK(e->meta.ttlMs == 60000);
  CHECK(e->meta.maxIdleMs == 3000);
  CHECK(e->meta.lastAccessTimeMs == t0);

  // Idle expiry counts from the restore.
  REQUIRE(s.restore("idle", "v", 2, 0, 0, 1000));
  s.clock.advance(900);
  CHECK(s.map.containsKey(s.pid("idle"), "idle"));
  s.clock.advance(101);
  CHECK_FALSE(s.map.containsKey(s.pid("idle"), "idle"));
  // ...and that expiry is a real one for the store.
  checkErase(s.only(), s.pid("idle"), "idle", 2);
}

TEST_CASE("record store restore: evicts like a write when limits are exceeded", "[node][unit]") {
  MapConfig config;
  config.maxEntries = 5;
  Store s(config);
  s.recordEvents();
  for (int i = 0; i < 12; ++i) REQUIRE(s.restore(keyOf(i), "v", 1, 0, 0, 0));
  CHECK(s.map.size() == 5);
  CHECK(s.countEvents(EntryEventType::EVICTED) == 7);
  CHECK(s.events.size() == 7);
  CHECK(s.changes.empty());

  config.eviction = EvictionPolicy::NONE;
  s.map.setConfig(config);
  CHECK_FALSE(s.restore("refused", "v", 1, 0, 0, 0));
  CHECK_FALSE(s.get("refused"));
  CHECK(s.map.size() == 5);
  CHECK(s.restore(keyOf(11), "replaced", 2, 0, 0, 0));  // a replacement fits
  CHECK(s.get(keyOf(11)) == "replaced");
}

TEST_CASE("record store restore: bytes stay accounted", "[node][unit]") {
  Store s;
  REQUIRE(s.restore("k", std::string(1000, 'a'), 1, 0, 0, 0));
  const uint64_t one = s.map.bytes();
  REQUIRE(s.restore("k", std::string(10, 'a'), 2, s.clock.nowMs() + 10, 0, 0));
  CHECK(s.map.bytes() < one);
  CHECK(s.map.remove(s.pid("k"), "k", nullptr));
  s.map.clear();
  CHECK(s.map.bytes() == 0);
  CHECK_THROWS_AS(s.map.restore(PARTITIONS, "k", "v", 1, 0, 0, 0), std::out_of_range);
}

// The embedding API: a member started in-process, maps used from several host threads, listeners
// as plain callbacks, options validation, graceful stop.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "shoal/node/node.h"

using namespace std::chrono_literals;

namespace {
shoal::NodeOptions embeddedOptions() {
  shoal::NodeOptions o;
  o.name = "embedded-test";
  o.listen = "";  // no RPC listener needed
  o.logLevel = "warn";
  return o;
}
}  // namespace

TEST_CASE("node: embedded member serves map operations", "[node][integration]") {
  auto node = shoal::Node::start(embeddedOptions());
  auto users = node->map("users");
  CHECK_FALSE(users.get("alice"));
  CHECK_FALSE(users.put("alice", "1"));
  CHECK(users.put("alice", "2") == std::optional<std::string>("1"));
  CHECK(users.get("alice") == std::optional<std::string>("2"));
  CHECK(users.putIfAbsent("alice", "3") == std::optional<std::string>("2"));
  CHECK_FALSE(users.replace("bob", "x"));
  CHECK_FALSE(users.containsKey("bob"));
  CHECK(users.replaceIfEqual("alice", "2", "4"));
  CHECK_FALSE(users.replaceIfEqual("alice", "2", "5"));
  auto entry = users.getEntry("alice");
  REQUIRE(entry);
  CHECK(entry->value == "4");
  CHECK(entry->version == 3);
  CHECK(users.replaceIfVersion("alice", 3, "6"));
  CHECK_FALSE(users.replaceIfVersion("alice", 3, "7"));
  CHECK(users.size() == 1);
  CHECK_FALSE(users.removeIfEqual("alice", "nope"));
  CHECK(users.remove("alice") == std::optional<std::string>("6"));
  CHECK(users.size() == 0);
  node->stop();
  CHECK_THROWS_AS(users.get("alice"), shoal::Error);
}

TEST_CASE("node: embedded member is thread-safe for the host", "[node][integration]") {
  auto node = shoal::Node::start(embeddedOptions());
  auto counters = node->map("counters");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) counters.set("t" + std::to_string(t) + ":" + std::to_string(i), "v");
    });
  }
  for (auto& th : threads) th.join();
  CHECK(counters.size() == 2000);

  std::vector<std::pair<std::string, std::string>> all;
  uint64_t cursor = 0;
  do {
    cursor = counters.scan(cursor, 300, &all);
  } while (cursor != 0);
  std::set<std::string> keys;
  for (auto& [k, v] : all) keys.insert(k);
  CHECK(keys.size() == 2000);
}

TEST_CASE("node: embedded listeners receive events in order", "[node][integration]") {
  auto node = shoal::Node::start(embeddedOptions());
  auto m = node->map("events");
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<shoal::EntryEvent> seen;
  auto id = m.addListener([&](const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(e);
    cv.notify_all();
  });
  m.put("k", "1");
  m.put("k", "2");
  m.remove("k");
  {
    std::unique_lock<std::mutex> lock(mutex);
    REQUIRE(cv.wait_for(lock, 5s, [&] { return seen.size() >= 3; }));
    CHECK(seen[0].type == shoal::EntryEventType::ADDED);
    CHECK(seen[0].value == "1");
    CHECK(seen[1].type == shoal::EntryEventType::UPDATED);
    CHECK(seen[1].oldValue == "1");
    CHECK(seen[1].value == "2");
    CHECK(seen[2].type == shoal::EntryEventType::REMOVED);
    CHECK(seen[2].oldValue == "2");
    CHECK(seen[0].map == "events");
  }
  m.removeListener(id);
  m.put("k", "3");
  std::this_thread::sleep_for(100ms);
  std::lock_guard<std::mutex> lock(mutex);
  CHECK(seen.size() == 3);
}

TEST_CASE("node: limits give clear errors and keep data", "[node][integration]") {
  auto options = embeddedOptions();
  options.limits.maxValueBytes = 1024;
  options.limits.maxKeyBytes = 16;
  auto node = shoal::Node::start(options);
  auto m = node->map("limited");
  m.set("k", "small");
  try {
    m.set("k", std::string(2000, 'x'));
    FAIL("an oversized value was accepted");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::TOO_LARGE);
    CHECK_THAT(e.what(), Catch::Contains("max-value-bytes"));
  }
  CHECK_THROWS_WITH(m.get(std::string(17, 'k')), Catch::Contains("max-key-bytes"));
  CHECK(m.get("k") == std::optional<std::string>("small"));
}

TEST_CASE("node: invalid options name the field", "[node][unit]") {
  auto o = embeddedOptions();
  o.listen = "nonsense";
  CHECK_THROWS_WITH(shoal::Node::start(o), Catch::Contains("listen"));
  o = embeddedOptions();
  o.partitionCount = 0;
  CHECK_THROWS_WITH(shoal::Node::start(o), Catch::Contains("partition-count"));
  o = embeddedOptions();
  o.logLevel = "loud";
  CHECK_THROWS_WITH(shoal::Node::start(o), Catch::Contains("log-level"));
}

TEST_CASE("node: map configuration applies TTL defaults and eviction", "[node][integration]") {
  auto o = embeddedOptions();
  shoal::MapOptions sessions;
  sessions.defaultTtlMs = 150;
  o.maps["sessions"] = sessions;
  shoal::MapOptions cache;
  cache.maxEntries = 100;
  o.maps["cache"] = cache;
  auto node = shoal::Node::start(o);
  auto s = node->map("sessions");
  s.set("token", "abc");
  auto e = s.getEntry("token");
  REQUIRE(e);
  CHECK(e->ttlMs == 150);
  std::this_thread::sleep_for(400ms);
  CHECK_FALSE(s.get("token"));

  auto c = node->map("cache");
  for (int i = 0; i < 1000; ++i) c.set("k" + std::to_string(i), "v");
  CHECK(c.size() <= 100);
  CHECK(c.size() >= 90);
}

TEST_CASE("node: embedded reads of entries evicted from memory are read through from the store",
          "[node][integration][persistence]") {
  auto dir = std::filesystem::temp_directory_path() / ("shoal-embedded-rt-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto options = embeddedOptions();
  options.dataDir = dir.string();
  options.maps["small"].maxEntries = 100;
  {
    auto node = shoal::Node::start(options);
    auto m = node->map("small");
    for (int i = 0; i < 1000; ++i) m.set("k" + std::to_string(i), "v" + std::to_string(i));
    CHECK(m.size() <= 100);  // memory holds at most 100; the store holds all 1000
    size_t missing = 0;
    for (int i = 0; i < 1000; ++i)
      missing += m.get("k" + std::to_string(i)) != std::optional<std::string>("v" + std::to_string(i));
    CHECK(missing == 0);
    CHECK(m.containsKey("k0"));
    CHECK(m.putIfAbsent("k1", "other") == std::optional<std::string>("v1"));  // sees the stored entry
    CHECK_FALSE(m.get("never-written"));
  }
  std::filesystem::remove_all(dir);
}

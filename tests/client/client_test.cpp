// The client library against a real shoald process on a loopback port.
#include "shoal/client/client.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::ShoaldProcess;

namespace {
std::unique_ptr<shoal::Client> connectTo(const ShoaldProcess& member) {
  shoal::ClientOptions options;
  options.servers = {member.address()};
  options.requestTimeout = 3000ms;
  return shoal::Client::connect(options);
}
}  // namespace

TEST_CASE("client: map operations round-trip through a real member", "[client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto users = client->map<std::string, std::string>("users");

  CHECK_FALSE(users.get("alice"));
  CHECK_FALSE(users.put("alice", "v1"));
  CHECK(users.put("alice", "v2") == std::optional<std::string>("v1"));
  CHECK(users.get("alice") == std::optional<std::string>("v2"));
  CHECK(users.putIfAbsent("alice", "v3") == std::optional<std::string>("v2"));
  CHECK_FALSE(users.putIfAbsent("bob", "b1"));
  CHECK(users.replace("bob", "b2") == std::optional<std::string>("b1"));
  CHECK_FALSE(users.replace("carol", "c"));
  CHECK(users.replaceIfEqual("bob", "b2", "b3"));
  CHECK_FALSE(users.replaceIfEqual("bob", "b2", "b4"));
  auto entry = users.getEntry("bob");
  REQUIRE(entry);
  CHECK(entry->version == 3);
  CHECK(entry->value == "b3");
  CHECK(entry->creationTimeMs > 0);
  CHECK(users.replaceIfVersion("bob", 3, "b5"));
  CHECK_FALSE(users.replaceIfVersion("bob", 3, "b6"));
  CHECK(users.containsKey("bob"));
  CHECK(users.size() == 2);
  CHECK_FALSE(users.removeIfEqual("bob", "nope"));
  CHECK(users.removeIfVersion("bob", 4));
  CHECK(users.remove("alice") == std::optional<std::string>("v2"));
  CHECK(users.size() == 0);

  users.putAll({{"a", "1"}, {"b", "2"}, {"c", "3"}});
  auto all = users.getAll({"a", "b", "c", "missing"});
  CHECK(all.size() == 3);
  CHECK(users.clear() == 3);
  CHECK(users.size() == 0);

  auto counters = client->map<std::string, int64_t>("counters");
  counters.set("hits", -42);
  CHECK(counters.get("hits") == std::optional<int64_t>(-42));
}

TEST_CASE("client: TTL expires entries on the member", "[client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto sessions = client->rawMap("sessions");
  sessions.set("token", "abc", shoal::WriteOptions{.ttl = 200ms});
  CHECK(sessions.get("token") == std::optional<std::string>("abc"));
  auto e = sessions.getEntry("token");
  REQUIRE(e);
  CHECK(e->ttlMs == 200);
  std::this_thread::sleep_for(500ms);
  CHECK_FALSE(sessions.get("token"));
}

TEST_CASE("client: concurrent callers are coalesced and all answered", "[client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto m = client->rawMap("load");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        auto key = "t" + std::to_string(t) + "-" + std::to_string(i);
        m.set(key, key);
        if (m.get(key) != std::optional<std::string>(key)) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(m.size() == 16 * 300);

  // Asynchronous callbacks: 10k operations in flight at once.
  std::atomic<int> done{0};
  for (int i = 0; i < 10000; ++i) {
    m.setAsync("async" + std::to_string(i), "v", [&](shoal::Result<bool> r) {
      if (!r.ok()) failures++;
      done++;
    });
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (done < 10000 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  CHECK(done == 10000);
  CHECK(failures == 0);
}

TEST_CASE("client: scan visits every key in pages", "[client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto m = client->rawMap("scanned");
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 2500; ++i) entries.emplace_back("k" + std::to_string(i), "v");
  m.putAll(entries);
  std::set<std::string> seen;
  uint64_t cursor = 0;
  int pages = 0;
  do {
    auto page = m.scan(cursor, 400);
    CHECK(page.entries.size() <= 400);
    for (auto& [k, v] : page.entries) seen.insert(k);
    cursor = page.cursor;
    ++pages;
  } while (cursor != 0 && pages < 1000);
  CHECK(seen.size() == 2500);
  CHECK(pages >= 7);
}

TEST_CASE("client: listeners receive remote entry events", "[client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto m = client->rawMap("watched");
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<shoal::EntryEvent> events;
  auto id = m.addListener([&](const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back(e);
    cv.notify_all();
  });
  m.set("k", "1");
  m.set("k", "2");
  m.remove("k");
  std::unique_lock<std::mutex> lock(mutex);
  REQUIRE(cv.wait_for(lock, 5s, [&] { return events.size() >= 3; }));
  CHECK(events[0].type == shoal::EntryEventType::ADDED);
  CHECK(events[1].type == shoal::EntryEventType::UPDATED);
  CHECK(events[1].oldValue == "1");
  CHECK(events[2].type == shoal::EntryEventType::REMOVED);
  lock.unlock();
  m.removeListener(id);
}

TEST_CASE("client: oversized values get a clear error and the connection keeps serving",
          "[client][integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto m = client->rawMap("big");
  m.set("small", "ok");
  try {
    m.set("huge", std::string(9 * 1024 * 1024, 'x'));
    FAIL("an oversized value was accepted");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::TOO_LARGE);
    CHECK_THAT(e.what(), Catch::Contains("max-value-bytes"));
  }
  CHECK(m.get("small") == std::optional<std::string>("ok"));
  CHECK_FALSE(m.get("huge"));
  CHECK(member.alive());
}

TEST_CASE("client: an unreachable member fails fast with UNAVAILABLE, never hangs", "[client][integration]") {
  shoal::ClientOptions options;
  options.servers = {"127.0.0.1:1"};  // nothing listens on port 1
  options.connectTimeout = 300ms;
  options.requestTimeout = 500ms;
  auto start = std::chrono::steady_clock::now();
  try {
    shoal::Client::connect(options);
    FAIL("connected to nothing");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::UNAVAILABLE);
  }
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("client: a restarted member is reconnected to", "[client][integration]") {
  auto member = std::make_unique<ShoaldProcess>();
  auto address = member->address();
  shoal::ClientOptions options;
  options.servers = {address};
  options.requestTimeout = 5000ms;
  options.breakerFailureThreshold = 1000;  // this test is about reconnecting, not the breaker
  auto client = shoal::Client::connect(options);
  auto m = client->rawMap("r");
  m.set("a", "1");
  member->kill9();
  auto port = address.substr(address.rfind(':') + 1);
  std::thread restart([&] {
    std::this_thread::sleep_for(200ms);
    member = std::make_unique<ShoaldProcess>(std::vector<std::string>{"--listen", "127.0.0.1:" + port});
  });
  // Issued while the member is down: retried until it is back (within requestTimeout).
  m.set("b", "2");
  restart.join();
  CHECK(m.get("b") == std::optional<std::string>("2"));
}

TEST_CASE("client: a stopped (SIGSTOP) member gives TIMEOUT within the deadline", "[client][integration]") {
  ShoaldProcess member;
  shoal::ClientOptions options;
  options.servers = {member.address()};
  options.requestTimeout = 400ms;
  auto client = shoal::Client::connect(options);
  auto m = client->rawMap("t");
  m.set("a", "1");
  kill(member.pid(), SIGSTOP);
  auto start = std::chrono::steady_clock::now();
  try {
    m.get("a");
    FAIL("a stopped member answered");
  } catch (const shoal::Error& e) {
    CHECK((e.code() == shoal::ErrorCode::TIMEOUT || e.code() == shoal::ErrorCode::UNAVAILABLE));
  }
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  kill(member.pid(), SIGCONT);
}

TEST_CASE("client: a caller's trace id shows in the member's log", "[client][integration]") {
  ShoaldProcess member({"--log-level", "debug"});
  auto client = connectTo(member);
  auto m = client->rawMap("traced").withTraceId("order-7f3a");
  m.set("k", "v");
  CHECK(m.get("k") == std::optional<std::string>("v"));
  // Without a caller trace id the client generates one per batch; it is logged too.
  client->rawMap("traced").get("k");
  auto log = member.log();
  CHECK_THAT(log, Catch::Contains("[trace order-7f3a] set on map 'traced'"));
  CHECK_THAT(log, Catch::Contains("[trace order-7f3a] get on map 'traced'"));
  CHECK_THAT(log, Catch::Contains("[trace c-"));
}

TEST_CASE("client: listeners see expired and evicted entries", "[client][integration]") {
  char configPath[] = "/tmp/shoal-listen-XXXXXX";
  int fd = mkstemp(configPath);
  std::string config = "[maps.bounded]\nmax-entries = 10\n";
  REQUIRE(write(fd, config.data(), config.size()) == ssize_t(config.size()));
  close(fd);
  ShoaldProcess member({"--config", configPath});
  unlink(configPath);
  auto client = connectTo(member);
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<shoal::EntryEvent> events;
  auto record = [&](const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back(e);
    cv.notify_all();
  };
  auto bounded = client->rawMap("bounded");
  auto ttl = client->rawMap("ttl");
  bounded.addListener(record);
  ttl.addListener(record);
  ttl.set("short", "v", shoal::WriteOptions{.ttl = 100ms});
  for (int i = 0; i < 20; ++i) bounded.set("k" + std::to_string(i), "v");
  auto count = [&](shoal::EntryEventType type) {
    return std::count_if(events.begin(), events.end(), [&](auto& e) { return e.type == type; });
  };
  std::unique_lock<std::mutex> lock(mutex);
  // The expiry sweep (every 100 ms) removes "short" without anyone reading it.
  CHECK(cv.wait_for(lock, 5s, [&] {
    return count(shoal::EntryEventType::EXPIRED) >= 1 && count(shoal::EntryEventType::EVICTED) >= 10;
  }));
  CHECK(count(shoal::EntryEventType::EVICTED) >= 10);
  auto expired = std::find_if(events.begin(), events.end(),
                              [](auto& e) { return e.type == shoal::EntryEventType::EXPIRED; });
  REQUIRE(expired != events.end());
  CHECK(expired->map == "ttl");
  CHECK(expired->key == "short");
  CHECK(expired->oldValue == "v");
}

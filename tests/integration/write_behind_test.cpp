// Write-behind maps with real shoald processes (and an embedded member with a failing store, driven
// by the real shoalctl): writes are acknowledged from the durable queue and reach the store later;
// kill -9 loses no acknowledged write; store failures become dead letters that shoalctl lists,
// flush reports and replay retries. The data directory is read back with the real RocksDbStore
// once the member is gone.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "shoal/client/client.h"
#include "shoal/node/node.h"
#include "shoal/persistence/rocksdb_store.h"
#include "shoal/persistence/write_behind_queue.h"
#include "shoald_process.h"

#ifndef SHOALCTL_BINARY
#error "SHOALCTL_BINARY must be defined by the build"
#endif

using namespace std::chrono_literals;
using nlohmann::json;
using shoal::test::CommandResult;
using shoal::test::ShoaldProcess;
namespace fs = std::filesystem;
namespace sp = shoal::persistence;

namespace {

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/shoal-wb-XXXXXX";
    path = mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string sub(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

// A config file in `dir` with `toml`; returns its path.
std::string writeConfig(const TempDir& dir, const std::string& toml) {
  std::string path = dir.sub("shoal.toml");
  std::ofstream(path) << toml;
  return path;
}

std::unique_ptr<shoal::Client> connectTo(const std::string& address) {
  shoal::ClientOptions options;
  options.servers = {address};
  options.requestTimeout = 5000ms;
  return shoal::Client::connect(options);
}

CommandResult shoalctl(const std::string& address, std::vector<std::string> args, int timeoutMs = 20000) {
  args.insert(args.begin(), {SHOALCTL_BINARY, "--servers", address});
  return shoal::test::runCommand(args, timeoutMs);
}

json parsed(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE_NOTHROW(json::parse(r.out));
  return json::parse(r.out);
}

// What a stopped member left in its data directory: the map's stored entries and the writes
// still waiting in its write-behind queue.
struct DataDirContents {
  std::map<std::string, std::string> stored;
  uint64_t queued = 0;
  uint64_t deadLetters = 0;
};

DataDirContents readDataDir(const std::string& dataDir, const std::string& map) {
  sp::RocksDbStoreOptions options;
  options.path = dataDir;
  options.partitionCount = 271;
  options.createIfMissing = false;
  auto store = sp::RocksDbStore::open(options);
  REQUIRE(store.ok());
  DataDirContents out;
  for (uint32_t p = 0; p < 271; ++p) {
    auto visited = (*store)->forEach(p, [&](const sp::StoredEntryView& e) {
      if (e.map == map) out.stored.emplace(e.key, e.value);
      return true;
    });
    REQUIRE(visited.ok());
  }
  auto names = sp::WriteBehindQueue::queueNames(**store);
  REQUIRE(names.ok());
  if (std::find(names->begin(), names->end(), map) != names->end()) {
    auto queue = sp::WriteBehindQueue::open(**store, **store, {.name = map});
    REQUIRE(queue.ok());
    out.queued = (*queue)->pending();
    out.deadLetters = (*queue)->deadLetterCount();
  }
  return out;
}

// A backing store of the embedder's (stand-in for a SQL database) that the test can switch off.
class SwitchableStore final : public sp::MapStore {
 public:
  std::atomic<bool> down{false};

  sp::StoreResult<std::optional<sp::StoredValue>> load(std::string_view map, uint32_t partition,
                                                       std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(keyOf(map, key));
    if (it == rows_.end()) return std::optional<sp::StoredValue>();
    return std::optional<sp::StoredValue>(it->second);
  }
  sp::StoreResult<void> store(std::string_view map, uint32_t partition, std::string_view key,
                              std::string_view value, const sp::StoredMeta& meta) override {
    if (down) return sp::StoreError{sp::StoreErrorCode::IO_ERROR, "the test's store is down"};
    std::lock_guard lock(mutex_);
    rows_[keyOf(map, key)] = sp::StoredValue{std::string(value), meta};
    return {};
  }
  sp::StoreResult<void> erase(std::string_view map, uint32_t partition, std::string_view key) override {
    if (down) return sp::StoreError{sp::StoreErrorCode::IO_ERROR, "the test's store is down"};
    std::lock_guard lock(mutex_);
    rows_.erase(keyOf(map, key));
    return {};
  }
  sp::StoreResult<sp::KeyPage> listKeys(std::string_view, std::optional<uint32_t>, std::string_view,
                                        uint32_t) override {
    return sp::StoreError{sp::StoreErrorCode::INVALID_ARGUMENT, "not needed"};
  }
  sp::StoreResult<void> forEach(uint32_t partition, const sp::EntryVisitor& visit) override { return {}; }
  sp::StoreResult<void> dropPartition(uint32_t) override { return {}; }

  std::optional<sp::StoredValue> row(const std::string& map, const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(keyOf(map, key));
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }

 private:
  static std::string keyOf(std::string_view map, std::string_view key) {
    return std::string(map) + '\0' + std::string(key);
  }
  std::mutex mutex_;
  std::map<std::string, sp::StoredValue> rows_;
};

}  // namespace

TEST_CASE("write-behind: writes are acknowledged from the durable queue and reach the store after the delay",
          "[write-behind][integration]") {
  // Not fsynced (the default) or fsynced before the acknowledgement: kill -9 loses nothing either way.
  const bool sync = GENERATE(false, true);
  INFO("write-behind-sync = " << sync);
  TempDir dir;
  auto config =
      writeConfig(dir, std::string("[maps.orders]\npersistence = \"write-behind\"\nwrite-delay = \"3s\"\n") +
                           "write-behind-sync = " + (sync ? "true" : "false") + "\n");
  std::vector<std::string> args{"--data-dir", dir.sub("data"), "--config", config};
  {
    ShoaldProcess member(args);
    auto client = connectTo(member.address());
    auto orders = client->rawMap("orders");
    for (int i = 0; i < 50; ++i) orders.set("k" + std::to_string(i), "v" + std::to_string(i));
    orders.remove("k0");
    // Visible at once, although nothing is in the store yet.
    CHECK(orders.get("k7") == std::optional<std::string>("v7"));
    CHECK_FALSE(orders.get("k0"));
    member.kill9();
  }
  auto killed = readDataDir(dir.sub("data"), "orders");
  CHECK(killed.stored.empty());  // the delay (3 s) had not passed: all of it was in the queue
  CHECK(killed.queued == 50);    // 49 stores and the removal of k0 (which replaced its store)
  {
    ShoaldProcess member(args);
    auto client = connectTo(member.address());
    auto orders = client->rawMap("orders");
    // Restart: memory shows every acknowledged write, from the queue.
    CHECK(orders.size() == 49);
    CHECK(orders.get("k49") == std::optional<std::string>("v49"));
    CHECK_FALSE(orders.get("k0"));
    std::this_thread::sleep_for(3500ms);  // the delay has passed (it counts from the first enqueue)
    member.kill9();
  }
  auto flushed = readDataDir(dir.sub("data"), "orders");
  CHECK(flushed.queued == 0);
  CHECK(flushed.stored.size() == 49);
  CHECK(flushed.stored["k49"] == "v49");
  CHECK_FALSE(flushed.stored.contains("k0"));
}

TEST_CASE("write-behind: after kill -9 under load the store converges to every acknowledged write",
          "[write-behind][integration]") {
  const uint64_t seed = std::getenv("SHOAL_TEST_SEED")
                            ? std::strtoull(std::getenv("SHOAL_TEST_SEED"), nullptr, 10)
                            : std::random_device{}();
  std::printf("write-behind kill -9: seed %llu (rerun with SHOAL_TEST_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  TempDir dir;
  auto config = writeConfig(
      dir, "[maps.orders]\npersistence = \"write-behind\"\nwrite-delay = \"200ms\"\nwrite-batch-size = 50\n");
  std::vector<std::string> args{"--data-dir", dir.sub("data"), "--config", config};

  constexpr int WRITERS = 4, KEYS_PER_WRITER = 150;
  // Per key: the acknowledged state (nullopt: absent) and, for the write cut off by the kill, the
  // state it would have made (either is right: it may or may not have been queued).
  struct KeyState {
    std::optional<std::string> acked;
    std::optional<std::optional<std::string>> inFlight;
  };
  std::vector<std::map<std::string, KeyState>> keys(WRITERS);
  std::atomic<uint64_t> acknowledged{0};
  {
    auto member = std::make_unique<ShoaldProcess>(args);
    auto client = connectTo(member->address());
    auto orders = client->rawMap("orders");
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < WRITERS; ++w) {
      writers.emplace_back([&, w] {
        std::mt19937_64 rng(seed + w);
        for (int op = 0; !stop; ++op) {
          std::string key = "w" + std::to_string(w) + ":" + std::to_string(rng() % KEYS_PER_WRITER);
          std::optional<std::string> next;
          if (rng() % 4 != 0) next = "v" + std::to_string(op) + "-" + std::to_string(rng() % 1000);
          keys[w][key].inFlight = next;
          try {
            if (next) {
              orders.set(key, *next);
            } else {
              orders.remove(key);
            }
          } catch (const shoal::Error&) {
            return;  // the member died: this write may or may not have been queued
          }
          keys[w][key] = KeyState{next, std::nullopt};
          ++acknowledged;
        }
      });
    }
    std::this_thread::sleep_for(1200ms);
    member->kill9();
    stop = true;
    for (auto& t : writers) t.join();
  }
  REQUIRE(acknowledged > 100);
  ShoaldProcess member(args);
  auto client = connectTo(member.address());
  auto orders = client->rawMap("orders");
  auto matches = [](const KeyState& s, const std::optional<std::string>& seen) {
    return seen == s.acked || (s.inFlight && seen == *s.inFlight);
  };
  std::map<std::string, std::optional<std::string>> afterRestart;
  size_t wrong = 0;
  for (auto& perWriter : keys) {
    for (auto& [key, state] : perWriter) {
      auto seen = orders.get(key);
      afterRestart[key] = seen;
      if (!matches(state, seen)) {
        ++wrong;
        UNSCOPED_INFO("key " << key << ": memory has " << seen.value_or("(absent)") << ", acknowledged "
                             << state.acked.value_or("(absent)"));
      }
    }
  }
  INFO(acknowledged << " acknowledged writes over " << afterRestart.size() << " keys");
  CHECK(wrong == 0);
  // The queue converges the store: flush, stop, and compare the store with what memory showed.
  auto report = client->flushWriteBehind("orders", 20s);
  CHECK(report.failed.empty());
  CHECK(member.terminate() == 0);
  auto contents = readDataDir(dir.sub("data"), "orders");
  CHECK(contents.queued == 0);
  size_t diverged = 0;
  for (auto& [key, seen] : afterRestart) {
    auto it = contents.stored.find(key);
    std::optional<std::string> stored =
        it == contents.stored.end() ? std::nullopt : std::optional(it->second);
    if (stored != seen) {
      ++diverged;
      UNSCOPED_INFO("key " << key << ": store has " << stored.value_or("(absent)") << ", memory had "
                           << seen.value_or("(absent)"));
    }
  }
  CHECK(diverged == 0);
}

TEST_CASE("write-behind: a failing store leads to retries, dead letters that shoalctl lists, and replay",
          "[write-behind][integration]") {
  TempDir dir;
  auto store = std::make_shared<SwitchableStore>();
  shoal::NodeOptions options;
  options.listen = "127.0.0.1:0";
  options.logLevel = "error";
  options.dataDir = dir.sub("queue");  // the embedder's store gets the writes; data-dir holds the queue
  options.store = store;
  auto& orders = options.maps["orders"];
  orders.persistence = shoal::MapPersistenceMode::WRITE_BEHIND;
  orders.writeDelayMs = 60'000;  // only the operator's flush writes them
  orders.writeMaxAttempts = 3;
  orders.writeRetryBackoffMs = 50;
  orders.writeMaxRetryBackoffMs = 100;
  auto node = shoal::Node::start(options);
  auto address = node->address();
  auto map = node->map("orders");

  store->down = true;
  map.set("alpha", "1");
  map.set("beta", "2");
  map.set("gamma", "3");
  map.remove("gamma");                                         // a removal that fails too
  CHECK(map.get("alpha") == std::optional<std::string>("1"));  // acknowledged and served from memory

  auto flush = shoalctl(address, {"flush", "orders", "--json"});
  INFO(flush.out << flush.err);
  CHECK(flush.exitCode == 5);
  auto report = parsed(flush);
  CHECK(report["written"] == 0);
  CHECK(report["deadLetters"] == 3);
  REQUIRE(report["failed"].size() == 3);
  std::set<std::string> failedKeys;
  for (auto& f : report["failed"]) {
    failedKeys.insert(f["key"].get<std::string>());
    CHECK(f["attempts"] == 3);
    CHECK_THAT(f["error"].get<std::string>(), Catch::Contains("the test's store is down"));
  }
  CHECK(failedKeys == std::set<std::string>{"alpha", "beta", "gamma"});

  auto listed = shoalctl(address, {"dead-letters", "orders", "--json"});
  CHECK(listed.exitCode == 0);
  auto letters = parsed(listed);
  CHECK(letters["total"] == 3);
  REQUIRE(letters["letters"].size() == 3);
  std::map<std::string, json> byKey;  // listed in the store's key order (partition first)
  for (auto& letter : letters["letters"]) byKey[letter["key"].get<std::string>()] = letter;
  CHECK(byKey["alpha"]["value"] == "1");
  CHECK(byKey["alpha"]["op"] == "store");
  CHECK(byKey["alpha"]["attempts"] == 3);
  CHECK(byKey["gamma"]["op"] == "remove");
  CHECK(byKey["gamma"]["value"].is_null());
  auto human = shoalctl(address, {"dead-letters", "orders"});
  CHECK_THAT(human.out, Catch::Contains("beta") && Catch::Contains("the test's store is down"));
  // Human flush output names the failures too, and says what to do.
  CHECK(shoalctl(address, {"flush", "orders"}).err.find("shoalctl replay orders") != std::string::npos);

  // The store comes back: replay, flush, and the store has every write.
  store->down = false;
  auto replayed = shoalctl(address, {"replay", "orders", "--json"});
  CHECK(replayed.exitCode == 0);
  CHECK(parsed(replayed)["requeued"] == 3);
  auto again = shoalctl(address, {"flush", "orders", "--json"});
  CHECK(again.exitCode == 0);
  // (The periodic flush may have stored some of the replayed writes before this flush began.)
  CHECK(parsed(again)["deadLetters"] == 0);
  CHECK(store->row("orders", "alpha").value().value == "1");
  CHECK(store->row("orders", "beta").value().meta.version == 1);
  CHECK_FALSE(store->row("orders", "gamma"));
  CHECK(parsed(shoalctl(address, {"dead-letters", "orders", "--json"}))["total"] == 0);

  // Not a write-behind map: a clear error, and the member keeps serving.
  auto wrong = shoalctl(address, {"flush", "users"});
  CHECK(wrong.exitCode == 4);
  CHECK_THAT(wrong.err, Catch::Contains("not a write-behind map"));
  CHECK(map.get("alpha") == std::optional<std::string>("1"));
  node->stop();
}

TEST_CASE("write-behind: a graceful stop stores what is queued", "[write-behind][integration]") {
  TempDir dir;
  auto config = writeConfig(dir, "[map-defaults]\npersistence = \"write-behind\"\nwrite-delay = \"1h\"\n");
  {
    ShoaldProcess member({"--data-dir", dir.sub("data"), "--config", config});
    auto client = connectTo(member.address());
    auto events = client->rawMap("events");
    for (int i = 0; i < 300; ++i) events.set("e" + std::to_string(i), std::string(100, 'x'));
    CHECK(member.terminate() == 0);
  }
  auto contents = readDataDir(dir.sub("data"), "events");
  CHECK(contents.queued == 0);
  CHECK(contents.stored.size() == 300);
}

TEST_CASE("write-behind: an evicted entry is read through from the queue before the store",
          "[write-behind][integration]") {
  TempDir dir;
  auto config = writeConfig(
      dir, "[maps.small]\npersistence = \"write-behind\"\nwrite-delay = \"1h\"\nmax-entries = 20\n");
  ShoaldProcess member({"--data-dir", dir.sub("data"), "--config", config});
  auto client = connectTo(member.address());
  auto small = client->rawMap("small");
  for (int i = 0; i < 200; ++i) small.set("k" + std::to_string(i), "v" + std::to_string(i));
  CHECK(small.size() <= 20);  // memory holds 20; the other writes are only in the queue
  size_t missing = 0;
  for (int i = 0; i < 200; ++i)
    missing += small.get("k" + std::to_string(i)) != std::optional<std::string>("v" + std::to_string(i));
  CHECK(missing == 0);
}

TEST_CASE("write-behind: a full queue refuses writes with OVERLOADED until it drains, losing nothing",
          "[write-behind][integration]") {
  TempDir dir;
  auto config = writeConfig(dir,
                            "[maps.q]\npersistence = \"write-behind\"\nwrite-delay = \"1h\"\n"
                            "write-batch-size = 1000\nwrite-behind-queue-capacity = 100\n");
  ShoaldProcess member({"--data-dir", dir.sub("data"), "--config", config});
  auto client = connectTo(member.address());
  auto q = client->rawMap("q");
  // The store waits an hour (and a batch is 1000: a full batch would be written at once).
  for (int i = 0; i < 100; ++i) q.set("k" + std::to_string(i), "v");
  try {
    q.set("one-more", "v");
    FAIL("a write beyond the queue's capacity was acknowledged");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::OVERLOADED);
    CHECK_THAT(e.what(), Catch::Contains("write-behind-queue-capacity"));
  }
  CHECK_FALSE(q.get("one-more"));
  // Once the queue is written out, writes are taken again; everything acknowledged is stored.
  auto report = client->flushWriteBehind("q", 20s);
  CHECK(report.failed.empty());
  CHECK(report.written == 100);
  q.set("one-more", "v");
  CHECK(member.terminate() == 0);
  auto contents = readDataDir(dir.sub("data"), "q");
  CHECK(contents.stored.size() == 101);
}

TEST_CASE("write-behind: configurations that cannot work are refused at start",
          "[write-behind][integration]") {
  TempDir dir;
  SECTION("shoald without a data-dir") {
    auto config = writeConfig(dir, "[maps.orders]\npersistence = \"write-behind\"\n");
    auto r =
        shoal::test::runCommand({ShoaldProcess::binary(), "--listen", "127.0.0.1:0", "--config", config});
    CHECK(r.exitCode == 2);
    CHECK_THAT(r.err, Catch::Contains("maps.orders.persistence") && Catch::Contains("data-dir"));
  }
  SECTION("an unknown mode or a bad batch size") {
    auto config = writeConfig(dir, "[maps.orders]\npersistence = \"later\"\n");
    auto r = shoal::test::runCommand({ShoaldProcess::binary(), "--listen", "127.0.0.1:0", "--data-dir",
                                      dir.sub("data"), "--config", config});
    CHECK(r.exitCode == 2);
    CHECK_THAT(r.err, Catch::Contains("none, write-through or write-behind"));
    config = writeConfig(dir, "[maps.orders]\npersistence = \"write-behind\"\nwrite-batch-size = 0\n");
    r = shoal::test::runCommand({ShoaldProcess::binary(), "--listen", "127.0.0.1:0", "--data-dir",
                                 dir.sub("data"), "--config", config});
    CHECK(r.exitCode == 2);
    CHECK_THAT(r.err, Catch::Contains("maps.orders.write-batch-size"));
  }
  SECTION("shoalctl usage errors") {
    auto r = shoal::test::runCommand({SHOALCTL_BINARY, "dead-letters", "orders", "--limit", "0"});
    CHECK(r.exitCode == 2);
    CHECK_THAT(r.err, Catch::Contains("--limit"));
    r = shoal::test::runCommand({SHOALCTL_BINARY, "replay"});
    CHECK(r.exitCode == 2);
    CHECK_THAT(r.err, Catch::Contains("MAP is required"));
  }
  SECTION("an embedder's store without a data-dir for the queue") {
    shoal::NodeOptions options;
    options.listen = "";
    options.store = std::make_shared<SwitchableStore>();
    options.defaultMap.persistence = shoal::MapPersistenceMode::WRITE_BEHIND;
    try {
      shoal::Node::start(options);
      FAIL("the member started");
    } catch (const shoal::Error& e) {
      CHECK(e.code() == shoal::ErrorCode::INVALID_ARGUMENT);
      CHECK_THAT(e.what(), Catch::Contains("map-defaults.persistence") && Catch::Contains("data-dir"));
    }
  }
}

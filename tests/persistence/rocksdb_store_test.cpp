// RocksDbStore as a MapStore: round trips with metadata, isolation of maps and partitions,
// partition drops, reopen and crash durability, argument checks.
#include "shoal/persistence/rocksdb_store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "test_support.h"

using namespace shoal::persistence;
using shoal::persistence::test::TempDir;

namespace {

std::unique_ptr<RocksDbStore> openStore(const std::string& path, uint32_t partitions = 16) {
  RocksDbStoreOptions options;
  options.path = path;
  options.partitionCount = partitions;
  options.writeBufferBytes = 1 << 20;
  auto store = RocksDbStore::open(options);
  if (!store) FAIL("open failed: " << store.error().toString());
  return std::move(*store);
}

std::optional<std::string> valueOf(RocksDbStore& store, std::string_view map, uint32_t p,
                                   std::string_view key) {
  auto loaded = store.load(map, p, key);
  REQUIRE(loaded.ok());
  if (!loaded->has_value()) return std::nullopt;
  return (*loaded)->value;
}

size_t countPartition(RocksDbStore& store, uint32_t p) {
  size_t n = 0;
  REQUIRE(store.forEach(p, [&](const StoredEntryView&) { return ++n, true; }).ok());
  return n;
}

}  // namespace

TEST_CASE("persistence: stored entries round-trip with their metadata", "[persistence][unit]") {
  TempDir dir;
  auto store = openStore(dir.sub("data"));
  const std::string binaryKey("k\0\xff", 3), binaryValue("v\0\x01\xfe", 4);
  REQUIRE(store->store("users", 3, binaryKey, binaryValue, {7, 1'800'000'000'000, 2}).ok());
  auto loaded = store->load("users", 3, binaryKey);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->value == binaryValue);
  CHECK((*loaded)->meta == StoredMeta{7, 1'800'000'000'000, 2});

  REQUIRE(store->store("users", 3, binaryKey, "second", {8, 0, 0}).ok());
  CHECK(valueOf(*store, "users", 3, binaryKey) == "second");
  REQUIRE(store->store("users", 3, "", "empty key is a key", {}).ok());
  CHECK(valueOf(*store, "users", 3, "") == "empty key is a key");

  REQUIRE(store->erase("users", 3, binaryKey).ok());
  CHECK(valueOf(*store, "users", 3, binaryKey) == std::nullopt);
  CHECK(store->erase("users", 3, "never-there").ok());

  std::vector<StoreWrite> batch = {{"a", 0, "x", "1", {1, 0, 0}},
                                   {"b", 5, "y", "2", {1, 0, 0}},
                                   {"a", 1, "z", "3", {1, 0, 0}},
                                   {"a", 1, "z", std::nullopt, {}}};
  REQUIRE(store->storeMany(batch).ok());
  std::vector<KeyRef> refs = {{0, "x"}, {1, "z"}, {9, "missing"}, {0, "x"}};
  auto many = store->loadMany("a", refs);
  REQUIRE(many.ok());
  REQUIRE(many->size() == 4);
  CHECK((*many)[0]->value == "1");
  CHECK_FALSE((*many)[1].has_value());  // stored then erased in the same batch
  CHECK_FALSE((*many)[2].has_value());
  CHECK((*many)[3]->value == "1");
  CHECK(valueOf(*store, "b", 5, "y") == "2");

  std::vector<KeyRef> gone = {{0, "x"}};
  REQUIRE(store->eraseMany("a", gone).ok());
  CHECK(valueOf(*store, "a", 0, "x") == std::nullopt);
}

TEST_CASE("persistence: maps and partitions do not see each other's keys", "[persistence][unit]") {
  TempDir dir;
  auto store = openStore(dir.sub("data"));
  // "a"+"bx" and "ab"+"x" would collide without the map-name length in the key.
  REQUIRE(store->store("a", 1, "bx", "map a", {}).ok());
  REQUIRE(store->store("ab", 1, "x", "map ab", {}).ok());
  REQUIRE(store->store("a", 2, "bx", "partition 2", {}).ok());
  CHECK(valueOf(*store, "a", 1, "bx") == "map a");
  CHECK(valueOf(*store, "ab", 1, "x") == "map ab");
  CHECK(valueOf(*store, "a", 2, "bx") == "partition 2");
  CHECK(valueOf(*store, "ab", 1, "bx") == std::nullopt);

  auto page = store->listKeys("a", std::nullopt, "", 100);
  REQUIRE(page.ok());
  CHECK(page->keys == std::vector<ListedKey>{{1, "bx"}, {2, "bx"}});
  CHECK(page->nextCursor.empty());
}

TEST_CASE("persistence: forEach visits one partition with metadata and can stop early",
          "[persistence][unit]") {
  TempDir dir;
  auto store = openStore(dir.sub("data"));
  REQUIRE(store->store("m1", 4, "k1", "v1", {3, 111, 0}).ok());
  REQUIRE(store->store("m2", 4, "k2", "v2", {4, 0, 1}).ok());
  REQUIRE(store->store("m1", 5, "other", "v", {}).ok());
  std::vector<std::tuple<std::string, std::string, std::string, StoredMeta>> seen;
  REQUIRE(store
              ->forEach(4,
                        [&](const StoredEntryView& e) {
                          seen.emplace_back(std::string(e.map), std::string(e.key), std::string(e.value),
                                            e.meta);
                          return true;
                        })
              .ok());
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] ==
        std::make_tuple(std::string("m1"), std::string("k1"), std::string("v1"), StoredMeta{3, 111, 0}));
  CHECK(seen[1] ==
        std::make_tuple(std::string("m2"), std::string("k2"), std::string("v2"), StoredMeta{4, 0, 1}));

  int visits = 0;
  REQUIRE(store->forEach(4, [&](const StoredEntryView&) { return ++visits, false; }).ok());
  CHECK(visits == 1);
}

TEST_CASE("persistence: dropPartition removes exactly one partition, durably", "[persistence][unit]") {
  TempDir dir;
  {
    auto store = openStore(dir.sub("data"));
    for (uint32_t p : {0u, 7u, 8u, 15u}) {
      for (int i = 0; i < 100; ++i) {
        REQUIRE(store->store("m", p, "k" + std::to_string(i), "v", {}).ok());
        REQUIRE(store->store("n", p, "k" + std::to_string(i), "v", {}).ok());
      }
    }
    REQUIRE(store->dropPartition(7).ok());
    REQUIRE(store->dropPartition(15).ok());  // the last partition: its range ends at the next id
    CHECK(countPartition(*store, 7) == 0);
    CHECK(countPartition(*store, 15) == 0);
    CHECK(countPartition(*store, 0) == 200);
    CHECK(countPartition(*store, 8) == 200);
    CHECK(valueOf(*store, "m", 7, "k1") == std::nullopt);
    REQUIRE(store->compact().ok());
    CHECK(countPartition(*store, 8) == 200);
  }
  auto reopened = openStore(dir.sub("data"));
  CHECK(countPartition(*reopened, 7) == 0);
  CHECK(countPartition(*reopened, 8) == 200);
}

TEST_CASE("persistence: a reopened store has its data", "[persistence][unit]") {
  TempDir dir;
  {
    auto store = openStore(dir.sub("data"));
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(store->store("m", i % 16, "k" + std::to_string(i), "v" + std::to_string(i), {uint64_t(i), 0, 0})
                  .ok());
    }
    REQUIRE(store->erase("m", 1, "k1").ok());
  }
  auto store = openStore(dir.sub("data"));
  CHECK(valueOf(*store, "m", 2, "k2") == "v2");
  CHECK(valueOf(*store, "m", 1, "k1") == std::nullopt);
  size_t total = 0;
  for (uint32_t p = 0; p < 16; ++p) total += countPartition(*store, p);
  CHECK(total == 999);
  CHECK(store->stats().estimatedKeys > 0);
}

TEST_CASE("persistence: a process that dies without closing loses no acknowledged write",
          "[persistence][unit]") {
  TempDir dir;
  const std::string path = dir.sub("data");
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // no destructors, no close: the WAL is all there is
    RocksDbStoreOptions options;
    options.path = path;
    options.partitionCount = 16;
    auto store = RocksDbStore::open(options);
    if (!store) ::_exit(2);
    for (int i = 0; i < 500; ++i) {
      if (!(*store)->store("m", i % 16, "k" + std::to_string(i), "v" + std::to_string(i), {}).ok())
        ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto store = openStore(path);
  for (int i = 0; i < 500; ++i)
    CHECK(valueOf(*store, "m", i % 16, "k" + std::to_string(i)) == "v" + std::to_string(i));
}

TEST_CASE("persistence: wrong arguments are INVALID_ARGUMENT, not crashes", "[persistence][unit]") {
  TempDir dir;
  auto store = openStore(dir.sub("data"));
  auto code = [](const auto& result) { return result.error().code; };
  CHECK(code(store->store("m", 16, "k", "v", {})) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->store("", 0, "k", "v", {})) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->store(std::string(70'000, 'm'), 0, "k", "v", {})) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->load("m", 99, "k")) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->dropPartition(16)) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->forEach(16, [](const StoredEntryView&) { return true; })) ==
        StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->listKeys("m", 0, "", 0)) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(code(store->listKeys("m", 0, "garbage-cursor", 10)) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK_THROWS_AS(store->load("m", 99, "k").value(), std::logic_error);

  RocksDbStoreOptions options;
  CHECK(code(RocksDbStore::open(options)) == StoreErrorCode::INVALID_ARGUMENT);  // no path
  options.path = dir.sub("other");
  options.partitionCount = 65'536;
  auto refused = RocksDbStore::open(options);
  CHECK(code(refused) == StoreErrorCode::INVALID_ARGUMENT);
  CHECK_THAT(refused.error().message, Catch::Contains("partitionCount"));
  CHECK_FALSE(std::filesystem::exists(options.path));  // options are checked before any I/O
}

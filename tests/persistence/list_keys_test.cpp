// RocksDbStore::listKeys paging: every key of the map exactly once, across page sizes, for one
// partition and for all; other maps never leak in; a listing survives writes between pages.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>

#include "shoal/persistence/rocksdb_store.h"
#include "test_support.h"

using namespace shoal::persistence;
using shoal::persistence::test::TempDir;
using shoal::persistence::test::testSeed;

namespace {

constexpr uint32_t PARTITIONS = 32;

std::vector<ListedKey> listAll(RocksDbStore& store, std::string_view map, std::optional<uint32_t> partition,
                               uint32_t limit, size_t* pages = nullptr) {
  std::vector<ListedKey> out;
  std::string cursor;
  size_t count = 0;
  do {
    auto page = store.listKeys(map, partition, cursor, limit);
    REQUIRE(page.ok());
    REQUIRE(page->keys.size() <= limit);
    out.insert(out.end(), page->keys.begin(), page->keys.end());
    cursor = page->nextCursor;
    REQUIRE(++count < 100'000);
  } while (!cursor.empty());
  if (pages != nullptr) *pages = count;
  return out;
}

}  // namespace

TEST_CASE("persistence: listKeys pages through every key exactly once", "[persistence][unit]") {
  std::mt19937_64 rng(testSeed("listKeys paging"));
  TempDir dir;
  RocksDbStoreOptions options;
  options.path = dir.sub("data");
  options.partitionCount = PARTITIONS;
  auto opened = RocksDbStore::open(options);
  REQUIRE(opened.ok());
  RocksDbStore& store = **opened;

  std::set<std::pair<uint32_t, std::string>> expected;
  std::map<uint32_t, size_t> perPartition;
  const int n = 300 + static_cast<int>(rng() % 700);
  for (int i = 0; i < n; ++i) {
    uint32_t p = static_cast<uint32_t>(rng() % PARTITIONS);
    std::string key(1 + rng() % 12, '\0');
    for (char& c : key) c = static_cast<char>(rng());  // binary keys, 0x00 and 0xFF included
    REQUIRE(store.store("listed", p, key, "v", {}).ok());
    REQUIRE(store.store("noise", p, key, "v", {}).ok());
    if (expected.insert({p, key}).second) ++perPartition[p];
  }
  REQUIRE(store.store("listedX", 0, "prefix-sharing map name", "v", {}).ok());

  for (uint32_t limit : {1u, 7u, 64u, static_cast<uint32_t>(expected.size()), 100'000u}) {
    INFO("limit " << limit);
    auto all = listAll(store, "listed", std::nullopt, limit);
    std::set<std::pair<uint32_t, std::string>> seen;
    for (const ListedKey& k : all) CHECK(seen.insert({k.partition, k.key}).second);  // no duplicates
    CHECK(seen == expected);
  }

  uint32_t busiest = perPartition.rbegin()->first;
  for (const auto& [p, count] : perPartition) {
    if (count > perPartition[busiest]) busiest = p;
  }
  size_t pages = 0;
  auto one = listAll(store, "listed", busiest, 5, &pages);
  CHECK(one.size() == perPartition[busiest]);
  for (const ListedKey& k : one) CHECK(k.partition == busiest);
  // A single partition needs no trailing empty page: the listing knows when it is done.
  CHECK(pages == (perPartition[busiest] + 4) / 5);

  auto nothing = store.listKeys("absent-map", std::nullopt, "", 10);
  REQUIRE(nothing.ok());
  CHECK(nothing->keys.empty());
  CHECK(nothing->nextCursor.empty());
}

TEST_CASE("persistence: a listing continues across writes and rejects foreign cursors",
          "[persistence][unit]") {
  TempDir dir;
  RocksDbStoreOptions options;
  options.path = dir.sub("data");
  options.partitionCount = PARTITIONS;
  auto opened = RocksDbStore::open(options);
  REQUIRE(opened.ok());
  RocksDbStore& store = **opened;
  for (int i = 0; i < 10; ++i) REQUIRE(store.store("m", 3, "k" + std::to_string(i), "v", {}).ok());

  auto first = store.listKeys("m", 3, "", 4);
  REQUIRE(first.ok());
  REQUIRE(first->keys.size() == 4);
  // The cursor is a position, not a snapshot: erasing the last listed key does not lose the place.
  REQUIRE(store.erase("m", 3, first->keys.back().key).ok());
  REQUIRE(store.store("m", 3, "k99", "new", {}).ok());
  std::set<std::string> rest;
  std::string cursor = first->nextCursor;
  while (!cursor.empty()) {
    auto page = store.listKeys("m", 3, cursor, 4);
    REQUIRE(page.ok());
    for (auto& k : page->keys) rest.insert(k.key);
    cursor = page->nextCursor;
  }
  CHECK(rest == std::set<std::string>{"k4", "k5", "k6", "k7", "k8", "k9", "k99"});

  CHECK(store.listKeys("other", 3, first->nextCursor, 4).error().code == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(store.listKeys("m", 4, first->nextCursor, 4).error().code == StoreErrorCode::INVALID_ARGUMENT);
}

// A full disk (ENOSPC on a small tmpfs): writes fail with NO_SPACE, nothing crashes, reads keep
// working, and writes resume once space is freed. Needs root for mount(2); skipped otherwise.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "shoal/persistence/write_behind_queue.h"
#include "test_support.h"

using namespace shoal::persistence;
using shoal::persistence::test::MemoryStore;
using shoal::persistence::test::TmpfsMount;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t TMPFS_BYTES = 2u << 20;

RocksDbStoreOptions smallOptions(const fs::path& path) {
  RocksDbStoreOptions options;
  options.path = path.string();
  options.partitionCount = 16;
  options.writeBufferBytes = 256u << 10;  // flushes (and so failures) happen within the 2 MiB
  options.blockCacheBytes = 1u << 20;
  options.reservedDiskBytes = 512u << 10;
  return options;
}

// Writes a file of `bytes` (or as much as fits); returns the bytes written.
uint64_t fill(const fs::path& file, uint64_t bytes) {
  std::ofstream out(file, std::ios::binary);
  std::string chunk(4096, 'f');
  uint64_t written = 0;
  while (written < bytes && out.write(chunk.data(), chunk.size())) written += chunk.size();
  out.close();
  return written;
}

std::string randomValue(std::mt19937_64& rng, size_t bytes) {
  std::string value(bytes, '\0');
  for (char& c : value) c = static_cast<char>(rng());  // incompressible
  return value;
}

}  // namespace

TEST_CASE("persistence: below the disk reserve, writes get NO_SPACE before RocksDB fails",
          "[persistence][unit]") {
  TmpfsMount disk(TMPFS_BYTES);
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs (" << disk.error() << "); run as root to test a full disk");
    return;
  }
  auto options = smallOptions(disk.path() / "data");
  options.reservedDiskBytes = 512u << 10;
  auto opened = RocksDbStore::open(options);
  REQUIRE(opened.ok());
  RocksDbStore& store = **opened;
  REQUIRE(store.store("m", 1, "keep", "v", {}).ok());
  fill(disk.path() / "filler", 1200u << 10);

  std::mt19937_64 rng(1);
  std::optional<StoreError> failure;
  for (int i = 0; i < 1000 && !failure; ++i) {
    auto written = store.store("m", i % 16, "big" + std::to_string(i), randomValue(rng, 16u << 10), {});
    if (!written) failure = written.error();
  }
  REQUIRE(failure.has_value());
  CHECK(failure->code == StoreErrorCode::NO_SPACE);
  CHECK_THAT(failure->message, Catch::Contains("reservedDiskBytes"));
  CHECK(store.stats().backgroundErrors == 0);  // RocksDB itself never hit the wall
  CHECK(store.load("m", 1, "keep")->value().value == "v");

  MemoryStore target;
  auto queue = WriteBehindQueue::open(store, target, {.name = "q"});
  REQUIRE(queue.ok());
  const std::string value(64u << 10, 'v');  // more than the room left above the reserve
  CHECK((*queue)->enqueue({"m", 1, "k", value, {1, 0, 0}}).error().code == StoreErrorCode::NO_SPACE);
  CHECK((*queue)->pending() == 0);

  fs::remove(disk.path() / "filler");
  CHECK(store.store("m", 1, "after", "x", {}).ok());  // at once: the guard measures again
  CHECK((*queue)->enqueue({"m", 1, "k", "v", {1, 0, 0}}).ok());
  queue->reset();
}

// Without the reserve RocksDB itself runs into ENOSPC, in a flush (SST) or in a WAL append,
// depending on timing; each round tries again. Acknowledged writes must survive all of it.
TEST_CASE("persistence: when RocksDB hits a full disk, writes fail with NO_SPACE and nothing is lost",
          "[persistence][unit]") {
  const uint64_t seed = shoal::persistence::test::testSeed("full disk");
  for (int round = 0; round < 3; ++round) {
    TmpfsMount disk(TMPFS_BYTES);
    if (!disk.mounted()) {
      WARN("skipped: cannot mount a tmpfs (" << disk.error() << "); run as root to test a full disk");
      return;
    }
    std::mt19937_64 rng(seed + round);
    auto options = smallOptions(disk.path() / "data");
    options.reservedDiskBytes = 0;
    std::vector<std::string> acknowledged;
    {
      auto opened = RocksDbStore::open(options);
      REQUIRE(opened.ok());
      RocksDbStore& store = **opened;
      fill(disk.path() / "filler", (1000 + rng() % 400) << 10);

      std::optional<StoreError> failure;
      for (int i = 0; i < 1000 && !failure; ++i) {
        std::string key = "big" + std::to_string(i);
        auto written = store.store("m", 1, key, randomValue(rng, 4096 + rng() % (16u << 10)), {});
        if (written) acknowledged.push_back(key);
        if (!written) failure = written.error();
      }
      REQUIRE(failure.has_value());
      INFO("round " << round << ": " << failure->message << " after " << acknowledged.size() << " writes");
      CHECK(failure->code == StoreErrorCode::NO_SPACE);
      CHECK_THAT(failure->message, Catch::Contains("free"));

      // Whatever RocksDB's state, more writes answer (NO_SPACE, or OK when one still fits) and
      // never crash; one that cannot fit is always refused; reads keep working.
      const std::string tooBig(1u << 20, 'x');
      CHECK(store.store("m", 1, "huge", tooBig, {}).error().code == StoreErrorCode::NO_SPACE);
      for (int j = 0; j < 5; ++j) {
        std::string key = "small" + std::to_string(j);
        auto written = store.store("m", 1, key, "x", {});
        if (written) acknowledged.push_back(key);
        if (!written) CHECK(written.error().code == StoreErrorCode::NO_SPACE);
      }
      CHECK(store.load("m", 1, acknowledged.front())->has_value());
      CHECK(store.listKeys("m", 1, "", 10).ok());

      MemoryStore target;
      auto queue = WriteBehindQueue::open(store, target, {.name = "q"});
      REQUIRE(queue.ok());
      CHECK((*queue)->enqueue({"m", 1, "k", tooBig, {1, 0, 0}}).error().code == StoreErrorCode::NO_SPACE);
      CHECK((*queue)->pending() == 0);
      queue->reset();

      // Space freed: writes resume by themselves (RocksDB's recovery, or the store's WAL reopen).
      fs::remove(disk.path() / "filler");
      bool resumed = false;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!resumed && std::chrono::steady_clock::now() < deadline) {
        resumed = store.store("m", 1, "after", "x", {}).ok();
        if (!resumed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      CHECK(resumed);
      if (resumed) acknowledged.push_back("after");
    }
    auto reopened = RocksDbStore::open(options);
    REQUIRE(reopened.ok());
    for (const std::string& key : acknowledged) {
      INFO("round " << round << " key " << key);
      CHECK((*reopened)->load("m", 1, key)->has_value());
    }
  }
}

TEST_CASE("persistence: opening on a full disk fails with NO_SPACE and leaves nothing half-made",
          "[persistence][unit]") {
  TmpfsMount disk(TMPFS_BYTES);
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs (" << disk.error() << "); run as root to test a full disk");
    return;
  }
  fs::create_directories(disk.path() / "data");
  fill(disk.path() / "filler", TMPFS_BYTES * 2);  // as much as fits
  auto refused = RocksDbStore::open(smallOptions(disk.path() / "data"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == StoreErrorCode::NO_SPACE);
  CHECK(fs::is_empty(disk.path() / "data"));  // no marker without a database: a retry starts afresh

  fs::remove(disk.path() / "filler");
  auto opened = RocksDbStore::open(smallOptions(disk.path() / "data"));
  REQUIRE(opened.ok());
  CHECK((*opened)->store("m", 0, "k", "v", {}).ok());
}

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
  options.maxInfoLogBytes = 64u << 10;
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

TEST_CASE("persistence: a full disk fails writes with NO_SPACE and keeps reads working", "[persistence][unit]") {
  TmpfsMount disk(TMPFS_BYTES);
  if (!disk.mounted()) {
    WARN("skipped: cannot mount a tmpfs (" << disk.error() << "); run as root to test a full disk");
    return;
  }
  std::mt19937_64 rng(shoal::persistence::test::testSeed("full disk"));
  auto opened = RocksDbStore::open(smallOptions(disk.path() / "data"));
  REQUIRE(opened.ok());
  RocksDbStore& store = **opened;
  for (int i = 0; i < 10; ++i) REQUIRE(store.store("m", 1, "keep" + std::to_string(i), "v", {}).ok());
  fill(disk.path() / "filler", 1200u << 10);

  std::optional<StoreError> failure;
  int stored = 0;
  for (int i = 0; i < 1000 && !failure; ++i) {
    auto written = store.store("m", i % 16, "big" + std::to_string(i), randomValue(rng, 16u << 10), {});
    if (written) {
      ++stored;
    } else {
      failure = written.error();
    }
  }
  REQUIRE(failure.has_value());
  INFO(failure->message << " after " << stored << " writes");
  CHECK(failure->code == StoreErrorCode::NO_SPACE);
  CHECK_THAT(failure->message, Catch::Contains("free space"));
  // RocksDB may resume by itself within milliseconds when a failed WAL append left room for small
  // writes (they then succeed, durably); a write that cannot fit fails with NO_SPACE every time.
  const std::string tooBig(1u << 20, 'x');
  CHECK(store.store("m", 1, "more", tooBig, {}).error().code == StoreErrorCode::NO_SPACE);

  // Reads, listings and scans still answer.
  CHECK(store.load("m", 1, "keep3")->value().value == "v");
  CHECK(store.listKeys("m", 1, "", 100).ok());
  CHECK(store.forEach(1, [](const StoredEntryView&) { return true; }).ok());

  // A write-behind enqueue cannot be made durable, so it is refused, not acknowledged.
  MemoryStore target;
  auto queue = WriteBehindQueue::open(store, target, {.name = "q"});
  REQUIRE(queue.ok());
  auto enqueued = (*queue)->enqueue({"m", 1, "k", tooBig, {1, 0, 0}});
  REQUIRE_FALSE(enqueued.ok());
  CHECK(enqueued.error().code == StoreErrorCode::NO_SPACE);
  CHECK((*queue)->pending() == 0);
  CHECK((*queue)->enqueueMany(std::vector<StoreWrite>{{"m", 1, "k", tooBig, {1, 0, 0}}}).error().code ==
        StoreErrorCode::NO_SPACE);

  // Space freed: RocksDB's recovery resumes writes by itself (it polls every few seconds).
  fs::remove(disk.path() / "filler");
  bool resumed = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!resumed && std::chrono::steady_clock::now() < deadline) {
    resumed = store.store("m", 1, "after", "x", {}).ok();
    if (!resumed) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(resumed);
  CHECK(store.load("m", 1, "after")->has_value());
  CHECK(store.load("m", 1, "keep9")->value().value == "v");
  queue->reset();
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

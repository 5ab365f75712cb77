// The data-directory guard: a fresh directory gets a marker; a foreign, mismatched or damaged one
// is refused with a clear error and left exactly as it was; one directory, one store.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "shoal/persistence/rocksdb_store.h"
#include "test_support.h"

using namespace shoal::persistence;
using shoal::persistence::test::TempDir;
namespace fs = std::filesystem;

namespace {

RocksDbStoreOptions optionsFor(const std::string& path) {
  RocksDbStoreOptions options;
  options.path = path;
  options.clusterName = "prod-eu";
  options.partitionCount = 271;
  return options;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every file under `root` with its size and modification time: "nothing changed" made checkable.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> snapshot(const fs::path& root) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    uintmax_t size = entry.is_regular_file() ? entry.file_size() : 0;
    out[entry.path().string()] = {size, entry.last_write_time()};
  }
  return out;
}

}  // namespace

TEST_CASE("persistence: a fresh directory is initialised with a marker", "[persistence][unit]") {
  TempDir dir;
  auto store = RocksDbStore::open(optionsFor(dir.sub("member-1/data")));  // parents are created
  REQUIRE(store.ok());
  CHECK((*store)->marker().formatVersion == 1);
  CHECK((*store)->marker().clusterName == "prod-eu");
  CHECK((*store)->marker().partitionCount == 271);
  CHECK((*store)->marker().createdTimeMs > 1'600'000'000'000);
  std::string marker = readFile(dir.path() / "member-1/data/SHOAL_DATA_DIR");
  CHECK_THAT(marker, Catch::Contains("format-version=1") && Catch::Contains("cluster-name=prod-eu") &&
                         Catch::Contains("partition-count=271") && Catch::Contains("created-time-ms="));
  CHECK(fs::exists(dir.path() / "member-1/data/db/CURRENT"));
  int64_t created = (*store)->marker().createdTimeMs;
  uint64_t memberId = (*store)->marker().memberId;
  CHECK(memberId != 0);
  store.value().reset();
  auto again = RocksDbStore::open(optionsFor(dir.sub("member-1/data")));
  REQUIRE(again.ok());
  CHECK((*again)->marker().createdTimeMs == created);  // the marker is written once
  CHECK((*again)->marker().memberId == memberId);      // the member comes back as itself
  // Another directory is another member.
  auto other = RocksDbStore::open(optionsFor(dir.sub("member-2/data")));
  REQUIRE(other.ok());
  CHECK((*other)->marker().memberId != memberId);
}

TEST_CASE("persistence: a directory made before member ids were kept opens without one",
          "[persistence][unit]") {
  TempDir dir;
  auto store = RocksDbStore::open(optionsFor(dir.sub("data")));
  REQUIRE(store.ok());
  store.value().reset();
  // Rewrite the marker as an older build wrote it: no member-id line.
  std::string text = readFile(dir.path() / "data/SHOAL_DATA_DIR");
  auto at = text.find("member-id=");
  REQUIRE(at != std::string::npos);
  std::ofstream(dir.path() / "data/SHOAL_DATA_DIR", std::ios::trunc) << text.substr(0, at);
  auto older = RocksDbStore::open(optionsFor(dir.sub("data")));
  REQUIRE(older.ok());
  CHECK((*older)->marker().memberId == 0);
  older.value().reset();
  // A malformed id is a damaged marker, not a new identity.
  std::ofstream(dir.path() / "data/SHOAL_DATA_DIR", std::ios::trunc)
      << text.substr(0, at) << "member-id=zz\n";
  CHECK(RocksDbStore::open(optionsFor(dir.sub("data"))).error().code == StoreErrorCode::CORRUPTION);
}

TEST_CASE("persistence: a directory with other files and no marker is refused and untouched",
          "[persistence][unit]") {
  TempDir dir;
  fs::create_directories(dir.path() / "data/photos");
  std::ofstream(dir.path() / "data/important.txt") << "do not delete";
  std::ofstream(dir.path() / "data/photos/cat.jpg") << "meow";
  auto before = snapshot(dir.path());

  auto refused = RocksDbStore::open(optionsFor(dir.sub("data")));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == StoreErrorCode::INCOMPATIBLE);
  CHECK_THAT(refused.error().message,
             Catch::Contains("no SHOAL_DATA_DIR marker") && Catch::Contains("Nothing was changed"));
  CHECK(snapshot(dir.path()) == before);
  CHECK(readFile(dir.path() / "data/important.txt") == "do not delete");

  std::ofstream(dir.path() / "plain-file") << "x";
  CHECK(RocksDbStore::open(optionsFor(dir.sub("plain-file"))).error().code == StoreErrorCode::INCOMPATIBLE);
}

TEST_CASE("persistence: a marker of another cluster, partition count or format is refused",
          "[persistence][unit]") {
  TempDir dir;
  const std::string path = dir.sub("data");
  {
    auto store = RocksDbStore::open(optionsFor(path));
    REQUIRE(store.ok());
    REQUIRE((*store)->store("m", 1, "k", "precious", {}).ok());
  }
  auto before = snapshot(dir.path());

  auto otherCluster = optionsFor(path);
  otherCluster.clusterName = "prod-us";
  auto refused = RocksDbStore::open(otherCluster);
  CHECK(refused.error().code == StoreErrorCode::INCOMPATIBLE);
  CHECK_THAT(refused.error().message, Catch::Contains("cluster 'prod-eu'"));

  auto otherCount = optionsFor(path);
  otherCount.partitionCount = 1024;
  refused = RocksDbStore::open(otherCount);
  CHECK(refused.error().code == StoreErrorCode::INCOMPATIBLE);
  CHECK_THAT(refused.error().message, Catch::Contains("271 partitions"));
  CHECK(snapshot(dir.path()) == before);

  const fs::path markerPath = dir.path() / "data/SHOAL_DATA_DIR";
  const std::string original = readFile(markerPath);
  SECTION("a newer format version") {
    std::string newer = original;
    newer.replace(newer.find("format-version=1"), 16, "format-version=2");
    std::ofstream(markerPath, std::ios::trunc) << newer;
    refused = RocksDbStore::open(optionsFor(path));
    CHECK(refused.error().code == StoreErrorCode::INCOMPATIBLE);
    CHECK_THAT(refused.error().message, Catch::Contains("format version is 2"));
    CHECK(readFile(markerPath) == newer);
  }
  SECTION("a damaged marker") {
    std::ofstream(markerPath, std::ios::trunc) << "format-version=1\ncluster-name=prod-eu\n";
    refused = RocksDbStore::open(optionsFor(path));
    CHECK(refused.error().code == StoreErrorCode::CORRUPTION);
  }
  SECTION("a marker whose database is gone") {
    fs::rename(dir.path() / "data/db", dir.path() / "moved-away");
    refused = RocksDbStore::open(optionsFor(path));
    CHECK(refused.error().code == StoreErrorCode::CORRUPTION);
    CHECK_FALSE(fs::exists(dir.path() / "data/db"));  // not silently recreated empty
    fs::rename(dir.path() / "moved-away", dir.path() / "data/db");
  }
  std::ofstream(markerPath, std::ios::trunc) << original;
  auto store = RocksDbStore::open(optionsFor(path));  // the data survived every refusal
  REQUIRE(store.ok());
  CHECK((*store)->load("m", 1, "k")->value().value == "precious");
}

TEST_CASE("persistence: one data directory is held by one store at a time", "[persistence][unit]") {
  TempDir dir;
  auto first = RocksDbStore::open(optionsFor(dir.sub("data")));
  REQUIRE(first.ok());
  auto second = RocksDbStore::open(optionsFor(dir.sub("data")));
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == StoreErrorCode::LOCKED);
}

TEST_CASE("persistence: createIfMissing = false never initialises a directory", "[persistence][unit]") {
  TempDir dir;
  auto options = optionsFor(dir.sub("absent"));
  options.createIfMissing = false;
  CHECK(RocksDbStore::open(options).error().code == StoreErrorCode::INVALID_ARGUMENT);
  CHECK_FALSE(fs::exists(options.path));
  fs::create_directories(options.path);
  CHECK(RocksDbStore::open(options).error().code == StoreErrorCode::INVALID_ARGUMENT);
  CHECK(fs::is_empty(options.path));
}

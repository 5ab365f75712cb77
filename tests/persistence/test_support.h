// Helpers for the persistence tests: temporary directories, a small tmpfs for disk-full tests,
// a manual clock, seeds, and an in-memory MapStore whose failures the test controls.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "shoal/persistence/map_store.h"

namespace shoal::persistence::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "shoal-pers-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A tmpfs of `bytes` mounted on a temporary directory (needs root); unmounted on destruction.
class TmpfsMount {
 public:
  explicit TmpfsMount(uint64_t bytes) {
    std::string options = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::filesystem::path& path() const { return dir_.path(); }

 private:
  TempDir dir_;  // declared first: outlives the mount
  bool mounted_ = false;
  std::string error_;
};

class ManualClock {
 public:
  explicit ManualClock(int64_t startMs = 1'700'000'000'000) : now_(startMs) {}
  int64_t now() const { return now_.load(); }
  void advance(int64_t ms) { now_ += ms; }
  std::function<int64_t()> fn() {
    return [this] { return now(); };
  }

 private:
  std::atomic<int64_t> now_;
};

// The seed of a randomised test: SHOAL_TEST_SEED if set, else random; always printed.
inline uint64_t testSeed(const char* testName) {
  uint64_t seed = std::getenv("SHOAL_TEST_SEED") != nullptr
                      ? std::strtoull(std::getenv("SHOAL_TEST_SEED"), nullptr, 10)
                      : std::random_device{}();
  std::printf("%s: seed %llu (rerun with SHOAL_TEST_SEED=%llu)\n", testName,
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

// An in-memory MapStore (think: a remote database) with scripted failures.
class MemoryStore final : public MapStore {
 public:
  using Key = std::tuple<std::string, uint32_t, std::string>;

  // Failure rules, checked on every write: keys that always fail, a number of writes that fail,
  // or every write failing with `downCode`. A hook runs inside storeMany (before it applies).
  std::set<std::string> poisonKeys;
  int failNextWrites = 0;
  std::optional<StoreErrorCode> down;
  std::function<void()> duringWrite;

  StoreResult<std::optional<StoredValue>> load(std::string_view map, uint32_t partition,
                                               std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto found = data_.find(Key(map, partition, key));
    if (found == data_.end()) return std::optional<StoredValue>();
    return std::optional<StoredValue>(found->second);
  }
  StoreResult<void> store(std::string_view map, uint32_t partition, std::string_view key,
                          std::string_view value, const StoredMeta& meta) override {
    StoreWrite w{map, partition, key, value, meta};
    return storeMany({&w, 1});
  }
  StoreResult<void> erase(std::string_view map, uint32_t partition, std::string_view key) override {
    StoreWrite w{map, partition, key, std::nullopt, {}};
    return storeMany({&w, 1});
  }
  // All or nothing, like a database transaction.
  StoreResult<void> storeMany(std::span<const StoreWrite> batch) override {
    if (duringWrite) duringWrite();
    std::lock_guard lock(mutex_);
    ++storeManyCalls;
    if (down) return StoreError{*down, "store is down"};
    if (failNextWrites > 0) {
      --failNextWrites;
      return StoreError{StoreErrorCode::IO_ERROR, "scripted failure"};
    }
    for (const StoreWrite& w : batch) {
      if (poisonKeys.contains(std::string(w.key))) {
        return StoreError{StoreErrorCode::INVALID_ARGUMENT, "poison key " + std::string(w.key)};
      }
    }
    for (const StoreWrite& w : batch) {
      Key key(w.map, w.partition, w.key);
      if (w.value) {
        data_[key] = StoredValue{std::string(*w.value), w.meta};
        ++stores[std::string(w.key)];
      } else {
        data_.erase(key);
        ++erases[std::string(w.key)];
      }
    }
    return {};
  }
  StoreResult<KeyPage> listKeys(std::string_view, std::optional<uint32_t>, std::string_view,
                                uint32_t) override {
    return StoreError{StoreErrorCode::INVALID_ARGUMENT, "not needed by these tests"};
  }
  StoreResult<void> forEach(uint32_t, const EntryVisitor&) override { return {}; }
  StoreResult<void> dropPartition(uint32_t) override { return {}; }

  size_t size() {
    std::lock_guard lock(mutex_);
    return data_.size();
  }
  std::optional<std::string> valueOf(const std::string& map, uint32_t partition, const std::string& key) {
    std::lock_guard lock(mutex_);
    auto found = data_.find(Key(map, partition, key));
    if (found == data_.end()) return std::nullopt;
    return found->second.value;
  }

  int storeManyCalls = 0;
  std::map<std::string, int> stores;  // per key: successful stores
  std::map<std::string, int> erases;

 private:
  std::mutex mutex_;
  std::map<Key, StoredValue> data_;
};

}  // namespace shoal::persistence::test

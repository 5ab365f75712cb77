// Micro-benchmarks of the persistence layer (Google Benchmark): RocksDbStore writes with and
// without fsync (single, batched, from a thread pool), point loads, write-behind enqueues, and
// restart recovery of 1M entries (open + forEach) with the bytes each entry costs on disk.
// Entries are 16-byte keys and 100-byte random (incompressible) values over 271 partitions.
// The database lives under $SHOAL_BENCH_DIR (default: the system temp directory).
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <random>

#include "shoal/persistence/rocksdb_store.h"
#include "shoal/persistence/write_behind_queue.h"

using namespace shoal::persistence;
namespace fs = std::filesystem;

namespace {

constexpr uint32_t PARTITIONS = 271;
constexpr size_t KEY_BYTES = 16;
constexpr size_t VALUE_BYTES = 100;

fs::path benchRoot() {
  const char* dir = std::getenv("SHOAL_BENCH_DIR");
  return fs::path(dir != nullptr ? dir : fs::temp_directory_path().string()) / "shoal-persistence-bench";
}

std::string keyOf(uint64_t i) {  // 16 bytes, distinct, spread over the key space
  uint64_t mixed = i * 0x9E3779B97F4A7C15ull;
  std::string key(KEY_BYTES, '\0');
  for (size_t b = 0; b < 8; ++b) key[b] = static_cast<char>(mixed >> (8 * b));
  for (size_t b = 0; b < 8; ++b) key[8 + b] = static_cast<char>(i >> (8 * b));
  return key;
}

std::string randomValue(std::mt19937_64& rng) {
  std::string value(VALUE_BYTES, '\0');
  for (char& c : value) c = static_cast<char>(rng());
  return value;
}

// A fresh store in its own directory, removed when the benchmark ends.
struct BenchStore {
  fs::path path;
  std::unique_ptr<RocksDbStore> store;

  BenchStore(const std::string& name, bool syncWrites) : path(benchRoot() / name) {
    fs::remove_all(path);
    RocksDbStoreOptions options;
    options.path = path.string();
    options.partitionCount = PARTITIONS;
    options.syncWrites = syncWrites;
    auto opened = RocksDbStore::open(options);
    if (!opened) throw std::runtime_error(opened.error().toString());
    store = std::move(*opened);
  }
  ~BenchStore() {
    store.reset();
    fs::remove_all(path);
  }
};

uint64_t directoryBytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

void BM_Persistence_Store(benchmark::State& state) {
  BenchStore bench("store", state.range(0) != 0);
  std::mt19937_64 rng(1);
  std::string value = randomValue(rng);
  uint64_t i = 0;
  for (auto _ : state) {
    std::string key = keyOf(i++);
    auto done = bench.store->store("m", static_cast<uint32_t>(i % PARTITIONS), key, value, {1, 0, 0});
    if (!done) state.SkipWithError(done.error().message.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
}
BENCHMARK(BM_Persistence_Store)->ArgName("sync")->Arg(1)->Arg(0)->UseRealTime();

void BM_Persistence_StoreMany(benchmark::State& state) {
  BenchStore bench("store-many", state.range(0) != 0);
  const size_t batchSize = static_cast<size_t>(state.range(1));
  std::mt19937_64 rng(2);
  std::string value = randomValue(rng);
  std::vector<std::string> keys(batchSize);
  std::vector<StoreWrite> batch(batchSize);
  uint64_t i = 0;
  for (auto _ : state) {
    for (size_t b = 0; b < batchSize; ++b, ++i) {
      keys[b] = keyOf(i);
      batch[b] = {"m", static_cast<uint32_t>(i % PARTITIONS), keys[b], value, {1, 0, 0}};
    }
    auto done = bench.store->storeMany(batch);
    if (!done) state.SkipWithError(done.error().message.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
}
BENCHMARK(BM_Persistence_StoreMany)
    ->ArgNames({"sync", "batch"})
    ->Args({1, 100})
    ->Args({0, 100})
    ->UseRealTime();

// Single-entry synced stores posted to a boost::asio::thread_pool, as the member issues them:
// concurrent writers share fsyncs through RocksDB's group commit.
void BM_Persistence_StorePooled(benchmark::State& state) {
  BenchStore bench("store-pooled", true);
  const int threads = static_cast<int>(state.range(0));
  constexpr int WRITES_PER_ROUND = 1000;
  boost::asio::thread_pool pool(threads);
  std::mt19937_64 rng(3);
  std::string value = randomValue(rng);
  std::atomic<uint64_t> next{0};
  for (auto _ : state) {
    std::latch done(WRITES_PER_ROUND);
    for (int w = 0; w < WRITES_PER_ROUND; ++w) {
      boost::asio::post(pool, [&] {
        uint64_t i = next++;
        (void)bench.store->store("m", static_cast<uint32_t>(i % PARTITIONS), keyOf(i), value, {1, 0, 0});
        done.count_down();
      });
    }
    done.wait();
  }
  pool.join();
  state.SetItemsProcessed(static_cast<int64_t>(next.load()));
}
BENCHMARK(BM_Persistence_StorePooled)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(8)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Persistence_Load(benchmark::State& state) {
  BenchStore bench("load", false);
  constexpr uint64_t N = 100'000;
  std::mt19937_64 rng(4);
  std::vector<std::string> keys(1000);
  std::vector<StoreWrite> batch(1000);
  std::string value = randomValue(rng);
  for (uint64_t i = 0; i < N; i += 1000) {
    for (uint64_t b = 0; b < 1000; ++b) {
      keys[b] = keyOf(i + b);
      batch[b] = {"m", static_cast<uint32_t>((i + b) % PARTITIONS), keys[b], value, {1, 0, 0}};
    }
    (void)bench.store->storeMany(batch);
  }
  for (auto _ : state) {
    uint64_t i = rng() % N;
    auto loaded = bench.store->load("m", static_cast<uint32_t>(i % PARTITIONS), keyOf(i));
    if (!loaded || !loaded->has_value()) state.SkipWithError("missing entry");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Persistence_Load);

// Write-behind enqueue, one or 100 per enqueueMany; sync 1: one fsync per enqueueMany, 0: into the
// WAL unsynced (the default).
void BM_Persistence_Enqueue(benchmark::State& state) {
  BenchStore bench("enqueue", true);
  const size_t batchSize = static_cast<size_t>(state.range(0));
  const bool sync = state.range(1) != 0;
  auto queue = WriteBehindQueue::open(*bench.store, *bench.store,
                                      {.name = "bench", .delayMs = 3'600'000, .sync = sync});
  if (!queue) throw std::runtime_error(queue.error().toString());
  std::mt19937_64 rng(5);
  std::string value = randomValue(rng);
  std::vector<std::string> keys(batchSize);
  std::vector<StoreWrite> writes(batchSize);
  uint64_t i = 0;
  for (auto _ : state) {
    for (size_t b = 0; b < batchSize; ++b, ++i) {
      keys[b] = keyOf(i);
      writes[b] = {"m", static_cast<uint32_t>(i % PARTITIONS), keys[b], value, {1, 0, 0}};
    }
    auto done = (*queue)->enqueueMany(writes);
    if (!done) state.SkipWithError(done.error().message.c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  queue->reset();
}
BENCHMARK(BM_Persistence_Enqueue)
    ->ArgNames({"batch", "sync"})
    ->ArgsProduct({{1, 100}, {1, 0}})
    ->UseRealTime();

// Restart recovery: open a data directory of 1M entries and read every partition with forEach.
void BM_Persistence_Recover1M(benchmark::State& state) {
  constexpr uint64_t N = 1'000'000;
  const fs::path path = benchRoot() / "recover";
  RocksDbStoreOptions options;
  options.path = path.string();
  options.partitionCount = PARTITIONS;
  {
    BenchStore bench("recover", false);
    std::mt19937_64 rng(6);
    std::vector<std::string> keys(1000), values(1000);
    std::vector<StoreWrite> batch(1000);
    for (uint64_t i = 0; i < N; i += 1000) {
      for (uint64_t b = 0; b < 1000; ++b) {
        keys[b] = keyOf(i + b);
        values[b] = randomValue(rng);
        batch[b] = {"m", static_cast<uint32_t>((i + b) % PARTITIONS), keys[b], values[b], {1, 0, 0}};
      }
      (void)bench.store->storeMany(batch);
    }
    bench.store.reset();  // close: the directory stays until ~BenchStore, after the loop below
    uint64_t bytesClosed = directoryBytes(path);
    {
      auto store = RocksDbStore::open(options);
      (void)(*store)->compact();
    }
    uint64_t bytesCompacted = directoryBytes(path);
    double openSeconds = 0;
    for (auto _ : state) {
      auto started = std::chrono::steady_clock::now();
      auto store = RocksDbStore::open(options);
      openSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (!store) {
        state.SkipWithError(store.error().message.c_str());
        break;
      }
      uint64_t seen = 0;
      for (uint32_t p = 0; p < PARTITIONS; ++p) {
        (void)(*store)->forEach(
            p, [&](const StoredEntryView& e) { return benchmark::DoNotOptimize(e), ++seen, true; });
      }
      if (seen != N) state.SkipWithError("recovered a different entry count");
    }
    state.counters["disk_B_per_entry_after_load"] = static_cast<double>(bytesClosed) / N;
    state.counters["disk_B_per_entry_compacted"] = static_cast<double>(bytesCompacted) / N;
    state.counters["raw_B_per_entry"] = KEY_BYTES + VALUE_BYTES;
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * N));
    state.counters["open_ms"] = openSeconds * 1000 / static_cast<double>(state.iterations());
  }
}
BENCHMARK(BM_Persistence_Recover1M)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // one "opened" line per benchmark run is noise here
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  fs::remove(benchRoot(), ignored);  // empty by now: each benchmark removes its own directory
  return 0;
}

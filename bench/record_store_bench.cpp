// Micro-benchmarks of MapRecords (node/src/record_store.h): get / put / insert / eviction / scan
// throughput and the memory an entry costs, each next to std::unordered_map<std::string,
// std::string> measured in the same run as the peer. Memory is the allocator's own count
// (glibc mallinfo2: in-use heap chunks plus mmapped blocks), not the store's bookkeeping, which
// is reported alongside so the two can be compared.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <xxhash.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "record_store.h"

namespace {

using namespace shoal::node;

constexpr uint32_t PARTITIONS = 271;  // the cluster default
constexpr size_t KEY_BYTES = 16;
constexpr size_t VALUE_BYTES = 100;

// Fixed-width keys ("key:000000000042", 16 bytes) written into a caller's buffer, so generating
// them allocates nothing.
std::string_view makeKey(char (&buf)[KEY_BYTES + 1], uint64_t i) {
  std::memcpy(buf, "key:", 4);
  for (size_t d = KEY_BYTES; d-- > 4; i /= 10) buf[d] = static_cast<char>('0' + i % 10);
  return {buf, KEY_BYTES};
}

PartitionId partitionOf(std::string_view key) {
  return static_cast<PartitionId>(XXH3_64bits(key.data(), key.size()) % PARTITIONS);
}

size_t heapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

const std::string& value100() {
  static const std::string value(VALUE_BYTES, 'v');
  return value;
}

std::unique_ptr<MapRecords> filledStore(const Clock& clock, uint64_t n, MapConfig config = {}) {
  auto map = std::make_unique<MapRecords>("bench", config, PARTITIONS, clock);
  char buf[KEY_BYTES + 1];
  for (uint64_t i = 0; i < n; ++i) {
    auto key = makeKey(buf, i);
    map->write(partitionOf(key), key, WriteSpec{value100()}, WriteMode::ALWAYS, nullptr);
  }
  return map;
}

// Random key indexes drawn up front, so the timed loop measures the store.
std::vector<uint64_t> randomIndexes(uint64_t n) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> out(1 << 16);
  for (auto& i : out) i = rng() % n;
  return out;
}

void BM_RecordStore_Get(benchmark::State& state) {
  const uint64_t n = state.range(0);
  SystemClock clock;
  auto map = filledStore(clock, n);
  auto indexes = randomIndexes(n);
  char buf[KEY_BYTES + 1];
  std::string value;
  size_t i = 0;
  for (auto _ : state) {
    auto key = makeKey(buf, indexes[i++ & 0xffff]);
    benchmark::DoNotOptimize(map->get(partitionOf(key), key, &value));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordStore_Get)->Arg(10'000)->Arg(1'000'000);

void BM_RecordStore_GetMiss(benchmark::State& state) {
  const uint64_t n = state.range(0);
  SystemClock clock;
  auto map = filledStore(clock, n);
  auto indexes = randomIndexes(n);
  char buf[KEY_BYTES + 1];
  std::string value;
  size_t i = 0;
  for (auto _ : state) {
    auto key = makeKey(buf, n + indexes[i++ & 0xffff]);
    benchmark::DoNotOptimize(map->get(partitionOf(key), key, &value));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordStore_GetMiss)->Arg(1'000'000);

// Overwrites of existing keys with a same-size value.
void BM_RecordStore_Put(benchmark::State& state) {
  const uint64_t n = state.range(0);
  SystemClock clock;
  auto map = filledStore(clock, n);
  auto indexes = randomIndexes(n);
  char buf[KEY_BYTES + 1];
  size_t i = 0;
  for (auto _ : state) {
    auto key = makeKey(buf, indexes[i++ & 0xffff]);
    benchmark::DoNotOptimize(
        map->write(partitionOf(key), key, WriteSpec{value100()}, WriteMode::ALWAYS, nullptr));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordStore_Put)->Arg(10'000)->Arg(1'000'000);

// Overwrites with an event sink set: the UPDATED event needs old and new value, so no in-place
// rewrite.
void BM_RecordStore_PutWithEvents(benchmark::State& state) {
  const uint64_t n = state.range(0);
  SystemClock clock;
  auto map = filledStore(clock, n);
  uint64_t events = 0;
  map->setEventSink([&events](const EntryEvent&) { ++events; });
  auto indexes = randomIndexes(n);
  char buf[KEY_BYTES + 1];
  size_t i = 0;
  for (auto _ : state) {
    auto key = makeKey(buf, indexes[i++ & 0xffff]);
    benchmark::DoNotOptimize(
        map->write(partitionOf(key), key, WriteSpec{value100()}, WriteMode::ALWAYS, nullptr));
  }
  benchmark::DoNotOptimize(events);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordStore_PutWithEvents)->Arg(1'000'000);

// Inserts of new keys, including table growth; the store starts over every 1M keys.
void BM_RecordStore_Insert(benchmark::State& state) {
  SystemClock clock;
  auto map = std::make_unique<MapRecords>("bench", MapConfig{}, PARTITIONS, clock);
  char buf[KEY_BYTES + 1];
  uint64_t i = 0;
  for (auto _ : state) {
    if (i == 1'000'000) {
      state.PauseTiming();
      map = std::make_unique<MapRecords>("bench", MapConfig{}, PARTITIONS, clock);
      i = 0;
      state.ResumeTiming();
    }
    auto key = makeKey(buf, i++);
    benchmark::DoNotOptimize(
        map->write(partitionOf(key), key, WriteSpec{value100()}, WriteMode::ALWAYS, nullptr));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordStore_Insert);

// Inserts into a full map: every write evicts one entry by sampling.
void BM_RecordStore_PutEvicting(benchmark::State& state) {
  const uint64_t n = 1'000'000;
  MapConfig config;
  config.maxEntries = n;
  config.eviction = state.range(0) == 0 ? EvictionPolicy::LRU : EvictionPolicy::LFU;
  SystemClock clock;
  auto map = filledStore(clock, n, config);
  char buf[KEY_BYTES + 1];
  uint64_t i = n;
  for (auto _ : state) {
    auto key = makeKey(buf, i++);
    benchmark::DoNotOptimize(
        map->write(partitionOf(key), key, WriteSpec{value100()}, WriteMode::ALWAYS, nullptr));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) == 0 ? "lru" : "lfu");
}
BENCHMARK(BM_RecordStore_PutEvicting)->Arg(0)->Arg(1);

void BM_RecordStore_Scan(benchmark::State& state) {
  SystemClock clock;
  auto map = filledStore(clock, 1'000'000);
  std::vector<MapRecords::ScanItem> items;
  uint64_t cursor = 0, scanned = 0;
  for (auto _ : state) {
    items.clear();
    cursor = map->scan(cursor, 100, true, &items);
    scanned += items.size();
  }
  state.SetItemsProcessed(scanned);
}
BENCHMARK(BM_RecordStore_Scan);

// 1M entries, 16-byte keys, 100-byte values, 271 partitions. Redis 7 reports ~185 bytes per key
// (used_memory) for this shape.
void BM_RecordStore_Memory1M(benchmark::State& state) {
  const uint64_t n = 1'000'000;
  for (auto _ : state) {
    SystemClock clock;
    auto map = std::make_unique<MapRecords>("bench", MapConfig{}, PARTITIONS, clock);
    const size_t before = heapInUse();
    char buf[KEY_BYTES + 1];
    for (uint64_t i = 0; i < n; ++i) {
      auto key = makeKey(buf, i);
      map->write(partitionOf(key), key, WriteSpec{value100()}, WriteMode::ALWAYS, nullptr);
    }
    const size_t after = heapInUse();
    state.counters["bytes_per_entry_malloc"] = static_cast<double>(after - before) / n;
    state.counters["bytes_per_entry_reported"] = static_cast<double>(map->bytes()) / n;
  }
}
BENCHMARK(BM_RecordStore_Memory1M)->Iterations(1)->Unit(benchmark::kMillisecond);

// --- Peer: std::unordered_map<std::string, std::string>, same keys and values. ---

using PeerMap = std::unordered_map<std::string, std::string>;

std::unique_ptr<PeerMap> filledPeer(uint64_t n) {
  auto map = std::make_unique<PeerMap>();
  char buf[KEY_BYTES + 1];
  for (uint64_t i = 0; i < n; ++i) (*map)[std::string(makeKey(buf, i))] = value100();
  return map;
}

void BM_Peer_UnorderedMap_Get(benchmark::State& state) {
  const uint64_t n = state.range(0);
  auto map = filledPeer(n);
  auto indexes = randomIndexes(n);
  char buf[KEY_BYTES + 1];
  std::string key, value;
  size_t i = 0;
  for (auto _ : state) {
    key.assign(makeKey(buf, indexes[i++ & 0xffff]));
    auto it = map->find(key);
    if (it != map->end()) value = it->second;
    benchmark::DoNotOptimize(value);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Peer_UnorderedMap_Get)->Arg(10'000)->Arg(1'000'000);

void BM_Peer_UnorderedMap_Put(benchmark::State& state) {
  const uint64_t n = state.range(0);
  auto map = filledPeer(n);
  auto indexes = randomIndexes(n);
  char buf[KEY_BYTES + 1];
  std::string key;
  size_t i = 0;
  for (auto _ : state) {
    key.assign(makeKey(buf, indexes[i++ & 0xffff]));
    (*map)[key] = value100();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Peer_UnorderedMap_Put)->Arg(10'000)->Arg(1'000'000);

void BM_Peer_UnorderedMap_Memory1M(benchmark::State& state) {
  const uint64_t n = 1'000'000;
  for (auto _ : state) {
    const size_t before = heapInUse();
    auto map = filledPeer(n);
    const size_t after = heapInUse();
    state.counters["bytes_per_entry_malloc"] = static_cast<double>(after - before) / n;
  }
}
BENCHMARK(BM_Peer_UnorderedMap_Memory1M)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

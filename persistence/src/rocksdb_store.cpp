// RocksDbStore: opening (options, marker, column families), point reads and writes, partition
// drops and maintenance. Scans (listKeys, forEach) are in rocksdb_store_scan.cpp.
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "data_dir.h"
#include "key_codec.h"
#include "rocksdb_status.h"
#include "rocksdb_store_impl.h"

namespace shoal::persistence {

namespace {

int64_t wallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<StoreError> validate(const RocksDbStoreOptions& o) {
  auto bad = [](const std::string& field, const std::string& rule) {
    return StoreError{StoreErrorCode::INVALID_ARGUMENT, "RocksDbStoreOptions." + field + " " + rule};
  };
  if (o.path.empty()) return bad("path", "is required");
  if (o.clusterName.empty() || o.clusterName.find('\n') != std::string::npos) {
    return bad("clusterName", "must be non-empty and on one line");
  }
  if (o.partitionCount < 1 || o.partitionCount > codec::MAX_PARTITIONS) {
    return bad("partitionCount", "must be in 1..65535, got " + std::to_string(o.partitionCount));
  }
  if (o.blockCacheBytes < (1u << 20)) return bad("blockCacheBytes", "must be >= 1 MiB");
  if (o.writeBufferBytes < (64u << 10)) return bad("writeBufferBytes", "must be >= 64 KiB");
  if (o.maxBackgroundJobs < 1 || o.maxBackgroundJobs > 64)
    return bad("maxBackgroundJobs", "must be in 1..64");
  if (o.bloomBitsPerKey > 32) return bad("bloomBitsPerKey", "must be <= 32");
  if (o.reservedDiskBytes > 0 && o.reservedDiskBytes < 2 * o.writeBufferBytes) {
    return bad("reservedDiskBytes", "must be 0 (off) or >= 2 * writeBufferBytes (room for a memtable flush)");
  }
  return std::nullopt;
}

}  // namespace

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksDbStore::~RocksDbStore() {
  std::lock_guard lock(impl_->queuesMutex);
  if (!impl_->openQueues.empty()) {
    spdlog::critical("RocksDbStore {} destroyed while write-behind queue '{}' still uses it", impl_->dbPath,
                     *impl_->openQueues.begin());
    std::abort();  // a bug in the owner: the queue would write into a closed database
  }
}

StoreResult<std::unique_ptr<RocksDbStore>> RocksDbStore::open(const RocksDbStoreOptions& options) {
  if (auto invalid = validate(options)) return *invalid;
  auto prepared = prepareDataDir(options, wallClockMs());
  if (!prepared) {
    spdlog::error("persistence: cannot open {}: {}", options.path, prepared.error().toString());
    return prepared.error();
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->marker = prepared->marker;
  impl->dbPath = (std::filesystem::path(options.path) / DB_SUBDIR).string();
  impl->dataWrite.sync = options.syncWrites;
  impl->syncedWrite.sync = true;

  auto opened = impl->openDb(prepared->fresh);
  if (!opened) {
    spdlog::error("persistence: {}", opened.error().toString());
    if (prepared->fresh) {  // undo this call's initialisation so a retry starts afresh
      std::error_code ignored;
      std::filesystem::remove_all(impl->dbPath, ignored);
      std::filesystem::remove(std::filesystem::path(options.path) / MARKER_FILE, ignored);
    }
    return opened.error();
  }
  spdlog::info("persistence: opened {} ({} partitions, cluster '{}', {}, sync writes {})", options.path,
               options.partitionCount, options.clusterName, prepared->fresh ? "new" : "existing",
               options.syncWrites ? "on" : "off");
  return std::unique_ptr<RocksDbStore>(new RocksDbStore(std::move(impl)));
}

StoreResult<std::optional<StoredValue>> RocksDbStore::load(std::string_view map, uint32_t partition,
                                                           std::string_view key) {
  if (auto invalid = impl_->checkTarget(map, partition)) return *invalid;
  auto db = impl_->access();
  if (!db) return db.error();
  rocksdb::PinnableSlice bytes;
  rocksdb::Status status =
      db->db->Get(rocksdb::ReadOptions(), db->data, codec::storeKey(partition, map, key), &bytes);
  if (status.IsNotFound()) return std::optional<StoredValue>();
  if (!status.ok()) return impl_->failure(status, "load");
  auto decoded = codec::decodeValue(bytes.ToStringView());
  if (!decoded) {
    return StoreError{StoreErrorCode::CORRUPTION, "value of a key of map '" + std::string(map) +
                                                      "' in partition " + std::to_string(partition) +
                                                      " has an unknown header"};
  }
  return std::optional<StoredValue>(StoredValue{std::string(decoded->value), decoded->meta});
}

StoreResult<std::vector<std::optional<StoredValue>>> RocksDbStore::loadMany(std::string_view map,
                                                                            std::span<const KeyRef> keys) {
  std::vector<std::string> encoded;
  encoded.reserve(keys.size());
  for (const KeyRef& ref : keys) {
    if (auto invalid = impl_->checkTarget(map, ref.partition)) return *invalid;
    encoded.push_back(codec::storeKey(ref.partition, map, ref.key));
  }
  std::vector<rocksdb::Slice> slices(encoded.begin(), encoded.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  auto db = impl_->access();
  if (!db) return db.error();
  db->db->MultiGet(rocksdb::ReadOptions(), db->data, keys.size(), slices.data(), values.data(),
                   statuses.data());
  std::vector<std::optional<StoredValue>> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return impl_->failure(statuses[i], "loadMany");
    auto decoded = codec::decodeValue(values[i].ToStringView());
    if (!decoded) {
      return StoreError{StoreErrorCode::CORRUPTION,
                        "value in map '" + std::string(map) + "' has an unknown header"};
    }
    out[i] = StoredValue{std::string(decoded->value), decoded->meta};
  }
  return out;
}

StoreResult<void> RocksDbStore::store(std::string_view map, uint32_t partition, std::string_view key,
                                      std::string_view value, const StoredMeta& meta) {
  StoreWrite write{map, partition, key, value, meta};
  return storeMany({&write, 1});
}

StoreResult<void> RocksDbStore::storeMany(std::span<const StoreWrite> batch) {
  uint64_t bytes = 0;
  for (const StoreWrite& w : batch) {
    if (auto invalid = impl_->checkTarget(w.map, w.partition)) return *invalid;
    bytes += 4 + w.map.size() + w.key.size() + (w.value ? codec::VALUE_HEADER_BYTES + w.value->size() : 0);
  }
  if (auto refused = impl_->admitWrite(bytes)) return *refused;
  auto db = impl_->access();
  if (!db) return db.error();
  rocksdb::WriteBatch writes;
  for (const StoreWrite& w : batch) {
    std::string key = codec::storeKey(w.partition, w.map, w.key);
    rocksdb::Status status = w.value ? writes.Put(db->data, key, codec::encodeValue(w.meta, *w.value))
                                     : writes.Delete(db->data, key);
    if (!status.ok()) return impl_->failure(status, "build write batch");
  }
  return impl_->apply(*db, impl_->dataWrite, writes, "store");
}

StoreResult<void> RocksDbStore::erase(std::string_view map, uint32_t partition, std::string_view key) {
  StoreWrite write{map, partition, key, std::nullopt, {}};
  return storeMany({&write, 1});
}

StoreResult<void> RocksDbStore::eraseMany(std::string_view map, std::span<const KeyRef> keys) {
  std::vector<StoreWrite> writes;
  writes.reserve(keys.size());
  for (const KeyRef& ref : keys) writes.push_back({map, ref.partition, ref.key, std::nullopt, {}});
  return storeMany(writes);
}

StoreResult<void> RocksDbStore::dropPartition(uint32_t partition) {
  if (partition >= impl_->options.partitionCount) return *impl_->checkTarget("-", partition);
  if (auto refused = impl_->admitWrite(64)) return *refused;
  auto db = impl_->access();
  if (!db) return db.error();
  std::string begin = codec::partitionPrefix(partition);
  std::string end = *codec::prefixSuccessor(begin);  // exists: partition ids stop below 0xFFFF
  rocksdb::WriteBatch batch;
  rocksdb::Status status = batch.DeleteRange(db->data, begin, end);
  if (!status.ok()) return impl_->failure(status, "drop partition");
  return impl_->apply(*db, impl_->dataWrite, batch, "drop partition " + std::to_string(partition));
}

StoreResult<void> RocksDbStore::sync() {
  auto db = impl_->access();
  if (!db) return db.error();
  rocksdb::Status status = db->db->SyncWAL();
  if (!status.ok()) return impl_->failure(status, "sync WAL");
  return {};
}

StoreResult<void> RocksDbStore::compact() {
  auto db = impl_->access();
  if (!db) return db.error();
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (auto* family : {db->data, db->queue}) {
    rocksdb::Status status = db->db->CompactRange(options, family, nullptr, nullptr);
    if (!status.ok()) return impl_->failure(status, "compact");
  }
  return {};
}

RocksDbStoreStats RocksDbStore::stats() const {
  RocksDbStoreStats out;
  auto db = impl_->access();
  if (!db) return out;
  for (auto* family : {db->data, db->queue}) {
    uint64_t value = 0;
    auto add = [&](const char* property, uint64_t& into) {
      if (db->db->GetIntProperty(family, property, &value)) into += value;
    };
    add("rocksdb.estimate-num-keys", out.estimatedKeys);
    add("rocksdb.estimate-live-data-size", out.liveDataBytes);
    add("rocksdb.total-sst-files-size", out.sstFileBytes);
    add("rocksdb.cur-size-all-mem-tables", out.memtableBytes);
  }
  uint64_t errors = 0;
  if (db->db->GetIntProperty("rocksdb.background-errors", &errors)) out.backgroundErrors = errors;
  return out;
}

const DataDirMarker& RocksDbStore::marker() const {
  return impl_->marker;
}

const RocksDbStoreOptions& RocksDbStore::options() const {
  return impl_->options;
}

}  // namespace shoal::persistence

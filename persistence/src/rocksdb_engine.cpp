// RocksDbStore::Impl: opening and closing the RocksDB instance, pinned access to it, writes, and
// the disk-full defences described in rocksdb_store_impl.h (free-space admission, WAL repair).
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <chrono>
#include <filesystem>

#include "key_codec.h"
#include "rocksdb_logger.h"
#include "rocksdb_status.h"
#include "rocksdb_store_impl.h"

namespace shoal::persistence {

namespace {

int64_t steadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

rocksdb::Options dbOptions(const RocksDbStoreOptions& o, const std::string& dbPath, bool fresh) {
  rocksdb::Options db;
  db.create_if_missing = fresh;
  db.error_if_exists = fresh;  // a fresh directory was empty: a database there is not ours
  db.create_missing_column_families = true;
  db.atomic_flush = true;  // both column families share the WAL; flush them as one
  db.max_background_jobs = static_cast<int>(o.maxBackgroundJobs);
  db.write_buffer_size = o.writeBufferBytes;
  db.compression = o.compression ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  db.info_log = makeSpdlogLogger(dbPath);  // no LOG file in the data directory
  // With an SstFileManager, RocksDB polls free space after a failed flush or compaction and
  // resumes by itself once there is room (observed: about 5 s).
  db.sst_file_manager.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default()));
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(o.blockCacheBytes);
  if (o.bloomBitsPerKey > 0) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(o.bloomBitsPerKey));
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return db;
}

// The failure came from the WAL (a numbered *.log file), or from a WAL writer that failed before.
bool isWalFailure(const rocksdb::Status& status) {
  std::string text = status.ToString();
  return text.find(".log") != std::string::npos || text.find("previous error") != std::string::npos;
}

}  // namespace

RocksDbStore::Impl::~Impl() {
  closeDb();
}

StoreResult<void> RocksDbStore::Impl::openDb(bool fresh) {
  if (fresh) {  // RocksDB logs an error when it has to create the directory itself
    std::error_code ignored;
    std::filesystem::create_directories(dbPath, ignored);
  }
  rocksdb::Options opts = dbOptions(options, dbPath, fresh);
  // Map entries are written all the time and read back almost never while serving (restart and
  // migration iterate a flushed or sorted memtable), so their memtable is a vector: O(1) inserts
  // instead of skip-list key comparisons, which dominated write-through CPU. The write-behind
  // queue's family too: its log is written on every enqueue and read only by iterators at open,
  // for dead letters and replay (operator commands, which pay for sorting the memtable); with a
  // skip list its inserts were ~20% of a write-behind member's CPU. A store that serves point
  // reads (read-through) keeps the skip list for entries: a vector memtable's Get copies and sorts
  // the whole memtable, so loads under a write load took milliseconds each.
  rocksdb::ColumnFamilyOptions entryFamily(opts);
  if (!options.pointReads) entryFamily.memtable_factory.reset(new rocksdb::VectorRepFactory());
  rocksdb::ColumnFamilyOptions queueFamily(opts);
  queueFamily.memtable_factory.reset(new rocksdb::VectorRepFactory());
  // Its files hold mostly tombstones of flushed records and short-lived values: not worth compressing.
  queueFamily.compression = rocksdb::kNoCompression;
  opts.allow_concurrent_memtable_write = false;  // required by the vector memtable
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, entryFamily},
                                                           {QUEUE_COLUMN_FAMILY, queueFamily}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(opts, dbPath, families, &handles, &raw);
  if (!status.ok()) return toStoreError(status, "open " + dbPath);
  db.reset(raw);
  dataCf = handles[0];
  queueCf = handles[1];
  return {};
}

void RocksDbStore::Impl::closeDb() {
  if (db == nullptr) return;
  for (auto* handle : {dataCf, queueCf}) db->DestroyColumnFamilyHandle(handle);
  dataCf = queueCf = nullptr;
  rocksdb::Status closed = db->Close();
  if (!closed.ok()) spdlog::warn("persistence: closing {}: {}", dbPath, closed.ToString());
  db.reset();
}

StoreResult<DbAccess> RocksDbStore::Impl::access() const {
  std::shared_lock lock(dbMutex);
  if (db == nullptr) {
    return StoreError{StoreErrorCode::UNAVAILABLE,
                      "the database in " + dbPath + " is being reopened after a disk-full error; retry"};
  }
  return DbAccess{std::move(lock), db.get(), dataCf, queueCf};
}

uint64_t RocksDbStore::Impl::freeDiskBytes(uint64_t upcoming) {
  // statvfs costs about a microsecond; skip it while far from the reserve.
  const int64_t now = steadyMs();
  uint64_t last = lastFreeBytes.load();
  if (now - freeCheckedMs.load() > 100 || writtenSinceCheck.load() + upcoming > last / 8 ||
      last < 4 * options.reservedDiskBytes) {
    struct statvfs fs {};
    if (::statvfs(dbPath.c_str(), &fs) == 0) last = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    lastFreeBytes = last;
    freeCheckedMs = now;
    writtenSinceCheck = 0;
  }
  uint64_t written = writtenSinceCheck += upcoming;
  return last > written ? last - written : 0;
}

std::optional<StoreError> RocksDbStore::Impl::admitWrite(uint64_t bytes, bool bookkeeping) {
  if (walPoisoned.load() && !repairWal()) {
    return StoreError{StoreErrorCode::NO_SPACE,
                      "writes to " + dbPath +
                          " are paused: a write-ahead-log write failed on a full disk; "
                          "free space and they resume (reads keep working)"};
  }
  if (options.reservedDiskBytes == 0) return std::nullopt;
  uint64_t free = freeDiskBytes(bytes);
  uint64_t reserve = bookkeeping ? options.reservedDiskBytes / 2 : options.reservedDiskBytes;
  if (free >= reserve + bytes) return std::nullopt;
  if (!noSpaceLogged.exchange(true)) {
    spdlog::warn("persistence: {} bytes free for {}, below reservedDiskBytes ({}): refusing writes", free,
                 dbPath, options.reservedDiskBytes);
  }
  return StoreError{StoreErrorCode::NO_SPACE,
                    "only " + std::to_string(free) + " bytes are free for " + dbPath +
                        ", below RocksDbStoreOptions.reservedDiskBytes (" +
                        std::to_string(options.reservedDiskBytes) +
                        "): free disk space; reads keep working and writes resume by themselves"};
}

bool RocksDbStore::Impl::repairWal() {
  const int64_t now = steadyMs();
  int64_t last = lastRepairMs.load();
  if (now - last < 1000 || !lastRepairMs.compare_exchange_strong(last, now)) return false;
  freeCheckedMs = 0;  // measure afresh
  uint64_t needed = std::max<uint64_t>(options.reservedDiskBytes, 2 * options.writeBufferBytes);
  if (freeDiskBytes(0) < needed) return false;
  std::unique_lock lock(dbMutex, std::chrono::seconds(2));
  if (!lock.owns_lock()) return false;
  if (!walPoisoned.load()) return true;  // another writer repaired it meanwhile
  spdlog::info("persistence: disk space is back; reopening {} to start a fresh write-ahead log", dbPath);
  closeDb();
  auto reopened = openDb(false);
  if (!reopened) {
    spdlog::error("persistence: reopening {} failed (retried by the next write): {}", dbPath,
                  reopened.error().toString());
    return false;
  }
  walPoisoned = false;
  noSpaceLogged = false;
  return true;
}

StoreError RocksDbStore::Impl::failure(const rocksdb::Status& status, std::string_view what) {
  StoreError error = toStoreError(status, std::string(what) + " in " + dbPath);
  if (error.code == StoreErrorCode::NO_SPACE && !noSpaceLogged.exchange(true)) {
    spdlog::warn("persistence: disk full, writes to {} fail until space is freed: {}", dbPath,
                 status.ToString());
  } else if (error.code != StoreErrorCode::NO_SPACE) {
    spdlog::warn("persistence: {}", error.message);
  }
  return error;
}

StoreResult<void> RocksDbStore::Impl::apply(DbAccess& access, const rocksdb::WriteOptions& write,
                                            rocksdb::WriteBatch& batch, std::string_view what) {
  rocksdb::Status status = access.db->Write(write, &batch);
  if (status.ok()) {
    if (noSpaceLogged.load(std::memory_order_relaxed) && !walPoisoned.load()) {
      noSpaceLogged = false;
      spdlog::info("persistence: writes to {} succeed again", dbPath);
    }
    return {};
  }
  if ((status.IsIOError() || status.IsIncomplete()) && isWalFailure(status) && !walPoisoned.exchange(true)) {
    spdlog::error("persistence: the write-ahead log of {} failed ({}); writes pause until it is reopened",
                  dbPath, status.ToString());
  }
  return failure(status, what);
}

std::optional<StoreError> RocksDbStore::Impl::checkTarget(std::string_view map, uint32_t partition) const {
  if (map.empty() || map.size() > codec::MAX_MAP_NAME_BYTES) {
    return StoreError{StoreErrorCode::INVALID_ARGUMENT, "map names must be 1..65535 bytes"};
  }
  if (partition >= options.partitionCount) {
    return StoreError{StoreErrorCode::INVALID_ARGUMENT, "partition " + std::to_string(partition) +
                                                            " is outside 0.." +
                                                            std::to_string(options.partitionCount - 1)};
  }
  return std::nullopt;
}

}  // namespace shoal::persistence

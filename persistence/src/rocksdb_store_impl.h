// RocksDbStore's private state, shared with the write-behind queue (whose log is a column family
// of the same database, so one WAL fsync covers both). Only persistence/src includes this.
//
// Disk-full handling. RocksDB 7.8 must never see a WAL append fail: after one, it may reuse the
// failed WAL writer, which aborts the process in Debian's build (assertions are on) and fails
// every later write otherwise (upstream issues 11643, 12998). So:
//   1. admitWrite() refuses a write with NO_SPACE while free space on the data directory's file
//      system is below options.reservedDiskBytes, before RocksDB is involved;
//   2. if a WAL write fails anyway (another process filled the disk first), the WAL is "poisoned":
//      writes are refused without reaching RocksDB, reads go on, and once space is back the
//      database is closed and reopened (which starts a fresh WAL; replay stops at the torn tail).
// Every use of `db` or a handle holds `dbMutex` shared (through access()); a reopen holds it
// exclusively. So nothing may call admitWrite() while it holds a DbAccess (e.g. from a forEach
// visitor): the repair would wait for itself (it gives up after 2 s and retries later).
#pragma once

#include <rocksdb/db.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>

#include "shoal/persistence/rocksdb_store.h"

namespace shoal::persistence {

inline constexpr const char* QUEUE_COLUMN_FAMILY = "write_behind";

// The open database, pinned for the duration of one operation.
struct DbAccess {
  std::shared_lock<std::shared_timed_mutex> lock;
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyHandle* data = nullptr;   // map entries (the default column family)
  rocksdb::ColumnFamilyHandle* queue = nullptr;  // write-behind logs and dead letters
};

struct RocksDbStore::Impl {
  RocksDbStoreOptions options;
  DataDirMarker marker;
  std::string dbPath;
  rocksdb::WriteOptions dataWrite;    // sync = options.syncWrites
  rocksdb::WriteOptions syncedWrite;  // always sync: queue enqueues, dead letters

  std::mutex queuesMutex;
  std::set<std::string> openQueues;  // names of live WriteBehindQueue objects

  ~Impl();

  // Opens the database (creating it when `fresh`); called by open() and by the WAL repair.
  StoreResult<void> openDb(bool fresh);
  // The open database, or UNAVAILABLE while a reopen has failed (it is retried by writes).
  StoreResult<DbAccess> access() const;
  // Call before access() for every write of about `bytes`: NO_SPACE when the disk is nearly full
  // or the WAL is poisoned (then it also tries the repair, at most once a second). `bookkeeping`
  // writes (removing flushed queue records, dead letters) may use half of the reserve.
  std::optional<StoreError> admitWrite(uint64_t bytes, bool bookkeeping = false);
  // Writes `batch` (built with handles of `db`), mapping a failure and poisoning the WAL when the
  // failure came from it.
  StoreResult<void> apply(DbAccess& db, const rocksdb::WriteOptions& write, rocksdb::WriteBatch& batch,
                          std::string_view what);
  StoreError failure(const rocksdb::Status& status, std::string_view what);
  // INVALID_ARGUMENT when the map name or partition cannot be stored.
  std::optional<StoreError> checkTarget(std::string_view map, uint32_t partition) const;

 private:
  void closeDb();
  uint64_t freeDiskBytes(uint64_t upcoming);
  bool repairWal();

  mutable std::shared_timed_mutex dbMutex;
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* dataCf = nullptr;
  rocksdb::ColumnFamilyHandle* queueCf = nullptr;

  std::atomic<bool> noSpaceLogged{false};  // one warning per full-disk episode
  std::atomic<bool> walPoisoned{false};
  std::atomic<int64_t> lastRepairMs{0};
  std::atomic<uint64_t> lastFreeBytes{0};  // from statvfs, refreshed by freeDiskBytes()
  std::atomic<int64_t> freeCheckedMs{0};
  std::atomic<uint64_t> writtenSinceCheck{0};
};

}  // namespace shoal::persistence

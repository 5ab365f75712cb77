// The embedded default MapStore: one RocksDB database in <data-dir>/db holding the partitions this
// member keeps, plus the logs of its write-behind queues. The data directory is guarded by a
// SHOAL_DATA_DIR marker: open() refuses (and never wipes) a directory that is not ours.
// Layout and invariants: persistence/README.md. Blocking and thread-safe, like every MapStore.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "shoal/persistence/map_store.h"

namespace shoal::persistence {

class WriteBehindQueue;

struct RocksDbStoreOptions {
  std::string path;                           // data directory (required); the database is <path>/db
  std::string clusterName = "shoal";          // kept in the marker; another cluster's directory is refused
  uint32_t partitionCount = 271;              // partitions of the cluster, 1..65535; must match the marker
  bool createIfMissing = true;                // false: never initialise a missing or empty directory
  bool syncWrites = true;                     // fsync the WAL before a write returns (write-through)
  uint64_t blockCacheBytes = 64ull << 20;     // read cache of uncompressed blocks, >= 1 MiB (64 MiB)
  uint64_t writeBufferBytes = 32ull << 20;    // memtable size before a flush to disk, >= 64 KiB (32 MiB)
  uint32_t maxBackgroundJobs = 2;             // RocksDB flush + compaction threads, 1..64
  bool compression = true;                    // LZ4 for SST blocks (the WAL and memtables stay raw)
  uint32_t bloomBitsPerKey = 10;              // bloom filter bits per key for loads, 0 = none, <= 32
  uint64_t reservedDiskBytes = 128ull << 20;  // NO_SPACE below this much free disk; 0 = off, else >= 2 *
                                              // writeBufferBytes (128 MiB)  // The store answers load() while
                                              // it is being written (read-through of entries evicted from
  // memory): map entries get a skip-list memtable. Otherwise a vector memtable (cheaper inserts),
  // where every load sorts a copy of the whole unflushed memtable.
  bool pointReads = false;
};

// What the marker file records; fixed when the directory is first initialised.
struct DataDirMarker {
  uint32_t formatVersion = 0;  // on-disk format of this directory (this build: 1)
  std::string clusterName;
  uint32_t partitionCount = 0;
  int64_t createdTimeMs = 0;  // Unix ms of the first open
  // The member's identity in its cluster, chosen at random when the directory is initialised, so
  // a member restarted with its data comes back as itself (same placement). 0: a directory made
  // before identities were kept (the member picks a new id on every start).
  uint64_t memberId = 0;
};

// Estimates from RocksDB's properties, for metrics; cheap to read.
struct RocksDbStoreStats {
  uint64_t estimatedKeys = 0;     // entries of maps and queue records, approximate
  uint64_t liveDataBytes = 0;     // estimate of live data in SST files
  uint64_t sstFileBytes = 0;      // all SST files, including not yet compacted garbage
  uint64_t memtableBytes = 0;     // memory held by memtables
  uint64_t backgroundErrors = 0;  // failed background flushes/compactions since open (e.g. full disk)
};

class RocksDbStore final : public MapStore {
 public:
  // Opens (or, for a missing or empty directory, initialises) the store. Refuses with
  // INCOMPATIBLE a directory that holds files but no marker, or whose marker names another
  // format, cluster or partition count; LOCKED when another store holds it; NO_SPACE on a full
  // disk. Never deletes anything it did not create.
  static StoreResult<std::unique_ptr<RocksDbStore>> open(const RocksDbStoreOptions& options);
  ~RocksDbStore() override;  // closes the database; every WriteBehindQueue on it must be gone
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  StoreResult<std::optional<StoredValue>> load(std::string_view map, uint32_t partition,
                                               std::string_view key) override;
  StoreResult<std::vector<std::optional<StoredValue>>> loadMany(std::string_view map,
                                                                std::span<const KeyRef> keys) override;
  StoreResult<void> store(std::string_view map, uint32_t partition, std::string_view key,
                          std::string_view value, const StoredMeta& meta) override;
  StoreResult<void> storeMany(std::span<const StoreWrite> batch) override;  // one atomic batch
  StoreResult<void> erase(std::string_view map, uint32_t partition, std::string_view key) override;
  StoreResult<void> eraseMany(std::string_view map, std::span<const KeyRef> keys) override;
  StoreResult<KeyPage> listKeys(std::string_view map, std::optional<uint32_t> partition,
                                std::string_view cursor, uint32_t limit) override;
  // The visitor runs with the database pinned: it must not write to this store.
  StoreResult<void> forEach(uint32_t partition, const EntryVisitor& visit) override;
  // A range delete: O(1) now, the space comes back as compaction passes over it (or compact()).
  StoreResult<void> dropPartition(uint32_t partition) override;
  StoreResult<void> sync() override;  // fsyncs the WAL; only useful with syncWrites = false

  // Maintenance: compacts the whole database now (blocks; reclaims dropped partitions' space).
  StoreResult<void> compact();
  RocksDbStoreStats stats() const;
  const DataDirMarker& marker() const;
  const RocksDbStoreOptions& options() const;

 private:
  friend class WriteBehindQueue;  // keeps its durable log in this database
  struct Impl;
  explicit RocksDbStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::persistence

// RocksDbStore scans: paged key listing of one map (one partition or all) and the per-partition
// walk used by restart recovery. Both read from an implicit snapshot (a RocksDB iterator).
#include <rocksdb/iterator.h>

#include "key_codec.h"
#include "rocksdb_status.h"
#include "rocksdb_store_impl.h"

namespace shoal::persistence {

namespace {

bool startsWith(const rocksdb::Slice& bytes, const std::string& prefix) {
  return bytes.starts_with(rocksdb::Slice(prefix));
}

StoreError badCursor(const std::string& why) {
  return {StoreErrorCode::INVALID_ARGUMENT, "listKeys cursor " + why + "; start again with an empty cursor"};
}

}  // namespace

StoreResult<KeyPage> RocksDbStore::listKeys(std::string_view map, std::optional<uint32_t> partition,
                                            std::string_view cursor, uint32_t limit) {
  if (auto invalid = impl_->checkTarget(map, partition.value_or(0))) return *invalid;
  if (limit == 0) return StoreError{StoreErrorCode::INVALID_ARGUMENT, "listKeys limit must be >= 1"};
  uint32_t first = partition.value_or(0);
  uint32_t last = partition.value_or(impl_->options.partitionCount - 1);
  std::string after;  // resume strictly after this store key
  if (!cursor.empty()) {
    auto decoded = codec::decodeStoreKey(cursor);
    if (!decoded || decoded->map != map) return badCursor("belongs to another map or store");
    if (decoded->partition < first || decoded->partition > last) return badCursor("is outside the partition");
    first = decoded->partition;
    after.assign(cursor);
  }

  auto db = impl_->access();
  if (!db) return db.error();
  KeyPage page;
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(rocksdb::ReadOptions(), db->data));
  for (uint32_t p = first; p <= last; ++p) {
    std::string prefix = codec::mapPrefix(p, map);
    it->Seek(after.empty() || p != first ? prefix : after);
    if (!after.empty() && p == first && it->Valid() && it->key() == rocksdb::Slice(after)) it->Next();
    for (; it->Valid() && startsWith(it->key(), prefix); it->Next()) {
      if (page.keys.size() == limit) {  // one more key exists: the listing continues
        page.nextCursor = codec::storeKey(p, map, page.keys.back().key);
        return page;
      }
      auto decoded = codec::decodeStoreKey(it->key().ToStringView());
      page.keys.push_back({p, std::string(decoded->key)});
    }
    if (!it->status().ok()) return impl_->failure(it->status(), "list keys");
    if (page.keys.size() == limit && p < last) {  // unknown whether later partitions hold more
      page.nextCursor = codec::storeKey(p, map, page.keys.back().key);
      return page;
    }
  }
  return page;
}

StoreResult<void> RocksDbStore::forEach(uint32_t partition, const EntryVisitor& visit) {
  if (partition >= impl_->options.partitionCount) return *impl_->checkTarget("-", partition);
  std::string prefix = codec::partitionPrefix(partition);
  std::string end = *codec::prefixSuccessor(prefix);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper;
  read.fill_cache = false;         // a bulk pass must not evict the hot working set
  read.readahead_size = 2u << 20;  // sequential: read ahead 2 MiB
  auto db = impl_->access();
  if (!db) return db.error();
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(read, db->data));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto key = codec::decodeStoreKey(it->key().ToStringView());
    auto value = codec::decodeValue(it->value().ToStringView());
    if (!key || !value) {
      return StoreError{StoreErrorCode::CORRUPTION, "undecodable entry in partition " +
                                                        std::to_string(partition) + " of " + impl_->dbPath};
    }
    if (!visit(StoredEntryView{key->map, key->key, value->value, value->meta})) return {};
  }
  if (!it->status().ok()) return impl_->failure(it->status(), "scan partition " + std::to_string(partition));
  return {};
}

}  // namespace shoal::persistence

// Write-behind dead letters (list, replay, discard) and the per-partition view of pending writes
// used when a partition's queue moves to another member.
#include <rocksdb/iterator.h>

#include "key_codec.h"
#include "write_behind_state.h"

namespace shoal::persistence {

StoreResult<std::vector<DeadLetter>> WriteBehindQueue::listDeadLetters(uint32_t limit) const {
  State& s = *state_;
  std::set<std::string> obsolete;
  {
    std::lock_guard lock(s.mutex);  // taken before any DbAccess, as everywhere
    obsolete = s.obsoleteDead;
  }
  auto db = s.log.access();
  if (!db) return db.error();
  std::vector<DeadLetter> out;
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(rocksdb::ReadOptions(), db->queue));
  for (it->Seek(s.deadPrefix); it->Valid() && it->key().starts_with(s.deadPrefix) && out.size() < limit;
       it->Next()) {
    std::string_view entryKey = it->key().ToStringView().substr(s.deadPrefix.size());
    if (obsolete.contains(std::string(entryKey))) continue;
    auto key = codec::decodeStoreKey(entryKey);
    auto record = wblog::decodeRecord(it->value().ToStringView());
    if (!key || !record) {
      return StoreError{StoreErrorCode::CORRUPTION,
                        "undecodable dead letter in queue '" + s.options.name + "'"};
    }
    DeadLetter letter{std::string(key->map), key->partition,   std::string(key->key), std::nullopt,
                      record->meta,          record->attempts, record->lastError,     record->deadAtMs};
    if (!record->erase) letter.value = std::move(record->value);
    out.push_back(std::move(letter));
  }
  if (!it->status().ok()) return s.log.failure(it->status(), "list dead letters");
  return out;
}

StoreResult<uint64_t> WriteBehindQueue::replayDeadLetters() {
  State& s = *state_;
  std::lock_guard flushing(s.flushMutex);
  std::lock_guard order(s.logMutex);
  if (auto refused = s.log.admitWrite(4096 + s.deadKeys.size() * 128)) return *refused;
  auto db = s.log.access();
  if (!db) return db.error();
  const int64_t now = s.clock();
  rocksdb::WriteBatch batch;
  std::vector<std::pair<std::string, PendingEntry>> requeued;  // log key, entry
  std::vector<std::string> superseded;
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(rocksdb::ReadOptions(), db->queue));
  for (it->Seek(s.deadPrefix); it->Valid() && it->key().starts_with(s.deadPrefix); it->Next()) {
    std::string entryKey = it->key().ToString().substr(s.deadPrefix.size());
    std::string logKey = s.pendingPrefix + entryKey;
    batch.Delete(db->queue, it->key());
    if (s.entries.contains(logKey) || s.obsoleteDead.contains(entryKey)) {  // a newer write exists
      superseded.push_back(entryKey);
      continue;
    }
    auto key = codec::decodeStoreKey(entryKey);
    auto record = wblog::decodeRecord(it->value().ToStringView());
    if (!key || !record) {
      return StoreError{StoreErrorCode::CORRUPTION,
                        "undecodable dead letter in queue '" + s.options.name + "'"};
    }
    // Due now, and still due after a restart: its delay counts as already served.
    PendingEntry entry;
    entry.seq = ++s.lastSeq;
    entry.erase = record->erase;
    entry.meta = record->meta;
    entry.firstEnqueuedMs = now - s.options.delayMs;
    entry.dueMs = now;
    wblog::LogRecord header;
    header.erase = entry.erase;
    header.seq = entry.seq;
    header.firstEnqueuedMs = entry.firstEnqueuedMs;
    header.meta = entry.meta;
    std::optional<std::string_view> value;
    if (!record->erase) value = record->value;
    entry.record = pendingRecord(header, value, entry.valueOffset);
    batch.Put(db->queue, logKey, *entry.record);
    requeued.emplace_back(std::move(logKey), std::move(entry));
  }
  if (!it->status().ok()) return s.log.failure(it->status(), "replay dead letters");
  it.reset();
  if (batch.Count() == 0) return uint64_t{0};
  auto moved = s.log.apply(*db, s.log.syncedWrite, batch, "replay dead letters");
  if (!moved) return moved.error();
  std::lock_guard lock(s.mutex);
  for (const std::string& entryKey : superseded) s.deadKeys.erase(entryKey);
  s.obsoleteDead.clear();  // every dead record was deleted by this batch
  for (auto& [logKey, entry] : requeued) {
    s.deadKeys.erase(logKey.substr(s.pendingPrefix.size()));
    s.insert(std::move(logKey), std::move(entry));
  }
  return uint64_t{requeued.size()};
}

StoreResult<bool> WriteBehindQueue::discardDeadLetter(std::string_view map, uint32_t partition,
                                                      std::string_view key) {
  State& s = *state_;
  if (auto invalid = s.log.checkTarget(map, partition)) return *invalid;
  std::string entryKey = codec::storeKey(partition, map, key);
  if (auto refused = s.log.admitWrite(entryKey.size(), true)) return *refused;
  std::lock_guard order(s.logMutex);
  {
    std::lock_guard lock(s.mutex);  // a flush into the own store updates deadKeys under it alone
    if (!s.deadKeys.contains(entryKey)) return false;
  }
  auto db = s.log.access();
  if (!db) return db.error();
  rocksdb::WriteBatch batch;
  batch.Delete(db->queue, s.deadPrefix + entryKey);
  auto deleted = s.log.apply(*db, s.log.syncedWrite, batch, "discard dead letter");
  if (!deleted) return deleted.error();
  std::lock_guard lock(s.mutex);
  s.deadKeys.erase(entryKey);
  return true;
}

namespace {
PendingWrite pendingWriteOf(const codec::DecodedKey& k, const PendingEntry& e) {
  std::optional<std::string> value;
  if (auto v = e.value()) value.emplace(*v);
  return PendingWrite{std::string(k.map), k.partition, std::string(k.key), std::move(value), e.meta};
}
}  // namespace

StoreResult<std::vector<PendingWrite>> WriteBehindQueue::pendingWrites(uint32_t partition) const {
  State& s = *state_;
  if (auto invalid = s.log.checkTarget("-", partition)) return *invalid;
  std::lock_guard lock(s.mutex);
  std::vector<PendingWrite> out;
  for (EntryNode* node : s.ordered()) {  // oldest first: the order to re-enqueue them in
    codec::DecodedKey k = s.decoded(*node);
    if (k.partition == partition) out.push_back(pendingWriteOf(k, node->second));
  }
  return out;
}

std::vector<PendingWrite> WriteBehindQueue::pendingWrites() const {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  std::vector<PendingWrite> out;
  out.reserve(s.visible);
  for (EntryNode* node : s.ordered()) out.push_back(pendingWriteOf(s.decoded(*node), node->second));
  return out;
}

StoreResult<std::optional<PendingWrite>> WriteBehindQueue::pendingWrite(std::string_view map,
                                                                        uint32_t partition,
                                                                        std::string_view key) const {
  State& s = *state_;
  if (auto invalid = s.log.checkTarget(map, partition)) return *invalid;
  std::string logKey = s.logKeyOf(partition, map, key);
  std::lock_guard lock(s.mutex);
  auto found = s.entries.find(logKey);
  if (found == s.entries.end() || !found->second.record) return std::optional<PendingWrite>();
  return std::optional<PendingWrite>(pendingWriteOf(s.decoded(*found), found->second));
}

StoreResult<uint64_t> WriteBehindQueue::discardPartition(uint32_t partition) {
  State& s = *state_;
  if (auto invalid = s.log.checkTarget("-", partition)) return *invalid;
  if (auto refused = s.log.admitWrite(4096, true)) return *refused;
  std::lock_guard flushing(s.flushMutex);
  std::lock_guard order(s.logMutex);
  std::vector<EntryNode*> nodes;
  {
    auto db = s.log.access();
    if (!db) return db.error();
    rocksdb::WriteBatch batch;
    for (auto& node : s.entries) {
      if (s.decoded(node).partition != partition) continue;
      nodes.push_back(&node);
      batch.Delete(db->queue, node.first);
    }
    if (nodes.empty()) return uint64_t{0};
    auto deleted = s.log.apply(*db, s.log.syncedWrite, batch, "discard partition from write-behind queue");
    if (!deleted) return deleted.error();
  }
  std::lock_guard lock(s.mutex);
  for (EntryNode* node : nodes) s.remove(*node);
  return uint64_t{nodes.size()};
}

}  // namespace shoal::persistence

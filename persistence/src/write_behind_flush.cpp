// Write-behind flushing: picks due entries, writes them to the target in batches outside the
// locks, isolates the failing entries of a failed batch, backs them off, and dead-letters the ones
// that ran out of attempts. Log records are removed only for the exact write (seq) the target
// took. When the target is the log's own store, an entry's store write and the removal of its log
// record are one atomic, unsynced batch: the WAL keeps them in order, so after any crash either
// both are there or the record is (and the entry is written again).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "write_behind_state.h"

namespace shoal::persistence {

int64_t WriteBehindQueue::State::backoffMs(uint32_t attempts) const {
  int64_t wait = options.initialBackoffMs;
  for (uint32_t i = 1; i < attempts && wait < options.maxBackoffMs; ++i) wait *= 2;
  return std::min(wait, options.maxBackoffMs);
}

int64_t WriteBehindQueue::State::minBackoffPendingMs() const {
  std::lock_guard lock(mutex);
  if (visible > retrying) return 0;  // some entry is not backing off
  int64_t wait = 0;
  for (const auto& [due, node] : scheduled) {
    int64_t w = backoffMs(node->second.attempts);
    wait = wait == 0 ? w : std::min(wait, w);
  }
  return wait;
}

std::vector<EntryNode*> WriteBehindQueue::State::dueEntries(int64_t nowMs, Pick pick) const {
  std::lock_guard lock(mutex);
  if (pick == Pick::EVERYTHING) return ordered();
  std::vector<EntryNode*> out;
  if (pick == Pick::SKIP_DELAY) {
    for (EntryNode* node : ordered()) {
      if (node->second.dueMs <= nowMs || node->second.attempts == 0) out.push_back(node);
    }
    return out;
  }
  // Entries still in their first delay may go early, but only as whole batches. Counted without
  // visiting them: the queue may hold millions and this runs every tick.
  uint64_t dueFresh = 0;  // due entries not backing off
  auto s = scheduled.begin();
  for (; s != scheduled.end() && s->first <= nowMs; ++s) {
    out.push_back(s->second);
    dueFresh += s->second->second.attempts == 0;
  }
  size_t i = 0;
  for (; i < fifo.size() && fifo[i].dueMs <= nowMs; ++i) {
    if (fifo[i].node == nullptr) continue;
    out.push_back(fifo[i].node);
    ++dueFresh;
  }
  uint64_t waiting = visible - retrying - dueFresh;
  uint64_t early = waiting / options.batchSize * options.batchSize;
  for (; i < fifo.size() && early > 0; ++i) {
    if (fifo[i].node == nullptr) continue;
    out.push_back(fifo[i].node);
    --early;
  }
  for (; s != scheduled.end() && early > 0; ++s) {
    if (s->second->second.attempts > 0) continue;
    out.push_back(s->second);
    --early;
  }
  return out;
}

void WriteBehindQueue::State::writeToTarget(std::vector<FlushItem>& items) {
  auto writeOf = [this](const FlushItem& item) {
    codec::DecodedKey k = decoded(*item.node);
    return StoreWrite{k.map, k.partition, k.key, item.value, item.meta};
  };
  std::vector<StoreWrite> batch;
  batch.reserve(items.size());
  for (const FlushItem& item : items) batch.push_back(writeOf(item));
  auto written = target.storeMany(batch);
  if (written || items.size() == 1) {
    if (!written) items[0].error = written.error();
    return;
  }
  // Find which entries fail, so one bad entry does not take its batch mates down with it. A store
  // that is down (UNAVAILABLE) fails the rest without being asked again.
  std::optional<StoreError> down;
  for (FlushItem& item : items) {
    if (down) {
      item.error = down;
      continue;
    }
    StoreWrite one = writeOf(item);
    auto single = target.storeMany({&one, 1});
    if (single) continue;
    item.error = single.error();
    if (single.error().code == StoreErrorCode::UNAVAILABLE) down = single.error();
  }
}

StoreResult<void> WriteBehindQueue::State::flushBatch(std::vector<FlushItem>& items, FlushReport& report) {
  writeToTarget(items);
  std::lock_guard order(logMutex);
  return settle(items, report, rocksdb::WriteBatch());
}

StoreResult<void> WriteBehindQueue::State::flushIntoLog(std::vector<FlushItem>& items, FlushReport& report) {
  std::unique_lock order(logMutex);
  // A newer write of a key replaced the picked one: that one is written instead, later.
  std::erase_if(items, [](const FlushItem& item) { return item.node->second.seq != item.seq; });
  if (items.empty()) return {};
  std::vector<std::string> deadToo;  // dead letters older than the writes now stored
  for (const FlushItem& item : items) {
    std::string_view entryKey = entryKeyOf(*item.node);
    if (!deadKeys.empty() && deadKeys.contains(std::string(entryKey))) deadToo.emplace_back(entryKey);
  }
  std::vector<std::string> obsolete(obsoleteDead.begin(), obsoleteDead.end());
  {
    std::lock_guard lock(mutex);
    for (FlushItem& item : items) item.node->second.flushing = true;
  }
  order.unlock();  // from here enqueues of other keys go on; these keys' wait for the write

  uint64_t bytes = 4096;
  for (const FlushItem& item : items) {
    bytes += 2 * item.node->first.size() + codec::VALUE_HEADER_BYTES + (item.value ? item.value->size() : 0);
  }
  std::optional<StoreError> failed = log.admitWrite(bytes);
  if (!failed) {
    auto db = log.access();
    if (!db) {
      failed = db.error();
    } else {
      rocksdb::WriteBatch batch;
      for (const FlushItem& item : items) {
        std::string_view entryKey = entryKeyOf(*item.node);
        rocksdb::Status status =
            item.value ? batch.Put(db->data, entryKey, codec::encodeValue(item.meta, *item.value))
                       : batch.Delete(db->data, entryKey);
        if (status.ok()) status = batch.Delete(db->queue, item.node->first);
        if (!status.ok()) {
          failed = log.failure(status, "build write-behind batch");
          break;
        }
      }
      for (const std::string& entryKey : deadToo) batch.Delete(db->queue, deadPrefix + entryKey);
      for (const std::string& entryKey : obsolete) batch.Delete(db->queue, deadPrefix + entryKey);
      if (!failed) {
        auto written = log.apply(*db, rocksdb::WriteOptions(), batch, "write-behind flush into the store");
        if (!written) failed = written.error();
      }
    }
  }
  {
    std::lock_guard lock(mutex);
    if (!failed) {
      for (FlushItem& item : items) remove(*item.node);
      for (const std::string& entryKey : deadToo) deadKeys.erase(entryKey);
      for (const std::string& entryKey : obsolete) obsoleteDead.erase(entryKey);
      report.written += items.size();
    } else {
      for (FlushItem& item : items) item.node->second.flushing = false;
    }
    ++flushesWritten;
  }
  flushWritten.notify_all();
  if (!failed) return {};
  // Nothing was written: each entry failed as the batch did.
  for (FlushItem& item : items) item.error = *failed;
  order.lock();
  return settle(items, report, rocksdb::WriteBatch());
}

StoreResult<void> WriteBehindQueue::State::settle(std::vector<FlushItem>& items, FlushReport& report,
                                                  rocksdb::WriteBatch cleanup) {
  const int64_t now = clock();
  // Bookkeeping may use part of the disk reserve: without it a full disk would make the queue
  // write the same entries to the target over and over.
  uint64_t bytes = 4096;
  for (const FlushItem& item : items) bytes += 128 + 2 * item.node->first.size();
  auto refused = log.admitWrite(bytes, true);
  auto db = refused ? StoreResult<DbAccess>(*refused) : log.access();
  rocksdb::WriteBatch dead;  // synced: moves entries out of the pending log
  std::vector<FlushItem*> dying;
  {
    std::lock_guard lock(mutex);
    for (FlushItem& item : items) {
      EntryNode& node = *item.node;
      PendingEntry& entry = node.second;
      bool same = entry.seq == item.seq;
      std::string_view entryKey = entryKeyOf(node);
      if (!item.error) {
        ++report.written;
        auto deadKey = deadKeys.find(std::string(entryKey));
        if (deadKey != deadKeys.end()) {  // older than the target's copy now
          obsoleteDead.insert(*deadKey);
          deadKeys.erase(deadKey);
        }
        if (same) {
          if (db) cleanup.Delete(db->queue, node.first);
          remove(node);
        } else {
          setAttempts(entry, 0);  // a newer write is pending; the key itself is writable
        }
        continue;
      }
      if (!same) continue;  // a newer write of the key replaced this one; it will be tried
      setAttempts(entry, entry.attempts + 1);
      if (entry.attempts < options.maxAttempts || !db) {
        ++report.failedAttempts;
        reschedule(node, now + backoffMs(entry.attempts));
        spdlog::debug("write-behind '{}': attempt {} for a key of map '{}' failed: {}", options.name,
                      entry.attempts, decoded(node).map, item.error->toString());
        continue;
      }
      dead.Delete(db->queue, node.first);
      dead.Put(db->queue, deadPrefix + std::string(entryKey), deadRecordOf(entry, now, *item.error));
      dying.push_back(&item);
    }
  }
  if (!db) {  // written entries stay in the log and are written again after a restart
    spdlog::warn("write-behind '{}': cannot update its log: {}", options.name, db.error().toString());
    return db.error();
  }
  for (const std::string& entryKey : obsoleteDead) cleanup.Delete(db->queue, deadPrefix + entryKey);
  if (cleanup.Count() > 0) {
    auto cleaned = log.apply(*db, rocksdb::WriteOptions(), cleanup, "remove flushed write-behind records");
    if (cleaned) {
      std::lock_guard lock(mutex);
      obsoleteDead.clear();
    } else {
      spdlog::warn("write-behind '{}': {} (the entries will be written again after a restart)", options.name,
                   cleaned.error().toString());
    }
  }
  if (dying.empty()) return {};
  auto moved = log.apply(*db, log.syncedWrite, dead, "dead-letter write-behind entries");
  std::lock_guard lock(mutex);
  for (FlushItem* item : dying) {
    EntryNode& node = *item->node;
    PendingEntry& entry = node.second;
    if (!moved) {  // still pending: try again later rather than lose it
      reschedule(node, now + options.maxBackoffMs);
      continue;
    }
    codec::DecodedKey k = decoded(node);
    spdlog::error("write-behind '{}': gave up on a key of map '{}' partition {} after {} attempts: {}",
                  options.name, k.map, k.partition, entry.attempts, item->error->toString());
    report.deadLettered.push_back(
        {std::string(k.map), k.partition, std::string(k.key), entry.attempts, *item->error});
    deadKeys.emplace(entryKeyOf(node));
    remove(node);
  }
  if (!moved) return moved.error();
  return {};
}

StoreResult<void> WriteBehindQueue::State::flushEntries(const std::vector<EntryNode*>& nodes,
                                                        FlushReport& report) {
  for (size_t start = 0; start < nodes.size(); start += options.batchSize) {
    std::vector<FlushItem> items;
    {
      std::lock_guard lock(mutex);
      size_t end = std::min(nodes.size(), start + options.batchSize);
      items.reserve(end - start);
      for (size_t i = start; i < end; ++i) {
        const PendingEntry& e = nodes[i]->second;
        items.push_back({nodes[i], e.seq, e.record, e.value(), e.meta, std::nullopt});
      }
    }
    auto flushed = targetIsLog ? flushIntoLog(items, report) : flushBatch(items, report);
    if (!flushed) return flushed;
  }
  return {};
}

StoreResult<FlushReport> WriteBehindQueue::flushDue() {
  std::lock_guard flushing(state_->flushMutex);
  FlushReport report;
  auto flushed = state_->flushEntries(state_->dueEntries(state_->clock(), State::Pick::DUE), report);
  if (!flushed) return flushed.error();
  return report;
}

StoreResult<FlushReport> WriteBehindQueue::flushNow() {
  std::lock_guard flushing(state_->flushMutex);
  FlushReport report;
  auto flushed = state_->flushEntries(state_->dueEntries(state_->clock(), State::Pick::SKIP_DELAY), report);
  if (!flushed) return flushed.error();
  return report;
}

StoreResult<FlushReport> WriteBehindQueue::flush() {
  std::lock_guard flushing(state_->flushMutex);
  FlushReport report;
  while (true) {
    std::vector<EntryNode*> nodes = state_->dueEntries(state_->clock(), State::Pick::EVERYTHING);
    if (nodes.empty()) return report;
    auto flushed = state_->flushEntries(nodes, report);
    if (!flushed) return flushed.error();
    // What is left failed and waits out its backoff (real time: this call blocks anyway).
    if (int64_t wait = state_->minBackoffPendingMs(); wait > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
  }
}

}  // namespace shoal::persistence

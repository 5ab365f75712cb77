// Write-behind flushing: picks due entries, writes them to the target in batches outside the lock,
// isolates the failing entries of a failed batch, backs them off, and dead-letters the ones that
// ran out of attempts. Log records are removed only for the exact write (seq) the target took.
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
  int64_t wait = 0;
  for (const auto& [entryKey, entry] : entries) {
    if (entry.attempts == 0) return 0;
    wait = wait == 0 ? backoffMs(entry.attempts) : std::min(wait, backoffMs(entry.attempts));
  }
  return wait;
}

std::vector<std::string> WriteBehindQueue::State::dueKeys(int64_t nowMs, Pick pick) const {
  std::lock_guard lock(mutex);
  std::vector<std::string> keys;
  if (pick == Pick::EVERYTHING) {
    for (const auto& [due, entryKey] : byDue) keys.push_back(entryKey);
    return keys;
  }
  if (pick == Pick::SKIP_DELAY) {
    for (const auto& [due, entryKey] : byDue) {
      if (due.first <= nowMs || entries.at(entryKey).attempts == 0) keys.push_back(entryKey);
    }
    return keys;
  }
  // Entries still in their first delay may go early, but only as whole batches. Counted without
  // visiting them: the queue may hold millions and this runs every tick.
  auto it = byDue.begin();
  uint64_t dueFresh = 0;  // due entries not backing off
  for (; it != byDue.end() && it->first.first <= nowMs; ++it) {
    keys.push_back(it->second);
    dueFresh += entries.at(it->second).attempts == 0;
  }
  uint64_t waiting = entries.size() - retrying - dueFresh;
  uint64_t early = waiting / options.batchSize * options.batchSize;
  for (; it != byDue.end() && early > 0; ++it) {
    if (entries.at(it->second).attempts == 0) {
      keys.push_back(it->second);
      --early;
    }
  }
  return keys;
}

void WriteBehindQueue::State::writeToTarget(std::vector<FlushItem>& items) {
  auto writeOf = [](const FlushItem& item) {
    const PendingEntry& e = item.entry;
    return StoreWrite{e.map, e.partition, e.key,
                      e.value ? std::optional<std::string_view>(*e.value) : std::nullopt, e.meta};
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

  std::lock_guard lock(mutex);
  const int64_t now = clock();
  // Bookkeeping may use part of the disk reserve: without it a full disk would make the queue
  // write the same entries to the target over and over.
  uint64_t bytes = 4096;
  for (const FlushItem& item : items)
    bytes += 128 + item.entryKey.size() + (item.error ? item.entry.key.size() : 0);
  auto refused = log.admitWrite(bytes, true);
  auto db = refused ? StoreResult<DbAccess>(*refused) : log.access();
  rocksdb::WriteBatch cleanup;  // not synced: losing it only means writing an entry again
  rocksdb::WriteBatch dead;     // synced: moves entries out of the pending log
  std::vector<FlushItem*> dying;
  for (FlushItem& item : items) {
    auto found = entries.find(item.entryKey);
    bool same = found != entries.end() && found->second.seq == item.entry.seq;
    if (!item.error) {
      ++report.written;
      if (same) {
        if (db) cleanup.Delete(db->queue, pendingPrefix + item.entryKey);
        remove(item.entryKey);
      } else if (found != entries.end()) {
        setAttempts(found->second, 0);  // a newer write is pending; the key itself is writable
      }
      if (deadKeys.erase(item.entryKey) > 0) obsoleteDead.insert(item.entryKey);  // older than the target's
      continue;
    }
    if (!same) continue;  // a newer write of the key replaced this one; it will be tried
    PendingEntry& entry = found->second;
    setAttempts(entry, entry.attempts + 1);
    if (entry.attempts < options.maxAttempts || !db) {
      ++report.failedAttempts;
      reschedule(item.entryKey, entry, now + backoffMs(entry.attempts));
      spdlog::debug("write-behind '{}': attempt {} for a key of map '{}' failed: {}", options.name,
                    entry.attempts, entry.map, item.error->toString());
      continue;
    }
    wblog::LogRecord record = recordOf(entry);
    record.deadAtMs = now;
    record.lastError = *item.error;
    dead.Delete(db->queue, pendingPrefix + item.entryKey);
    dead.Put(db->queue, deadPrefix + item.entryKey, wblog::encodeRecord(record));
    dying.push_back(&item);
  }
  if (!db) {  // written entries stay in the log and are written again after a restart
    spdlog::warn("write-behind '{}': cannot update its log: {}", options.name, db.error().toString());
    return db.error();
  }
  for (const std::string& entryKey : obsoleteDead) cleanup.Delete(db->queue, deadPrefix + entryKey);
  if (cleanup.Count() > 0) {
    auto cleaned = log.apply(*db, rocksdb::WriteOptions(), cleanup, "remove flushed write-behind records");
    if (cleaned) obsoleteDead.clear();
    if (!cleaned) {
      spdlog::warn("write-behind '{}': {} (the entries will be written again after a restart)", options.name,
                   cleaned.error().toString());
    }
  }
  if (dying.empty()) return {};
  auto moved = log.apply(*db, log.syncedWrite, dead, "dead-letter write-behind entries");
  for (FlushItem* item : dying) {
    PendingEntry& entry = entries.at(item->entryKey);
    if (!moved) {  // still pending: try again later rather than lose it
      reschedule(item->entryKey, entry, now + options.maxBackoffMs);
      continue;
    }
    spdlog::error("write-behind '{}': gave up on a key of map '{}' partition {} after {} attempts: {}",
                  options.name, entry.map, entry.partition, entry.attempts, item->error->toString());
    report.deadLettered.push_back({entry.map, entry.partition, entry.key, entry.attempts, *item->error});
    deadKeys.insert(item->entryKey);
    remove(item->entryKey);
  }
  if (!moved) return moved.error();
  return {};
}

StoreResult<void> WriteBehindQueue::State::flushKeys(const std::vector<std::string>& keys,
                                                     FlushReport& report) {
  for (size_t start = 0; start < keys.size(); start += options.batchSize) {
    std::vector<FlushItem> items;
    {
      std::lock_guard lock(mutex);
      size_t end = std::min(keys.size(), start + options.batchSize);
      for (size_t i = start; i < end; ++i) {
        auto found = entries.find(keys[i]);
        if (found != entries.end()) items.push_back({keys[i], found->second, std::nullopt});
      }
    }
    if (items.empty()) continue;
    auto flushed = flushBatch(items, report);
    if (!flushed) return flushed;
  }
  return {};
}

StoreResult<FlushReport> WriteBehindQueue::flushDue() {
  std::lock_guard flushing(state_->flushMutex);
  FlushReport report;
  auto flushed = state_->flushKeys(state_->dueKeys(state_->clock(), State::Pick::DUE), report);
  if (!flushed) return flushed.error();
  return report;
}

StoreResult<FlushReport> WriteBehindQueue::flushNow() {
  std::lock_guard flushing(state_->flushMutex);
  FlushReport report;
  auto flushed = state_->flushKeys(state_->dueKeys(state_->clock(), State::Pick::SKIP_DELAY), report);
  if (!flushed) return flushed.error();
  return report;
}

StoreResult<FlushReport> WriteBehindQueue::flush() {
  std::lock_guard flushing(state_->flushMutex);
  FlushReport report;
  while (true) {
    std::vector<std::string> keys = state_->dueKeys(state_->clock(), State::Pick::EVERYTHING);
    if (keys.empty()) return report;
    auto flushed = state_->flushKeys(keys, report);
    if (!flushed) return flushed.error();
    // What is left failed and waits out its backoff (real time: this call blocks anyway).
    if (int64_t wait = state_->minBackoffPendingMs(); wait > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
  }
}

}  // namespace shoal::persistence

// WriteBehindQueue: opening and crash recovery, durable enqueue with per-key coalescing, and the
// in-memory index. Flushing is in write_behind_flush.cpp, dead letters in
// write_behind_dead_letters.cpp.
#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "key_codec.h"
#include "write_behind_state.h"

namespace shoal::persistence {

namespace {

std::optional<StoreError> validate(const WriteBehindOptions& o) {
  auto bad = [](const std::string& field, const std::string& rule) {
    return StoreError{StoreErrorCode::INVALID_ARGUMENT, "WriteBehindOptions." + field + " " + rule};
  };
  if (o.name.empty() || o.name.size() > 255) return bad("name", "must be 1..255 bytes");
  if (o.delayMs < 0) return bad("delayMs", "must be >= 0");
  if (o.batchSize < 1) return bad("batchSize", "must be >= 1");
  if (o.maxAttempts < 1) return bad("maxAttempts", "must be >= 1");
  if (o.initialBackoffMs < 1) return bad("initialBackoffMs", "must be >= 1");
  if (o.maxBackoffMs < o.initialBackoffMs) return bad("maxBackoffMs", "must be >= initialBackoffMs");
  return std::nullopt;
}

int64_t wallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

WriteBehindQueue::State::State(RocksDbStore::Impl& log, MapStore& target, WriteBehindOptions options,
                               NowMs clock)
    : log(log),
      target(target),
      options(std::move(options)),
      clock(clock ? std::move(clock) : NowMs(wallClockMs)),
      pendingPrefix(wblog::kindPrefix(this->options.name, wblog::PENDING)),
      deadPrefix(wblog::kindPrefix(this->options.name, wblog::DEAD)) {}

WriteBehindQueue::State::~State() {
  std::lock_guard lock(log.queuesMutex);
  log.openQueues.erase(options.name);
}

StoreResult<void> WriteBehindQueue::State::recover() {
  auto db = log.access();
  if (!db) return db.error();
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(rocksdb::ReadOptions(), db->queue));
  for (it->Seek(pendingPrefix); it->Valid() && it->key().starts_with(pendingPrefix); it->Next()) {
    std::string entryKey = it->key().ToString().substr(pendingPrefix.size());
    auto key = codec::decodeStoreKey(entryKey);
    auto record = wblog::decodeRecord(it->value().ToStringView());
    if (!key || !record) {
      return StoreError{StoreErrorCode::CORRUPTION, "write-behind queue '" + options.name +
                                                        "' has an undecodable record in " + log.dbPath};
    }
    PendingEntry entry{record->seq,
                       key->partition,
                       std::string(key->map),
                       std::string(key->key),
                       std::nullopt,
                       record->meta,
                       record->firstEnqueuedMs,
                       0,
                       0};
    if (!record->erase) entry.value = std::move(record->value);
    entry.dueMs = entry.firstEnqueuedMs + options.delayMs;
    lastSeq = std::max(lastSeq, entry.seq);
    insert(entryKey, std::move(entry));
  }
  for (it->Seek(deadPrefix); it->Valid() && it->key().starts_with(deadPrefix); it->Next()) {
    deadKeys.insert(it->key().ToString().substr(deadPrefix.size()));
  }
  if (!it->status().ok()) return log.failure(it->status(), "recover write-behind queue " + options.name);
  if (!entries.empty() || !deadKeys.empty()) {
    spdlog::info("persistence: write-behind queue '{}' recovered {} pending writes, {} dead letters",
                 options.name, entries.size(), deadKeys.size());
  }
  return {};
}

void WriteBehindQueue::State::insert(const std::string& entryKey, PendingEntry entry) {
  remove(entryKey);  // keeps byDue and `retrying` in step with `entries`
  byDue.emplace(std::make_pair(entry.dueMs, entry.seq), entryKey);
  retrying += entry.attempts > 0;
  entries.emplace(entryKey, std::move(entry));
}

void WriteBehindQueue::State::remove(const std::string& entryKey) {
  auto found = entries.find(entryKey);
  if (found == entries.end()) return;
  byDue.erase({found->second.dueMs, found->second.seq});
  retrying -= found->second.attempts > 0;
  entries.erase(found);
}

void WriteBehindQueue::State::setAttempts(PendingEntry& entry, uint32_t attempts) {
  retrying += (attempts > 0 ? 1 : 0) - (entry.attempts > 0 ? 1 : 0);
  entry.attempts = attempts;
}

void WriteBehindQueue::State::reschedule(const std::string& entryKey, PendingEntry& entry, int64_t dueMs) {
  byDue.erase({entry.dueMs, entry.seq});
  entry.dueMs = dueMs;
  byDue.emplace(std::make_pair(entry.dueMs, entry.seq), entryKey);
}

wblog::LogRecord WriteBehindQueue::State::recordOf(const PendingEntry& entry) const {
  wblog::LogRecord record;
  record.erase = !entry.value.has_value();
  record.seq = entry.seq;
  record.firstEnqueuedMs = entry.firstEnqueuedMs;
  record.meta = entry.meta;
  record.attempts = entry.attempts;
  if (entry.value) record.value = *entry.value;
  return record;
}

StoreResult<std::vector<EnqueueOutcome>> WriteBehindQueue::State::enqueueMany(
    std::span<const StoreWrite> writes) {
  uint64_t bytes = 0;
  for (const StoreWrite& w : writes) {
    if (auto invalid = log.checkTarget(w.map, w.partition)) return *invalid;
    bytes += pendingPrefix.size() + 64 + w.map.size() + 2 * w.key.size() + (w.value ? w.value->size() : 0);
  }
  if (auto refused = log.admitWrite(bytes)) return *refused;
  std::lock_guard lock(mutex);
  auto db = log.access();
  if (!db) return db.error();
  const int64_t now = clock();
  std::vector<EnqueueOutcome> outcomes;
  std::unordered_map<std::string, PendingEntry> planned;  // this call's writes, latest per key
  rocksdb::WriteBatch batch;
  for (const StoreWrite& w : writes) {
    std::string entryKey = codec::storeKey(w.partition, w.map, w.key);
    const PendingEntry* current = nullptr;
    if (auto p = planned.find(entryKey); p != planned.end()) {
      current = &p->second;
    } else if (auto e = entries.find(entryKey); e != entries.end()) {
      current = &e->second;
    }
    // Versions restart after an erase, so only a store against a pending store can be stale.
    if (current != nullptr && current->value && w.value && w.meta.version < current->meta.version) {
      outcomes.push_back(EnqueueOutcome::STALE);
      continue;
    }
    PendingEntry next{++lastSeq,
                      w.partition,
                      std::string(w.map),
                      std::string(w.key),
                      std::nullopt,
                      w.meta,
                      current ? current->firstEnqueuedMs : now,
                      0,
                      current ? current->attempts : 0};
    if (w.value) next.value.emplace(*w.value);
    next.dueMs = current && current->attempts > 0 ? current->dueMs : next.firstEnqueuedMs + options.delayMs;
    rocksdb::Status status =
        batch.Put(db->queue, pendingPrefix + entryKey, wblog::encodeRecord(recordOf(next)));
    if (!status.ok()) return log.failure(status, "enqueue");
    outcomes.push_back(current ? EnqueueOutcome::COALESCED : EnqueueOutcome::QUEUED);
    planned.insert_or_assign(std::move(entryKey), std::move(next));
  }
  if (planned.empty()) return outcomes;
  auto logged = log.apply(*db, log.syncedWrite, batch, "enqueue to write-behind queue " + options.name);
  if (!logged) return logged.error();
  for (auto& [entryKey, entry] : planned) {
    remove(entryKey);
    insert(entryKey, std::move(entry));
  }
  return outcomes;
}

WriteBehindQueue::WriteBehindQueue(RocksDbStore& log, MapStore& target, WriteBehindOptions options,
                                   NowMs clock)
    : state_(std::make_unique<State>(*log.impl_, target, std::move(options), std::move(clock))) {}

WriteBehindQueue::~WriteBehindQueue() = default;

StoreResult<std::unique_ptr<WriteBehindQueue>> WriteBehindQueue::open(RocksDbStore& log, MapStore& target,
                                                                      const WriteBehindOptions& options,
                                                                      NowMs clock) {
  if (auto invalid = validate(options)) return *invalid;
  {
    std::lock_guard lock(log.impl_->queuesMutex);
    if (!log.impl_->openQueues.insert(options.name).second) {
      return StoreError{StoreErrorCode::INVALID_ARGUMENT,
                        "write-behind queue '" + options.name + "' is already open on this store"};
    }
  }
  // From here the State owns the registration (its destructor releases the name).
  std::unique_ptr<WriteBehindQueue> queue(new WriteBehindQueue(log, target, options, std::move(clock)));
  auto recovered = queue->state_->recover();
  if (!recovered) return recovered.error();
  return queue;
}

StoreResult<EnqueueOutcome> WriteBehindQueue::enqueue(const StoreWrite& write) {
  auto outcomes = state_->enqueueMany({&write, 1});
  if (!outcomes) return outcomes.error();
  return outcomes->front();
}

StoreResult<std::vector<EnqueueOutcome>> WriteBehindQueue::enqueueMany(std::span<const StoreWrite> writes) {
  return state_->enqueueMany(writes);
}

uint64_t WriteBehindQueue::pending() const {
  std::lock_guard lock(state_->mutex);
  return state_->entries.size();
}

uint64_t WriteBehindQueue::deadLetterCount() const {
  std::lock_guard lock(state_->mutex);
  return state_->deadKeys.size();
}

const WriteBehindOptions& WriteBehindQueue::options() const {
  return state_->options;
}

StoreResult<std::vector<std::string>> WriteBehindQueue::queueNames(RocksDbStore& log) {
  auto db = log.impl_->access();
  if (!db) return db.error();
  std::vector<std::string> names;
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(rocksdb::ReadOptions(), db->queue));
  // Log keys start with `length u8 | name`: one seek per queue, past all of its records.
  for (it->SeekToFirst(); it->Valid();) {
    std::string_view k = it->key().ToStringView();
    size_t length = static_cast<uint8_t>(k[0]);
    if (k.size() < 1 + length) {
      return StoreError{StoreErrorCode::CORRUPTION,
                        "undecodable write-behind log key in " + log.impl_->dbPath};
    }
    names.emplace_back(k.substr(1, length));
    std::string next(k.substr(0, 1 + length));
    next.push_back('\xff');
    it->Seek(next);
  }
  if (!it->status().ok()) return log.impl_->failure(it->status(), "list write-behind queues");
  std::sort(names.begin(), names.end());  // the log orders them by length first
  return names;
}

}  // namespace shoal::persistence

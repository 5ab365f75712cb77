// WriteBehindQueue: opening and crash recovery, durable enqueue with per-key coalescing, and the
// in-memory index. Flushing is in write_behind_flush.cpp, dead letters in
// write_behind_dead_letters.cpp.
#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <tuple>

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

WriteBehindQueue::State::State(RocksDbStore::Impl& log, MapStore& target, bool targetIsLog,
                               WriteBehindOptions options, NowMs clock)
    : log(log),
      target(target),
      targetIsLog(targetIsLog),
      options(std::move(options)),
      clock(clock ? std::move(clock) : NowMs(wallClockMs)),
      pendingPrefix(wblog::kindPrefix(this->options.name, wblog::PENDING)),
      deadPrefix(wblog::kindPrefix(this->options.name, wblog::DEAD)) {
  enqueueWrite.sync = this->options.sync;
}

WriteBehindQueue::State::~State() {
  std::lock_guard lock(log.queuesMutex);
  log.openQueues.erase(options.name);
}

std::shared_ptr<const std::string> pendingRecord(const wblog::LogRecord& header,
                                                 std::optional<std::string_view> value,
                                                 uint32_t& valueOffset) {
  valueOffset = static_cast<uint32_t>(wblog::valueOffset(header));
  return std::make_shared<const std::string>(wblog::encodeRecord(header, value.value_or(std::string_view())));
}

std::string WriteBehindQueue::State::logKeyOf(uint32_t partition, std::string_view map,
                                              std::string_view key) const {
  std::string out;
  out.reserve(pendingPrefix.size() + 4 + map.size() + key.size());
  out.append(pendingPrefix);
  codec::putU16(out, static_cast<uint16_t>(partition));
  codec::putU16(out, static_cast<uint16_t>(map.size()));
  out.append(map);
  out.append(key);
  return out;
}

StoreResult<void> WriteBehindQueue::State::recover() {
  std::lock_guard order(logMutex);
  std::lock_guard lock(mutex);
  auto db = log.access();
  if (!db) return db.error();
  std::vector<std::pair<std::string, PendingEntry>> loaded;
  std::unique_ptr<rocksdb::Iterator> it(db->db->NewIterator(rocksdb::ReadOptions(), db->queue));
  for (it->Seek(pendingPrefix); it->Valid() && it->key().starts_with(pendingPrefix); it->Next()) {
    std::string logKey = it->key().ToString();
    auto key = codec::decodeStoreKey(std::string_view(logKey).substr(pendingPrefix.size()));
    auto record = wblog::decodeRecord(it->value().ToStringView());
    if (!key || !record) {
      return StoreError{StoreErrorCode::CORRUPTION, "write-behind queue '" + options.name +
                                                        "' has an undecodable record in " + log.dbPath};
    }
    PendingEntry entry;
    entry.seq = record->seq;
    entry.erase = record->erase;
    entry.meta = record->meta;
    entry.firstEnqueuedMs = record->firstEnqueuedMs;
    entry.dueMs = entry.firstEnqueuedMs + options.delayMs;
    entry.valueOffset = static_cast<uint32_t>(wblog::valueOffset(*record));
    entry.record = std::make_shared<const std::string>(it->value().ToString());
    lastSeq = std::max(lastSeq, entry.seq);
    loaded.emplace_back(std::move(logKey), std::move(entry));
  }
  for (it->Seek(deadPrefix); it->Valid() && it->key().starts_with(deadPrefix); it->Next()) {
    deadKeys.insert(it->key().ToString().substr(deadPrefix.size()));
  }
  if (!it->status().ok()) return log.failure(it->status(), "recover write-behind queue " + options.name);
  // In enqueue order, so that they fill the fifo in due order.
  std::sort(loaded.begin(), loaded.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.dueMs, a.second.seq) < std::tie(b.second.dueMs, b.second.seq);
  });
  for (auto& [logKey, entry] : loaded) insert(std::move(logKey), std::move(entry));
  if (visible > 0 || !deadKeys.empty()) {
    spdlog::info("persistence: write-behind queue '{}' recovered {} pending writes, {} dead letters",
                 options.name, visible.load(), deadKeys.size());
  }
  return {};
}

EntryNode& WriteBehindQueue::State::insert(std::string logKey, PendingEntry entry) {
  if (auto found = entries.find(logKey); found != entries.end()) remove(*found);
  EntryNode& node = *entries.try_emplace(std::move(logKey)).first;
  node.second = std::move(entry);
  node.second.slot = NO_SLOT;
  ++visible;
  retrying += node.second.attempts > 0;
  place(node);
  return node;
}

void WriteBehindQueue::State::remove(EntryNode& node) {
  if (node.second.record) {
    unplace(node);
    --visible;
    retrying -= node.second.attempts > 0;
  }
  entries.erase(entries.find(node.first));
}

void WriteBehindQueue::State::place(EntryNode& node) {
  PendingEntry& e = node.second;
  if (e.attempts == 0 && e.dueMs >= fifoLastDueMs) {
    e.slot = fifoBase + fifo.size();
    fifo.push_back({e.dueMs, &node});
    fifoLastDueMs = e.dueMs;
  } else {
    e.slot = NO_SLOT;
    scheduled.emplace(e.dueMs, &node);
  }
}

void WriteBehindQueue::State::unplace(EntryNode& node) {
  PendingEntry& e = node.second;
  if (e.slot == NO_SLOT) {
    scheduled.erase({e.dueMs, &node});
    return;
  }
  fifo[e.slot - fifoBase].node = nullptr;
  e.slot = NO_SLOT;
  while (!fifo.empty() && fifo.front().node == nullptr) {
    fifo.pop_front();
    ++fifoBase;
  }
  if (fifo.empty()) fifoLastDueMs = std::numeric_limits<int64_t>::min();
}

void WriteBehindQueue::State::setAttempts(PendingEntry& entry, uint32_t attempts) {
  retrying += (attempts > 0 ? 1 : 0) - (entry.attempts > 0 ? 1 : 0);
  entry.attempts = attempts;
}

void WriteBehindQueue::State::reschedule(EntryNode& node, int64_t dueMs) {
  unplace(node);
  node.second.dueMs = dueMs;
  place(node);
}

std::string WriteBehindQueue::State::deadRecordOf(const PendingEntry& entry, int64_t deadAtMs,
                                                  const StoreError& error) const {
  wblog::LogRecord record;
  record.erase = entry.erase;
  record.seq = entry.seq;
  record.firstEnqueuedMs = entry.firstEnqueuedMs;
  record.meta = entry.meta;
  record.attempts = entry.attempts;
  record.deadAtMs = deadAtMs;
  record.lastError = error;
  return wblog::encodeRecord(record, entry.value().value_or(std::string_view()));
}

std::vector<EntryNode*> WriteBehindQueue::State::ordered() const {
  std::vector<EntryNode*> out;
  out.reserve(visible);
  auto s = scheduled.begin();
  for (const Slot& slot : fifo) {
    if (slot.node == nullptr) continue;
    for (; s != scheduled.end() && s->first < slot.dueMs; ++s) out.push_back(s->second);
    out.push_back(slot.node);
  }
  for (; s != scheduled.end(); ++s) out.push_back(s->second);
  return out;
}

StoreResult<std::vector<EnqueueOutcome>> WriteBehindQueue::State::enqueueMany(
    std::span<const StoreWrite> writes) {
  uint64_t bytes = 0;
  for (const StoreWrite& w : writes) {
    if (auto invalid = log.checkTarget(w.map, w.partition)) return *invalid;
    bytes += pendingPrefix.size() + 64 + w.map.size() + 2 * w.key.size() + (w.value ? w.value->size() : 0);
  }
  if (auto refused = log.admitWrite(bytes)) return *refused;
  std::lock_guard order(logMutex);  // this call is the only writer of state until it returns
  auto db = log.access();
  if (!db) return db.error();
  const int64_t now = clock();

  // 1. Find or add (invisible) the node of every key: the only step that changes the table.
  std::vector<EntryNode*> nodes;
  std::vector<EntryNode*> added;  // nodes step 1 added, once each
  nodes.reserve(writes.size());
  auto forgetInvisible = [this, &added]() {  // callers hold `mutex`
    for (EntryNode* node : added) {
      if (!node->second.record) entries.erase(entries.find(node->first));
    }
    added.clear();
  };
  {
    std::unique_lock lock(mutex);
    for (size_t i = 0; i < writes.size(); ++i) {
      const StoreWrite& w = writes[i];
      auto [it, inserted] = entries.try_emplace(logKeyOf(w.partition, w.map, w.key));
      if (it->second.flushing) {  // its record is being removed: log this write after that
        forgetInvisible();
        nodes.clear();
        const uint64_t seen = flushesWritten;  // the node may be gone when the flush is done
        flushWritten.wait(lock, [&] { return flushesWritten != seen; });
        i = static_cast<size_t>(-1);  // look them all up again: the flush removed its nodes
        continue;
      }
      nodes.push_back(&*it);
      if (inserted) added.push_back(&*it);
    }
  }

  // 2. Decide and encode, without `mutex`: readers see the entries as they were until step 4.
  struct Staged {
    EntryNode* node;
    PendingEntry next;
  };
  std::vector<Staged> staged;
  staged.reserve(writes.size());
  std::vector<EnqueueOutcome> outcomes;
  outcomes.reserve(writes.size());
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < writes.size(); ++i) {
    const StoreWrite& w = writes[i];
    EntryNode& node = *nodes[i];
    const PendingEntry* current = nullptr;  // the latest write of the key, logged or in this call
    if (node.second.staged > 0) {
      current = &staged[node.second.staged - 1].next;
    } else if (node.second.record) {
      current = &node.second;
    }
    // Versions restart after an erase, so only a store against a pending store can be stale.
    if (current != nullptr && !current->erase && w.value && w.meta.version < current->meta.version) {
      outcomes.push_back(EnqueueOutcome::STALE);
      continue;
    }
    PendingEntry next;
    next.seq = ++lastSeq;
    next.erase = !w.value;
    next.meta = w.meta;
    next.firstEnqueuedMs = current ? current->firstEnqueuedMs : now;
    next.attempts = current ? current->attempts : 0;
    next.dueMs = current && current->attempts > 0 ? current->dueMs : next.firstEnqueuedMs + options.delayMs;
    wblog::LogRecord header;
    header.erase = next.erase;
    header.seq = next.seq;
    header.firstEnqueuedMs = next.firstEnqueuedMs;
    header.meta = next.meta;
    header.attempts = next.attempts;
    next.record = pendingRecord(header, w.value, next.valueOffset);
    rocksdb::Status status = batch.Put(db->queue, node.first, *next.record);
    if (!status.ok()) {
      // Undo step 1 and the staging (nothing was logged).
      for (auto& s : staged) s.node->second.staged = 0;
      std::lock_guard lock(mutex);
      forgetInvisible();
      return log.failure(status, "enqueue");
    }
    outcomes.push_back(current ? EnqueueOutcome::COALESCED : EnqueueOutcome::QUEUED);
    staged.push_back({&node, std::move(next)});
    node.second.staged = staged.size();
  }

  // 3. Log them.
  StoreResult<void> logged;
  if (!staged.empty()) {
    logged = log.apply(*db, enqueueWrite, batch, "enqueue to write-behind queue " + options.name);
  }

  // 4. Make them visible (or forget them), the latest write of each key.
  std::lock_guard lock(mutex);
  for (size_t i = 0; i < staged.size(); ++i) {
    EntryNode& node = *staged[i].node;
    PendingEntry& entry = node.second;
    if (entry.staged != i + 1) continue;  // a later write of the key in this call replaces it
    entry.staged = 0;
    if (!logged) continue;
    PendingEntry& next = staged[i].next;
    if (!entry.record) {  // a new key
      next.slot = NO_SLOT;
      entry = std::move(next);
      ++visible;
      retrying += entry.attempts > 0;
      place(node);
      continue;
    }
    bool moves = next.dueMs != entry.dueMs;
    if (moves) unplace(node);
    setAttempts(entry, next.attempts);
    entry.seq = next.seq;
    entry.record = std::move(next.record);
    entry.valueOffset = next.valueOffset;
    entry.erase = next.erase;
    entry.meta = next.meta;
    entry.firstEnqueuedMs = next.firstEnqueuedMs;
    entry.dueMs = next.dueMs;
    if (moves) place(node);
  }
  forgetInvisible();  // keys that stayed invisible: stale, or the log failed
  if (!logged) return logged.error();
  return outcomes;
}

WriteBehindQueue::WriteBehindQueue(RocksDbStore& log, MapStore& target, WriteBehindOptions options,
                                   NowMs clock)
    : state_(std::make_unique<State>(*log.impl_, target, static_cast<MapStore*>(&log) == &target,
                                     std::move(options), std::move(clock))) {}

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
  // Changed under the mutex; read without it (the member checks it on every write).
  return state_->visible.load(std::memory_order_relaxed);
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

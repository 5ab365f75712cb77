// The member's write-behind queues; see write_behind_maps.h.
#include "write_behind_maps.h"

#include <algorithm>

#include "member_log.h"

namespace shoal::node {
namespace {
constexpr const char* PROBE_MAP = "__shoal.probe";
}  // namespace

persistence::WriteBehindOptions writeBehindOptionsFor(const NodeOptions& options, const std::string& name) {
  auto it = options.maps.find(name);
  const MapOptions& m = it == options.maps.end() ? options.defaultMap : it->second;
  persistence::WriteBehindOptions o;
  o.name = name;
  if (m.persistence == MapPersistenceMode::WRITE_BEHIND) {
    o.delayMs = m.writeDelayMs;
    o.batchSize = m.writeBatchSize;
    o.maxAttempts = m.writeMaxAttempts;
    o.initialBackoffMs = m.writeRetryBackoffMs;
    o.maxBackoffMs = m.writeMaxRetryBackoffMs;
    o.sync = m.writeBehindSync;
  }
  return o;
}

WriteBehindMaps::WriteBehindMaps(persistence::RocksDbStore& log, persistence::MapStore& target,
                                 const NodeOptions& options)
    : log_(log), target_(target), options_(options) {}

WriteBehindMaps::~WriteBehindMaps() = default;

persistence::StoreResult<std::vector<std::string>> WriteBehindMaps::openExisting() {
  auto names = persistence::WriteBehindQueue::queueNames(log_);
  if (!names) return names.error();
  for (const std::string& name : *names) {
    auto queue = queueFor(name);
    if (!queue) return queue.error();
  }
  return names;
}

persistence::StoreResult<persistence::WriteBehindQueue*> WriteBehindMaps::queueFor(const std::string& map) {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(map);
  if (it != queues_.end()) return it->second.get();
  auto opened = persistence::WriteBehindQueue::open(log_, target_, writeBehindOptionsFor(options_, map));
  if (!opened) return opened.error();
  auto* queue = opened->get();
  queues_.emplace(map, std::move(*opened));
  return queue;
}

persistence::WriteBehindQueue* WriteBehindMaps::find(const std::string& map) const {
  std::lock_guard lock(mutex_);
  auto it = queues_.find(map);
  return it == queues_.end() ? nullptr : it->second.get();
}

std::vector<persistence::WriteBehindQueue*> WriteBehindMaps::all() const {
  std::lock_guard lock(mutex_);
  std::vector<persistence::WriteBehindQueue*> out;
  for (auto& [_, q] : queues_) out.push_back(q.get());
  return out;
}

persistence::StoreResult<void> WriteBehindMaps::enqueue(std::span<const persistence::StoreWrite> writes) {
  if (writes.empty()) return {};
  bool oneMap = std::all_of(writes.begin(), writes.end(),
                            [&](const persistence::StoreWrite& w) { return w.map == writes.front().map; });
  if (oneMap) {  // the common case: no regrouping, no copies
    auto queue = queueFor(std::string(writes.front().map));
    if (!queue) return queue.error();
    auto queued = (*queue)->enqueueMany(writes);
    if (!queued) return queued.error();
    return {};
  }
  // Queues are independent: only the order within one map matters, and it is kept.
  std::map<std::string_view, std::vector<persistence::StoreWrite>> byMap;
  for (const auto& w : writes) byMap[w.map].push_back(w);
  for (auto& [map, mapWrites] : byMap) {
    auto queue = queueFor(std::string(map));
    if (!queue) return queue.error();
    auto queued = (*queue)->enqueueMany(mapWrites);
    if (!queued) return queued.error();
  }
  return {};
}

persistence::StoreResult<void> WriteBehindMaps::discardPartition(uint32_t partition) {
  for (auto* queue : all()) {
    auto discarded = queue->discardPartition(partition);
    if (!discarded) return discarded.error();
  }
  return {};
}

void WriteBehindMaps::flushDue(const std::set<std::string>& skip) {
  for (auto* queue : all()) {
    if (skip.contains(queue->options().name)) continue;
    auto flushed = queue->flushDue();
    if (!flushed) {
      memberLog().warn("write-behind map '{}': cannot update its queue: {}", queue->options().name,
                       flushed.error().toString());
    }
  }
}

uint64_t WriteBehindMaps::flushNow() {
  uint64_t pending = 0;
  for (auto* queue : all()) {
    auto flushed = queue->flushNow();
    if (!flushed) {
      memberLog().warn("write-behind map '{}': cannot update its queue: {}", queue->options().name,
                       flushed.error().toString());
    }
    pending += queue->pending();
  }
  return pending;
}

persistence::StoreResult<void> WriteBehindMaps::probeLog() {
  auto stored = log_.store(PROBE_MAP, 0, "probe", "ok", persistence::StoredMeta{});
  if (!stored) return stored;
  return log_.erase(PROBE_MAP, 0, "probe");
}

}  // namespace shoal::node

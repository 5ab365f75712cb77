// Write-through group commits, write-behind enqueues, restart recovery and the failing-store
// guards; see map_persistence.h.
#include "map_persistence.h"

#include <kj/debug.h>

#include <boost/asio/post.hpp>
#include <cstdlib>

#include "member_log.h"
#include "pool_call.h"
#include "shoal/error.h"

namespace shoal::node {
namespace {

constexpr int64_t PROBE_INTERVAL_MS = 1000;  // how often a failing store is retried
constexpr const char* PROBE_MAP = "__shoal.probe";
// One entry per partition the member holds a complete copy of: key COPY_KEY, meta.version = the
// view version. It lives in the partition's own key range, so dropping the partition drops it
// in the same range delete.
constexpr const char* COPY_MAP = "__shoal.copy";
constexpr const char* COPY_KEY = "copy";

kj::Exception storeFailure(const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:store-failed: ", message.c_str()));
}

persistence::StoreWrite storeWriteOf(const std::string& map, uint32_t partition, const std::string& key,
                                     const std::optional<std::string>& value,
                                     const persistence::StoredMeta& meta) {
  return persistence::StoreWrite{map, partition, key,
                                 value ? std::optional<std::string_view>(*value) : std::nullopt, meta};
}

}  // namespace

class MapPersistence::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().error("persistence task failed: {}", e.getDescription().cStr());
  }
};

MapPersistence::MapPersistence(persistence::MapStore& store, WriteBehindMaps* behind,
                               boost::asio::thread_pool& pool, kj::Timer& timer, bool ownStore)
    : store_(store),
      behind_(behind),
      ownStore_(ownStore),
      pool_(pool),
      timer_(timer),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {}

MapPersistence::~MapPersistence() = default;

void MapPersistence::attach(MapRecords& records, bool behind) {
  KJ_REQUIRE(!behind || behind_ != nullptr, "a write-behind map needs the member's write-behind queues");
  records.setChangeSink([this, map = records.name(), behind](const RecordChange& c) {
    OwnedWrite w{map, c.partition, std::string(c.key), std::nullopt, {}, behind};
    if (c.kind == RecordChange::Kind::STORE) {
      w.value = std::string(c.value);
      w.meta.version = c.version;
      w.meta.expirationTimeMs = c.expirationTimeMs;
    }
    pending_.push_back(std::move(w));
  });
}

namespace {

// Puts one loaded entry into memory, with the TTL it has left.
void restoreEntry(MapRecords& records, uint32_t partition, std::string_view key, std::string_view value,
                  const persistence::StoredMeta& meta) {
  int64_t ttl = 0;
  if (meta.expirationTimeMs > 0) ttl = std::max<int64_t>(1, meta.expirationTimeMs - SystemClock().nowMs());
  records.restore(partition, key, value, meta.version, meta.expirationTimeMs, ttl, -1);
}

}  // namespace

uint64_t MapPersistence::queuedWrites(const std::string& map) const {
  if (behind_ == nullptr) return 0;
  auto it = openQueues_.find(map);
  if (it == openQueues_.end()) {
    auto* queue = behind_->find(map);  // takes WriteBehindMaps' lock: once per map, not per write
    if (queue == nullptr) return 0;
    it = openQueues_.emplace(map, queue).first;  // queues stay open while the member runs
  }
  return it->second->pending();
}

void MapPersistence::dropPartition(uint32_t p) {
  if (!ownStore_) return;
  OwnedWrite w{{}, p, {}, std::nullopt, {}, false};
  w.dropsPartition = true;
  pending_.push_back(std::move(w));
}

void MapPersistence::recordCopies(uint32_t members,
                                  const std::vector<std::pair<uint32_t, uint64_t>>& copies) {
  if (!ownStore_) return;
  for (auto& [p, version] : copies) {
    OwnedWrite w{COPY_MAP, p, COPY_KEY, std::to_string(members), {}, false};
    w.meta.version = version;
    pending_.push_back(std::move(w));
  }
}

MapPersistence::Restored MapPersistence::restoreAll(
    uint32_t partitionCount, const std::function<MapRecords*(const std::string&)>& recordsOf,
    const std::function<bool(const std::string&)>& isWriteBehind) {
  Restored restored;
  uint64_t newestCopy = 0;
  std::string lastMap;
  MapRecords* records = nullptr;
  for (uint32_t p = 0; p < partitionCount; ++p) {
    auto r = store_.forEach(p, [&](const persistence::StoredEntryView& e) {
      if (e.map == COPY_MAP) {
        restored.copies[p] = e.meta.version;
        if (e.meta.version >= newestCopy) {
          newestCopy = e.meta.version;
          restored.lastMembers =
              static_cast<uint32_t>(std::strtoul(std::string(e.value).c_str(), nullptr, 10));
        }
        return true;
      }
      if (e.map != lastMap) {
        lastMap = std::string(e.map);
        records = lastMap == PROBE_MAP ? nullptr : recordsOf(lastMap);
      }
      if (records) {
        restoreEntry(*records, p, e.key, e.value, e.meta);
        restored.copies.try_emplace(p, 0);
        ++restored.entries;
      }
      return true;
    });
    if (!r) {
      throw Error(ErrorCode::UNAVAILABLE, "cannot read partition " + std::to_string(p) +
                                              " from the data directory: " + r.error().toString());
    }
  }
  if (behind_ != nullptr) restored.entries += restoreQueued(recordsOf, isWriteBehind, restored.copies);
  // Restoring is not a change: nothing captured while loading needs writing back.
  pending_.clear();
  return restored;
}

uint64_t MapPersistence::restoreQueued(const std::function<MapRecords*(const std::string&)>& recordsOf,
                                       const std::function<bool(const std::string&)>& isWriteBehind,
                                       std::map<uint32_t, uint64_t>& copies) {
  auto names = behind_->openExisting();
  if (!names) {
    throw Error(ErrorCode::UNAVAILABLE,
                "cannot open the write-behind queues in the data directory: " + names.error().toString());
  }
  uint64_t applied = 0;
  for (const std::string& name : *names) {
    auto* queue = behind_->find(name);
    if (!isWriteBehind(name)) {
      // Its writes must reach the store before this map is written through (or not at all), or
      // a late queued write would overwrite a newer one.
      memberLog().warn("map '{}' is no longer write-behind: writing its {} queued writes to the store first",
                       name, queue->pending());
      auto flushed = queue->flush();
      if (!flushed) {
        throw Error(ErrorCode::UNAVAILABLE, "cannot flush the write-behind queue of map '" + name +
                                                "': " + flushed.error().toString());
      }
      for (auto& failed : flushed->deadLettered) {
        memberLog().error("map '{}': a queued write could not be stored ({}); it is a dead letter", name,
                          failed.error.toString());
      }
      continue;
    }
    MapRecords* records = recordsOf(name);
    if (records == nullptr) continue;
    uint64_t mapApplied = 0;
    for (const auto& w : queue->pendingWrites()) {
      copies.try_emplace(w.partition, 0);
      if (w.value) {
        restoreEntry(*records, w.partition, w.key, *w.value, w.meta);
      } else {
        records->remove(w.partition, w.key, nullptr);
      }
      ++mapApplied;
    }
    applied += mapApplied;
    if (mapApplied > 0) {
      memberLog().info("map '{}': re-applied {} queued write-behind writes", name, mapApplied);
    }
  }
  return applied;
}

kj::Promise<void> MapPersistence::commit() {
  if (pending_.empty()) return kj::READY_NOW;
  if (next_.writes.empty()) {
    next_.writes.swap(pending_);
  } else {
    for (auto& w : pending_) next_.writes.push_back(std::move(w));
  }
  pending_.clear();
  auto paf = kj::newPromiseAndFulfiller<void>();
  next_.waiters.push_back(kj::mv(paf.fulfiller));
  if (!flushing_) startFlush();
  return kj::mv(paf.promise);
}

void MapPersistence::startFlush() {
  flushing_ = true;
  auto group = std::make_shared<Group>(std::move(next_));
  next_ = Group{};
  auto& store = store_;
  auto* behind = behind_;
  auto done = onPool<Outcome>(pool_, [&store, behind, group]() {
    // In capture order: the writes before a partition drop are written (and dropped with it),
    // those after it (a copy filling the partition again) stay.
    std::vector<persistence::StoreWrite> through, queued;
    Outcome outcome;
    auto writeCaptured = [&]() {
      if (!through.empty() && !outcome.store) {
        auto r = store.storeMany(through);
        if (!r) outcome.store = r.error();
      }
      if (!queued.empty() && !outcome.queue) {
        auto r = behind->enqueue(queued);
        if (!r) outcome.queue = r.error();
      }
      through.clear();
      queued.clear();
    };
    for (auto& w : group->writes) {
      if (!w.dropsPartition) {
        (w.behind ? queued : through).push_back(storeWriteOf(w.map, w.partition, w.key, w.value, w.meta));
        continue;
      }
      writeCaptured();
      if (outcome.store || outcome.queue) continue;  // the failure is reported; a drop waits for it
      if (behind != nullptr) {
        auto r = behind->discardPartition(w.partition);
        if (!r) outcome.queue = r.error();
      }
      auto r = store.dropPartition(w.partition);
      if (!r) outcome.store = r.error();
    }
    writeCaptured();
    return outcome;
  });
  tasks_->add(done.then([this, group](Outcome outcome) {
    finishFlush(*group, outcome);
    flushing_ = false;
    if (!next_.waiters.empty()) startFlush();
  }));
}

void MapPersistence::finishFlush(Group& group, const Outcome& outcome) {
  if (!outcome.store && !outcome.queue) {
    for (auto& w : group.waiters) w->fulfill();
    return;
  }
  std::string message;
  if (outcome.store) {
    message = outcome.store->toString();
    if (!failure_) memberLog().error("write-through store failed: {}", message);
    failure_ = message;
    startProbe(false);
  }
  if (outcome.queue) {
    auto text = "write-behind queue: " + outcome.queue->toString();
    if (!queueFailure_) memberLog().error("{}", text);
    queueFailure_ = text;
    message += (message.empty() ? "" : "; ") + text;
    startProbe(true);
  }
  message += " (" + std::to_string(group.writes.size()) +
             " changes not made durable; writes to such persistent maps are refused until it works again)";
  for (auto& w : group.waiters) w->reject(storeFailure(message));
}

void MapPersistence::startProbe(bool behind) {
  bool& probing = behind ? probingQueue_ : probing_;
  if (probing) return;
  probing = true;
  tasks_->add(probeLoop(behind));
}

kj::Promise<std::optional<persistence::StoredValue>> MapPersistence::load(const std::string& map,
                                                                          uint32_t partition,
                                                                          const std::string& key,
                                                                          bool behind) {
  using Outcome = persistence::StoreResult<std::optional<persistence::StoredValue>>;
  auto& store = store_;
  auto* queues = behind ? behind_ : nullptr;
  auto loaded = onPool<Outcome>(pool_, [&store, queues, map, partition, key]() -> Outcome {
    // The queue first: a write leaves it only after the store has it, so no newer write is missed.
    if (auto* queue = queues ? queues->find(map) : nullptr) {
      auto pending = queue->pendingWrite(map, partition, key);
      if (!pending) return pending.error();
      if (*pending) {
        if (!(*pending)->value) return std::optional<persistence::StoredValue>();
        return std::optional<persistence::StoredValue>(
            persistence::StoredValue{*(*pending)->value, (*pending)->meta});
      }
    }
    return store.load(map, partition, key);
  });
  return loaded.then([](Outcome r) -> kj::Promise<std::optional<persistence::StoredValue>> {
    if (!r) return storeFailure("read-through: " + r.error().toString());
    return std::move(r).value();
  });
}

kj::Promise<void> MapPersistence::probeLoop(bool behind) {
  return timer_.afterDelay(PROBE_INTERVAL_MS * kj::MILLISECONDS).then([this, behind]() {
    using Outcome = std::optional<persistence::StoreError>;
    auto& store = store_;
    auto* queues = behind_;
    auto probed = onPool<Outcome>(pool_, [&store, queues, behind]() {
      persistence::StoreResult<void> r;
      if (behind) {
        r = queues->probeLog();
      } else {
        r = store.store(PROBE_MAP, 0, "probe", "ok", persistence::StoredMeta{});
        if (r) r = store.erase(PROBE_MAP, 0, "probe");
      }
      return r ? Outcome() : Outcome(r.error());
    });
    return probed.then([this, behind](Outcome error) -> kj::Promise<void> {
      if (error) return probeLoop(behind);
      if (behind) {
        memberLog().warn("write-behind queue works again; writes to write-behind maps are accepted");
        queueFailure_.reset();
        probingQueue_ = false;
      } else {
        memberLog().warn("write-through store works again; writes to persistent maps are accepted");
        failure_.reset();
        probing_ = false;
      }
      return kj::READY_NOW;
    });
  });
}

}  // namespace shoal::node

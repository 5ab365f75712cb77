// Write-through group commits, restart recovery and the failing-store guard; see map_persistence.h.
#include "map_persistence.h"

#include <boost/asio/post.hpp>

#include "member_log.h"
#include "shoal/error.h"

namespace shoal::node {
namespace {

constexpr int64_t PROBE_INTERVAL_MS = 1000;  // how often a failing store is retried
constexpr const char* PROBE_MAP = "__shoal.probe";

kj::Exception storeFailure(const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:store-failed: ", message.c_str()));
}

}  // namespace

class MapPersistence::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().error("persistence task failed: {}", e.getDescription().cStr());
  }
};

MapPersistence::MapPersistence(persistence::MapStore& store, boost::asio::thread_pool& pool, kj::Timer& timer)
    : store_(store),
      pool_(pool),
      timer_(timer),
      taskErrors_(std::make_unique<TaskErrors>()),
      tasks_(std::make_unique<kj::TaskSet>(*taskErrors_)) {}

MapPersistence::~MapPersistence() = default;

void MapPersistence::attach(MapRecords& records) {
  records.setChangeSink([this, map = records.name()](const RecordChange& c) {
    OwnedWrite w{map, c.partition, std::string(c.key), std::nullopt, {}};
    if (c.kind == RecordChange::Kind::STORE) {
      w.value = std::string(c.value);
      w.meta.version = c.version;
      w.meta.expirationTimeMs = c.expirationTimeMs;
    }
    pending_.push_back(std::move(w));
  });
}

uint64_t MapPersistence::restoreAll(uint32_t partitionCount,
                                    const std::function<MapRecords*(const std::string&)>& recordsOf) {
  uint64_t restored = 0;
  std::string lastMap;
  MapRecords* records = nullptr;
  for (uint32_t p = 0; p < partitionCount; ++p) {
    auto r = store_.forEach(p, [&](const persistence::StoredEntryView& e) {
      if (e.map != lastMap) {
        lastMap = std::string(e.map);
        records = lastMap == PROBE_MAP ? nullptr : recordsOf(lastMap);
      }
      if (records) {
        int64_t ttl = 0;
        if (e.meta.expirationTimeMs > 0) {
          ttl = std::max<int64_t>(1, e.meta.expirationTimeMs - SystemClock().nowMs());
        }
        restored += records->restore(p, e.key, e.value, e.meta.version, e.meta.expirationTimeMs, ttl, -1);
      }
      return true;
    });
    if (!r) {
      throw Error(ErrorCode::UNAVAILABLE, "cannot read partition " + std::to_string(p) +
                                              " from the data directory: " + r.error().toString());
    }
  }
  // Restoring is not a change: nothing captured while loading needs writing back.
  pending_.clear();
  return restored;
}

kj::Promise<void> MapPersistence::commit() {
  if (pending_.empty()) return kj::READY_NOW;
  for (auto& w : pending_) next_.writes.push_back(std::move(w));
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
  using Outcome = std::optional<persistence::StoreError>;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Outcome>>>(kj::mv(paf.fulfiller));
  auto& store = store_;
  boost::asio::post(pool_, [&store, group, fulfiller]() {
    std::vector<persistence::StoreWrite> batch;
    batch.reserve(group->writes.size());
    for (auto& w : group->writes) {
      batch.push_back(persistence::StoreWrite{
          w.map, w.partition, w.key, w.value ? std::optional<std::string_view>(*w.value) : std::nullopt,
          w.meta});
    }
    auto r = store.storeMany(batch);
    (*fulfiller)->fulfill(r ? Outcome() : Outcome(r.error()));
  });
  tasks_->add(paf.promise.then([this, group](Outcome error) {
    if (error) {
      auto message =
          error->toString() + " (" + std::to_string(group->writes.size()) +
          " changes not stored; writes to persistent maps are refused until the store works again)";
      if (!failure_) memberLog().error("write-through store failed: {}", message);
      failure_ = error->toString();
      if (!probing_) {
        probing_ = true;
        tasks_->add(probeLoop());
      }
      for (auto& w : group->waiters) w->reject(storeFailure(message));
    } else {
      for (auto& w : group->waiters) w->fulfill();
    }
    flushing_ = false;
    if (!next_.waiters.empty()) startFlush();
  }));
}

kj::Promise<std::optional<persistence::StoredValue>> MapPersistence::load(const std::string& map,
                                                                          uint32_t partition,
                                                                          const std::string& key) {
  using Outcome = persistence::StoreResult<std::optional<persistence::StoredValue>>;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Outcome>>>(kj::mv(paf.fulfiller));
  auto& store = store_;
  boost::asio::post(pool_, [&store, map, partition, key, fulfiller]() {
    (*fulfiller)->fulfill(store.load(map, partition, key));
  });
  return paf.promise.then([](Outcome r) -> kj::Promise<std::optional<persistence::StoredValue>> {
    if (!r) return storeFailure("read-through: " + r.error().toString());
    return std::move(r).value();
  });
}

kj::Promise<void> MapPersistence::probeLoop() {
  return timer_.afterDelay(PROBE_INTERVAL_MS * kj::MILLISECONDS).then([this]() -> kj::Promise<void> {
    using Outcome = std::optional<persistence::StoreError>;
    auto paf = kj::newPromiseAndCrossThreadFulfiller<Outcome>();
    auto fulfiller =
        std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Outcome>>>(kj::mv(paf.fulfiller));
    auto& store = store_;
    boost::asio::post(pool_, [&store, fulfiller]() {
      auto r = store.store(PROBE_MAP, 0, "probe", "ok", persistence::StoredMeta{});
      if (r) r = store.erase(PROBE_MAP, 0, "probe");
      (*fulfiller)->fulfill(r ? Outcome() : Outcome(r.error()));
    });
    return paf.promise.then([this](Outcome error) -> kj::Promise<void> {
      if (error) return probeLoop();
      memberLog().warn("write-through store works again; writes to persistent maps are accepted");
      failure_.reset();
      probing_ = false;
      return kj::READY_NOW;
    });
  });
}

}  // namespace shoal::node

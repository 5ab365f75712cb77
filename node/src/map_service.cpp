// Map operations of one shard; see map_service.h.
#include "map_service.h"

#include "member_log.h"
#include "topic/topic_log.h"

namespace shoal::node {
namespace {

constexpr size_t MAX_MAP_NAME_BYTES = 256;
constexpr size_t MAX_QUEUE_NAME_BYTES = 255;  // a write-behind queue is named after its map

std::string_view viewOf(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}
kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

void fail(wire::OpResult::Builder result, wire::ErrorCode code, const std::string& message) {
  auto f = result.initFailure();
  f.setCode(code);
  f.setMessage(message);
}

WriteSpec specOf(wire::Write::Reader w) {
  return WriteSpec{viewOf(w.getValue()), w.getTtlMs(), w.getMaxIdleMs()};
}

void setPrevious(wire::OpResult::Builder result, bool had, const std::string& previous) {
  if (had) {
    result.setValue(bytesOf(previous));
  } else {
    result.setAbsent();
  }
}

EvictionPolicy policyOf(Eviction e) {
  switch (e) {
    case Eviction::NONE:
      return EvictionPolicy::NONE;
    case Eviction::LRU:
      return EvictionPolicy::LRU;
    case Eviction::LFU:
      return EvictionPolicy::LFU;
  }
  return EvictionPolicy::LRU;
}

}  // namespace

bool isWriteOp(wire::MapOp::Which which) {
  switch (which) {
    case wire::MapOp::GET:
    case wire::MapOp::GET_ENTRY:
    case wire::MapOp::CONTAINS_KEY:
    case wire::MapOp::SIZE:
      return false;
    default:
      return true;
  }
}

MapService::MapService(const NodeOptions& options, const Clock& clock,
                       std::function<void(std::function<void()>)> postEvent)
    : options_(options),
      clock_(clock),
      postEvent_(std::move(postEvent)),
      partitioner_(options.partitionCount) {
  auto limited = [](const MapOptions& o) { return o.maxEntries > 0 || o.maxBytes > 0; };
  anyMemoryLimit_ = limited(options.defaultMap);
  for (auto& [_, o] : options.maps) anyMemoryLimit_ |= limited(o);
}

MapService::~MapService() = default;

void MapService::setClusterHooks(std::function<void(MapRecords&)> onNewMap,
                                 std::function<bool(partition::PartitionId)> owns) {
  onNewMap_ = std::move(onNewMap);
  owns_ = std::move(owns);
  for (auto& [_, map] : maps_) onNewMap_(*map);
}

const TopicOptions& MapService::topicOptions(std::string_view topic) const {
  auto it = options_.topics.find(std::string(topic));
  return it == options_.topics.end() ? options_.defaultTopic : it->second;
}

MapConfig MapService::configFor(const std::string& name) const {
  if (topic::isTopicMap(name)) {
    // A topic's ring buffer: bounded by its capacity (see TopicLog), never evicted.
    MapConfig c;
    c.eviction = EvictionPolicy::NONE;
    c.defaultTtlMs = topicOptions(topic::topicOfMap(name)).retentionMs;
    return c;
  }
  auto it = options_.maps.find(name);
  const MapOptions& o = it == options_.maps.end() ? options_.defaultMap : it->second;
  MapConfig c;
  c.maxEntries = o.maxEntries;
  c.maxBytes = o.maxBytes;
  c.eviction = policyOf(o.eviction);
  c.defaultTtlMs = o.defaultTtlMs;
  c.defaultMaxIdleMs = o.defaultMaxIdleMs;
  return c;
}

bool MapService::readsBackupData(std::string_view name) const {
  auto it = options_.maps.find(std::string(name));
  return (it == options_.maps.end() ? options_.defaultMap : it->second).readBackupData;
}

MapPersistenceMode MapService::modeOf(const std::string& name) const {
  if (persistence_ == nullptr) return MapPersistenceMode::NONE;
  if (topic::isTopicMap(name)) {
    return topicOptions(topic::topicOfMap(name)).durable ? MapPersistenceMode::WRITE_THROUGH
                                                         : MapPersistenceMode::NONE;
  }
  auto it = options_.maps.find(name);
  const MapOptions& o = it == options_.maps.end() ? options_.defaultMap : it->second;
  return o.persistence;
}

kj::Promise<void> MapService::commitStore() {
  return persistence_ == nullptr ? kj::Promise<void>(kj::READY_NOW) : persistence_->commit();
}

bool MapService::hasPendingStore() const {
  return persistence_ != nullptr && persistence_->hasPending();
}

kj::Promise<void> MapService::commit() {
  kj::Promise<void> stored = commitStore();
  if (!replicationPending_ || !replicationPending_()) return stored;
  auto replicated = replicationFlush_();
  return stored.then([replicated = kj::mv(replicated)]() mutable { return kj::mv(replicated); });
}

bool MapService::needsLoad(wire::MapOp::Reader op) {
  // The common case (no persistence, or no map with a memory limit) costs one branch per op.
  if (persistence_ == nullptr || !anyMemoryLimit_) return false;
  auto which = op.which();
  if (which == wire::MapOp::SIZE || which == wire::MapOp::CLEAR) return false;
  auto mapName = op.getMap();
  if (mapName.size() == 0) return false;
  return needsLoad(std::string(mapName.cStr(), mapName.size()), viewOf(op.getKey()));
}

bool MapService::needsLoad(const std::string& name, std::string_view key) {
  if (persistence_ == nullptr || !anyMemoryLimit_) return false;
  if (key.size() > options_.limits.maxKeyBytes) return false;
  auto it = options_.maps.find(name);
  const MapOptions& o = it == options_.maps.end() ? options_.defaultMap : it->second;
  // Without a memory limit nothing is evicted: memory holds every stored entry since start.
  if ((o.maxEntries == 0 && o.maxBytes == 0) || !isPersistent(name)) return false;
  return !records(name).containsKey(partitioner_.partitionOf(key), key);
}

kj::Promise<void> MapService::loadFor(wire::MapOp::Reader op) {
  return load(std::string(op.getMap().cStr(), op.getMap().size()), std::string(viewOf(op.getKey())));
}

kj::Promise<void> MapService::load(const std::string& name, const std::string& key) {
  auto p = partitioner_.partitionOf(key);
  bool behind = modeOf(name) == MapPersistenceMode::WRITE_BEHIND;
  return persistence_->load(name, p, key, behind)
      .then([this, name, key, p](std::optional<persistence::StoredValue> stored) {
        if (!stored) return;
        auto& map = records(name);
        if (map.containsKey(p, key)) return;  // written meanwhile: memory is newer than the store
        int64_t ttl = stored->meta.expirationTimeMs > 0
                          ? std::max<int64_t>(1, stored->meta.expirationTimeMs - clock_.nowMs())
                          : 0;
        map.restore(p, key, stored->value, stored->meta.version, stored->meta.expirationTimeMs, ttl, -1);
      });
}

bool MapService::hasPendingChanges() const {
  return (persistence_ != nullptr && persistence_->hasPending()) ||
         (replicationPending_ && replicationPending_());
}

MapRecords& MapService::records(const std::string& name) {
  auto it = maps_.find(name);
  if (it != maps_.end()) return *it->second;
  auto map = std::make_unique<MapRecords>(name, configFor(name), partitioner_.partitionCount(), clock_);
  if (auto mode = modeOf(name); mode != MapPersistenceMode::NONE) {
    persistence_->attach(*map, mode == MapPersistenceMode::WRITE_BEHIND);
  }
  if (onNewMap_) onNewMap_(*map);
  auto& ref = *map;
  maps_.emplace(name, std::move(map));
  return ref;
}

MapRecords* MapService::findRecords(const std::string& name) {
  auto it = maps_.find(name);
  return it == maps_.end() ? nullptr : it->second.get();
}

std::vector<const MapRecords*> MapService::allMaps() const {
  std::vector<const MapRecords*> out;
  for (auto& [_, m] : maps_) out.push_back(m.get());
  return out;
}

void MapService::dropPartition(partition::PartitionId p) {
  for (auto& [_, m] : maps_) m->dropPartition(p);
  if (persistence_ != nullptr) persistence_->dropPartition(p);
}

void MapService::recordCopies(uint32_t members,
                              const std::vector<std::pair<partition::PartitionId, uint64_t>>& copies) {
  if (persistence_ != nullptr && !copies.empty()) persistence_->recordCopies(members, copies);
}

namespace {
bool keptWhole(const MapConfig& c) {
  return c.maxEntries == 0 && c.maxBytes == 0;
}
}  // namespace

std::vector<std::pair<std::string, MapRecords::Digest>> MapService::digests(partition::PartitionId p,
                                                                            int64_t expiringBeforeMs) {
  std::vector<std::pair<std::string, MapRecords::Digest>> out;
  for (auto& [name, m] : maps_) {
    if (keptWhole(m->config())) out.emplace_back(name, m->digest(p, expiringBeforeMs));
  }
  return out;
}

bool MapService::sameDigests(partition::PartitionId p, int64_t expiringBeforeMs,
                             const std::vector<std::pair<std::string, MapRecords::Digest>>& theirs) {
  for (auto& [name, digest] : theirs) {
    auto* m = findRecords(name);
    if (m == nullptr) {
      if (digest.entries != 0 && keptWhole(configFor(name))) return false;
      continue;
    }
    if (keptWhole(m->config()) && m->digest(p, expiringBeforeMs) != digest) return false;
  }
  return true;
}

std::shared_ptr<ListenerHub> MapService::hub(const std::string& name) {
  auto it = hubs_.find(name);
  if (it != hubs_.end()) return it->second;
  auto hub = std::make_shared<ListenerHub>(name, options_.limits.listenerBufferEvents, postEvent_);
  hubs_.emplace(name, hub);
  // The sink holds a weak reference: a map without listeners pays nothing for events.
  std::weak_ptr<ListenerHub> weak = hub;
  records(name).setEventSink([weak](const EntryEvent& e) {
    if (auto h = weak.lock()) h->publish(e);
  });
  return hub;
}

void MapService::closeListeners(const std::string& reason) {
  for (auto& [_, hub] : hubs_) hub->closeAll(reason);
}

size_t MapService::sweepExpired(size_t budgetPerMap) {
  size_t n = 0;
  for (auto& [_, m] : maps_) n += m->sweepExpired(budgetPerMap);
  dedupe_.expireIdle(clock_.nowMs());
  return n;
}

void MapService::apply(wire::MapOp::Reader op, uint64_t clientId, wire::OpResult::Builder result,
                       const char* traceId) {
  auto mapName = op.getMap();
  if (mapName.size() == 0 || mapName.size() > MAX_MAP_NAME_BYTES) {
    fail(result, wire::ErrorCode::INVALID_ARGUMENT,
         "map name must be 1.." + std::to_string(MAX_MAP_NAME_BYTES) + " bytes, got " +
             std::to_string(mapName.size()));
    return;
  }
  if (op.hasTraceId()) traceId = op.getTraceId().cStr();
  auto which = op.which();
  if (mapName.cStr()[0] == '$' && which != wire::MapOp::PUBLISH) {
    fail(result, wire::ErrorCode::INVALID_ARGUMENT,
         "map names starting with '$' are reserved (got '" + std::string(mapName.cStr()) + "')");
    return;
  }
  auto key = viewOf(op.getKey());
  auto& limits = options_.limits;
  if (key.size() > limits.maxKeyBytes) {
    auto message = "key of " + std::to_string(key.size()) + " bytes exceeds limits.max-key-bytes (" +
                   std::to_string(limits.maxKeyBytes) + ")";
    memberLog().info("[trace {}] rejected op on map '{}': {}", traceId, mapName.cStr(), message);
    fail(result, wire::ErrorCode::TOO_LARGE, message);
    return;
  }
  bool write = isWriteOp(which);
  auto requestId = op.getRequestId();
  bool dedupe = write && clientId != 0 && requestId != 0;
  if (dedupe && dedupe_.replay(clientId, requestId, result)) {
    memberLog().debug("[trace {}] replayed result of retried request {}", traceId, requestId);
    return;
  }

  if (write && writeGuard_) {
    if (auto refused = writeGuard_()) {
      fail(result, wire::ErrorCode::UNAVAILABLE, *refused);
      return;
    }
  }
  std::string name(mapName.cStr(), mapName.size());
  auto p = partitioner_.partitionOf(key);
  switch (which) {
    case wire::MapOp::GET: {
      std::string value;
      auto* map = findRecords(name);
      if (map && map->get(p, key, &value)) {
        result.setValue(bytesOf(value));
      } else {
        result.setAbsent();
      }
      return;
    }
    case wire::MapOp::GET_ENTRY: {
      auto* map = findRecords(name);
      auto view = map ? map->getEntry(p, key) : std::nullopt;
      if (!view) {
        result.setAbsent();
        return;
      }
      auto e = result.initEntry();
      e.setKey(bytesOf(view->key));
      e.setValue(bytesOf(view->value));
      e.setVersion(view->meta.version);
      e.setCreationTimeMs(view->meta.creationTimeMs);
      e.setUpdateTimeMs(view->meta.updateTimeMs);
      e.setLastAccessTimeMs(view->meta.lastAccessTimeMs);
      e.setExpirationTimeMs(view->meta.expirationTimeMs);
      e.setTtlMs(view->meta.ttlMs);
      e.setMaxIdleMs(view->meta.maxIdleMs);
      e.setHits(view->meta.hits);
      return;
    }
    case wire::MapOp::CONTAINS_KEY: {
      auto* map = findRecords(name);
      result.setFlag(map && map->containsKey(p, key));
      return;
    }
    case wire::MapOp::SIZE: {
      auto* map = findRecords(name);
      result.setCount(map ? ownedSize(*map) : 0);
      return;
    }
    case wire::MapOp::CLEAR: {
      auto* map = findRecords(name);
      result.setCount(map ? clearOwned(*map) : 0);
      break;
    }
    case wire::MapOp::PUBLISH:
      applyPublish(p, op, result);
      if (result.isFailure()) {
        memberLog().info("[trace {}] rejected publish to topic '{}': {}", traceId, name,
                         result.getFailure().getMessage().cStr());
      }
      break;
    default:
      if (persistence_ != nullptr) {
        auto mode = modeOf(name);
        bool behind = mode == MapPersistenceMode::WRITE_BEHIND;
        if (mode != MapPersistenceMode::NONE && persistence_->failure(behind)) {
          // The store (or queue) is failing: refuse before applying, so memory does not run ahead.
          fail(result, wire::ErrorCode::STORE_FAILED,
               std::string(behind ? "the write-behind queue" : "the backing store") + " is failing (" +
                   *persistence_->failure(behind) + "); writes to persistent map '" + name +
                   "' are refused until it works again");
          return;
        }
        if (behind && name.size() > MAX_QUEUE_NAME_BYTES) {
          fail(result, wire::ErrorCode::INVALID_ARGUMENT,
               "write-behind map names are at most " + std::to_string(MAX_QUEUE_NAME_BYTES) + " bytes");
          return;
        }
        if (behind) {
          auto it = options_.maps.find(name);
          auto capacity =
              (it == options_.maps.end() ? options_.defaultMap : it->second).writeBehindQueueCapacity;
          if (capacity > 0 && persistence_->queuedWrites(name) >= capacity) {
            fail(result, wire::ErrorCode::OVERLOADED,
                 "the write-behind queue of map '" + name + "' holds " + std::to_string(capacity) +
                     " writes (write-behind-queue-capacity): the store is behind; retry once it drains");
            return;
          }
        }
      }
      applyWrite(records(name), p, op, result);
      if (result.isFailure()) {
        memberLog().info("[trace {}] rejected write on map '{}': {}", traceId, name,
                         result.getFailure().getMessage().cStr());
      }
      break;
  }
  if (dedupe) {
    dedupe_.remember(clientId, requestId, result.asReader());
    if (resultSink_ && which != wire::MapOp::CLEAR)
      resultSink_(p, clientId, requestId, lowestPending_, result.asReader());
  }
}

uint64_t MapService::ownedSize(const MapRecords& map) const {
  if (!owns_) return map.size();
  uint64_t n = 0;
  for (partition::PartitionId p = 0; p < partitioner_.partitionCount(); ++p) {
    if (owns_(p)) n += map.partitionSize(p);
  }
  return n;
}

uint64_t MapService::clearOwned(MapRecords& map) {
  return owns_ ? map.clearWhere(owns_) : map.clear();
}

uint64_t MapService::scanOwned(MapRecords* map, uint64_t cursor, uint32_t limit, bool withValues,
                               std::vector<MapRecords::ScanItem>* out) {
  constexpr uint64_t INNER_MASK = (uint64_t{1} << 48) - 1;
  uint64_t p = cursor >> 48;
  uint64_t inner = cursor & INNER_MASK;
  const uint64_t partitionCount = partitioner_.partitionCount();
  size_t taken = 0;
  while (p < partitionCount && taken < limit) {
    if (!owns(static_cast<partition::PartitionId>(p))) break;
    inner = map ? map->scanPartition(
                      static_cast<partition::PartitionId>(p), inner, limit - taken,
                      [&](const RecordChange& c) {
                        out->push_back(MapRecords::ScanItem{
                            std::string(c.key), withValues ? std::string(c.value) : std::string()});
                        ++taken;
                      })
                : 0;
    if (inner == 0) ++p;
  }
  return p >= partitionCount ? 0 : (p << 48) | inner;
}

void MapService::rememberReplicated(uint64_t clientId, uint64_t requestId, uint64_t lowestPending,
                                    wire::OpResult::Reader result) {
  dedupe_.beginBatch(clientId, lowestPending, clock_.nowMs());
  dedupe_.remember(clientId, requestId, result);
}

void MapService::applyPublish(partition::PartitionId p, wire::MapOp::Reader op,
                              wire::OpResult::Builder result) {
  std::string topicName(op.getMap().cStr(), op.getMap().size());
  if (auto invalid = topic::invalidName(topicName)) {
    fail(result, wire::ErrorCode::INVALID_ARGUMENT, *invalid);
    return;
  }
  if (viewOf(op.getKey()) != topicName) {
    fail(result, wire::ErrorCode::INVALID_ARGUMENT, "a publish's key must be its topic's name");
    return;
  }
  auto message = op.getPublish();
  auto& limits = options_.limits;
  if (message.getValue().size() > limits.maxValueBytes) {
    fail(result, wire::ErrorCode::TOO_LARGE,
         "message of " + std::to_string(message.getValue().size()) +
             " bytes exceeds limits.max-value-bytes (" + std::to_string(limits.maxValueBytes) + ")");
    return;
  }
  auto extra = topic::encodedSize(message) - message.getValue().size();
  if (extra > limits.maxKeyBytes) {
    fail(result, wire::ErrorCode::TOO_LARGE,
         "message key and headers of " + std::to_string(extra) + " bytes exceed limits.max-key-bytes (" +
             std::to_string(limits.maxKeyBytes) + ")");
    return;
  }
  auto ringName = topic::mapNameOf(topicName);
  if (persistence_ != nullptr && modeOf(ringName) != MapPersistenceMode::NONE &&
      persistence_->failure(false)) {
    fail(result, wire::ErrorCode::STORE_FAILED,
         "the backing store is failing (" + *persistence_->failure(false) +
             "); publishes to durable topic '" + topicName + "' are refused until it works again");
    return;
  }
  topic::TopicLog log(records(ringName), p, topicName);
  auto pending = pendingTopics_.find(topicName);
  if (pending == pendingTopics_.end()) {
    pending = pendingTopics_.emplace(topicName, PendingTopicState{p, log.state()}).first;
  }
  auto appended = log.append(topicOptions(topicName), message, clock_.nowMs(), pending->second.state);
  if (appended.refused) {
    fail(result, wire::ErrorCode::OVERLOADED, "topic '" + topicName + "': " + *appended.refused);
    return;
  }
  result.setCount(appended.seq);
  if (publishHook_) publishHook_(topicName, appended.seq);
}

void MapService::flushTopicStates() {
  for (auto& [name, pending] : pendingTopics_) {
    topic::TopicLog(records(topic::mapNameOf(name)), pending.partition, name).saveState(pending.state);
  }
  pendingTopics_.clear();
}

void MapService::applyWrite(MapRecords& map, partition::PartitionId p, wire::MapOp::Reader op,
                            wire::OpResult::Builder result) {
  auto key = viewOf(op.getKey());
  auto& limits = options_.limits;
  auto checkValue = [&](size_t size) {
    if (size <= limits.maxValueBytes) return true;
    fail(result, wire::ErrorCode::TOO_LARGE,
         "value of " + std::to_string(size) + " bytes exceeds limits.max-value-bytes (" +
             std::to_string(limits.maxValueBytes) + ")");
    return false;
  };
  auto checkTimes = [&](wire::Write::Reader w) {
    if (w.getTtlMs() >= -1 && w.getMaxIdleMs() >= -1) return true;
    fail(result, wire::ErrorCode::INVALID_ARGUMENT,
         "ttl and max-idle must be >= 0 (or -1 for the map default)");
    return false;
  };
  auto full = [&]() {
    fail(result, wire::ErrorCode::OVERLOADED,
         "map '" + map.name() +
             "' is full (max-entries / max-bytes with eviction none); remove entries or raise the limit");
  };
  std::string previous;
  switch (op.which()) {
    case wire::MapOp::PUT:
    case wire::MapOp::SET:
    case wire::MapOp::PUT_IF_ABSENT:
    case wire::MapOp::REPLACE: {
      auto which = op.which();
      auto w = which == wire::MapOp::PUT             ? op.getPut()
               : which == wire::MapOp::SET           ? op.getSet()
               : which == wire::MapOp::PUT_IF_ABSENT ? op.getPutIfAbsent()
                                                     : op.getReplace();
      if (!checkValue(w.getValue().size()) || !checkTimes(w)) return;
      auto mode = which == wire::MapOp::PUT_IF_ABSENT ? WriteMode::IF_ABSENT
                  : which == wire::MapOp::REPLACE     ? WriteMode::IF_PRESENT
                                                      : WriteMode::ALWAYS;
      auto r = map.write(p, key, specOf(w), mode, which == wire::MapOp::SET ? nullptr : &previous);
      if (r.rejectedFull) return full();
      if (which == wire::MapOp::SET) {
        result.setDone();
      } else {
        setPrevious(result, r.hadPrevious, previous);
      }
      return;
    }
    case wire::MapOp::REPLACE_IF_VALUE: {
      auto c = op.getReplaceIfValue();
      if (!checkValue(c.getWrite().getValue().size()) || !checkTimes(c.getWrite())) return;
      auto r = map.replaceIfValue(p, key, viewOf(c.getExpected()), specOf(c.getWrite()));
      if (r.rejectedFull) return full();
      result.setFlag(r.applied);
      return;
    }
    case wire::MapOp::REPLACE_IF_VERSION: {
      auto c = op.getReplaceIfVersion();
      if (!checkValue(c.getWrite().getValue().size()) || !checkTimes(c.getWrite())) return;
      auto r = map.replaceIfVersion(p, key, c.getExpectedVersion(), specOf(c.getWrite()));
      if (r.rejectedFull) return full();
      result.setFlag(r.applied);
      return;
    }
    case wire::MapOp::REMOVE:
      setPrevious(result, map.remove(p, key, &previous), previous);
      return;
    case wire::MapOp::DELETE:
      result.setFlag(map.remove(p, key, nullptr));
      return;
    case wire::MapOp::REMOVE_IF_VALUE:
      result.setFlag(map.removeIfValue(p, key, viewOf(op.getRemoveIfValue())));
      return;
    case wire::MapOp::REMOVE_IF_VERSION:
      result.setFlag(map.removeIfVersion(p, key, op.getRemoveIfVersion()));
      return;
    case wire::MapOp::SET_TTL:
      if (op.getSetTtl() < 0) {
        fail(result, wire::ErrorCode::INVALID_ARGUMENT, "ttl must be >= 0");
        return;
      }
      result.setFlag(map.setTtl(p, key, op.getSetTtl()));
      return;
    default:
      fail(result, wire::ErrorCode::INVALID_ARGUMENT, "unknown operation (a newer client than this member?)");
      return;
  }
}

}  // namespace shoal::node

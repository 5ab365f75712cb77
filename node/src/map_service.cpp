// Map operations of one shard; see map_service.h.
#include "map_service.h"

#include "member_log.h"

namespace shoal::node {
namespace {

constexpr size_t DEDUPE_CAPACITY = 200'000;         // remembered write results per member
constexpr int64_t DEDUPE_WINDOW_MS = 5 * 60 * 1000;  // how long a retry is recognised
constexpr size_t MAX_MAP_NAME_BYTES = 256;

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
    case Eviction::NONE: return EvictionPolicy::NONE;
    case Eviction::LRU: return EvictionPolicy::LRU;
    case Eviction::LFU: return EvictionPolicy::LFU;
  }
  return EvictionPolicy::LRU;
}

bool isWrite(wire::MapOp::Which which) {
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

}  // namespace

struct MapService::CachedResult {
  wire::OpResult::Which which;
  std::string value;
  bool flag = false;
  uint64_t count = 0;
  wire::ErrorCode code = wire::ErrorCode::INTERNAL;
};

MapService::MapService(const NodeOptions& options, const Clock& clock,
                       std::function<void(std::function<void()>)> postEvent)
    : options_(options),
      clock_(clock),
      postEvent_(std::move(postEvent)),
      partitioner_(options.partitionCount) {}

MapService::~MapService() = default;

MapConfig MapService::configFor(const std::string& name) const {
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

MapRecords& MapService::records(const std::string& name) {
  auto it = maps_.find(name);
  if (it != maps_.end()) return *it->second;
  auto map = std::make_unique<MapRecords>(name, configFor(name), partitioner_.partitionCount(), clock_);
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
  auto now = clock_.nowMs();
  while (!dedupeOrder_.empty() && now - dedupeOrder_.front().second > DEDUPE_WINDOW_MS) {
    dedupe_.erase(dedupeOrder_.front().first);
    dedupeOrder_.pop_front();
  }
  return n;
}

bool MapService::replayIfDuplicate(const DedupeKey& key, wire::OpResult::Builder result) {
  auto it = dedupe_.find(key);
  if (it == dedupe_.end()) return false;
  auto& c = *it->second;
  switch (c.which) {
    case wire::OpResult::VALUE: result.setValue(bytesOf(c.value)); break;
    case wire::OpResult::ABSENT: result.setAbsent(); break;
    case wire::OpResult::FLAG: result.setFlag(c.flag); break;
    case wire::OpResult::COUNT: result.setCount(c.count); break;
    case wire::OpResult::DONE: result.setDone(); break;
    case wire::OpResult::FAILURE: fail(result, c.code, c.value); break;
    case wire::OpResult::ENTRY: result.setDone(); break;  // writes never return entries
  }
  return true;
}

void MapService::remember(const DedupeKey& key, wire::OpResult::Reader result) {
  auto c = std::make_unique<CachedResult>();
  c->which = result.which();
  switch (c->which) {
    case wire::OpResult::VALUE: c->value = std::string(viewOf(result.getValue())); break;
    case wire::OpResult::FLAG: c->flag = result.getFlag(); break;
    case wire::OpResult::COUNT: c->count = result.getCount(); break;
    case wire::OpResult::FAILURE:
      c->code = result.getFailure().getCode();
      c->value = result.getFailure().getMessage();
      break;
    default: break;
  }
  if (dedupe_.emplace(key, std::move(c)).second) {
    dedupeOrder_.emplace_back(key, clock_.nowMs());
    if (dedupeOrder_.size() > DEDUPE_CAPACITY) {
      dedupe_.erase(dedupeOrder_.front().first);
      dedupeOrder_.pop_front();
    }
  }
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
  auto key = viewOf(op.getKey());
  auto& limits = options_.limits;
  if (key.size() > limits.maxKeyBytes) {
    auto message = "key of " + std::to_string(key.size()) + " bytes exceeds limits.max-key-bytes (" +
                   std::to_string(limits.maxKeyBytes) + ")";
    memberLog().info("[trace {}] rejected op on map '{}': {}", traceId, mapName.cStr(), message);
    fail(result, wire::ErrorCode::TOO_LARGE, message);
    return;
  }
  bool write = isWrite(which);
  DedupeKey dedupeKey{clientId, op.getRequestId()};
  bool dedupe = write && clientId != 0 && dedupeKey.requestId != 0;
  if (dedupe && replayIfDuplicate(dedupeKey, result)) {
    memberLog().debug("[trace {}] replayed result of retried request {}", traceId, dedupeKey.requestId);
    return;
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
      result.setCount(map ? map->size() : 0);
      return;
    }
    case wire::MapOp::CLEAR: {
      auto* map = findRecords(name);
      result.setCount(map ? map->clear() : 0);
      break;
    }
    default:
      applyWrite(records(name), p, op, result);
      if (result.isFailure()) {
        memberLog().info("[trace {}] rejected write on map '{}': {}", traceId, name,
                     result.getFailure().getMessage().cStr());
      }
      break;
  }
  if (dedupe) remember(dedupeKey, result.asReader());
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
    fail(result, wire::ErrorCode::INVALID_ARGUMENT, "ttl and max-idle must be >= 0 (or -1 for the map default)");
    return false;
  };
  auto full = [&]() {
    fail(result, wire::ErrorCode::OVERLOADED,
         "map '" + map.name() + "' is full (max-entries / max-bytes with eviction none); remove entries or raise the limit");
  };
  std::string previous;
  switch (op.which()) {
    case wire::MapOp::PUT:
    case wire::MapOp::SET:
    case wire::MapOp::PUT_IF_ABSENT:
    case wire::MapOp::REPLACE: {
      auto which = op.which();
      auto w = which == wire::MapOp::PUT ? op.getPut()
             : which == wire::MapOp::SET ? op.getSet()
             : which == wire::MapOp::PUT_IF_ABSENT ? op.getPutIfAbsent()
             : op.getReplace();
      if (!checkValue(w.getValue().size()) || !checkTimes(w)) return;
      auto mode = which == wire::MapOp::PUT_IF_ABSENT ? WriteMode::IF_ABSENT
                : which == wire::MapOp::REPLACE ? WriteMode::IF_PRESENT
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
      fail(result, wire::ErrorCode::INVALID_ARGUMENT,
           "unknown operation (a newer client than this member?)");
      return;
  }
}

}  // namespace shoal::node

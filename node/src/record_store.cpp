// Record store: the records of one map on one shard (contract in record_store.h).
//
// Memory is the point of this file. For the common shape (16-byte keys, 100-byte values) an entry
// must cost no more than Redis spends per key, so:
//  - Each entry is ONE malloc allocation: a 10-byte fixed header (fields that reads mutate in
//    place), an optional 32-byte expiry block (only when the entry has a TTL or max-idle), then
//    varints and bytes that change only on writes:
//      [u32 accessSec][u32 hits][u8 flags][u8 lfu]
//      [expiry: i64 ttlMs, i64 maxIdleMs, i64 ttlDeadlineMs, i64 lastAccessMs]   (FLAG_EXPIRY)
//      [varint keyLen][varint valueLen][key][value][varint version][varint createSec]
//      [varint updateSec - createSec]
//    Creation / update / access times are whole seconds since the map was created (epochMs_);
//    anything that decides expiry keeps milliseconds, in the expiry block. A 16/100 entry encodes
//    in 131 bytes, i.e. one 144-byte glibc chunk.
//  - The index of a partition is an open-addressing table of 8-byte slots: the entry pointer with
//    the top 16 bits of the key hash as a tag (probes rarely dereference a non-matching entry).
//    Linear probing, load factor <= 0.8, capacity doubles. Removal leaves a tombstone rather than
//    shifting entries back, so an entry keeps its slot until the table is rebuilt; every rebuild
//    takes a new generation, which is how a scan cursor (partition, generation, slot) notices
//    that it must restart a partition.
//  - bytes() counts what the allocator hands out: malloc_usable_size plus the chunk header.
#include "record_store.h"

#include <malloc.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "record_entry.h"

namespace shoal::node {
using namespace entry;

struct MapRecords::Partition {
  uint64_t* slots = nullptr;  // EMPTY_SLOT, TOMBSTONE or tag | entry pointer
  uint32_t capacity = 0;      // 0 (no table yet) or a power of two
  uint32_t live = 0;
  uint32_t tombstones = 0;
  uint32_t expiring = 0;    // live entries with an expiry block; the sweep skips partitions at 0
  uint64_t generation = 0;  // changes whenever entries may have moved
  PartitionId id = 0;       // for change records

  uint64_t tableBytes() const { return slots ? allocationBytes(slots) : 0; }

  // Whether inserting one more entry needs a rebuild first, and to which capacity.
  bool needsRebuild() const {
    return capacity == 0 || (uint64_t{live} + tombstones + 1) * 5 > uint64_t{capacity} * 4;
  }
  uint32_t rebuildCapacity() const {
    if (capacity == 0) return MIN_CAPACITY;
    // Mostly tombstones: rebuilding at the same size is enough.
    if ((uint64_t{live} + 1) * 5 <= uint64_t{capacity} * 2) return capacity;
    if (capacity >= MAX_CAPACITY) throw std::length_error("record store: partition table full");
    return capacity * 2;
  }

  int64_t find(std::string_view key, uint64_t hash) const {
    if (capacity == 0) return -1;
    const uint64_t mask = capacity - 1;
    const uint64_t tag = hash >> TAG_SHIFT;
    for (uint64_t i = hash & mask, n = 0; n < capacity; i = (i + 1) & mask, ++n) {
      uint64_t s = slots[i];
      if (s == EMPTY_SLOT) return -1;
      if (occupied(s) && (s >> TAG_SHIFT) == tag && EntryRef(entryOf(s)).key() == key) {
        return static_cast<int64_t>(i);
      }
    }
    return -1;
  }

  // The key is known to be absent and the table to have room.
  void place(uint64_t hash, uint8_t* entry) {
    const uint64_t mask = capacity - 1;
    for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
      if (!occupied(slots[i])) {
        if (slots[i] == TOMBSTONE) --tombstones;
        slots[i] = taggedSlot(hash, entry);
        ++live;
        return;
      }
    }
  }
};

int64_t SystemClock::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MapRecords::MapRecords(std::string name, MapConfig config, uint32_t partitionCount, const Clock& clock)
    : name_(std::move(name)), config_(config), clock_(clock), epochMs_(clock.nowMs()) {
  if (partitionCount == 0) throw std::invalid_argument("record store: partition count must be > 0");
  partitions_.resize(partitionCount);
}

MapRecords::~MapRecords() {
  for (auto& part : partitions_) {
    if (!part) continue;
    for (uint32_t i = 0; i < part->capacity; ++i) {
      if (occupied(part->slots[i])) std::free(entryOf(part->slots[i]));
    }
    std::free(part->slots);
  }
}

void MapRecords::setConfig(const MapConfig& config) {
  config_ = config;
}

void MapRecords::setEventSink(EventSink sink) {
  sink_ = std::move(sink);
}

void MapRecords::setChangeSink(ChangeSink sink) {
  changeSink_ = std::move(sink);
}

// Called only when a change sink is set (callers test it, so the hot paths pay one branch).
void MapRecords::emitStore(const Partition& part, const uint8_t* entry) {
  EntryRef ref(const_cast<uint8_t*>(entry));
  changeSink_(RecordChange{RecordChange::Kind::STORE, part.id, ref.key(), ref.value(), ref.version(),
                           ref.ttlDeadlineMs(), ref.ttlMs(), ref.maxIdleMs()});
}

uint32_t MapRecords::secondsOf(int64_t nowMs) const {
  if (nowMs <= epochMs_) return 0;  // a clock stepping back reads as the map's creation
  return static_cast<uint32_t>(
      std::min<int64_t>((nowMs - epochMs_) / 1000, std::numeric_limits<uint32_t>::max()));
}

uint64_t MapRecords::nextRandom() {  // splitmix64
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

MapRecords::Partition* MapRecords::partitionAt(PartitionId p, bool create) {
  if (p >= partitions_.size()) {
    throw std::out_of_range("record store: partition " + std::to_string(p) + " out of range");
  }
  auto& part = partitions_[p];
  if (!part && create) {
    part = std::make_unique<Partition>();
    part->id = p;
    bytes_ += chunkBytes(sizeof(Partition));
  }
  return part.get();
}

int64_t MapRecords::findLive(Partition& part, std::string_view key, uint64_t hash, int64_t nowMs) {
  int64_t slot = part.find(key, hash);
  if (slot >= 0 && EntryRef(entryOf(part.slots[slot])).expiredAt(nowMs)) {
    eraseAt(part, static_cast<size_t>(slot), EntryEventType::EXPIRED);
    return -1;
  }
  return slot;
}

void MapRecords::touch(uint8_t* entry, int64_t nowMs) {
  uint32_t nowSec = secondsOf(nowMs);
  uint8_t lfu = lfuDecayed(entry[OFF_LFU], load<uint32_t>(entry + OFF_ACCESS_SEC), nowSec);
  entry[OFF_LFU] = lfuIncremented(lfu, nextRandom());
  store<uint32_t>(entry + OFF_ACCESS_SEC, nowSec);
  uint32_t hits = load<uint32_t>(entry + OFF_HITS);
  if (hits != std::numeric_limits<uint32_t>::max()) store<uint32_t>(entry + OFF_HITS, hits + 1);
  if (entry[OFF_FLAGS] & FLAG_EXPIRY) store<int64_t>(entry + OFF_LAST_ACCESS_MS, nowMs);
}

void MapRecords::resizeTable(Partition& part, uint32_t capacity) {
  auto* fresh = static_cast<uint64_t*>(std::calloc(capacity, sizeof(uint64_t)));
  if (!fresh) throw std::bad_alloc();
  uint64_t* old = part.slots;
  uint32_t oldCapacity = part.capacity;
  bytes_ -= part.tableBytes();
  part.slots = fresh;
  part.capacity = capacity;
  part.live = 0;
  part.tombstones = 0;
  part.generation = ++tableGeneration_;
  bytes_ += part.tableBytes();
  for (uint32_t i = 0; i < oldCapacity; ++i) {
    if (!occupied(old[i])) continue;
    uint8_t* entry = entryOf(old[i]);
    part.place(hashOf(EntryRef(entry).key()), entry);
  }
  std::free(old);
}

void MapRecords::maybeShrink(Partition& part) {
  if (part.capacity <= MIN_CAPACITY || uint64_t{part.live} * 8 >= part.capacity) return;
  uint32_t capacity = MIN_CAPACITY;
  while (capacity < uint64_t{part.live} * 2) capacity *= 2;  // back to at most half full
  resizeTable(part, capacity);
}

void MapRecords::placeNew(Partition& part, uint64_t hash, uint8_t* entry) {
  if (part.needsRebuild()) resizeTable(part, part.rebuildCapacity());
  part.place(hash, entry);
  ++entries_;
  bytes_ += allocationBytes(entry);
  if (EntryRef(entry).hasExpiry()) ++part.expiring;
}

void MapRecords::eraseAt(Partition& part, size_t slot, EntryEventType why, bool withEvent) {
  uint8_t* entry = entryOf(part.slots[slot]);
  EntryRef ref(entry);
  const uint64_t mask = part.capacity - 1;
  if (part.slots[(slot + 1) & mask] == EMPTY_SLOT) {
    // No probe sequence continues past an empty slot, so this one and the tombstones just before
    // it can become empty too. Entries do not move, so scans are unaffected.
    part.slots[slot] = EMPTY_SLOT;
    for (size_t i = (slot - 1) & mask; part.slots[i] == TOMBSTONE; i = (i - 1) & mask) {
      part.slots[i] = EMPTY_SLOT;
      --part.tombstones;
    }
  } else {
    part.slots[slot] = TOMBSTONE;
    ++part.tombstones;
  }
  --part.live;
  --entries_;
  if (ref.hasExpiry()) --part.expiring;
  bytes_ -= allocationBytes(entry);
  if (withEvent) emit(sink_, why, ref.key(), {}, ref.value(), ref.version());
  // Eviction only drops the in-memory copy; the persisted one stays.
  if (changeSink_ && why != EntryEventType::EVICTED) {
    changeSink_(RecordChange{RecordChange::Kind::ERASE, part.id, ref.key(), {}, ref.version(), 0, 0, 0});
  }
  std::free(entry);
}

MapRecords::Partition* MapRecords::randomNonEmptyPartition() {
  const size_t n = partitions_.size();
  // A few random tries first so that partitions are picked uniformly when most hold entries...
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto& part = partitions_[nextRandom() % n];
    if (part && part->live > 0) return part.get();
  }
  // ...then a walk from a random start, for maps with few populated partitions.
  size_t start = nextRandom() % n;
  for (size_t i = 0; i < n; ++i) {
    auto& part = partitions_[(start + i) % n];
    if (part && part->live > 0) return part.get();
  }
  return nullptr;
}

bool MapRecords::evictOne(const uint8_t* keep, int64_t nowMs) {
  if (entries_ == 0 || (keep && entries_ == 1)) return false;  // `keep` is in the table
  const uint32_t nowSec = secondsOf(nowMs);
  const bool lfu = config_.eviction == EvictionPolicy::LFU;
  Partition* bestPart = nullptr;
  size_t bestSlot = 0;
  uint64_t bestScore = std::numeric_limits<uint64_t>::max();
  bool bestExpired = false;
  auto consider = [&](Partition* part, size_t slot) {
    EntryRef ref(entryOf(part->slots[slot]));
    if (ref.base() == keep) return;
    if (ref.expiredAt(nowMs)) {
      bestPart = part;
      bestSlot = slot;
      bestExpired = true;
      bestScore = 0;
      return;
    }
    // Lower is colder. LFU breaks ties between equal counters by recency.
    uint64_t score = ref.accessSec();
    if (lfu) score |= uint64_t{lfuDecayed(ref.lfu(), ref.accessSec(), nowSec)} << 32;
    if (score < bestScore) {
      bestPart = part;
      bestSlot = slot;
      bestScore = score;
    }
  };

  const uint32_t samples = std::max<uint32_t>(1, config_.evictionSampleSize);
  for (uint32_t i = 0; i < samples && !bestExpired; ++i) {
    Partition* part = randomNonEmptyPartition();
    if (!part) break;
    const uint64_t mask = part->capacity - 1;
    size_t slot = nextRandom() & mask;
    while (!occupied(part->slots[slot])) slot = (slot + 1) & mask;
    consider(part, slot);
  }
  if (!bestPart) {
    // Every sample was the entry being written: look for any other entry.
    for (auto& part : partitions_) {
      if (!part) continue;
      for (uint32_t i = 0; i < part->capacity && !bestPart; ++i) {
        if (occupied(part->slots[i])) consider(part.get(), i);
      }
      if (bestPart) break;
    }
    if (!bestPart) return false;
  }
  eraseAt(*bestPart, bestSlot, bestExpired ? EntryEventType::EXPIRED : EntryEventType::EVICTED);
  return true;
}

bool MapRecords::makeRoom(uint64_t addEntries, int64_t addBytes, const uint8_t* keep, int64_t nowMs,
                          uint64_t maxEvictions) {
  auto entriesOver = [&] { return config_.maxEntries != 0 && entries_ + addEntries > config_.maxEntries; };
  auto bytesOver = [&] {
    return config_.maxBytes != 0 &&
           static_cast<int64_t>(bytes_) + addBytes > static_cast<int64_t>(config_.maxBytes);
  };
  if (config_.eviction == EvictionPolicy::NONE) {
    // Only a write that grows the map is refused; one that keeps or shrinks it always fits.
    return !((addEntries > 0 && entriesOver()) || (addBytes > 0 && bytesOver()));
  }
  for (uint64_t n = 0; n < maxEvictions && (entriesOver() || bytesOver()); ++n) {
    if (!evictOne(keep, nowMs)) break;  // only the entry being written is left: store it anyway
  }
  return true;
}

WriteResult MapRecords::applyWrite(Partition& part, std::string_view key, uint64_t hash, int64_t slot,
                                   const WriteSpec& spec, WriteResult result, int64_t nowMs) {
  uint8_t* old = slot >= 0 ? entryOf(part.slots[slot]) : nullptr;
  const uint32_t nowSec = secondsOf(nowMs);
  EntryImage img;
  if (old) {
    img = EntryRef(old).image();
    img.version += 1;
    img.updateSec = std::max(nowSec, img.createSec);
    img.lfu = lfuIncremented(lfuDecayed(img.lfu, img.accessSec, nowSec), nextRandom());
  } else {
    img.createSec = img.updateSec = nowSec;
  }
  img.accessSec = nowSec;
  img.ttlMs = resolveMs(spec.ttlMs, config_.defaultTtlMs);
  img.maxIdleMs = resolveMs(spec.maxIdleMs, config_.defaultMaxIdleMs);
  img.ttlDeadlineMs = img.ttlMs > 0 ? saturatingAdd(nowMs, img.ttlMs) : 0;
  img.lastAccessMs = nowMs;
  const size_t need = encodedSize(img, key.size(), spec.value.size());

  if (old && !sink_) {
    // Same chunk, same header layout: rewrite in place (no malloc/free). Not with a sink, whose
    // UPDATED event needs the old value alive next to the new one.
    EntryRef ref(old);
    const size_t usable = malloc_usable_size(old);
    if (need <= usable && usable - need < 16 && ref.hasExpiry() == img.hasExpiry() &&
        varintSize(ref.valueLen()) == varintSize(spec.value.size())) {
      makeRoom(0, 0, old, nowMs, std::numeric_limits<uint64_t>::max());
      encodeEntry(old, img, ref.key(), spec.value);
      if (changeSink_) emitStore(part, old);
      result.applied = true;
      result.version = img.version;
      return result;
    }
  }

  uint8_t* fresh = allocateEntry(need);
  encodeEntry(fresh, img, key, spec.value);
  if (!makeRoomFor(part, old, fresh, nowMs)) {
    result.rejectedFull = true;
    return result;
  }
  EntryRef ref(fresh);
  if (old) {
    // Eviction never removes `old` nor rebuilds tables, so `slot` still holds it.
    EntryRef oldRef(old);
    part.slots[slot] = taggedSlot(hash, fresh);
    bytes_ = bytes_ + allocationBytes(fresh) - allocationBytes(old);
    part.expiring += (img.hasExpiry() ? 1 : 0) - (oldRef.hasExpiry() ? 1 : 0);
    emit(sink_, EntryEventType::UPDATED, ref.key(), ref.value(), oldRef.value(), img.version);
    if (changeSink_) emitStore(part, fresh);
    std::free(old);
  } else {
    placeNew(part, hash, fresh);
    emit(sink_, EntryEventType::ADDED, ref.key(), ref.value(), {}, img.version);
    if (changeSink_) emitStore(part, fresh);
    // The table growth was an estimate; if the real table came out larger, evict the difference.
    makeRoom(0, 0, fresh, nowMs, std::numeric_limits<uint64_t>::max());
  }
  result.applied = true;
  result.version = img.version;
  return result;
}

bool MapRecords::makeRoomFor(Partition& part, uint8_t* old, uint8_t* fresh, int64_t nowMs) {
  // What the map grows by: the new allocation (less the one it replaces), and for a new key the
  // table growth it may cause.
  int64_t addBytes = static_cast<int64_t>(allocationBytes(fresh));
  if (old) {
    addBytes -= static_cast<int64_t>(allocationBytes(old));
  } else if (part.needsRebuild()) {
    addBytes +=
        static_cast<int64_t>(estimatedAllocationBytes(uint64_t{part.rebuildCapacity()} * sizeof(uint64_t))) -
        static_cast<int64_t>(part.tableBytes());
  }
  if (makeRoom(old ? 0 : 1, addBytes, old, nowMs, std::numeric_limits<uint64_t>::max())) return true;
  std::free(fresh);
  return false;
}

bool MapRecords::restore(PartitionId p, std::string_view key, std::string_view value, uint64_t version,
                         int64_t expirationTimeMs, int64_t ttlMs, int64_t maxIdleMs) {
  partitionAt(p, false);  // range check before anything else
  const int64_t now = clock_.nowMs();
  if (expirationTimeMs != 0 && now > expirationTimeMs) return false;  // expired in the store already
  Partition& part = *partitionAt(p, true);
  const uint64_t hash = hashOf(key);
  // Not findLive: an expired copy in memory is replaced silently rather than reported (and erased
  // from the store the entry is being loaded from).
  const int64_t slot = part.find(key, hash);
  uint8_t* old = slot >= 0 ? entryOf(part.slots[slot]) : nullptr;
  const uint32_t nowSec = secondsOf(now);
  EntryImage img;
  img.accessSec = img.createSec = img.updateSec = nowSec;
  img.version = version;
  img.ttlMs = resolveMs(ttlMs, config_.defaultTtlMs);
  img.maxIdleMs = resolveMs(maxIdleMs, config_.defaultMaxIdleMs);
  img.ttlDeadlineMs = expirationTimeMs;  // > 0 keeps an expiry block even without a TTL setting
  img.lastAccessMs = now;                // idle expiry restarts now

  uint8_t* fresh = allocateEntry(encodedSize(img, key.size(), value.size()));
  encodeEntry(fresh, img, key, value);
  if (!makeRoomFor(part, old, fresh, now)) return false;
  if (old) {
    // Eviction never removes `old` (even expired) nor rebuilds tables, so `slot` still holds it.
    part.slots[slot] = taggedSlot(hash, fresh);
    bytes_ = bytes_ + allocationBytes(fresh) - allocationBytes(old);
    part.expiring += (img.hasExpiry() ? 1 : 0) - (EntryRef(old).hasExpiry() ? 1 : 0);
    std::free(old);
  } else {
    placeNew(part, hash, fresh);
    makeRoom(0, 0, fresh, now, std::numeric_limits<uint64_t>::max());
  }
  return true;
}

bool MapRecords::get(PartitionId p, std::string_view key, std::string* value) {
  Partition* part = partitionAt(p, false);
  if (!part) return false;
  const int64_t now = clock_.nowMs();
  int64_t slot = findLive(*part, key, hashOf(key), now);
  if (slot < 0) return false;
  uint8_t* entry = entryOf(part->slots[slot]);
  touch(entry, now);
  if (value) value->assign(EntryRef(entry).value());
  return true;
}

std::optional<EntryView> MapRecords::getEntry(PartitionId p, std::string_view key) {
  Partition* part = partitionAt(p, false);
  if (!part) return std::nullopt;
  const int64_t now = clock_.nowMs();
  int64_t slot = findLive(*part, key, hashOf(key), now);
  if (slot < 0) return std::nullopt;
  uint8_t* entry = entryOf(part->slots[slot]);
  touch(entry, now);
  EntryRef ref(entry);
  return EntryView{std::string(ref.key()), std::string(ref.value()), metaOf(entry)};
}

std::optional<EntryMeta> MapRecords::peekMeta(PartitionId p, std::string_view key) {
  Partition* part = partitionAt(p, false);
  if (!part) return std::nullopt;
  int64_t slot = findLive(*part, key, hashOf(key), clock_.nowMs());
  if (slot < 0) return std::nullopt;
  return metaOf(entryOf(part->slots[slot]));
}

EntryMeta MapRecords::metaOf(uint8_t* entry) const {
  EntryRef ref(entry);
  EntryImage img = ref.image();
  EntryMeta meta;
  meta.version = img.version;
  meta.creationTimeMs = epochMs_ + int64_t{img.createSec} * 1000;
  meta.updateTimeMs = epochMs_ + int64_t{img.updateSec} * 1000;
  meta.lastAccessTimeMs = img.hasExpiry() ? img.lastAccessMs : epochMs_ + int64_t{img.accessSec} * 1000;
  meta.expirationTimeMs = ref.expirationMs();
  meta.ttlMs = img.ttlMs;
  meta.maxIdleMs = img.maxIdleMs;
  meta.hits = img.hits;
  return meta;
}

bool MapRecords::containsKey(PartitionId p, std::string_view key) {
  Partition* part = partitionAt(p, false);
  return part && findLive(*part, key, hashOf(key), clock_.nowMs()) >= 0;
}

WriteResult MapRecords::write(PartitionId p, std::string_view key, const WriteSpec& spec, WriteMode mode,
                              std::string* previous) {
  Partition& part = *partitionAt(p, true);
  const int64_t now = clock_.nowMs();
  const uint64_t hash = hashOf(key);
  int64_t slot = findLive(part, key, hash, now);
  WriteResult result;
  if (slot >= 0) {
    EntryRef ref(entryOf(part.slots[slot]));
    result.hadPrevious = true;
    result.version = ref.version();
    if (previous) previous->assign(ref.value());
    if (mode == WriteMode::IF_ABSENT) return result;
  } else if (mode == WriteMode::IF_PRESENT) {
    return result;
  }
  return applyWrite(part, key, hash, slot, spec, result, now);
}

WriteResult MapRecords::replaceIfValue(PartitionId p, std::string_view key, std::string_view expected,
                                       const WriteSpec& spec) {
  WriteResult result;
  Partition* part = partitionAt(p, false);
  if (!part) return result;
  const int64_t now = clock_.nowMs();
  const uint64_t hash = hashOf(key);
  int64_t slot = findLive(*part, key, hash, now);
  if (slot < 0) return result;
  EntryRef ref(entryOf(part->slots[slot]));
  result.hadPrevious = true;
  result.version = ref.version();
  if (ref.value() != expected) return result;
  return applyWrite(*part, key, hash, slot, spec, result, now);
}

WriteResult MapRecords::replaceIfVersion(PartitionId p, std::string_view key, uint64_t expectedVersion,
                                         const WriteSpec& spec) {
  WriteResult result;
  Partition* part = partitionAt(p, false);
  if (!part) return result;
  const int64_t now = clock_.nowMs();
  const uint64_t hash = hashOf(key);
  int64_t slot = findLive(*part, key, hash, now);
  if (slot < 0) return result;
  result.hadPrevious = true;
  result.version = EntryRef(entryOf(part->slots[slot])).version();
  if (result.version != expectedVersion) return result;
  return applyWrite(*part, key, hash, slot, spec, result, now);
}

bool MapRecords::remove(PartitionId p, std::string_view key, std::string* previous) {
  Partition* part = partitionAt(p, false);
  if (!part) return false;
  int64_t slot = findLive(*part, key, hashOf(key), clock_.nowMs());
  if (slot < 0) return false;
  if (previous) previous->assign(EntryRef(entryOf(part->slots[slot])).value());
  eraseAt(*part, static_cast<size_t>(slot), EntryEventType::REMOVED);
  maybeShrink(*part);
  return true;
}

bool MapRecords::removeIfValue(PartitionId p, std::string_view key, std::string_view expected) {
  Partition* part = partitionAt(p, false);
  if (!part) return false;
  int64_t slot = findLive(*part, key, hashOf(key), clock_.nowMs());
  if (slot < 0 || EntryRef(entryOf(part->slots[slot])).value() != expected) return false;
  eraseAt(*part, static_cast<size_t>(slot), EntryEventType::REMOVED);
  maybeShrink(*part);
  return true;
}

bool MapRecords::removeIfVersion(PartitionId p, std::string_view key, uint64_t expectedVersion) {
  Partition* part = partitionAt(p, false);
  if (!part) return false;
  int64_t slot = findLive(*part, key, hashOf(key), clock_.nowMs());
  if (slot < 0 || EntryRef(entryOf(part->slots[slot])).version() != expectedVersion) return false;
  eraseAt(*part, static_cast<size_t>(slot), EntryEventType::REMOVED);
  maybeShrink(*part);
  return true;
}

bool MapRecords::setTtl(PartitionId p, std::string_view key, int64_t ttlMs) {
  if (ttlMs < 0) return false;
  Partition* part = partitionAt(p, false);
  if (!part) return false;
  const int64_t now = clock_.nowMs();
  const uint64_t hash = hashOf(key);
  int64_t slot = findLive(*part, key, hash, now);
  if (slot < 0) return false;
  uint8_t* old = entryOf(part->slots[slot]);
  EntryRef oldRef(old);
  EntryImage img = oldRef.image();
  if (!oldRef.hasExpiry()) img.lastAccessMs = epochMs_ + int64_t{img.accessSec} * 1000;
  img.ttlMs = ttlMs;
  img.ttlDeadlineMs = ttlMs > 0 ? saturatingAdd(now, ttlMs) : 0;
  if (oldRef.hasExpiry() && img.hasExpiry()) {
    store<int64_t>(old + OFF_TTL_MS, img.ttlMs);
    store<int64_t>(old + OFF_TTL_DEADLINE_MS, img.ttlDeadlineMs);
    if (changeSink_) emitStore(*part, old);
    return true;
  }
  // The expiry block appears or disappears: the entry is re-encoded (not a write: no version bump,
  // no event, no eviction).
  uint8_t* fresh = allocateEntry(encodedSize(img, key.size(), oldRef.valueLen()));
  encodeEntry(fresh, img, oldRef.key(), oldRef.value());
  part->slots[slot] = taggedSlot(hash, fresh);
  bytes_ = bytes_ + allocationBytes(fresh) - allocationBytes(old);
  part->expiring += (img.hasExpiry() ? 1 : 0) - (oldRef.hasExpiry() ? 1 : 0);
  std::free(old);
  if (changeSink_) emitStore(*part, fresh);
  return true;
}

uint64_t MapRecords::clear() {
  return clearWhere([](PartitionId) { return true; });
}

uint64_t MapRecords::clearWhere(const std::function<bool(PartitionId)>& include) {
  const int64_t now = clock_.nowMs();
  uint64_t removed = 0;
  for (auto& part : partitions_) {
    if (!part || !include(part->id)) continue;
    for (uint32_t i = 0; i < part->capacity; ++i) {
      if (!occupied(part->slots[i])) continue;
      uint8_t* entry = entryOf(part->slots[i]);
      EntryRef ref(entry);
      // An expired entry was already gone for readers; it is reported as what happened to it.
      bool expired = ref.expiredAt(now);
      if (!expired) ++removed;
      emit(sink_, expired ? EntryEventType::EXPIRED : EntryEventType::REMOVED, ref.key(), {}, ref.value(),
           ref.version());
      if (changeSink_) {
        changeSink_(RecordChange{RecordChange::Kind::ERASE, part->id, ref.key(), {}, ref.version(), 0, 0, 0});
      }
    }
    freePartition(part);
  }
  sweepCursor_ = 0;
  return removed;
}

void MapRecords::freePartition(std::unique_ptr<Partition>& part) {
  for (uint32_t i = 0; i < part->capacity; ++i) {
    if (!occupied(part->slots[i])) continue;
    uint8_t* entry = entryOf(part->slots[i]);
    entries_--;
    bytes_ -= allocationBytes(entry);
    std::free(entry);
  }
  bytes_ -= part->tableBytes() + chunkBytes(sizeof(Partition));
  std::free(part->slots);
  part.reset();
}

uint64_t MapRecords::partitionSize(PartitionId p) const {
  return p < partitions_.size() && partitions_[p] ? partitions_[p]->live : 0;
}

uint64_t MapRecords::scanPartition(PartitionId p, uint64_t cursor, uint32_t limit, const ChangeSink& fn) {
  if (p >= partitions_.size() || !partitions_[p]) return 0;
  Partition& part = *partitions_[p];
  uint64_t slot = 0;
  if (cursor != 0) {
    uint64_t c = cursor - 1;
    // Rebuilt since the cursor was issued: entries may have moved, so start the partition again.
    if ((c >> 32) == (part.generation & 0xffffull)) slot = c & 0xffffffffull;
  }
  const int64_t now = clock_.nowMs();
  uint32_t count = 0;
  for (; slot < part.capacity; ++slot) {
    if (count == limit) return (((part.generation & 0xffffull) << 32) | slot) + 1;
    uint64_t s = part.slots[slot];
    if (!occupied(s)) continue;
    EntryRef ref(entryOf(s));
    if (ref.expiredAt(now)) continue;
    fn(RecordChange{RecordChange::Kind::STORE, p, ref.key(), ref.value(), ref.version(), ref.ttlDeadlineMs(),
                    ref.ttlMs(), ref.maxIdleMs()});
    ++count;
  }
  return 0;
}

MapRecords::Digest MapRecords::digest(PartitionId p, int64_t expiringBeforeMs) {
  Digest d;
  scanPartition(p, 0, std::numeric_limits<uint32_t>::max(), [&d, expiringBeforeMs](const RecordChange& c) {
    if (c.maxIdleMs > 0 || (c.expirationTimeMs != 0 && c.expirationTimeMs < expiringBeforeMs)) return;
    uint64_t valueHash = XXH3_64bits_withSeed(c.value.data(), c.value.size(), c.version);
    d.sum += XXH3_64bits_withSeed(c.key.data(), c.key.size(), valueHash);
    ++d.entries;
  });
  return d;
}

void MapRecords::applyReplicated(const RecordChange& c) {
  if (c.kind == RecordChange::Kind::STORE) {
    auto sink = std::move(sink_);  // evictions it causes are this member's business, not events
    bool stored = restore(c.partition, c.key, c.value, c.version, c.expirationTimeMs, c.ttlMs, c.maxIdleMs);
    sink_ = std::move(sink);
    if (stored && changeSink_) changeSink_(c);
    return;
  }
  Partition* part = partitionAt(c.partition, false);
  if (!part) return;
  int64_t slot = part->find(c.key, hashOf(c.key));
  if (slot < 0) return;
  eraseAt(*part, static_cast<size_t>(slot), EntryEventType::REMOVED, false);
  maybeShrink(*part);
}

void MapRecords::dropPartition(PartitionId p) {
  if (p >= partitions_.size() || !partitions_[p]) return;
  freePartition(partitions_[p]);
  sweepCursor_ = 0;
}

size_t MapRecords::sweepExpired(size_t budget) {
  const int64_t now = clock_.nowMs();
  const size_t n = partitions_.size();
  const size_t maxSlots = budget > std::numeric_limits<size_t>::max() / SWEEP_SLOTS_PER_BUDGET
                              ? std::numeric_limits<size_t>::max()
                              : budget * SWEEP_SLOTS_PER_BUDGET;
  size_t p = static_cast<size_t>(sweepCursor_ >> 32) % n;
  uint32_t slot = static_cast<uint32_t>(sweepCursor_);
  size_t removed = 0, examined = 0, partitionsDone = 0;
  // One lap at most: every partition once, plus the start of the one the cursor was inside.
  while (removed < budget && examined < maxSlots && partitionsDone <= n) {
    Partition* part = partitions_[p].get();
    if (!part || part->expiring == 0 || slot >= part->capacity) {
      if (part) maybeShrink(*part);
      p = (p + 1) % n;
      slot = 0;
      ++partitionsDone;
      continue;
    }
    uint64_t s = part->slots[slot];
    if (occupied(s) && EntryRef(entryOf(s)).expiredAt(now)) {
      eraseAt(*part, slot, EntryEventType::EXPIRED);
      ++removed;
    }
    ++slot;
    ++examined;
  }
  sweepCursor_ = (uint64_t{p} << 32) | slot;
  // Limits lowered by setConfig take effect here too, within the same budget.
  if (config_.eviction != EvictionPolicy::NONE && budget > removed) {
    makeRoom(0, 0, nullptr, now, budget - removed);
  }
  return removed;
}

// Cursor layout (before the +1 that keeps 0 meaning "start"): partition id in the high bits,
// then the partition table's generation (truncated), then the slot index in the low 32 bits.
uint64_t MapRecords::scan(uint64_t cursor, uint32_t limit, bool withValues, std::vector<ScanItem>* out) {
  constexpr uint32_t SLOT_BITS = 32;
  const size_t n = partitions_.size();
  const uint32_t partitionBits = bitsFor(n);
  const uint32_t generationBits = 64 - SLOT_BITS - partitionBits;
  const uint64_t generationMask = generationBits >= 64 ? ~uint64_t{0} : (uint64_t{1} << generationBits) - 1;
  auto encode = [&](uint64_t p, uint64_t generation, uint64_t slot) {
    return (((p << generationBits) | (generation & generationMask)) << SLOT_BITS | slot) + 1;
  };

  uint64_t p = 0, slot = 0, generation = 0;
  bool resuming = false;
  if (cursor != 0) {
    uint64_t c = cursor - 1;
    slot = c & 0xffffffffull;
    generation = (c >> SLOT_BITS) & generationMask;
    p = generationBits + SLOT_BITS >= 64 ? 0 : c >> (SLOT_BITS + generationBits);
    resuming = true;
  }
  const int64_t now = clock_.nowMs();
  uint32_t count = 0;
  for (; p < n; ++p, slot = 0) {
    Partition* part = partitions_[p].get();
    // Rebuilt since the cursor was issued: entries may have moved, so restart this partition.
    if (resuming && (!part || (part->generation & generationMask) != generation)) slot = 0;
    resuming = false;
    if (!part) continue;
    for (; slot < part->capacity; ++slot) {
      if (count == limit) return encode(p, part->generation, slot);
      uint64_t s = part->slots[slot];
      if (!occupied(s)) continue;
      EntryRef ref(entryOf(s));
      if (ref.expiredAt(now)) continue;  // gone for readers; the sweep will reclaim it
      out->push_back(ScanItem{std::string(ref.key()), withValues ? std::string(ref.value()) : std::string()});
      ++count;
    }
  }
  return 0;
}

}  // namespace shoal::node

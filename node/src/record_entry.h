// The encoding of one record-store entry (one malloc allocation: header, optional expiry block,
// key, value, version and times) and of the tagged slots that point to entries. Private to
// record_store.cpp; the layout and why it is so compact are described there.
#pragma once

#include <malloc.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string_view>

#include "record_store.h"

namespace shoal::node::entry {

inline constexpr uint64_t EMPTY_SLOT = 0;
inline constexpr uint64_t TOMBSTONE = 1;  // entry pointers are 16-aligned, so never 0 or 1
inline constexpr int TAG_SHIFT = 48;      // x86-64 / aarch64 user pointers fit in 48 bits
inline constexpr uint64_t POINTER_MASK = (uint64_t{1} << TAG_SHIFT) - 1;
inline constexpr uint32_t MIN_CAPACITY = 8;
inline constexpr uint32_t MAX_CAPACITY = uint32_t{1} << 31;
// The partition id is xxh3(key, seed 0) mod P; a different seed keeps the table's slot and tag
// bits independent of which partition the key landed in.
inline constexpr uint64_t TABLE_HASH_SEED = 0x5d0a15eed5ull;
inline constexpr size_t MALLOC_CHUNK_HEADER = sizeof(size_t);  // glibc's per-chunk size field

// Entry layout (see the file comment).
inline constexpr size_t OFF_ACCESS_SEC = 0;
inline constexpr size_t OFF_HITS = 4;
inline constexpr size_t OFF_FLAGS = 8;
inline constexpr size_t OFF_LFU = 9;
inline constexpr size_t FIXED_BYTES = 10;
inline constexpr size_t OFF_TTL_MS = FIXED_BYTES;
inline constexpr size_t OFF_MAX_IDLE_MS = FIXED_BYTES + 8;
inline constexpr size_t OFF_TTL_DEADLINE_MS = FIXED_BYTES + 16;
inline constexpr size_t OFF_LAST_ACCESS_MS = FIXED_BYTES + 24;
inline constexpr size_t EXPIRY_BYTES = 32;
inline constexpr uint8_t FLAG_EXPIRY = 1;

// Redis's LFU: a logarithmic 8-bit counter that new keys start at LFU_INIT (so they are not the
// first victims) and that loses one point per LFU_DECAY_SECONDS without access.
inline constexpr uint8_t LFU_INIT = 5;
inline constexpr double LFU_LOG_FACTOR = 10;
inline constexpr uint32_t LFU_DECAY_SECONDS = 60;

// The sweep looks at this many slots per entry it may remove, so a call is bounded even when
// almost nothing has expired.
inline constexpr size_t SWEEP_SLOTS_PER_BUDGET = 16;

template <class T>
inline T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
inline void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

inline size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline uint8_t* putVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

inline const uint8_t* getVarint(const uint8_t* p, uint64_t* v) {
  uint64_t r = 0;
  int shift = 0;
  while (*p & 0x80) {
    r |= static_cast<uint64_t>(*p++ & 0x7f) << shift;
    shift += 7;
  }
  r |= static_cast<uint64_t>(*p++) << shift;
  *v = r;
  return p;
}

inline int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

// Everything an entry records besides its key and value, decoded.
struct EntryImage {
  uint32_t accessSec = 0;
  uint32_t hits = 0;
  uint8_t lfu = LFU_INIT;
  int64_t ttlMs = 0;
  int64_t maxIdleMs = 0;
  int64_t ttlDeadlineMs = 0;  // 0: no TTL deadline (restore may set one without a TTL setting)
  int64_t lastAccessMs = 0;   // exact; kept only with an expiry block (max-idle needs ms)
  uint64_t version = 1;
  uint32_t createSec = 0;
  uint32_t updateSec = 0;

  bool hasExpiry() const { return ttlMs > 0 || maxIdleMs > 0 || ttlDeadlineMs > 0; }
};

inline size_t encodedSize(const EntryImage& m, size_t keyLen, size_t valueLen) {
  return FIXED_BYTES + (m.hasExpiry() ? EXPIRY_BYTES : 0) + varintSize(keyLen) + varintSize(valueLen) +
         keyLen + valueLen + varintSize(m.version) + varintSize(m.createSec) +
         varintSize(m.updateSec - m.createSec);
}

// memmove because a rewrite in place passes the entry's own key back in.
inline void encodeEntry(uint8_t* dst, const EntryImage& m, std::string_view key, std::string_view value) {
  store<uint32_t>(dst + OFF_ACCESS_SEC, m.accessSec);
  store<uint32_t>(dst + OFF_HITS, m.hits);
  dst[OFF_FLAGS] = m.hasExpiry() ? FLAG_EXPIRY : 0;
  dst[OFF_LFU] = m.lfu;
  uint8_t* p = dst + FIXED_BYTES;
  if (m.hasExpiry()) {
    store<int64_t>(dst + OFF_TTL_MS, m.ttlMs);
    store<int64_t>(dst + OFF_MAX_IDLE_MS, m.maxIdleMs);
    store<int64_t>(dst + OFF_TTL_DEADLINE_MS, m.ttlDeadlineMs);
    store<int64_t>(dst + OFF_LAST_ACCESS_MS, m.lastAccessMs);
    p += EXPIRY_BYTES;
  }
  p = putVarint(p, key.size());
  p = putVarint(p, value.size());
  if (!key.empty()) std::memmove(p, key.data(), key.size());
  p += key.size();
  if (!value.empty()) std::memmove(p, value.data(), value.size());
  p += value.size();
  p = putVarint(p, m.version);
  p = putVarint(p, m.createSec);
  putVarint(p, m.updateSec - m.createSec);
}

// A decoded view of one entry allocation.
class EntryRef {
 public:
  explicit EntryRef(uint8_t* base) : base_(base) {
    const uint8_t* p = base + FIXED_BYTES + (hasExpiry() ? EXPIRY_BYTES : 0);
    uint64_t keyLen, valueLen;
    p = getVarint(p, &keyLen);
    p = getVarint(p, &valueLen);
    keyLen_ = keyLen;
    valueLen_ = valueLen;
    key_ = reinterpret_cast<const char*>(p);
  }

  uint8_t* base() const { return base_; }
  bool hasExpiry() const { return base_[OFF_FLAGS] & FLAG_EXPIRY; }
  std::string_view key() const { return {key_, keyLen_}; }
  std::string_view value() const { return {key_ + keyLen_, valueLen_}; }
  size_t valueLen() const { return valueLen_; }
  uint32_t accessSec() const { return load<uint32_t>(base_ + OFF_ACCESS_SEC); }
  uint8_t lfu() const { return base_[OFF_LFU]; }
  int64_t ttlMs() const { return hasExpiry() ? load<int64_t>(base_ + OFF_TTL_MS) : 0; }
  int64_t maxIdleMs() const { return hasExpiry() ? load<int64_t>(base_ + OFF_MAX_IDLE_MS) : 0; }
  int64_t ttlDeadlineMs() const { return hasExpiry() ? load<int64_t>(base_ + OFF_TTL_DEADLINE_MS) : 0; }

  uint64_t version() const {
    uint64_t v;
    getVarint(tail(), &v);
    return v;
  }

  // 0: never. The earlier of the TTL deadline and the idle deadline.
  int64_t expirationMs() const {
    if (!hasExpiry()) return 0;
    int64_t ttlDeadline = load<int64_t>(base_ + OFF_TTL_DEADLINE_MS);
    int64_t maxIdle = load<int64_t>(base_ + OFF_MAX_IDLE_MS);
    int64_t idleDeadline =
        maxIdle > 0 ? saturatingAdd(load<int64_t>(base_ + OFF_LAST_ACCESS_MS), maxIdle) : 0;
    if (ttlDeadline == 0) return idleDeadline;
    if (idleDeadline == 0) return ttlDeadline;
    return std::min(ttlDeadline, idleDeadline);
  }

  bool expiredAt(int64_t nowMs) const {
    int64_t deadline = expirationMs();
    return deadline != 0 && nowMs > deadline;
  }

  EntryImage image() const {
    EntryImage m;
    m.accessSec = accessSec();
    m.hits = load<uint32_t>(base_ + OFF_HITS);
    m.lfu = lfu();
    if (hasExpiry()) {
      m.ttlMs = load<int64_t>(base_ + OFF_TTL_MS);
      m.maxIdleMs = load<int64_t>(base_ + OFF_MAX_IDLE_MS);
      m.ttlDeadlineMs = load<int64_t>(base_ + OFF_TTL_DEADLINE_MS);
      m.lastAccessMs = load<int64_t>(base_ + OFF_LAST_ACCESS_MS);
    }
    uint64_t v;
    const uint8_t* p = getVarint(tail(), &m.version);
    p = getVarint(p, &v);
    m.createSec = static_cast<uint32_t>(v);
    getVarint(p, &v);
    m.updateSec = static_cast<uint32_t>(m.createSec + v);
    return m;
  }

 private:
  const uint8_t* tail() const { return reinterpret_cast<const uint8_t*>(key_) + keyLen_ + valueLen_; }

  uint8_t* base_;
  const char* key_;
  size_t keyLen_;
  size_t valueLen_;
};

inline uint64_t hashOf(std::string_view key) {
  return XXH3_64bits_withSeed(key.data(), key.size(), TABLE_HASH_SEED);
}

inline bool occupied(uint64_t slot) {
  return slot > TOMBSTONE;
}

inline uint8_t* entryOf(uint64_t slot) {
  return reinterpret_cast<uint8_t*>(slot & POINTER_MASK);
}

inline uint64_t taggedSlot(uint64_t hash, const uint8_t* entry) {
  return (hash >> TAG_SHIFT << TAG_SHIFT) | reinterpret_cast<uintptr_t>(entry);
}

// One entry allocation; its address must leave the top 16 bits free for the tag.
inline uint8_t* allocateEntry(size_t size) {
  auto* entry = static_cast<uint8_t*>(std::malloc(size));
  if (!entry) throw std::bad_alloc();
  if (reinterpret_cast<uintptr_t>(entry) & ~POINTER_MASK) {
    std::free(entry);
    throw std::runtime_error("record store: allocator returned a pointer above 2^48");
  }
  return entry;
}

inline uint64_t allocationBytes(const void* p) {
  return malloc_usable_size(const_cast<void*>(p)) + MALLOC_CHUNK_HEADER;
}

// The glibc chunk for a request of n bytes: header added, rounded to 16, at least 32.
inline uint64_t chunkBytes(size_t n) {
  return std::max<uint64_t>(32, (n + MALLOC_CHUNK_HEADER + 15) & ~uint64_t{15});
}

// An upper bound of what glibc charges for a request of n bytes, for limits checked before the
// allocation exists: the 16-byte-rounded chunk, plus a chunk split remainder glibc may hand out
// whole, or page rounding when a large request is served by mmap.
inline uint64_t estimatedAllocationBytes(size_t n) {
  uint64_t bound = chunkBytes(n) + 16;
  if (n >= 64 * 1024) {
    bound = std::max<uint64_t>(bound, (n + 2 * MALLOC_CHUNK_HEADER + 4095) & ~uint64_t{4095});
  }
  return bound;
}

inline uint8_t lfuDecayed(uint8_t counter, uint32_t accessSec, uint32_t nowSec) {
  uint32_t periods = nowSec > accessSec ? (nowSec - accessSec) / LFU_DECAY_SECONDS : 0;
  return periods >= counter ? 0 : static_cast<uint8_t>(counter - periods);
}

inline uint8_t lfuIncremented(uint8_t counter, uint64_t random) {
  if (counter == 255) return counter;
  if (counter < LFU_INIT) return counter + 1;
  double r = static_cast<double>(random >> 11) * 0x1.0p-53;
  double p = 1.0 / ((counter - LFU_INIT) * LFU_LOG_FACTOR + 1);
  return r < p ? counter + 1 : counter;
}

inline int64_t resolveMs(int64_t requested, int64_t mapDefault) {
  int64_t v = requested < 0 ? mapDefault : requested;
  return v > 0 ? v : 0;
}

inline void emit(const EventSink& sink, EntryEventType type, std::string_view key, std::string_view value,
                 std::string_view oldValue, uint64_t version) {
  if (sink) sink(EntryEvent{type, key, value, oldValue, version});
}

inline uint32_t bitsFor(uint64_t n) {  // bits needed to hold 0 .. n-1
  uint32_t b = 0;
  while (b < 64 && (uint64_t{1} << b) < n) ++b;
  return b;
}

}  // namespace shoal::node::entry

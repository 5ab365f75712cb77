// Byte layouts of RocksDbStore keys and values (see README "Layout on disk"). Keys sort by
// partition, then map, then key, so a partition and a map within it are contiguous ranges.
//   key   = partition u16 BE | map length u16 BE | map bytes | key bytes
//   value = format u8 (=1) | flags u8 | version u64 BE | expirationTimeMs i64 BE | value bytes
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shoal/persistence/map_store.h"

namespace shoal::persistence::codec {

inline constexpr uint8_t VALUE_FORMAT = 1;
inline constexpr size_t VALUE_HEADER_BYTES = 18;
inline constexpr size_t MAX_MAP_NAME_BYTES = 0xFFFF;
// Partition ids are u16 and 0xFFFF is never used, so every partition prefix has a successor
// (the end of its range for DeleteRange and iterator bounds).
inline constexpr uint32_t MAX_PARTITIONS = 0xFFFF;

void putU16(std::string& out, uint16_t v);
void putU32(std::string& out, uint32_t v);
void putU64(std::string& out, uint64_t v);
uint16_t getU16(std::string_view in);  // callers check the length first
uint32_t getU32(std::string_view in);
uint64_t getU64(std::string_view in);

std::string partitionPrefix(uint32_t partition);                  // 2 bytes
std::string mapPrefix(uint32_t partition, std::string_view map);  // partition | map
std::string storeKey(uint32_t partition, std::string_view map, std::string_view key);

struct DecodedKey {
  uint32_t partition = 0;
  std::string_view map;
  std::string_view key;
};
std::optional<DecodedKey> decodeStoreKey(std::string_view bytes);

std::string encodeValue(const StoredMeta& meta, std::string_view value);
struct DecodedValue {
  StoredMeta meta;
  std::string_view value;
};
std::optional<DecodedValue> decodeValue(std::string_view bytes);

// The smallest string greater than every string starting with `prefix`; nullopt if none (all 0xFF).
std::optional<std::string> prefixSuccessor(std::string_view prefix);

}  // namespace shoal::persistence::codec

// Encoding of RocksDbStore keys and value headers; big-endian so byte order is numeric order.
#include "key_codec.h"

namespace shoal::persistence::codec {

void putU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void putU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void putU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint16_t getU16(std::string_view in) {
  return static_cast<uint16_t>((static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]));
}

uint32_t getU32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint64_t getU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string partitionPrefix(uint32_t partition) {
  std::string out;
  putU16(out, static_cast<uint16_t>(partition));
  return out;
}

std::string mapPrefix(uint32_t partition, std::string_view map) {
  std::string out;
  out.reserve(4 + map.size());
  putU16(out, static_cast<uint16_t>(partition));
  putU16(out, static_cast<uint16_t>(map.size()));
  out.append(map);
  return out;
}

std::string storeKey(uint32_t partition, std::string_view map, std::string_view key) {
  std::string out = mapPrefix(partition, map);
  out.append(key);
  return out;
}

std::optional<DecodedKey> decodeStoreKey(std::string_view bytes) {
  if (bytes.size() < 4) return std::nullopt;
  size_t mapLength = getU16(bytes.substr(2));
  if (bytes.size() < 4 + mapLength) return std::nullopt;
  return DecodedKey{getU16(bytes), bytes.substr(4, mapLength), bytes.substr(4 + mapLength)};
}

std::string encodeValue(const StoredMeta& meta, std::string_view value) {
  std::string out;
  out.reserve(VALUE_HEADER_BYTES + value.size());
  out.push_back(static_cast<char>(VALUE_FORMAT));
  out.push_back(static_cast<char>(meta.flags));
  putU64(out, meta.version);
  putU64(out, static_cast<uint64_t>(meta.expirationTimeMs));
  out.append(value);
  return out;
}

std::optional<DecodedValue> decodeValue(std::string_view bytes) {
  if (bytes.size() < VALUE_HEADER_BYTES || static_cast<uint8_t>(bytes[0]) != VALUE_FORMAT) {
    return std::nullopt;
  }
  DecodedValue out;
  out.meta.flags = static_cast<uint8_t>(bytes[1]);
  out.meta.version = getU64(bytes.substr(2));
  out.meta.expirationTimeMs = static_cast<int64_t>(getU64(bytes.substr(10)));
  out.value = bytes.substr(VALUE_HEADER_BYTES);
  return out;
}

std::optional<std::string> prefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto last = static_cast<uint8_t>(out.back());
    if (last != 0xFF) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return std::nullopt;
}

}  // namespace shoal::persistence::codec

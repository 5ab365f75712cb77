// Codecs turn typed keys and values into the bytes a map stores. Built in: std::string, byte
// vectors, and integers (decimal text, so Redis INCR and shoalctl read them as numbers). For your
// own types specialise shoal::Codec<T> with `encode` and `decode` (see examples/ for a Cap'n
// Proto struct codec).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shoal/error.h"

namespace shoal {

template <typename T, typename Enable = void>
struct Codec;  // specialise: static std::string encode(const T&); static T decode(std::string_view);

template <>
struct Codec<std::string> {
  static std::string encode(const std::string& v) { return v; }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

template <>
struct Codec<std::vector<uint8_t>> {
  static std::string encode(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
  static std::vector<uint8_t> decode(std::string_view bytes) { return {bytes.begin(), bytes.end()}; }
};

template <typename T>
struct Codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static std::string encode(T v) { return std::to_string(v); }
  static T decode(std::string_view bytes) {
    T v{};
    auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), v);
    if (ec != std::errc() || end != bytes.data() + bytes.size()) {
      throw Error(ErrorCode::INVALID_ARGUMENT,
                  "stored bytes '" + std::string(bytes.substr(0, 32)) + "' are not an integer of this type");
    }
    return v;
  }
};

}  // namespace shoal

// Codecs: strings, bytes and integers round-trip; malformed integers are refused.
#include "shoal/client/codec.h"

#include <catch2/catch.hpp>

TEST_CASE("client: codecs round-trip", "[client][unit]") {
  using shoal::Codec;
  CHECK(Codec<std::string>::decode(Codec<std::string>::encode("héllo\0x")) == "héllo\0x");
  std::vector<uint8_t> bytes = {0, 1, 255, 7};
  CHECK(Codec<std::vector<uint8_t>>::decode(Codec<std::vector<uint8_t>>::encode(bytes)) == bytes);
  CHECK(Codec<int64_t>::encode(-42) == "-42");
  CHECK(Codec<int64_t>::decode("-42") == -42);
  CHECK(Codec<uint32_t>::decode("4294967295") == 4294967295u);
  CHECK_THROWS_AS(Codec<int>::decode("12abc"), shoal::Error);
  CHECK_THROWS_AS(Codec<uint8_t>::decode("300"), shoal::Error);
  CHECK_THROWS_AS(Codec<int>::decode(""), shoal::Error);
}

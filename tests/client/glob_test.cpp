// The one glob matcher (shoal/glob.h) that KEYS, SCAN MATCH, PSUBSCRIBE and pattern subscriptions
// share: Redis's syntax and edge cases.
#include "shoal/glob.h"

#include <catch2/catch.hpp>
#include <string>

using shoal::globMatch;

TEST_CASE("glob: stars and question marks match runs and single characters", "[glob][unit]") {
  CHECK(globMatch("orders.*", "orders.eu"));
  CHECK(globMatch("orders.*", "orders."));
  CHECK_FALSE(globMatch("orders.*", "orders"));
  CHECK_FALSE(globMatch("orders.*", "ordersX"));
  CHECK(globMatch("*", ""));
  CHECK(globMatch("**", "abc"));
  CHECK(globMatch("*.eu", "orders.eu"));
  CHECK_FALSE(globMatch("*.eu", "orders.us"));
  CHECK(globMatch("a*b*c", "axxbyyc"));
  CHECK_FALSE(globMatch("a*b*c", "axxbyy"));
  CHECK(globMatch("orders.??", "orders.eu"));
  CHECK_FALSE(globMatch("orders.??", "orders.e"));
  CHECK_FALSE(globMatch("?", ""));
}

TEST_CASE("glob: classes, ranges, negation and escapes", "[glob][unit]") {
  CHECK(globMatch("orders.[eu]*", "orders.eu"));
  CHECK(globMatch("orders.[eu]*", "orders.us"));
  CHECK_FALSE(globMatch("orders.[eu]*", "orders.asia"));
  CHECK(globMatch("h[^e]llo", "hallo"));
  CHECK_FALSE(globMatch("h[^e]llo", "hello"));
  CHECK(globMatch("k[0-9]", "k7"));
  CHECK(globMatch("k[9-0]", "k7"));  // a reversed range is swapped, as in Redis
  CHECK_FALSE(globMatch("k[0-9]", "kx"));
  CHECK(globMatch("a\\*b", "a*b"));
  CHECK_FALSE(globMatch("a\\*b", "axb"));
  CHECK(globMatch("a[\\]]b", "a]b"));
  CHECK(globMatch("a[bc", "ab"));  // an unclosed class runs to the end
  CHECK(globMatch("\\?", "?"));
  CHECK_FALSE(globMatch("\\?", "x"));
}

TEST_CASE("glob: case matters unless nocase, and hostile patterns stay fast", "[glob][unit]") {
  CHECK_FALSE(globMatch("Orders.*", "orders.eu"));
  CHECK(globMatch("Orders.*", "orders.eu", true));
  CHECK(globMatch("[A-C]x", "bx", true));
  std::string text(5000, 'a');
  CHECK_FALSE(globMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
}

// Anti-entropy digests: equal for equal contents whatever the order they were written in, and
// different as soon as one entry differs in value, version or presence.
#include <algorithm>
#include <random>

#include "record_store_fixture.h"

using namespace shoal::node;
using namespace shoal::node::test;

namespace {
constexpr PartitionId P = 7;

void fill(Store& s, const std::vector<int>& order) {
  for (int i : order) s.map.restore(P, keyOf(i), "value-" + std::to_string(i), 3, 0, 0, 0);
}
}  // namespace

TEST_CASE("anti-entropy: a partition's digest depends on its entries, not on their order", "[node][unit]") {
  auto seed = testSeed();
  INFO("seed " << seed << " (SHOAL_TEST_SEED)");
  std::mt19937_64 rng(seed);
  std::vector<int> order(500);
  for (int i = 0; i < 500; ++i) order[i] = i;
  Store a, b;
  fill(a, order);
  std::shuffle(order.begin(), order.end(), rng);
  fill(b, order);
  auto d = a.map.digest(P, 0);
  CHECK(d.entries == 500);
  CHECK(d == b.map.digest(P, 0));
  CHECK(a.map.digest(P + 1, 0).entries == 0);

  SECTION("a different value") {
    b.map.restore(P, keyOf(42), "other", 3, 0, 0, 0);
    CHECK(b.map.digest(P, 0) != d);
  }
  SECTION("a different version") {
    b.map.restore(P, keyOf(42), "value-42", 4, 0, 0, 0);
    CHECK(b.map.digest(P, 0) != d);
  }
  SECTION("a missing entry") {
    b.map.remove(P, keyOf(42), nullptr);
    CHECK(b.map.digest(P, 0) != d);
  }
  SECTION("entries with a max-idle or about to expire are left out") {
    b.map.restore(P, "idle", "x", 1, 0, 0, 60000);
    int64_t soon = b.clock.nowMs() + 1000;
    b.map.restore(P, "expiring", "x", 1, soon, 1000, 0);
    CHECK(b.map.digest(P, soon + 1) == d);
    CHECK(b.map.digest(P, soon) != d);  // expiring later than the cut: compared
  }
}

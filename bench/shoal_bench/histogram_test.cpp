// LatencyHistogram: bucket bounds and percentiles against values computed by hand.
#include "histogram.h"

#include <catch2/catch.hpp>
#include <random>

using shoal::bench::LatencyHistogram;

TEST_CASE("bench: every value lands in a bucket whose upper edge is within 1/64 above it", "[bench][unit]") {
  std::mt19937_64 rng(42);  // fixed seed: the test is reproducible
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    v = std::min<uint64_t>(v, (uint64_t(1) << 40) - 1);
    auto index = LatencyHistogram::indexOf(v);
    REQUIRE(index < LatencyHistogram::BUCKET_COUNT);
    auto upper = LatencyHistogram::upperEdgeOf(index);
    REQUIRE(upper >= v);
    REQUIRE(double(upper - v) <= double(v) / 64.0 + 1.0);
    if (index > 0) REQUIRE(LatencyHistogram::upperEdgeOf(index - 1) < v);
  }
}

TEST_CASE("bench: percentiles of a known distribution", "[bench][unit]") {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.record(v * 1000);  // 1 us .. 10 ms, uniform
  REQUIRE(h.count() == 10000);
  REQUIRE(h.min() == 1000);
  REQUIRE(h.max() == 10'000'000);
  REQUIRE(h.valueAt(0.5) == Approx(5'000'000).epsilon(1.0 / 64));
  REQUIRE(h.valueAt(0.99) == Approx(9'900'000).epsilon(1.0 / 64));
  REQUIRE(h.valueAt(0.999) == Approx(9'990'000).epsilon(1.0 / 64));
  REQUIRE(h.valueAt(1.0) == 10'000'000);
  REQUIRE(h.mean() == Approx(5'000'500));
}

TEST_CASE("bench: merged histograms equal one that recorded everything", "[bench][unit]") {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 5000; ++v) {
    (v % 3 == 0 ? a : b).record(v * 37);
    all.record(v * 37);
  }
  a.merge(b);
  REQUIRE(a.count() == all.count());
  REQUIRE(a.min() == all.min());
  REQUIRE(a.max() == all.max());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) REQUIRE(a.valueAt(q) == all.valueAt(q));
}

TEST_CASE("bench: an empty histogram reports zeros", "[bench][unit]") {
  LatencyHistogram h;
  REQUIRE(h.count() == 0);
  REQUIRE(h.valueAt(0.99) == 0);
  REQUIRE(h.min() == 0);
  REQUIRE(h.mean() == 0.0);
}

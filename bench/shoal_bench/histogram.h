// LatencyHistogram: a small HdrHistogram-like recorder of latencies in nanoseconds. Buckets are
// log-linear — each power of two is split into SUB_BUCKETS equal slices — so any recorded value
// is reported within 1/SUB_BUCKETS (about 1.6%) of itself, from 1 ns up to about 18 minutes,
// in a fixed 18 KB table. Not thread-safe: give each recording thread its own and merge().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace shoal::bench {

class LatencyHistogram {
 public:
  static constexpr uint32_t SUB_BUCKET_BITS = 6;
  static constexpr uint64_t SUB_BUCKETS = uint64_t(1) << SUB_BUCKET_BITS;
  static constexpr uint32_t MAX_EXPONENT = 40;  // values clamp to 2^40 ns (about 18 minutes)
  static constexpr size_t BUCKET_COUNT = SUB_BUCKETS * (MAX_EXPONENT - SUB_BUCKET_BITS + 1);

  void record(uint64_t nanos);
  void merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : double(sum_) / double(count_); }
  // The smallest bucket upper edge at or below which `quantile` (0..1) of the values lie; never
  // above max(). 0 when empty.
  uint64_t valueAt(double quantile) const;

  // Exposed for tests: the bucket of a value and the largest value that bucket holds.
  static size_t indexOf(uint64_t nanos);
  static uint64_t upperEdgeOf(size_t index);

 private:
  std::array<uint64_t, BUCKET_COUNT> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace shoal::bench

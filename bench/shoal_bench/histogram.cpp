// Log-linear latency buckets; see histogram.h.
#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace shoal::bench {

size_t LatencyHistogram::indexOf(uint64_t nanos) {
  nanos = std::min<uint64_t>(nanos, (uint64_t(1) << MAX_EXPONENT) - 1);
  if (nanos < SUB_BUCKETS) return size_t(nanos);
  // Exponent e >= SUB_BUCKET_BITS; the SUB_BUCKET_BITS bits below the leading one pick the slice.
  uint32_t e = uint32_t(std::bit_width(nanos)) - 1;
  uint64_t slice = (nanos >> (e - SUB_BUCKET_BITS)) - SUB_BUCKETS;
  return size_t(SUB_BUCKETS + (e - SUB_BUCKET_BITS) * SUB_BUCKETS + slice);
}

uint64_t LatencyHistogram::upperEdgeOf(size_t index) {
  if (index < SUB_BUCKETS) return index;
  uint64_t group = (index - SUB_BUCKETS) / SUB_BUCKETS;  // e - SUB_BUCKET_BITS
  uint64_t slice = (index - SUB_BUCKETS) % SUB_BUCKETS;
  uint64_t width = uint64_t(1) << group;
  return ((SUB_BUCKETS + slice) << group) + width - 1;
}

void LatencyHistogram::record(uint64_t nanos) {
  buckets_[indexOf(nanos)]++;
  count_++;
  sum_ += nanos;
  min_ = std::min(min_, nanos);
  max_ = std::max(max_, nanos);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < BUCKET_COUNT; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::valueAt(double quantile) const {
  if (count_ == 0) return 0;
  quantile = std::clamp(quantile, 0.0, 1.0);
  // The rank of the value asked for, 1-based: p50 of 10 values is the 5th.
  auto rank = std::max<uint64_t>(1, uint64_t(std::ceil(quantile * double(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < BUCKET_COUNT; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(upperEdgeOf(i), max_);
  }
  return max_;
}

}  // namespace shoal::bench

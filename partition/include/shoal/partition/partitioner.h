// Key -> partition id. Pure logic: xxh3 of the key bytes (or of the `{tag}` inside the key, the
// Redis hash-tag rule, so related keys co-locate) modulo the cluster's fixed partition count.
#pragma once

#include <cstdint>
#include <string_view>

namespace shoal::partition {

using PartitionId = uint32_t;

inline constexpr uint32_t DEFAULT_PARTITION_COUNT = 271;
inline constexpr uint32_t MAX_PARTITION_COUNT = 65535;

// The part of `key` that decides its partition: the bytes between the first '{' and the next '}'
// when that span is non-empty, else the whole key (exactly Redis Cluster's hash-tag rule).
std::string_view partitionKeyOf(std::string_view key);

// xxh3_64 of `bytes` with seed 0. Stable across releases: it is part of the wire contract.
uint64_t hashKey(std::string_view bytes);

class Partitioner {
 public:
  // `partitionCount` must be in [1, MAX_PARTITION_COUNT]; KJ-free so clients can use it.
  explicit Partitioner(uint32_t partitionCount = DEFAULT_PARTITION_COUNT);

  uint32_t partitionCount() const { return count_; }
  PartitionId partitionOf(std::string_view key) const;

 private:
  uint32_t count_;
};

}  // namespace shoal::partition

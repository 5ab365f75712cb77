// Key hashing and partition ids; see partitioner.h.
#include "shoal/partition/partitioner.h"

#include <xxhash.h>

#include <stdexcept>
#include <string>

namespace shoal::partition {

std::string_view partitionKeyOf(std::string_view key) {
  auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

uint64_t hashKey(std::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

Partitioner::Partitioner(uint32_t partitionCount) : count_(partitionCount) {
  if (partitionCount == 0 || partitionCount > MAX_PARTITION_COUNT) {
    throw std::invalid_argument("partition-count must be in [1, " + std::to_string(MAX_PARTITION_COUNT) +
                                "], got " + std::to_string(partitionCount));
  }
}

PartitionId Partitioner::partitionOf(std::string_view key) const {
  return static_cast<PartitionId>(hashKey(partitionKeyOf(key)) % count_);
}

}  // namespace shoal::partition

// Default batch operations of MapStore (one call per key) and error code names.
#include "shoal/persistence/map_store.h"

namespace shoal::persistence {

const char* storeErrorCodeName(StoreErrorCode code) {
  switch (code) {
    case StoreErrorCode::IO_ERROR:
      return "IO_ERROR";
    case StoreErrorCode::NO_SPACE:
      return "NO_SPACE";
    case StoreErrorCode::CORRUPTION:
      return "CORRUPTION";
    case StoreErrorCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case StoreErrorCode::INCOMPATIBLE:
      return "INCOMPATIBLE";
    case StoreErrorCode::LOCKED:
      return "LOCKED";
    case StoreErrorCode::UNAVAILABLE:
      return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

StoreResult<std::vector<std::optional<StoredValue>>> MapStore::loadMany(std::string_view map,
                                                                        std::span<const KeyRef> keys) {
  std::vector<std::optional<StoredValue>> out;
  out.reserve(keys.size());
  for (const KeyRef& ref : keys) {
    auto loaded = load(map, ref.partition, ref.key);
    if (!loaded) return loaded.error();
    out.push_back(std::move(*loaded));
  }
  return out;
}

StoreResult<void> MapStore::storeMany(std::span<const StoreWrite> batch) {
  for (const StoreWrite& write : batch) {
    auto done = write.value ? store(write.map, write.partition, write.key, *write.value, write.meta)
                            : erase(write.map, write.partition, write.key);
    if (!done) return done;
  }
  return {};
}

StoreResult<void> MapStore::eraseMany(std::string_view map, std::span<const KeyRef> keys) {
  for (const KeyRef& ref : keys) {
    auto done = erase(map, ref.partition, ref.key);
    if (!done) return done;
  }
  return {};
}

}  // namespace shoal::persistence

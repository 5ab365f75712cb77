// The SHOAL_DATA_DIR marker: written once when a directory is initialised, checked on every
// open, so a store never adopts (or damages) a directory that belongs to something else.
#pragma once

#include <string>

#include "shoal/persistence/rocksdb_store.h"

namespace shoal::persistence {

inline constexpr uint32_t DATA_DIR_FORMAT_VERSION = 1;
inline constexpr const char* MARKER_FILE = "SHOAL_DATA_DIR";
inline constexpr const char* DB_SUBDIR = "db";

struct PreparedDataDir {
  DataDirMarker marker;
  bool fresh = false;  // initialised by this call: the database does not exist yet
};

// Validates `options.path` against the marker, or initialises an empty (or missing) directory by
// writing the marker durably (temporary file, fsync, rename, fsync of the directory).
StoreResult<PreparedDataDir> prepareDataDir(const RocksDbStoreOptions& options, int64_t nowMs);

// Parses marker text; exposed for tests.
StoreResult<DataDirMarker> parseMarker(const std::string& text, const std::string& path);
std::string formatMarker(const DataDirMarker& marker);

}  // namespace shoal::persistence

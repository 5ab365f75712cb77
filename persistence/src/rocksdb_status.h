// Translation of rocksdb::Status into StoreError: the only place a RocksDB status is inspected,
// so that none leaves persistence/.
#pragma once

#include <rocksdb/status.h>

#include <string_view>

#include "shoal/persistence/store_result.h"

namespace shoal::persistence {

// `context` says what was being done ("store into /data/db"), and is prefixed to the message.
StoreError toStoreError(const rocksdb::Status& status, std::string_view context);

// True when the message of `status` says the disk is full (RocksDB reports it with kNoSpace, or
// wrapped in Incomplete / IOError text when a background flush failed first).
bool isNoSpace(const rocksdb::Status& status);

}  // namespace shoal::persistence

// RocksDB's info log, sent to spdlog instead of a LOG file in the data directory: one log stream
// for the member, and no log writes to a disk that may be full (RocksDB 7.8 aborts when its LOG
// file writer is used again after a failed write).
#pragma once

#include <rocksdb/env.h>

#include <memory>
#include <string>

namespace shoal::persistence {

std::shared_ptr<rocksdb::Logger> makeSpdlogLogger(std::string dbPath);

}  // namespace shoal::persistence

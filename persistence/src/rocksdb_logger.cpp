// A rocksdb::Logger that formats RocksDB's lines and hands them to spdlog. RocksDB logs every
// flush and compaction at INFO; those go to spdlog's debug level so the member log stays quiet.
#include "rocksdb_logger.h"

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>

namespace shoal::persistence {

namespace {

class SpdlogLogger final : public rocksdb::Logger {
 public:
  explicit SpdlogLogger(std::string dbPath)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), dbPath_(std::move(dbPath)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    spdlog::level::level_enum target = levelOf(level);
    if (!spdlog::should_log(target)) return;
    char buffer[1024];
    va_list copy;
    va_copy(copy, ap);
    int length = std::vsnprintf(buffer, sizeof(buffer), format, copy);
    va_end(copy);
    if (length < 0) return;
    spdlog::log(target, "rocksdb {}: {}", dbPath_,
                std::string_view(buffer, std::min<size_t>(length, sizeof(buffer) - 1)));
  }

 private:
  static spdlog::level::level_enum levelOf(rocksdb::InfoLogLevel level) {
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL:
        return spdlog::level::trace;
      case rocksdb::InfoLogLevel::INFO_LEVEL:
        return spdlog::level::debug;
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        return spdlog::level::warn;
      case rocksdb::InfoLogLevel::ERROR_LEVEL:
        return spdlog::level::err;
      case rocksdb::InfoLogLevel::FATAL_LEVEL:
        return spdlog::level::critical;
      default:
        return spdlog::level::debug;  // HEADER_LEVEL: the options dump at open
    }
  }

  std::string dbPath_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> makeSpdlogLogger(std::string dbPath) {
  return std::make_shared<SpdlogLogger>(std::move(dbPath));
}

}  // namespace shoal::persistence

// Byte layout of the write-behind log (column family "write_behind" of the RocksDbStore):
//   log key = queue name length u8 | queue name | kind ('P' pending, 'D' dead letter) | entry key
//   where entry key = the RocksDbStore key of the entry (partition | map | key), so a queue's
//   pending writes sort by partition and one log key per entry key coalesces on disk too.
//   record  = format u8 (=1) | op u8 (0 store, 1 erase) | seq u64 | firstEnqueuedMs i64 |
//             flags u8 | version u64 | expirationTimeMs i64 | attempts u32 | deadAtMs i64 |
//             error code u8 | error length u32 | error bytes | value bytes     (integers BE)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shoal/persistence/map_store.h"

namespace shoal::persistence::wblog {

inline constexpr char PENDING = 'P';
inline constexpr char DEAD = 'D';
inline constexpr size_t RECORD_FIXED_BYTES = 1 + 1 + 8 + 8 + 1 + 8 + 8 + 4 + 8 + 1 + 4;

std::string kindPrefix(std::string_view queueName, char kind);
std::string logKey(std::string_view queueName, char kind, std::string_view entryKey);

struct LogRecord {
  bool erase = false;
  uint64_t seq = 0;             // enqueue order within the queue; identifies one pending write
  int64_t firstEnqueuedMs = 0;  // first enqueue since the key was last written (delay base)
  StoredMeta meta;
  uint32_t attempts = 0;  // dead letters: failed attempts
  int64_t deadAtMs = 0;   // dead letters: when the queue gave up
  StoreError lastError;   // dead letters: the last failure
  std::string value;
};

std::string encodeRecord(const LogRecord& record);
// The same with `value` instead of record.value (which is ignored): no copy of the value first.
std::string encodeRecord(const LogRecord& record, std::string_view value);
// Where the value starts in an encoded record (its fixed part and error message come first).
inline size_t valueOffset(const LogRecord& record) {
  return RECORD_FIXED_BYTES + record.lastError.message.size();
}
std::optional<LogRecord> decodeRecord(std::string_view bytes);

}  // namespace shoal::persistence::wblog

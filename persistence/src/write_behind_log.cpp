// Encoding of write-behind log keys and records.
#include "write_behind_log.h"

#include "key_codec.h"

namespace shoal::persistence::wblog {

namespace {
constexpr uint8_t RECORD_FORMAT = 1;
constexpr size_t FIXED_BYTES = RECORD_FIXED_BYTES;
}  // namespace

std::string kindPrefix(std::string_view queueName, char kind) {
  std::string out;
  out.push_back(static_cast<char>(queueName.size()));
  out.append(queueName);
  out.push_back(kind);
  return out;
}

std::string logKey(std::string_view queueName, char kind, std::string_view entryKey) {
  std::string out = kindPrefix(queueName, kind);
  out.append(entryKey);
  return out;
}

std::string encodeRecord(const LogRecord& r) {
  return encodeRecord(r, r.value);
}

std::string encodeRecord(const LogRecord& r, std::string_view value) {
  std::string out;
  out.reserve(FIXED_BYTES + r.lastError.message.size() + value.size());
  out.push_back(static_cast<char>(RECORD_FORMAT));
  out.push_back(static_cast<char>(r.erase ? 1 : 0));
  codec::putU64(out, r.seq);
  codec::putU64(out, static_cast<uint64_t>(r.firstEnqueuedMs));
  out.push_back(static_cast<char>(r.meta.flags));
  codec::putU64(out, r.meta.version);
  codec::putU64(out, static_cast<uint64_t>(r.meta.expirationTimeMs));
  codec::putU32(out, r.attempts);
  codec::putU64(out, static_cast<uint64_t>(r.deadAtMs));
  out.push_back(static_cast<char>(r.lastError.code));
  codec::putU32(out, static_cast<uint32_t>(r.lastError.message.size()));
  out.append(r.lastError.message);
  out.append(value);
  return out;
}

std::optional<LogRecord> decodeRecord(std::string_view in) {
  if (in.size() < FIXED_BYTES || static_cast<uint8_t>(in[0]) != RECORD_FORMAT) return std::nullopt;
  LogRecord r;
  uint8_t op = static_cast<uint8_t>(in[1]);
  if (op > 1) return std::nullopt;
  r.erase = op == 1;
  r.seq = codec::getU64(in.substr(2));
  r.firstEnqueuedMs = static_cast<int64_t>(codec::getU64(in.substr(10)));
  r.meta.flags = static_cast<uint8_t>(in[18]);
  r.meta.version = codec::getU64(in.substr(19));
  r.meta.expirationTimeMs = static_cast<int64_t>(codec::getU64(in.substr(27)));
  r.attempts = codec::getU32(in.substr(35));
  r.deadAtMs = static_cast<int64_t>(codec::getU64(in.substr(39)));
  uint8_t code = static_cast<uint8_t>(in[47]);
  if (code > static_cast<uint8_t>(StoreErrorCode::UNAVAILABLE)) return std::nullopt;
  r.lastError.code = static_cast<StoreErrorCode>(code);
  uint32_t messageBytes = codec::getU32(in.substr(48));
  if (in.size() < FIXED_BYTES + messageBytes) return std::nullopt;
  r.lastError.message.assign(in.substr(FIXED_BYTES, messageBytes));
  r.value.assign(in.substr(FIXED_BYTES + messageBytes));
  return r;
}

}  // namespace shoal::persistence::wblog

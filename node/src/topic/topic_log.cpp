// A topic's ring buffer over map records; see topic_log.h.
#include "topic_log.h"

#include <cstring>

namespace shoal::node::topic {
namespace {

constexpr uint8_t FORMAT = 1;  // first byte of every encoded message

void putU32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}
void putU64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
void putBytes(std::string& out, const void* data, size_t size) {
  putU32(out, static_cast<uint32_t>(size));
  out.append(static_cast<const char*>(data), size);
}

// Reads little-endian fields from an encoded message; any overrun makes ok() false.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint64_t u64() { return fixed(8); }
  uint32_t u32() { return static_cast<uint32_t>(fixed(4)); }
  std::string_view bytes() {
    auto n = u32();
    if (!ok_ || in_.size() - at_ < n) return fail();
    auto out = in_.substr(at_, n);
    at_ += n;
    return out;
  }
  std::string_view rest() { return in_.substr(at_); }
  bool ok() const { return ok_; }

 private:
  uint64_t fixed(size_t n) {
    if (in_.size() - at_ < n) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(uint8_t(in_[at_ + i])) << (8 * i);
    at_ += n;
    return v;
  }
  std::string_view fail() {
    ok_ = false;
    return {};
  }
  std::string_view in_;
  size_t at_ = 0;
  bool ok_ = true;
};

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

}  // namespace

std::optional<std::string> invalidName(std::string_view name) {
  if (name.empty() || name.size() > MAX_TOPIC_NAME_BYTES)
    return "topic names are 1.." + std::to_string(MAX_TOPIC_NAME_BYTES) + " bytes, got " +
           std::to_string(name.size());
  if (name.find_first_of("{}") != std::string_view::npos)
    return "topic names may not contain '{' or '}' (got '" + std::string(name) + "')";
  if (name[0] == '$') return "topic names may not start with '$' (reserved)";
  return std::nullopt;
}

std::string mapNameOf(std::string_view topic) {
  return std::string(MAP_PREFIX) + std::string(topic);
}

bool isTopicMap(std::string_view mapName) {
  return mapName.substr(0, MAP_PREFIX.size()) == MAP_PREFIX;
}

std::string_view topicOfMap(std::string_view mapName) {
  return mapName.substr(MAP_PREFIX.size());
}

TopicLog::TopicLog(MapRecords& ring, PartitionId partition, std::string_view topic)
    : ring_(ring), partition_(partition), stateKey_("{" + std::string(topic) + "}") {}

std::string TopicLog::messageKey(uint64_t seq) const {
  std::string key = stateKey_;
  // Big-endian, so keys of one topic sort in sequence order in the store.
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(seq >> (8 * i)));
  return key;
}

TopicLog::State TopicLog::state() {
  std::string raw;
  State s;
  if (!ring_.get(partition_, stateKey_, &raw) || raw.size() < 16) return s;
  Reader in(raw);
  s.next = in.u64();
  s.first = in.u64();
  return s;
}

void TopicLog::saveState(const State& state) {
  std::string raw;
  putU64(raw, state.next);
  putU64(raw, state.first);
  ring_.write(partition_, stateKey_, WriteSpec{raw, 0, 0}, WriteMode::ALWAYS, nullptr);
}

TopicLog::Appended TopicLog::append(const TopicOptions& options, wire::PublishMessage::Reader message,
                                    int64_t nowMs, State& s) {
  // Messages that expired (retention) leave the ring from the oldest end; without a retention only
  // this function removes them, so `first` is exact.
  if (options.retentionMs > 0) {
    while (s.first < s.next && !ring_.containsKey(partition_, messageKey(s.first))) ++s.first;
  }
  if (s.next - s.first >= options.capacity) {
    if (options.overload == TopicOverload::REJECT) {
      return {0, "topic is full: it holds " + std::to_string(s.next - s.first) + " messages (capacity " +
                     std::to_string(options.capacity) +
                     ") younger than its retention, and its overload policy is reject; retry later"};
    }
    while (s.next - s.first >= options.capacity) ring_.remove(partition_, messageKey(s.first++), nullptr);
  }
  std::string encoded;
  encoded.reserve(encodedSize(message));
  encoded.push_back(static_cast<char>(FORMAT));
  putU64(encoded, static_cast<uint64_t>(nowMs));
  auto key = message.getKey();
  putBytes(encoded, key.begin(), key.size());
  auto headers = message.getHeaders();
  putU32(encoded, headers.size());
  for (auto h : headers) {
    putBytes(encoded, h.getName().begin(), h.getName().size());
    putBytes(encoded, h.getValue().begin(), h.getValue().size());
  }
  auto value = message.getValue();
  encoded.append(reinterpret_cast<const char*>(value.begin()), value.size());
  uint64_t seq = s.next++;
  ring_.write(partition_, messageKey(seq), WriteSpec{encoded, options.retentionMs, 0}, WriteMode::ALWAYS,
              nullptr);
  return {seq, std::nullopt};
}

bool TopicLog::read(uint64_t seq, std::string* encoded) {
  return ring_.get(partition_, messageKey(seq), encoded);
}

uint64_t TopicLog::firstHeldFrom(uint64_t from, uint64_t last) {
  auto s = state();
  uint64_t seq = std::max(from, s.first);
  while (seq <= last && !ring_.containsKey(partition_, messageKey(seq))) ++seq;
  return seq;
}

uint64_t TopicLog::retained() {
  auto n = ring_.partitionSize(partition_);
  return n > 0 ? n - 1 : 0;
}

size_t encodedSize(wire::PublishMessage::Reader message) {
  size_t n = 1 + 8 + 4 + message.getKey().size() + 4 + message.getValue().size();
  for (auto h : message.getHeaders()) n += 8 + h.getName().size() + h.getValue().size();
  return n;
}

bool decodeInto(std::string_view encoded, uint64_t seq, wire::TopicMessage::Builder out) {
  if (encoded.empty() || uint8_t(encoded[0]) != FORMAT) return false;
  Reader in(encoded.substr(1));
  auto time = static_cast<int64_t>(in.u64());
  auto key = in.bytes();
  auto count = in.u32();
  if (!in.ok() || count > encoded.size()) return false;
  out.setSeq(seq);
  out.setPublishTimeMs(time);
  out.setKey(bytesOf(key));
  auto headers = out.initHeaders(count);
  for (uint32_t i = 0; i < count; ++i) {
    auto name = in.bytes();
    auto value = in.bytes();
    if (!in.ok()) return false;
    auto text = headers[i].initName(name.size());
    if (!name.empty()) memcpy(text.begin(), name.data(), name.size());
    headers[i].setValue(bytesOf(value));
  }
  out.setValue(bytesOf(in.rest()));
  return true;
}

}  // namespace shoal::node::topic

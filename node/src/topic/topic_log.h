// A topic's ring buffer, kept as entries of an internal map (`$topic:NAME`) on the partition of the
// topic's name, so replication, partition copies, failover and persistence treat it like map data:
//   key "{NAME}"             -> the topic's state: next sequence number, oldest one possibly held
//   key "{NAME}" + seq (8 B) -> one message (publish time, key, headers, value)
// The state record is written once per batch of publishes (MapService::flushTopicStates), after
// the batch's messages and before it is replicated or stored, so a backup or a restart sees a
// state that covers every message it holds.
// The `{NAME}` hash tag puts every key on the partition of NAME. Messages carry the topic's
// retention as their TTL; the oldest is removed when the ring holds `capacity`. Shard thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "record_store.h"
#include "shoal/node/options.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::node::topic {

constexpr size_t MAX_TOPIC_NAME_BYTES = 200;
constexpr std::string_view MAP_PREFIX = "$topic:";

// Why `name` cannot name a topic (1..200 bytes, no '{' or '}', not starting with '$'), or nullopt.
std::optional<std::string> invalidName(std::string_view name);
std::string mapNameOf(std::string_view topic);  // "$topic:" + topic
bool isTopicMap(std::string_view mapName);
std::string_view topicOfMap(std::string_view mapName);  // the topic of a `$topic:` map name

class TopicLog {
 public:
  TopicLog(MapRecords& ring, PartitionId partition, std::string_view topic);

  struct State {
    uint64_t next = 1;   // the sequence number the next message gets
    uint64_t first = 1;  // no message below this is held (those at or above may have expired)
  };
  State state();
  uint64_t last() { return state().next - 1; }  // the newest sequence number (0: none yet)

  // Appends a message published now; returns its sequence number, or why it was refused
  // (overload = reject and the ring is full of messages younger than the retention). `state` is
  // the topic's state (from state(), or as a previous append of the same batch left it) and is
  // advanced here; the caller writes it back with saveState() before the batch is committed.
  struct Appended {
    uint64_t seq = 0;
    std::optional<std::string> refused;
  };
  Appended append(const TopicOptions& options, wire::PublishMessage::Reader message, int64_t nowMs,
                  State& state);
  // Writes the state record (once per batch: through change capture like any record write).
  void saveState(const State& state);

  // The encoded message `seq`, when held.
  bool read(uint64_t seq, std::string* encoded);
  // The lowest sequence number >= from that is held, up to `last` (last + 1 when none is).
  uint64_t firstHeldFrom(uint64_t from, uint64_t last);
  uint64_t retained();  // messages held (entries of the partition other than the state)

 private:
  std::string messageKey(uint64_t seq) const;

  MapRecords& ring_;
  PartitionId partition_;
  std::string stateKey_;  // "{topic}"
};

// Size of a message once encoded (what the member checks against its limits).
size_t encodedSize(wire::PublishMessage::Reader message);
// Fills a wire message from its encoded form; false when `encoded` is malformed.
bool decodeInto(std::string_view encoded, uint64_t seq, wire::TopicMessage::Builder out);

}  // namespace shoal::node::topic

// shoal::Client: connects to Shoal members and hands out map handles. Thread-safe. Operations
// from concurrent callers bound for the same member are coalesced into one call (auto-batching);
// every operation has a deadline, retriable failures are retried with backoff under the same
// request id (so a retried write is applied once), and each member has a circuit breaker.
//
//   auto client = shoal::Client::connect({.servers = {"127.0.0.1:5701"}});
//   auto users = client->map<std::string, std::string>("users");
//   users.put("alice", "admin");
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/client/options.h"
#include "shoal/client/result.h"
#include "shoal/client/topic.h"
#include "shoal/error.h"
#include "shoal/types.h"

namespace shoal {

namespace client {
class Transport;
}

struct MemberInfo {
  std::string name, address, state, version;
  int64_t uptimeMs = 0;
  uint32_t partitionsOwned = 0;     // partitions this member is primary of
  uint32_t partitionsBackedUp = 0;  // partitions it holds a backup of
  uint64_t id = 0;                  // its id in the partition table
  std::string zone;
  uint64_t opsForwarded = 0;  // ops it sent on to their owner (ping only; near 0 with smart routing)
};

struct PartitionInfo {
  std::vector<uint64_t> replicas;  // member ids, primary first
  std::vector<uint64_t> filling;   // replicas still receiving their copy (migration)
};

struct MapInfo {
  std::string name;
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

struct ClusterInfo {
  std::vector<MemberInfo> members;  // oldest first: the first coordinates
  uint32_t partitionCount = 0;
  uint64_t tableEpoch = 0;
  std::vector<PartitionInfo> partitions;  // the partition table, by partition id
  uint32_t migrating = 0;                 // replicas still being filled; 0 when the table is settled
};

// Write-behind administration (maps with persistence = "write-behind" on the member).
struct WriteBehindKeyFailure {
  std::string key;
  uint32_t attempts = 0;
  std::string error;  // the store's last error
};

struct WriteBehindFlushReport {
  uint64_t written = 0;                       // writes the store took during the flush
  std::vector<WriteBehindKeyFailure> failed;  // writes that became dead letters during the flush
  uint64_t deadLetters = 0;                   // dead letters of the map afterwards (older included)
};

struct DeadLetter {
  std::string key;
  std::optional<std::string> value;  // nullopt: the failed write was a removal
  uint64_t version = 0;
  int64_t expirationTimeMs = 0;  // 0: never
  uint32_t attempts = 0;
  std::string error;  // the store's last error
  int64_t deadAtMs = 0;
};

struct DeadLetterPage {
  std::vector<DeadLetter> letters;  // in key order
  uint64_t total = 0;               // dead letters of the map
};

struct ScanPage {
  std::vector<std::pair<std::string, std::string>> entries;  // key, value (empty without values)
  uint64_t cursor = 0;                                       // 0: iteration complete
};

// A map of bytes to bytes. Cheap to copy. Synchronous methods block the calling thread; the
// *Async methods call `done` on the client's I/O thread — keep callbacks short and never call a
// synchronous method from inside one (that would deadlock; it throws instead).
class RawMap {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;

  std::optional<std::string> get(std::string_view key) const;
  std::optional<EntryView> getEntry(std::string_view key) const;
  bool containsKey(std::string_view key) const;
  std::optional<std::string> put(std::string_view key, std::string_view value,
                                 const WriteOptions& o = {}) const;
  void set(std::string_view key, std::string_view value, const WriteOptions& o = {}) const;
  std::optional<std::string> putIfAbsent(std::string_view key, std::string_view value,
                                         const WriteOptions& o = {}) const;
  std::optional<std::string> replace(std::string_view key, std::string_view value,
                                     const WriteOptions& o = {}) const;
  bool replaceIfEqual(std::string_view key, std::string_view expected, std::string_view value,
                      const WriteOptions& o = {}) const;
  bool replaceIfVersion(std::string_view key, uint64_t expectedVersion, std::string_view value,
                        const WriteOptions& o = {}) const;
  std::optional<std::string> remove(std::string_view key) const;
  bool erase(std::string_view key) const;  // remove without returning the value
  bool removeIfEqual(std::string_view key, std::string_view expected) const;
  bool removeIfVersion(std::string_view key, uint64_t expectedVersion) const;
  bool setTtl(std::string_view key, std::chrono::milliseconds ttl) const;  // 0 removes the TTL
  uint64_t size() const;
  uint64_t clear() const;
  // Many keys in one round trip (batched per member); absent keys are left out.
  std::vector<std::pair<std::string, std::string>> getAll(const std::vector<std::string>& keys) const;
  void putAll(const std::vector<std::pair<std::string, std::string>>& entries,
              const WriteOptions& o = {}) const;
  // One page of a cursor iteration: start at 0, continue with page.cursor until it is 0.
  ScanPage scan(uint64_t cursor, uint32_t limit = 1000, bool withValues = false) const;

  void getAsync(std::string_view key, Callback<std::optional<std::string>> done) const;
  void putAsync(std::string_view key, std::string_view value, Callback<std::optional<std::string>> done,
                const WriteOptions& o = {}) const;
  void setAsync(std::string_view key, std::string_view value, Callback<bool> done,
                const WriteOptions& o = {}) const;
  void removeAsync(std::string_view key, Callback<std::optional<std::string>> done) const;
  std::future<std::optional<std::string>> getFuture(std::string_view key) const;
  std::future<std::optional<std::string>> putFuture(std::string_view key, std::string_view value,
                                                    const WriteOptions& o = {}) const;

  // Entry events of this map, delivered in order on the client's event thread. The listener is
  // registered again after a reconnect (events that happen while disconnected are not replayed).
  ListenerId addListener(EntryListener listener, bool includeValues = true) const;
  void removeListener(ListenerId id) const;

  // A handle whose operations carry `traceId` (the member logs it) or a different deadline.
  RawMap withTraceId(std::string traceId) const;
  RawMap withTimeout(std::chrono::milliseconds timeout) const;

  const std::string& name() const { return name_; }

 private:
  friend class Client;
  RawMap(std::shared_ptr<client::Transport> t, std::string name)
      : transport_(std::move(t)), name_(std::move(name)) {}
  std::shared_ptr<client::Transport> transport_;
  std::string name_;
  std::string traceId_;
  std::chrono::milliseconds timeout_{0};  // 0: the client's requestTimeout
};

template <typename K, typename V>
class Map;

class Client {
 public:
  // Validates options and connects to the first reachable server; throws shoal::Error
  // (UNAVAILABLE when none answers within connectTimeout).
  static std::unique_ptr<Client> connect(const ClientOptions& options);
  ~Client();

  RawMap rawMap(std::string_view name);
  template <typename K, typename V>
  Map<K, V> map(std::string_view name) {
    return Map<K, V>(rawMap(name));
  }

  // A topic handle; throws INVALID_ARGUMENT for a name that cannot be a topic's (see topicNameProblem).
  Topic topic(std::string_view name);

  MemberInfo ping();
  std::vector<MapInfo> maps();
  // Every topic of the cluster, by name.
  std::vector<TopicInfo> topics();
  // Subscribes `handler` (onMessage required) to every topic whose name matches `pattern` (Redis
  // glob, case-sensitive: * ? [abc] [^a] [a-z] and backslash escapes; shoal/glob.h). Returns once
  // the cluster's topics were listed and the matching ones subscribed (throws INVALID_ARGUMENT, or
  // TIMEOUT / UNAVAILABLE after requestTimeout). Topics matching then are followed from `latest`;
  // topics that appear later (the cluster is listed every ~1 s) from `earliest`, so they lose
  // nothing their ring still holds. Each topic is an ordinary subscription (Topic::subscribe): in
  // order per topic, resumed after failovers, no duplicates, gaps as onGap; TopicMessage::topic
  // names the topic. A topic whose subscription is cut off (handler.onClosed(topic, OVERLOADED,
  // next)) is not followed again by this pattern.
  SubscriptionId subscribePattern(std::string pattern, TopicHandler handler);
  // Ends a pattern subscription (all its topics) or a Topic::subscribe one; no callback of it
  // starts afterwards. Unknown or ended ids are ignored.
  void unsubscribe(SubscriptionId id);
  ClusterInfo cluster();

  // Write-behind maps. Each throws INVALID_ARGUMENT for a map that is not write-behind.
  // Stores every queued write of `map` now and returns once its queue is empty (failed writes are
  // retried after their backoff until they are stored or become dead letters). With writes still
  // coming in the queue may never be empty: stop writers first. timeout 0: the requestTimeout.
  WriteBehindFlushReport flushWriteBehind(std::string_view map, std::chrono::milliseconds timeout = {});
  DeadLetterPage deadLetters(std::string_view map, uint32_t limit = 1000);
  // Re-queues every dead letter of `map`; returns how many.
  uint64_t replayDeadLetters(std::string_view map);
  // Fails queued operations with UNAVAILABLE, ends subscriptions and listeners (without calling
  // their onClosed; callbacks not yet started are dropped) and stops the client's threads. Idempotent.
  void close();

 private:
  explicit Client(std::shared_ptr<client::Transport> transport) : transport_(std::move(transport)) {}
  std::shared_ptr<client::Transport> transport_;
};

}  // namespace shoal

#include "shoal/client/map.h"

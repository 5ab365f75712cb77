// The embedding API: a Shoal member started inside a host process. Thread-safe; standard C++
// types only, so a service that does not use KJ or Cap'n Proto can embed Shoal.
//
//   auto node = shoal::Node::start(options);
//   auto users = node->map("users");
//   users.put("alice", "{...}");
//   node->stop();  // graceful; also done by the destructor
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/error.h"
#include "shoal/node/options.h"
#include "shoal/types.h"

namespace shoal {

// Embedded listeners run on the member's event thread, in event order; keep them short.

namespace node {
class Runtime;
}

// A handle to one map of an embedded member: cheap to copy, valid while the Node lives.
class MapHandle {
 public:
  std::optional<std::string> get(std::string_view key) const;
  std::optional<EntryView> getEntry(std::string_view key) const;
  bool containsKey(std::string_view key) const;
  std::optional<std::string> put(std::string_view key, std::string_view value,
                                 const WriteOptions& options = {}) const;
  void set(std::string_view key, std::string_view value, const WriteOptions& options = {}) const;
  std::optional<std::string> putIfAbsent(std::string_view key, std::string_view value,
                                         const WriteOptions& options = {}) const;
  std::optional<std::string> replace(std::string_view key, std::string_view value,
                                     const WriteOptions& options = {}) const;
  bool replaceIfEqual(std::string_view key, std::string_view expected, std::string_view value,
                      const WriteOptions& options = {}) const;
  bool replaceIfVersion(std::string_view key, uint64_t expectedVersion, std::string_view value,
                        const WriteOptions& options = {}) const;
  std::optional<std::string> remove(std::string_view key) const;
  bool removeIfEqual(std::string_view key, std::string_view expected) const;
  bool removeIfVersion(std::string_view key, uint64_t expectedVersion) const;
  uint64_t size() const;
  void clear() const;
  // Keys (and values) in cursor pages; start with cursor 0, stop when the returned cursor is 0.
  uint64_t scan(uint64_t cursor, uint32_t limit, std::vector<std::pair<std::string, std::string>>* out,
                bool withValues = true) const;

  ListenerId addListener(EntryListener listener, bool includeValues = true) const;
  void removeListener(ListenerId id) const;

  const std::string& name() const { return name_; }

 private:
  friend class Node;
  MapHandle(node::Runtime& runtime, std::string name) : runtime_(&runtime), name_(std::move(name)) {}
  node::Runtime* runtime_;
  std::string name_;
};

// A handle to one topic of the member's cluster: cheap to copy, valid while the Node lives.
class TopicHandle {
 public:
  // Publishes and returns the message's sequence number once the topic's backups have it.
  uint64_t publish(std::string_view value) const;
  uint64_t publish(const OutgoingMessage& message) const;
  // Several messages in one call, in order; their sequence numbers.
  std::vector<uint64_t> publishAll(const std::vector<OutgoingMessage>& messages) const;
  // Callbacks run on the member's event thread in sequence order; the subscription resumes by
  // itself (no loss, no duplicates) when the topic moves or its owner fails. Throws
  // INVALID_ARGUMENT for a bad topic name.
  SubscriptionId subscribe(TopicHandler handler, SubscribeFrom from = SubscribeFrom::latest()) const;
  void unsubscribe(SubscriptionId id) const;

  const std::string& name() const { return name_; }

 private:
  friend class Node;
  TopicHandle(node::Runtime& runtime, std::string name) : runtime_(&runtime), name_(std::move(name)) {}
  node::Runtime* runtime_;
  std::string name_;
};

class Node {
 public:
  // Validates `options` (shoal::Error INVALID_ARGUMENT naming the field), binds the listen address
  // (UNAVAILABLE if it cannot) and starts the member's threads.
  static std::unique_ptr<Node> start(const NodeOptions& options);
  ~Node();

  MapHandle map(std::string_view name);
  TopicHandle topic(std::string_view name);
  // Subscribes `handler` (onMessage required) to every topic of the cluster whose name matches
  // `pattern` (Redis glob, case-sensitive: * ? [abc] [^a] [a-z] and backslash escapes;
  // shoal/glob.h). Returns once the topics were listed and the matching ones subscribed (throws
  // INVALID_ARGUMENT, or UNAVAILABLE when the topics cannot be listed within 5 s). Topics matching
  // then are followed from `latest`, topics that appear later (listed every ~1 s) from
  // `earliest`, each as a TopicHandle::subscribe subscription (in order per topic, resumed, no
  // duplicates); TopicMessage::topic names the topic. A topic cut off (handler.onClosed(topic,
  // OVERLOADED, next)) is not followed again. Callbacks run on the event thread, one at a time.
  SubscriptionId subscribePattern(std::string pattern, TopicHandler handler);
  // Ends a pattern subscription (all its topics) or a TopicHandle::subscribe one. Unknown or ended
  // ids are ignored.
  void unsubscribe(SubscriptionId id);
  // The bound RPC address (HOST:PORT); useful with port 0. Empty when not listening.
  std::string address() const;
  // The bound RESP (Redis protocol) address; empty when RESP is off.
  std::string respAddress() const;
  const NodeOptions& options() const;
  // Names of the maps that hold entries or configuration on this member.
  std::vector<std::string> mapNames() const;
  // Graceful stop: stops accepting, closes connections, joins threads. Idempotent.
  void stop();

 private:
  explicit Node(std::unique_ptr<node::Runtime> runtime);
  std::unique_ptr<node::Runtime> runtime_;
};

}  // namespace shoal

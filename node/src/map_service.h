// The map operations of one shard: map records by name (created on first use with the configured
// or default options), validation against the member's limits, write dedupe by request id, and
// entry listeners. Applies wire::MapOp and fills wire::OpResult; both the RPC server and the
// embedding API go through here, so they share one set of semantics. Shard thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "listener_hub.h"
#include "map_persistence.h"
#include "record_store.h"
#include "shoal/node/options.h"
#include "shoal/partition/partitioner.h"
#include "shoal/proto/shoal.capnp.h"
#include "topic/topic_log.h"
#include "write_dedupe.h"

namespace shoal::node {

// Whether an operation changes data (everything but get, getEntry, containsKey and size).
bool isWriteOp(wire::MapOp::Which which);

class MapService {
 public:
  MapService(const NodeOptions& options, const Clock& clock,
             std::function<void(std::function<void()>)> postEvent);
  ~MapService();

  // Cluster: `onNewMap` runs for every map (existing and created later; replication captures its
  // changes); `owns(p)` says whether this member is the primary of partition p — size and clear
  // count only those, the other members answer for the rest.
  void setClusterHooks(std::function<void(MapRecords&)> onNewMap,
                       std::function<bool(partition::PartitionId)> owns);
  // Cluster: commit() also waits until the backups applied what was written (`flush`), and
  // hasPendingChanges() counts what `pending` says is not sent yet.
  void setReplication(std::function<bool()> pending, std::function<kj::Promise<void>()> flush) {
    replicationPending_ = std::move(pending);
    replicationFlush_ = std::move(flush);
  }

  // Cluster quorum: while `guard` returns a reason, writes fail with UNAVAILABLE and that reason.
  void setWriteGuard(std::function<std::optional<std::string>()> guard) { writeGuard_ = std::move(guard); }

  // Whether this member is the primary of `p` (always true outside a cluster).
  bool owns(partition::PartitionId p) const { return !owns_ || owns_(p); }
  // Entries of `map` in partitions owned here; removes them (like clear) and says how many.
  uint64_t ownedSize(const MapRecords& map) const;
  uint64_t clearOwned(MapRecords& map);
  // Cursor iteration over the partitions owned here. Cursors carry the partition in the top 16
  // bits and its own cursor below; iteration stops at the first partition owned elsewhere and
  // returns a cursor pointing at it (0 when every partition is done).
  uint64_t scanOwned(MapRecords* map, uint64_t cursor, uint32_t limit, bool withValues,
                     std::vector<MapRecords::ScanItem>* out);

  // Cluster: called with every write result remembered for dedupe (replication sends it along).
  using ResultSink = std::function<void(partition::PartitionId, uint64_t clientId, uint64_t requestId,
                                        uint64_t lowestPending, wire::OpResult::Reader result)>;
  void setResultSink(ResultSink sink) { resultSink_ = std::move(sink); }
  // A backup keeps its primary's dedupe results, for after a failover.
  void rememberReplicated(uint64_t clientId, uint64_t requestId, uint64_t lowestPending,
                          wire::OpResult::Reader result);

  // Topics: `applied(topic, seq)` runs for every message appended here (the topic hub's hook).
  void setPublishHook(std::function<void(const std::string&, uint64_t)> applied) {
    publishHook_ = std::move(applied);
  }
  const TopicOptions& topicOptions(std::string_view topic) const;

  // Makes maps configured as persistent write through `persistence` (null: none). Call before use.
  void setPersistence(MapPersistence* persistence) { persistence_ = persistence; }
  bool isPersistent(const std::string& name) const { return modeOf(name) != MapPersistenceMode::NONE; }
  // How map `name` is persisted on this member (NONE when the member has no store).
  MapPersistenceMode modeOf(const std::string& name) const;
  bool readsBackupData(std::string_view name) const;  // MapOptions::readBackupData
  // Resolves when every change applied so far is durable (at once without persistence); rejects
  // with a "shoal:store-failed:" failure when the store refused them.
  kj::Promise<void> commit();
  // The store part of commit() alone (the caller waits for replication itself).
  kj::Promise<void> commitStore();
  bool hasPendingStore() const;
  bool hasPendingChanges() const;
  void forgetResult(uint64_t clientId, uint64_t requestId) { dedupe_.forget(clientId, requestId); }

  // Read-through: true when `op` touches a key of a persistent map with a memory limit that is not
  // in memory (it may have been evicted); loadFor() then brings it back from the store first.
  bool needsLoad(wire::MapOp::Reader op);
  kj::Promise<void> loadFor(wire::MapOp::Reader op);
  // Whether any read-through can be needed at all (a store and a map with a memory limit).
  bool mayNeedLoads() const { return persistence_ != nullptr && anyMemoryLimit_; }
  // The same for one key of map `name` (RESP commands).
  bool needsLoad(const std::string& name, std::string_view key);
  kj::Promise<void> load(const std::string& name, const std::string& key);

  // Called once per batch before its operations: the client's lowest write still pending.
  void beginBatch(uint64_t clientId, uint64_t lowestPending) {
    lowestPending_ = lowestPending;
    dedupe_.beginBatch(clientId, lowestPending, clock_.nowMs());
  }
  // Applies one operation; never throws for bad input (a failure result names the limit).
  void apply(wire::MapOp::Reader op, uint64_t clientId, wire::OpResult::Builder result, const char* traceId);
  // Writes the states of the topics published to since the last call, once each. Publishes keep
  // a topic's state (next sequence number) here instead of writing it per message; call this
  // after a batch's operations and before anything else may run on the shard (a suspension,
  // the commit): between events no topic state is pending.
  void flushTopicStates();

  MapRecords& records(const std::string& name);  // creates on first use
  MapRecords* findRecords(const std::string& name);
  std::vector<const MapRecords*> allMaps() const;
  // The member no longer holds (or is about to be filled again with) partition `p`: frees it in
  // every map, and deletes it from the member's own store and write-behind queues (in order with
  // the changes before and after; durable at the next commitStore()).
  void dropPartition(partition::PartitionId p);
  // Notes in the member's own store that it holds complete copies of these (partition, version)
  // pairs, in a view of `members` members (a whole-cluster restart picks the newest copy of each
  // partition and waits for as many members).
  void recordCopies(uint32_t members, const std::vector<std::pair<partition::PartitionId, uint64_t>>& copies);
  // Anti-entropy: digests of partition `p` of every map this member keeps whole (maps with a
  // memory limit evict on each replica on their own, so their copies may differ by design).
  std::vector<std::pair<std::string, MapRecords::Digest>> digests(partition::PartitionId p,
                                                                  int64_t expiringBeforeMs);
  // Whether this member's copy of `p` has the same digests for those maps (maps it limits itself
  // are not compared).
  bool sameDigests(partition::PartitionId p, int64_t expiringBeforeMs,
                   const std::vector<std::pair<std::string, MapRecords::Digest>>& theirs);

  std::shared_ptr<ListenerHub> hub(const std::string& name);  // creates on first use
  void closeListeners(const std::string& reason);

  // Sweeps expired entries of every map; returns how many were removed.
  size_t sweepExpired(size_t budgetPerMap);

  const partition::Partitioner& partitioner() const { return partitioner_; }
  const Limits& limits() const { return options_.limits; }

 private:
  void applyWrite(MapRecords& map, partition::PartitionId p, wire::MapOp::Reader op,
                  wire::OpResult::Builder result);
  void applyPublish(partition::PartitionId p, wire::MapOp::Reader op, wire::OpResult::Builder result);
  MapConfig configFor(const std::string& name) const;

  const NodeOptions& options_;
  const Clock& clock_;
  std::function<void(std::function<void()>)> postEvent_;
  partition::Partitioner partitioner_;
  std::unordered_map<std::string, std::unique_ptr<MapRecords>> maps_;
  std::unordered_map<std::string, std::shared_ptr<ListenerHub>> hubs_;
  WriteDedupe dedupe_;
  MapPersistence* persistence_ = nullptr;
  bool anyMemoryLimit_ = false;  // some map may evict: only then can an op need a read-through
  std::function<void(MapRecords&)> onNewMap_;
  std::function<bool(partition::PartitionId)> owns_;
  ResultSink resultSink_;
  std::function<std::optional<std::string>()> writeGuard_;
  std::function<void(const std::string&, uint64_t)> publishHook_;
  std::function<bool()> replicationPending_;
  std::function<kj::Promise<void>()> replicationFlush_;
  uint64_t lowestPending_ = 0;  // of the batch being applied
  struct PendingTopicState {
    partition::PartitionId partition;
    topic::TopicLog::State state;
  };
  std::unordered_map<std::string, PendingTopicState> pendingTopics_;  // by topic; see flushTopicStates
};

}  // namespace shoal::node

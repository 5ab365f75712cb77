// Primary-backup replication of map data. On a partition's primary: captures every change (the
// entry's state after the write, or its removal) and sends each batch's changes to the
// partition's backups, in order, with a sequence number per backup; the caller acknowledges its
// client after they applied them. Fills a backup that lacks the data ("filling" in the table)
// with a copy sent in chunks on the same ordered stream as live writes, then tells the
// coordinator. On a backup: applies changes in sequence, refuses a primary that a newer table
// replaced (so a stale primary cannot get a write acknowledged) and asks for a new copy when it
// sees a gap. Shard thread only.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../record_store.h"
#include "membership.h"
#include "peer_links.h"

namespace shoal::node {
class MapService;
}

namespace shoal::node::cluster {

class Replication {
 public:
  Replication(const NodeOptions& options, Membership& membership, PeerLinks& links, MapService& maps,
              kj::Timer& timer);
  ~Replication();

  // Captures the changes of `records` in partitions this member is primary of (call once per map).
  void attach(MapRecords& records);
  // Keeps a write's dedupe result with its data (MapService::ResultSink).
  void captureResult(partition::PartitionId p, uint64_t clientId, uint64_t requestId, uint64_t lowestPending,
                     wire::OpResult::Reader result);
  bool hasPending() const { return !pending_.empty(); }
  // Sends what was captured to the backups. Resolves, once every reachable backup answered, with
  // the partitions whose backups refused the writes because this member is no longer their primary.
  kj::Promise<std::set<partition::PartitionId>> replicate();
  // Like replicate(), but on the next turn of the loop, so that the writes of every connection
  // served in this turn share one call per backup.
  kj::Promise<std::set<partition::PartitionId>> replicateSoon();

  kj::Promise<void> onReplicate(
      capnp::CallContext<wire::Peer::ReplicateParams, wire::Peer::ReplicateResults> context);
  void onView(const View& previous, const View& current);
  // Partitions this member restored from its data directory at start: those the first table it
  // is part of does not give it are dropped (memory and store), so they cannot come back later.
  void setRestored(std::set<partition::PartitionId> partitions) { restored_ = std::move(partitions); }

  uint32_t fillsRunning() const { return running_; }

  // Anti-entropy hooks. Primary side: `p` has no captured writes waiting to be sent and no copy
  // queued or under way; the sequence number of the last part sent for `p` to `backup`; a fresh
  // copy of `p` for `backup`. Backup side: the sequence number applied last for `p` from `from`
  // (nullopt: none, or from another primary).
  bool quiet(partition::PartitionId p) const;
  uint64_t sentSeq(partition::PartitionId p, MemberId backup) const;
  void refill(partition::PartitionId p, MemberId backup);
  std::optional<uint64_t> appliedSeq(partition::PartitionId p, MemberId from) const;

 private:
  struct OwnedChange {
    std::string map;
    std::string key;
    std::string value;
    bool erase = false;
    uint64_t version = 0;
    int64_t expirationTimeMs = 0;
    int64_t ttlMs = 0;
    int64_t maxIdleMs = 0;
  };
  struct OwnedResult {
    uint64_t clientId, requestId, lowestPending;
    kj::Array<capnp::word> result;  // flat message, root wire::OpResult
  };
  struct Outgoing {
    std::vector<OwnedChange> changes;
    std::vector<OwnedResult> results;
  };
  struct Fill {
    enum class State { QUEUED, RUNNING, DONE } state = State::QUEUED;  // DONE: until the table says so
    bool begun = false;             // the first chunk (with "drop what you hold") went out
    std::vector<std::string> maps;  // names when the fill began
    size_t mapIndex = 0;
    uint64_t cursor = 0;
  };
  using FillKey = std::pair<partition::PartitionId, MemberId>;
  struct BackupState {
    bool known = false;  // a copy began (or the table assigned the partition with no data)
    MemberId from = 0;
    uint64_t lastSeq = 0;
  };

  void flushSoon();
  void ensureFills();
  void startQueuedFills();
  kj::Promise<void> fillStep(FillKey key);
  void writeChanges(capnp::List<wire::Change>::Builder out, const std::vector<OwnedChange>& changes);
  void writeResults(capnp::List<wire::DedupeRecord>::Builder out, const std::vector<OwnedResult>& results);
  // Applies one part on this backup; returns its status.
  wire::ReplicateStatus applyPart(uint64_t epoch, MemberId from, wire::PartitionWrites::Reader part);
  bool stillFilling(const FillKey& key) const;
  bool replicated(partition::PartitionId p) const;  // primary here, with backups
  // After a view change: drops what this member no longer holds and records the complete copies
  // it holds in its own store (for a whole-cluster restart).
  void persistHoldings(const View& previous, const View& current);

  const NodeOptions& options_;
  Membership& membership_;
  PeerLinks& links_;
  MapService& maps_;
  kj::Timer& timer_;
  std::map<partition::PartitionId, Outgoing> pending_;
  std::map<FillKey, uint64_t> nextSeq_;  // per partition and backup, on the primary
  std::map<FillKey, Fill> fills_;        // copies under way or queued, on the primary
  uint32_t running_ = 0;
  std::map<partition::PartitionId, BackupState> backups_;  // on a backup
  std::set<partition::PartitionId> restored_;              // restored at start, not yet given by a table
  std::map<partition::PartitionId, uint64_t> recorded_;    // the copy version last recorded per partition
  // Fault injection for tests (SHOAL_FAULT_DROP_REPLICATED=N): this member, as a backup, silently
  // skips the first N replicated changes it receives — the divergence anti-entropy must find.
  uint64_t dropFirst_ = 0;
  kj::Maybe<kj::ForkedPromise<std::set<partition::PartitionId>>> nextFlush_;  // replicateSoon()'s shared call
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node::cluster

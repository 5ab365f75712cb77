// Healing a split brain. During a network partition each side declares the other dead and goes on
// as a cluster of its own (available by default; cluster.min-cluster-size makes the minority refuse
// writes instead). Once the partition heals, the coordinators find each other — each probes the
// members it declared dead and its seeds — and the smaller side (equal sizes: the side whose
// coordinator joined later) merges into the other: each of its members hands the entries of the
// partitions it is primary of to their owners in the other cluster, drops its data and joins that
// cluster. Owners apply what they receive by the merge policy (mergedEntryWins). Shard thread only.
#pragma once

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
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

// The merge policy: an entry from the merging side replaces the entry here when its version is
// higher, or equal and it was updated later; it is added when the key is absent (or expired) here.
bool mergedEntryWins(uint64_t version, int64_t updateTimeMs, const std::optional<EntryMeta>& existing);

// One side of a split, as its coordinator sees it.
struct SplitSide {
  MemberId coordinatorId = 0;
  int64_t coordinatorJoinedAtMs = 0;
  uint32_t memberCount = 0;
};
// Whether side `a` merges into side `b`: it has fewer members; equal sizes, its coordinator is
// younger (joined later); equal again, its coordinator's id is larger. Exactly one of two sides does.
bool mergesInto(const SplitSide& a, const SplitSide& b);

class SplitMerge {
 public:
  SplitMerge(const NodeOptions& options, const Clock& clock, Membership& membership, PeerLinks& links,
             MapService& maps, kj::Timer& timer);
  ~SplitMerge();

  void start();  // begins probing (every cluster.merge-probe-interval, while coordinator)
  void onView(const View& previous, const View& current);
  bool merging() const { return merging_; }

  // Peer service handlers.
  kj::Promise<void> onProbe(capnp::CallContext<wire::Peer::ProbeParams, wire::Peer::ProbeResults> context);
  void onMergeInto(const std::string& address);
  kj::Promise<void> onMergeEntries(
      capnp::CallContext<wire::Peer::MergeEntriesParams, wire::Peer::MergeEntriesResults> context);

 private:
  struct Entry {
    std::string map;
    partition::PartitionId partition = 0;
    std::string key;
    std::string value;
    uint64_t version = 0;
    int64_t updateTimeMs = 0;
    int64_t expirationTimeMs = 0;
    int64_t ttlMs = 0;
    int64_t maxIdleMs = 0;
  };

  kj::Promise<void> probeLoop();
  void probeAll();
  void writeSummary(wire::ClusterSummary::Builder out) const;
  // Decides, on a coordinator, whether this side merges into the one `other` describes.
  void consider(wire::ClusterSummary::Reader other, bool knowsUs);
  void startMerge(const std::string& address);  // tells this side's members, then merges itself
  void mergeSelf(const std::string& address);
  std::vector<Entry> collect();  // entries of the partitions this member is primary of
  // Sends `entries` to their partitions' primaries; retries what found no owner until `deadlineMs`.
  kj::Promise<void> deliver(std::vector<Entry> entries, int64_t deadlineMs, size_t total);
  kj::Promise<std::vector<Entry>> sendChunk(const std::string& address, std::vector<Entry> chunk);

  const NodeOptions& options_;
  const Clock& clock_;
  Membership& membership_;
  PeerLinks& links_;
  MapService& maps_;
  kj::Timer& timer_;
  std::set<std::string> lost_;     // addresses of members this side declared dead, and hints
  std::set<std::string> probing_;  // probes in flight
  bool merging_ = false;
  class TaskErrors;
  std::unique_ptr<TaskErrors> taskErrors_;
  std::unique_ptr<kj::TaskSet> tasks_;
};

}  // namespace shoal::node::cluster

# Member-to-member contract: membership (join, heartbeats, published views of the member list and
# partition table), replication of writes from a partition's primary to its backups, and filling
# a backup with a copy of a partition. Reached through Member.peer() on the member's one port.
@0xb7ce65739af9a3b5;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shoal::wire");

struct PeerInfo {
  id @0 :UInt64;          # random, never 0; kept in the data directory, else new per start
  name @1 :Text;
  address @2 :Text;       # HOST:PORT of its RPC listener
  zone @3 :Text;          # empty: none
  joinedAtMs @4 :Int64;   # when the coordinator admitted it (Unix ms)
  leaving @5 :Bool;       # asked to leave: its partitions are moved away, then it is removed
  incarnation @6 :UInt64; # random per process start: a restarted member keeps its id, not this
}

struct PartitionCopy {
  # A copy of a partition a member restarted with, from its data directory.
  partition @0 :UInt32;
  version @1 :UInt64;   # the view version in which the member last held it complete; 0: unknown
}

struct PartitionReplicas {
  replicas @0 :List(UInt64);  # member ids, primary first; empty: not assigned
  filling @1 :List(UInt64);   # replicas still receiving their copy
}

struct ClusterView {
  version @0 :UInt64;                      # also the partition-table epoch; grows with every change
  members @1 :List(PeerInfo);              # oldest first; the first is the coordinator
  partitions @2 :List(PartitionReplicas);  # one per partition id
  clusterName @3 :Text;
  replicasSince @4 :List(UInt64);          # per partition: the version its replicas last changed in
}

struct Change {
  # The state of one entry after a write on the primary (or its removal); backups apply it as is.
  map @0 :Text;
  key @1 :Data;
  value @2 :Data;
  erase @3 :Bool;
  version @4 :UInt64;
  expirationTimeMs @5 :Int64;   # absolute TTL deadline, 0: never
  ttlMs @6 :Int64;
  maxIdleMs @7 :Int64;
}

struct DedupeRecord {
  # The result of a client's write, kept with the data so that a retry reaching a new primary
  # after a failover gets the first result instead of applying the write twice.
  clientId @0 :UInt64;
  requestId @1 :UInt64;
  lowestPending @2 :UInt64;  # the client's lowest pending request id when it wrote
  result @3 :Data;           # a flat Cap'n Proto message whose root is shoal.capnp's OpResult
}

struct PartitionWrites {
  partition @0 :UInt32;
  seq @1 :UInt64;           # grows by one per part sent for this partition to this backup
  beginFill @2 :Bool;       # drop what you hold of this partition first (a copy follows)
  changes @3 :List(Change);
  dedupe @4 :List(DedupeRecord);
}

enum ReplicateStatus {
  applied @0;
  stale @1;   # the receiver knows a newer table in which the sender is not the primary
  gap @2;     # a sequence number was skipped: the sender must fill this backup again
}

struct ClusterSummary {
  # One side of a possible split brain, as its coordinator sees it.
  clusterName @0 :Text;
  partitionCount @1 :UInt32;
  coordinator @2 :PeerInfo;
  memberCount @3 :UInt32;
}

struct MergeEntry {
  # An entry the smaller side of a healed split hands to the owner of its partition.
  map @0 :Text;
  partition @1 :UInt32;
  key @2 :Data;
  value @3 :Data;
  version @4 :UInt64;
  updateTimeMs @5 :Int64;
  expirationTimeMs @6 :Int64;   # absolute TTL deadline, 0: never
  ttlMs @7 :Int64;
  maxIdleMs @8 :Int64;
}

struct MapDigest {
  # Anti-entropy: what one map holds of one partition, summed order-independently.
  map @0 :Text;
  digest @1 :UInt64;   # sum of a hash of (key, value, version) per entry
  entries @2 :UInt64;
}

struct RespCommand {
  args @0 :List(Data);
  localOnly @1 :Bool;
  protocol @2 :UInt8;  # the Redis client's RESP protocol: 2, or 3 after HELLO 3 (0 means 2)
}

interface Peer {
  join @0 (clusterName :Text, partitionCount :UInt32, member :PeerInfo, copies :List(PartitionCopy),
           lastMembers :UInt32) -> (view :ClusterView);
  # Fails with "shoal:invalid-argument: ..." when the cluster name or partition count differs.
  # Any member accepts it and passes it to the coordinator. `copies`: what a restarted member
  # holds in its data directory; while partitions are not assigned yet (a whole cluster
  # restarting), each partition goes first to the member with its newest copy. `lastMembers`:
  # how many members its newest copy's view had (the first assignment waits for as many, for up
  # to cluster.restart-wait). A join with the id
  # of a member already in the view is a restarted incarnation: the old one is removed first.

  heartbeat @1 (from :UInt64, viewVersion :UInt64) -> (viewVersion :UInt64, known :Bool);
  # known: false when the answering coordinator does not count the sender as a member (it was
  # declared dead): the sender stops serving and joins again as a new member.
  publish @2 (view :ClusterView);
  # The coordinator's new view; members ignore versions older than theirs.

  replicate @3 (epoch :UInt64, from :UInt64, parts :List(PartitionWrites))
             -> (statuses :List(ReplicateStatus));
  # Writes of several partitions in the primary's order, one status per part. One call per
  # backup carries every partition the primary wrote in a turn of its loop.

  filled @4 (partition :UInt32, member :UInt64, primary :UInt64);
  # To the coordinator: `member` now holds a full copy of `partition`.

  leave @5 (member :UInt64);
  # To the coordinator: move this member's partitions away, then remove it.

  resp @6 (commands :List(RespCommand)) -> (replies :List(Data));
  # Redis commands received by another member's RESP gateway for keys this member owns (or,
  # localOnly, commands every member answers for its own partitions), in the order its clients
  # sent them: one call carries every command that gateway routed here in a turn of its loop.
  # One reply per command, RESP bytes in that command's protocol, sent once the commands' writes
  # are stored and replicated.

  probe @7 (from :ClusterSummary) -> (seen :ClusterSummary, knowsSender :Bool);
  # A coordinator looking for the other side of a healed network partition (members it declared
  # dead, its seeds). Any member answers with its own cluster's summary; knowsSender: the
  # sender's coordinator is in the answerer's view (not a separate cluster). A coordinator that
  # answers and finds its side the one to merge starts the merge itself.
  mergeInto @8 (address :Text);
  # From this member's coordinator: its side merges into the cluster at `address` — hand over the
  # entries of the partitions it is primary of, drop its data, join that cluster.
  mergeEntries @9 (entries :List(MergeEntry)) -> (notOwned :List(UInt32));
  # Applies merged entries by the merge policy (higher version wins, then later update) on their
  # partition's primary; answers the indexes of entries whose partition it is not primary of.

  checkDigests @10 (epoch :UInt64, from :UInt64, partition :UInt32, seq :UInt64, maps :List(MapDigest),
                    expiringBeforeMs :Int64) -> (compared :Bool, matches :Bool);
  # Anti-entropy, from a partition's primary to one of its backups: the primary's digests of the
  # partition after the writes it sent up to `seq`. compared: the backup applied exactly those
  # (else nothing is said); matches: its own digests of the same maps are equal. A backup that
  # does not match is copied again. Entries that expire before `expiringBeforeMs` (Unix ms, the
  # primary's clock plus a margin) are left out on both sides: they may be swept on one only.
}

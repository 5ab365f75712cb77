# Shoal's wire contract between clients and members. Operations travel in batches: one
# `execute` call carries many operations (for many keys and maps) and returns their results in
# order, because each RPC call costs ~16 µs of member CPU whatever it carries.
@0xdbc109d915719edc;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shoal::wire");
using Cluster = import "cluster.capnp";

enum ErrorCode {
  # Mirrors shoal::ErrorCode (proto/include/shoal/error.h); tells a caller how to react.
  internal @0;         # a bug on the member; the message says what
  invalidArgument @1;  # the request can never succeed as sent
  tooLarge @2;         # a key, value or batch exceeds a limit named in the message
  timeout @3;          # a deadline passed; retriable
  unavailable @4;      # the member is stopping or unreachable; retriable
  overloaded @5;       # the member shed load; retriable after backoff
  conflict @6;         # a compare-and-set precondition failed where a value was required
  unauthorized @7;
  wrongOwner @8;       # the partition is owned elsewhere (cluster issue)
  storeFailed @9;      # the backing store refused the write (disk full, I/O error); not stored
}

struct Failure {
  code @0 :ErrorCode;
  message @1 :Text;
}

struct Write {
  value @0 :Data;
  ttlMs @1 :Int64 = -1;      # -1: the map's default TTL; 0: never expires; >0: milliseconds
  maxIdleMs @2 :Int64 = -1;  # -1: the map's default max-idle; 0: none; >0: milliseconds
}

struct MapOp {
  map @0 :Text;
  key @1 :Data;
  requestId @2 :UInt64;  # writes: (clientId, requestId) dedupes a retried write; 0 = no dedupe
  union {
    get @3 :Void;                 # -> value | absent
    getEntry @4 :Void;            # -> entry | absent
    containsKey @5 :Void;         # -> flag
    put @6 :Write;                # -> previous value | absent
    set @7 :Write;                # -> done
    putIfAbsent @8 :Write;        # -> existing value (not applied) | absent (applied)
    replace @9 :Write;            # -> previous value (applied) | absent (not applied)
    replaceIfValue @10 :CompareValue;      # -> flag (applied)
    replaceIfVersion @11 :CompareVersion;  # -> flag (applied)
    remove @12 :Void;             # -> previous value | absent
    delete @13 :Void;             # -> flag (something was removed)
    removeIfValue @14 :Data;      # -> flag (removed)
    removeIfVersion @15 :UInt64;  # -> flag (removed)
    size @16 :Void;               # key ignored -> count (entries of the map on this member)
    clear @17 :Void;              # key ignored -> count (entries removed)
    setTtl @18 :Int64;            # -> flag (entry exists); 0 removes the TTL
    publish @20 :PublishMessage;  # topics: `map` and `key` are both the topic's name (a topic
                                  # lives on the partition of its name) -> count (its sequence number)
  }
  traceId @19 :Text;  # the caller's trace id when it gave one; else the batch's applies
}

struct Header {
  name @0 :Text;
  value @1 :Data;
}

struct PublishMessage {
  key @0 :Data;             # optional message key (empty: none)
  value @1 :Data;
  headers @2 :List(Header);
}

struct CompareValue {
  expected @0 :Data;
  write @1 :Write;
}

struct CompareVersion {
  expectedVersion @0 :UInt64;
  write @1 :Write;
}

struct EntryView {
  key @0 :Data;
  value @1 :Data;
  version @2 :UInt64;          # 1 on creation, +1 on every write
  creationTimeMs @3 :Int64;    # milliseconds since the Unix epoch
  updateTimeMs @4 :Int64;
  lastAccessTimeMs @5 :Int64;
  expirationTimeMs @6 :Int64;  # 0: never
  ttlMs @7 :Int64;             # 0: none
  maxIdleMs @8 :Int64;         # 0: none
  hits @9 :UInt64;
}

struct OpResult {
  union {
    value @0 :Data;
    absent @1 :Void;
    flag @2 :Bool;
    count @3 :UInt64;
    entry @4 :EntryView;
    done @5 :Void;
    failure @6 :Failure;
  }
}

struct Batch {
  traceId @0 :Text;       # appears in the member's log lines for this request
  clientId @1 :UInt64;    # random per client instance; scopes requestIds
  tableEpoch @2 :UInt64;  # partition-table epoch the sender believes (cluster issue)
  ops @3 :List(MapOp);
  lowestPending @4 :UInt64;  # the client's lowest write request id still awaiting its result;
                             # the member forgets dedupe results below it (0: not given)
  forwarded @5 :Bool;     # sent by a member on a client's behalf: answer from this member's own
                          # partitions only (wrongOwner for others), never forward again
  readBackups @6 :Bool;   # reads (get, getEntry, containsKey) of maps with read-backup-data may
                          # answer from this member's backup copy (set by the embedding API)
}

enum EventType {
  added @0;
  updated @1;
  removed @2;
  expired @3;
  evicted @4;
}

struct EntryEvent {
  type @0 :EventType;
  map @1 :Text;
  key @2 :Data;
  value @3 :Data;      # new value (added/updated) when the listener asked for values
  oldValue @4 :Data;   # previous value (updated/removed/expired/evicted) when asked for
  version @5 :UInt64;
}

interface EntryListener {
  # Implemented by the client; the member pushes events in order, flow-controlled.
  onEvents @0 (events :List(EntryEvent)) -> stream;
  onClosed @1 (reason :Failure);   # the member cut the listener off (slow, stopping)
}

interface Registration {
  # Dropping the capability removes the listener.
  cancel @0 ();
}

struct MapInfo {
  name @0 :Text;
  entries @1 :UInt64;
  bytes @2 :UInt64;    # memory held by the map's entries on this member
}

struct MemberInfo {
  name @0 :Text;
  address @1 :Text;
  state @2 :Text;
  uptimeMs @3 :Int64;
  partitionsOwned @4 :UInt32;
  version @5 :Text;
  maxMessageBytes @6 :UInt64;  # the member's limits, so clients size their batches to fit
  maxBatchOps @7 :UInt32;
  id @8 :UInt64;               # the member's id in partition tables
  partitionsBackedUp @9 :UInt32;
  zone @10 :Text;
  opsForwarded @11 :UInt64;    # ops this member sent on to their owner since it started (a smart
                               # client, which sends each op to its primary, keeps this near 0)
}

struct ScanEntry {
  key @0 :Data;
  value @1 :Data;   # empty unless values were asked for
}

interface Member {
  execute @0 (batch :Batch) -> (results :List(OpResult), tableEpoch :UInt64);
  # Results in the order of batch.ops; a per-op failure never fails the call. The call itself
  # fails only when the whole batch is unacceptable (too many ops), with a message naming the limit.
  # tableEpoch: the answering member's partition-table epoch, so a client notices a newer table.

  scan @1 (map :Text, cursor :UInt64, limit :UInt32, withValues :Bool, traceId :Text, forwarded :Bool)
       -> (entries :List(ScanEntry), cursor :UInt64);
  # Cursor iteration, Redis SCAN style: start at 0, continue with the returned cursor until it is 0.
  # Every entry present for the whole iteration is returned at least once. A page may be empty
  # with a non-zero cursor (the next partitions live on another member): keep going.
  # forwarded: sent by a member on a client's behalf; answered from this member's partitions only.

  addListener @2 (map :Text, listener :EntryListener, includeValues :Bool, localOnly :Bool)
              -> (registration :Registration);
  # The listener hears every partition of the map: the member registers it at the other members
  # too and keeps that up as members come and go. localOnly (member to member): the partitions
  # this member is primary of only.

  ping @3 () -> (member :MemberInfo);
  listMaps @4 () -> (maps :List(MapInfo));
  cluster @5 () -> (members :List(MemberInfo), partitionCount :UInt32, tableEpoch :UInt64,
                    partitions :List(Cluster.PartitionReplicas), migrating :UInt32);
  # The member list (oldest first: the first coordinates), the partition table and how many
  # replicas are still being filled (migration in progress).

  peer @6 () -> (peer :Cluster.Peer);
  # Member-to-member services (cluster.capnp).

  flushWriteBehind @7 (map :Text) -> (report :WriteBehindFlushReport);
  # Writes every queued write of a write-behind map now, retrying failures after their backoff,
  # and returns once its queue is empty. Fails (invalid-argument) for a map that is not write-behind.

  listDeadLetters @8 (map :Text, limit :UInt32) -> (letters :List(DeadLetter), total :UInt64);
  # The map's dead letters in key order, at most `limit`; `total` counts them all.

  replayDeadLetters @9 (map :Text) -> (requeued :UInt64);
  # Moves every dead letter of the map back into its queue, due now with fresh attempts.

  subscribe @10 (topic :Text, from :SubscribeFrom, subscriber :TopicSubscriber, forwarded :Bool)
             -> (subscription :TopicSubscription, next :UInt64);
  # Served by the topic's owner (any other member passes it on; forwarded: do not pass it on).
  # `next` is the first sequence number the subscriber will get (a gap signal comes first when
  # `from` asked for messages already dropped). Publish with execute (MapOp.publish).

  listTopics @11 (forwarded :Bool) -> (topics :List(TopicInfo));
  # Every topic of the cluster (forwarded: only those this member owns), by name.
}

struct TopicMessage {
  seq @0 :UInt64;            # 1 for a topic's first message, +1 per message
  key @1 :Data;
  value @2 :Data;
  headers @3 :List(Header);
  publishTimeMs @4 :Int64;   # when the topic's owner took it (Unix ms)
}

struct SubscribeFrom {
  union {
    latest @0 :Void;    # only messages published after the subscription
    earliest @1 :Void;  # the oldest message the topic still holds
    seq @2 :UInt64;     # this sequence number on (a resume: the last one received + 1)
  }
}

interface TopicSubscriber {
  # Implemented by the subscriber; the topic's owner calls it in sequence order, flow-controlled.
  onMessages @0 (topic :Text, messages :List(TopicMessage)) -> stream;
  onGap @1 (topic :Text, from :UInt64, to :UInt64) -> stream;
  # Messages from..to (inclusive) were dropped (overwritten or expired) before they could be
  # delivered; delivery goes on with to + 1. Never a silent skip.
  onClosed @2 (topic :Text, reason :Failure, next :UInt64);
  # The member ended the subscription: wrongOwner (the topic moved: subscribe again, from `next`),
  # overloaded (the subscriber fell too far behind), unavailable (the member is stopping).
}

interface TopicSubscription {
  position @0 () -> (next :UInt64, last :UInt64);
  # The next sequence number to deliver and the topic's last committed one. Clients call it now and
  # then: a failed call means the owner is gone and the subscription must be made again.
  cancel @1 ();
  # Dropping the capability cancels too.
}

struct TopicInfo {
  name @0 :Text;
  firstSeq @1 :UInt64;     # the oldest message held (0: none)
  lastSeq @2 :UInt64;      # the newest message published (0: none yet)
  retained @3 :UInt64;     # messages held
  bytes @4 :UInt64;        # memory they take on the owner
  subscribers @5 :UInt32;  # subscriptions served by the owner
  capacity @6 :UInt32;
  retentionMs @7 :Int64;   # 0: kept until overwritten
  durable @8 :Bool;
}

struct KeyFailure {
  key @0 :Data;
  attempts @1 :UInt32;
  error @2 :Text;      # the store's last error
}

struct WriteBehindFlushReport {
  written @0 :UInt64;            # writes the store took during the flush
  failed @1 :List(KeyFailure);   # writes that became dead letters during the flush
  deadLetters @2 :UInt64;        # dead letters of the map after the flush (older ones included)
}

struct DeadLetter {
  key @0 :Data;
  value @1 :Data;          # empty for an erase
  erase @2 :Bool;          # the failed write was a removal
  version @3 :UInt64;
  expirationTimeMs @4 :Int64;
  attempts @5 :UInt32;
  error @6 :Text;          # the store's last error
  deadAtMs @7 :Int64;      # when the member gave up (Unix ms)
}

// Options of a Shoal member, embedded or `shoald`. A plain struct: every field has a default and
// one line saying what it is; `validate()` checks them once at start and names the bad field.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shoal {
namespace persistence {
class MapStore;
}

enum class Eviction { NONE, LRU, LFU };

// How a map is kept in the member's backing store (RocksDB in data-dir, or NodeOptions::store).
enum class MapPersistenceMode {
  NONE,           // memory only
  WRITE_THROUGH,  // every write is stored (fsynced) before it is acknowledged; restored at start
  WRITE_BEHIND,   // acknowledged once in the durable queue (data-dir); stored later, in batches
};

struct MapOptions {
  uint64_t maxEntries = 0;            // entries of the map on this member; 0 = unbounded
  uint64_t maxBytes = 0;              // entry memory of the map on this member, bytes; 0 = unbounded
  Eviction eviction = Eviction::LRU;  // with a limit: LRU / LFU evict (sampled); NONE rejects writes
  int64_t defaultTtlMs = 0;           // TTL of writes that give none, ms; 0 = never expire
  int64_t defaultMaxIdleMs = 0;       // max idle of writes that give none, ms; 0 = none
  // Used when the member has a store (data-dir or `store`); default: write-through.
  MapPersistenceMode persistence = MapPersistenceMode::WRITE_THROUGH;
  // Write-behind only (persistence = WRITE_BEHIND; needs dataDir, where the queue lives):
  int64_t writeDelayMs = 1000;             // a write is stored this long after it was queued, ms; >= 0
  uint32_t writeBatchSize = 100;           // writes per store call; a full batch goes early; 1 .. 100000
  uint32_t writeMaxAttempts = 5;           // failed stores of a write before it becomes a dead letter, >= 1
  int64_t writeRetryBackoffMs = 500;       // wait after the first failure, doubled per failure, ms; >= 1
  int64_t writeMaxRetryBackoffMs = 60000;  // cap of that wait, ms; >= writeRetryBackoffMs
  // false: a write is acknowledged once in the queue's WAL (survives kill -9, not a machine crash);
  // true: once fsynced there (survives a power loss too, at the cost of an fsync per group commit).
  bool writeBehindSync = false;
  // Writes a map's write-behind queue may hold on this member; at the limit (the store is behind
  // or failing) further writes to the map are refused with OVERLOADED until the queue drains.
  // 0 = no limit.
  uint64_t writeBehindQueueCapacity = 1'000'000;
  // Reads through the embedding API (Node::map) may answer from this member's backup copy of the
  // key's partition instead of asking its primary: stale by the replication delay, never going
  // back in time while the member stays a backup. Off by default (Hazelcast's read-backup-data).
  bool readBackupData = false;
};

// What a publish does when a topic holds `capacity` messages.
enum class TopicOverload {
  OVERWRITE,  // drop the oldest message (subscribers that still needed it get a gap signal)
  REJECT,     // refuse the publish (OVERLOADED) until messages age out; needs retentionMs > 0
};

struct TopicOptions {
  uint32_t capacity = 10'000;  // messages a topic keeps (ring buffer), 1 .. 100M
  int64_t retentionMs = 0;     // messages are dropped this long after publish, ms; 0 = kept
  TopicOverload overload = TopicOverload::OVERWRITE;  // a full ring buffer: overwrite, or reject publishes
  bool durable = false;  // kept in the member's store (needs data-dir or store): survives a full restart
  uint32_t maxSubscriberLag = 0;  // messages a subscriber may fall behind before it is cut off; 0 = capacity
};

struct Limits {
  uint32_t maxKeyBytes = 64 * 1024;                // largest key, bytes (1 .. 16 MiB)
  uint32_t maxValueBytes = 8 * 1024 * 1024;        // largest value, bytes (0 .. 512 MiB)
  uint32_t maxBatchOps = 10'000;                   // operations in one execute call (1 .. 1M)
  uint64_t maxMessageBytes = 64ull * 1024 * 1024;  // Cap'n Proto traversal/message limit, bytes
  uint32_t maxScanLimit = 10'000;                  // entries returned by one scan call
  uint32_t listenerBufferEvents = 100'000;         // events queued per remote listener before cut-off
  uint64_t respSubscriberOutputBytes =
      32ull << 20;  // unsent bytes of a RESP subscriber before it is closed (>= 1024)
};

// How members find each other, replicate and detect failures.
struct ClusterOptions {
  std::string name = "shoal";          // cluster name; members of another cluster are refused
  std::string zone = "";               // this member's zone; replicas prefer distinct zones
  uint32_t backupCount = 1;            // synchronous backups per partition (0 .. 6)
  uint32_t asyncBackupCount = 0;       // backups after those, not waited for (sync + async <= 6)
  uint32_t heartbeatIntervalMs = 200;  // how often members heartbeat each other (10 .. 10000)
  uint32_t failureTimeoutMs = 1000;    // silence after which a member is declared dead (>= 2 heartbeats)
  uint32_t joinTimeoutMs = 3000;       // seeds unreachable this long: start a cluster alone
  uint32_t initialMinClusterSize = 1;  // partitions are assigned once this many members joined
  // After a restart with data, partitions also wait (this long at most) for as many members as
  // the last view before the restart had, so that every member brings its copies back; 0 = no wait.
  uint32_t restartWaitMs = 30000;
  // Anti-entropy: every partition's copies are compared (digests) once per this interval, and a
  // backup whose copy differs is copied again; 0 = never.
  uint32_t antiEntropyIntervalMs = 30000;
  uint32_t minClusterSize = 0;           // quorum: a member hearing fewer members refuses writes; 0 = off
  uint32_t fillChunkEntries = 2000;      // entries per message when copying a partition to a backup
  uint32_t mergeProbeIntervalMs = 1000;  // a coordinator looks for the other side of a healed
                                         // network partition this often; 0 = never merge
};

struct NodeOptions {
  std::string name = "shoal-1";           // member name, shown by `shoalctl cluster`
  std::string listen = "127.0.0.1:5701";  // RPC address HOST:PORT; port 0 picks one; "" = none
  std::vector<std::string> seeds;         // HOST:PORT of members to join; none: start a cluster
  ClusterOptions cluster;
  std::string resp = "";            // RESP (Redis protocol) address HOST:PORT; "" = off
  std::string respMap = "default";  // the Shoal map that Redis commands read and write
  std::string dataDir = "";         // data directory (RocksDB); "" = in memory only
  // Embedding: your own backing store (e.g. a SQL database) instead of RocksDB in dataDir.
  std::shared_ptr<persistence::MapStore> store;
  uint32_t partitionCount = 271;  // fixed per cluster (1 .. 65535)
  std::string logLevel = "info";  // trace, debug, info, warn, error, off
  Limits limits;
  MapOptions defaultMap;                       // configuration of maps not named in `maps`
  std::map<std::string, MapOptions> maps;      // per-map configuration by map name
  TopicOptions defaultTopic;                   // configuration of topics not named in `topics`
  std::map<std::string, TopicOptions> topics;  // per-topic configuration by topic name
  uint32_t expirySweepIntervalMs = 100;        // how often expired entries are swept (1 .. 60000)

  // Throws shoal::Error(INVALID_ARGUMENT) naming the first invalid field.
  void validate() const;
};

}  // namespace shoal

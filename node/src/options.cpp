// NodeOptions::validate: one check per field, each error naming the field as the config file does.
#include "shoal/node/options.h"

#include <algorithm>
#include <string>

#include "shoal/error.h"

namespace shoal {
namespace {

void require(bool ok, const std::string& field, const std::string& what) {
  if (!ok) throw Error(ErrorCode::INVALID_ARGUMENT, "invalid " + field + ": " + what);
}

bool validHostPort(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  auto port = address.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  return std::stoul(port) <= 65535;
}

void validateMap(const MapOptions& m, const std::string& prefix, const NodeOptions& node) {
  require(m.defaultTtlMs >= 0, prefix + ".default-ttl", "must be >= 0");
  require(m.defaultMaxIdleMs >= 0, prefix + ".default-max-idle", "must be >= 0");
  if (m.persistence != MapPersistenceMode::WRITE_BEHIND) return;
  // The durable queue is a RocksDB column family in data-dir, whatever store the map is written to.
  require(!node.dataDir.empty(), prefix + ".persistence",
          node.store ? "write-behind needs data-dir for its durable queue (the embedder's store "
                       "receives the writes; data-dir holds only the queue)"
                     : "write-behind needs data-dir (the durable queue and the store live there)");
  require(m.writeDelayMs >= 0, prefix + ".write-delay", "must be >= 0");
  require(m.writeBatchSize >= 1 && m.writeBatchSize <= 100'000, prefix + ".write-batch-size",
          "must be 1..100000");
  require(m.writeMaxAttempts >= 1, prefix + ".write-max-attempts", "must be >= 1");
  require(m.writeRetryBackoffMs >= 1, prefix + ".write-retry-backoff", "must be >= 1 ms");
  require(m.writeMaxRetryBackoffMs >= m.writeRetryBackoffMs, prefix + ".write-max-retry-backoff",
          "must be >= write-retry-backoff");
}

void validateTopic(const TopicOptions& t, const std::string& prefix, const NodeOptions& node) {
  require(t.capacity >= 1 && t.capacity <= 100'000'000, prefix + ".capacity", "must be 1..100000000");
  require(t.retentionMs >= 0, prefix + ".retention", "must be >= 0");
  require(t.overload != TopicOverload::REJECT || t.retentionMs > 0, prefix + ".overload",
          "reject needs a retention (without one the topic would refuse every publish once full)");
  require(!t.durable || !node.dataDir.empty() || node.store, prefix + ".durable",
          "a durable topic needs data-dir (or an embedder's store)");
}

}  // namespace

void NodeOptions::validate() const {
  require(!name.empty() && name.size() <= 128, "name", "must be 1..128 characters");
  require(listen.empty() || validHostPort(listen), "listen",
          "'" + listen + "' is not HOST:PORT (port 0..65535)");
  require(resp.empty() || validHostPort(resp), "resp", "'" + resp + "' is not HOST:PORT (port 0..65535)");
  require(!respMap.empty() && respMap.size() <= 256, "resp-map", "must be 1..256 characters");
  for (auto& seed : seeds) require(validHostPort(seed), "seeds", "'" + seed + "' is not HOST:PORT");
  require(partitionCount >= 1 && partitionCount <= 65535, "partition-count",
          std::to_string(partitionCount) + " is outside 1..65535");
  require(!cluster.name.empty() && cluster.name.size() <= 128, "cluster.name", "must be 1..128 characters");
  require(cluster.zone.size() <= 128, "cluster.zone", "must be at most 128 characters");
  require(cluster.backupCount <= 6, "cluster.backup-count",
          std::to_string(cluster.backupCount) + " is outside 0..6");
  require(cluster.asyncBackupCount <= 6 - std::min<uint32_t>(cluster.backupCount, 6),
          "cluster.async-backup-count",
          std::to_string(cluster.asyncBackupCount) + " with backup-count " +
              std::to_string(cluster.backupCount) + " makes more than 6 backups per partition");
  require(cluster.heartbeatIntervalMs >= 10 && cluster.heartbeatIntervalMs <= 10'000,
          "cluster.heartbeat-interval", "must be 10..10000 ms");
  require(cluster.failureTimeoutMs >= 2 * cluster.heartbeatIntervalMs, "cluster.failure-timeout",
          "must be at least two heartbeat intervals");
  require(cluster.joinTimeoutMs >= 1, "cluster.join-timeout", "must be >= 1 ms");
  require(cluster.initialMinClusterSize >= 1 && cluster.initialMinClusterSize <= 1000,
          "cluster.initial-min-cluster-size", "must be 1..1000");
  require(cluster.minClusterSize <= 1000, "cluster.min-cluster-size", "must be 0..1000");
  require(cluster.fillChunkEntries >= 1, "cluster.fill-chunk-entries", "must be >= 1");
  require(cluster.antiEntropyIntervalMs == 0 || cluster.antiEntropyIntervalMs >= 100,
          "cluster.anti-entropy-interval", "must be 0 (never) or >= 100 ms");
  require(cluster.mergeProbeIntervalMs == 0 || cluster.mergeProbeIntervalMs >= 100,
          "cluster.merge-probe-interval", "must be 0 (never merge) or >= 100 ms");
  static const char* LEVELS[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool knownLevel = false;
  for (auto* l : LEVELS) knownLevel |= logLevel == l;
  require(knownLevel, "log-level",
          "'" + logLevel + "' is not one of trace, debug, info, warn, error, critical, off");
  require(limits.maxKeyBytes >= 1 && limits.maxKeyBytes <= 16u << 20, "limits.max-key-bytes",
          "must be 1..16777216");
  require(limits.maxValueBytes <= 512u << 20, "limits.max-value-bytes", "must be <= 536870912");
  require(limits.maxBatchOps >= 1 && limits.maxBatchOps <= 1'000'000, "limits.max-batch-ops",
          "must be 1..1000000");
  require(limits.maxMessageBytes >= 1024 * 1024 && limits.maxMessageBytes <= (1ull << 32),
          "limits.max-message-bytes", "must be 1 MiB..4 GiB");
  require(limits.maxMessageBytes >= uint64_t(limits.maxValueBytes) + limits.maxKeyBytes + 1024,
          "limits.max-message-bytes", "must exceed max-key-bytes + max-value-bytes");
  require(limits.maxScanLimit >= 1, "limits.max-scan-limit", "must be >= 1");
  require(limits.listenerBufferEvents >= 1, "limits.listener-buffer-events", "must be >= 1");
  require(limits.respSubscriberOutputBytes >= 1024, "limits.resp-subscriber-output-bytes", "must be >= 1024");
  require(expirySweepIntervalMs >= 1 && expirySweepIntervalMs <= 60'000, "expiry-sweep-interval",
          "must be 1..60000 ms");
  validateMap(defaultMap, "map-defaults", *this);
  for (auto& [mapName, m] : maps) {
    require(!mapName.empty(), "maps", "a map name is empty");
    // Queue names are at most 255 bytes (the queue's log key format).
    require(m.persistence != MapPersistenceMode::WRITE_BEHIND || mapName.size() <= 255,
            "maps." + mapName + ".persistence", "write-behind map names are at most 255 bytes");
    validateMap(m, "maps." + mapName, *this);
  }
  validateTopic(defaultTopic, "topic-defaults", *this);
  for (auto& [topicName, t] : topics) {
    bool named = !topicName.empty() && topicName.size() <= 200 &&
                 topicName.find_first_of("{}") == std::string::npos && topicName[0] != '$';
    require(named, "topics." + topicName,
            "topic names are 1..200 bytes, without '{' or '}', not starting with '$'");
    validateTopic(t, "topics." + topicName, *this);
  }
}

}  // namespace shoal

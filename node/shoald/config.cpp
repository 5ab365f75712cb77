// shoald's flags, environment and TOML config file; see config.h.
#include "config.h"

#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "shoal/error.h"
#include "shoal/version.h"

namespace shoal::shoald {
namespace {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// "250ms", "30s", "5m", "2h", "1d" or a bare number of milliseconds.
int64_t parseDurationMs(const std::string& text, const std::string& field) {
  size_t pos = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &pos);
  } catch (...) {
    throw ConfigError(field + ": '" + text + "' is not a duration (e.g. 500ms, 30s, 5m, 2h)");
  }
  auto unit = text.substr(pos);
  int64_t scale = unit.empty() || unit == "ms" ? 1
                  : unit == "s"                ? 1000
                  : unit == "m"                ? 60'000
                  : unit == "h"                ? 3'600'000
                  : unit == "d"                ? 86'400'000
                                               : -1;
  if (scale < 0 || n < 0)
    throw ConfigError(field + ": '" + text + "' is not a duration (e.g. 500ms, 30s, 5m, 2h)");
  return n * scale;
}

template <typename T>
void readInt(const toml::table& t, const char* key, const std::string& prefix, T* out) {
  auto node = t.get(key);
  if (!node) return;
  auto v = node->value<int64_t>();
  if (!v || *v < 0) throw ConfigError(prefix + key + ": expected a non-negative integer");
  if (static_cast<uint64_t>(*v) > std::numeric_limits<T>::max()) {
    throw ConfigError(prefix + key + ": " + std::to_string(*v) + " is too large (at most " +
                      std::to_string(std::numeric_limits<T>::max()) + ")");
  }
  *out = static_cast<T>(*v);
}

void readString(const toml::table& t, const char* key, const std::string& prefix, std::string* out) {
  auto node = t.get(key);
  if (!node) return;
  auto v = node->value<std::string>();
  if (!v) throw ConfigError(prefix + key + ": expected a string");
  *out = *v;
}

void readDuration(const toml::table& t, const char* key, const std::string& prefix, int64_t* out) {
  auto node = t.get(key);
  if (!node) return;
  if (auto i = node->value<int64_t>()) {
    if (*i < 0) throw ConfigError(prefix + key + ": must be >= 0");
    *out = *i;
  } else if (auto s = node->value<std::string>()) {
    *out = parseDurationMs(*s, prefix + key);
  } else {
    throw ConfigError(prefix + key + ": expected a duration such as \"30s\"");
  }
}

void readMap(const toml::table& t, const std::string& prefix, MapOptions* m) {
  static const std::set<std::string> KNOWN = {"max-entries",
                                              "max-bytes",
                                              "eviction",
                                              "default-ttl",
                                              "default-max-idle",
                                              "persistence",
                                              "write-delay",
                                              "write-batch-size",
                                              "write-max-attempts",
                                              "write-retry-backoff",
                                              "write-max-retry-backoff",
                                              "write-behind-sync",
                                              "write-behind-queue-capacity",
                                              "read-backup-data"};
  for (auto& [k, _] : t) {
    if (!KNOWN.count(std::string(k.str())))
      throw ConfigError(prefix + std::string(k.str()) + ": unknown option");
  }
  readInt(t, "max-entries", prefix, &m->maxEntries);
  readInt(t, "max-bytes", prefix, &m->maxBytes);
  std::string eviction;
  readString(t, "eviction", prefix, &eviction);
  if (eviction == "lru")
    m->eviction = Eviction::LRU;
  else if (eviction == "lfu")
    m->eviction = Eviction::LFU;
  else if (eviction == "none")
    m->eviction = Eviction::NONE;
  else if (!eviction.empty())
    throw ConfigError(prefix + "eviction: '" + eviction + "' is not lru, lfu or none");
  std::string persistence;
  readString(t, "persistence", prefix, &persistence);
  if (persistence == "none")
    m->persistence = MapPersistenceMode::NONE;
  else if (persistence == "write-through")
    m->persistence = MapPersistenceMode::WRITE_THROUGH;
  else if (persistence == "write-behind")
    m->persistence = MapPersistenceMode::WRITE_BEHIND;
  else if (!persistence.empty())
    throw ConfigError(prefix + "persistence: '" + persistence +
                      "' is not none, write-through or write-behind");
  readDuration(t, "default-ttl", prefix, &m->defaultTtlMs);
  readDuration(t, "default-max-idle", prefix, &m->defaultMaxIdleMs);
  readDuration(t, "write-delay", prefix, &m->writeDelayMs);
  readInt(t, "write-batch-size", prefix, &m->writeBatchSize);
  readInt(t, "write-max-attempts", prefix, &m->writeMaxAttempts);
  readInt(t, "write-behind-queue-capacity", prefix, &m->writeBehindQueueCapacity);
  readDuration(t, "write-retry-backoff", prefix, &m->writeRetryBackoffMs);
  readDuration(t, "write-max-retry-backoff", prefix, &m->writeMaxRetryBackoffMs);
  if (auto sync = t.get("write-behind-sync")) {
    auto v = sync->value<bool>();
    if (!v) throw ConfigError(prefix + "write-behind-sync: expected true or false");
    m->writeBehindSync = *v;
  }
  if (auto read = t.get("read-backup-data")) {
    auto v = read->value<bool>();
    if (!v) throw ConfigError(prefix + "read-backup-data: expected true or false");
    m->readBackupData = *v;
  }
}

void readTopic(const toml::table& t, const std::string& prefix, TopicOptions* o) {
  static const std::set<std::string> KNOWN = {"capacity", "retention", "overload", "durable",
                                              "max-subscriber-lag"};
  for (auto& [k, _] : t) {
    if (!KNOWN.count(std::string(k.str())))
      throw ConfigError(prefix + std::string(k.str()) + ": unknown option");
  }
  readInt(t, "capacity", prefix, &o->capacity);
  readDuration(t, "retention", prefix, &o->retentionMs);
  std::string overload;
  readString(t, "overload", prefix, &overload);
  if (overload == "overwrite")
    o->overload = TopicOverload::OVERWRITE;
  else if (overload == "reject")
    o->overload = TopicOverload::REJECT;
  else if (!overload.empty())
    throw ConfigError(prefix + "overload: '" + overload + "' is not overwrite or reject");
  if (auto durable = t.get("durable")) {
    auto v = durable->value<bool>();
    if (!v) throw ConfigError(prefix + "durable: expected true or false");
    o->durable = *v;
  }
  readInt(t, "max-subscriber-lag", prefix, &o->maxSubscriberLag);
}

void readConfigFile(const std::string& path, NodeOptions* o) {
  toml::table root;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    std::fclose(f);
  } else {
    throw ConfigError("config file '" + path + "' cannot be read: " + std::strerror(errno));
  }
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "config file '" << path << "': " << e.description() << " at line " << e.source().begin.line;
    throw ConfigError(msg.str());
  }
  static const std::set<std::string> KNOWN = {
      "name",   "listen", "seeds",    "data-dir",     "partition-count", "log-level", "expiry-sweep-interval",
      "limits", "resp",   "resp-map", "map-defaults", "cluster",         "maps",      "topic-defaults",
      "topics"};
  for (auto& [k, _] : root) {
    if (!KNOWN.count(std::string(k.str())))
      throw ConfigError(std::string(k.str()) + ": unknown option in " + path);
  }
  readString(root, "name", "", &o->name);
  readString(root, "listen", "", &o->listen);
  if (auto seeds = root.get("seeds")) {
    auto* arr = seeds->as_array();
    if (!arr) throw ConfigError("seeds: expected an array of \"HOST:PORT\" strings");
    o->seeds.clear();
    for (auto& s : *arr) {
      auto v = s.value<std::string>();
      if (!v) throw ConfigError("seeds: expected an array of \"HOST:PORT\" strings");
      o->seeds.push_back(*v);
    }
  }
  readString(root, "data-dir", "", &o->dataDir);
  readString(root, "resp", "", &o->resp);
  readString(root, "resp-map", "", &o->respMap);
  readInt(root, "partition-count", "", &o->partitionCount);
  readString(root, "log-level", "", &o->logLevel);
  int64_t sweep = o->expirySweepIntervalMs;
  readDuration(root, "expiry-sweep-interval", "", &sweep);
  o->expirySweepIntervalMs = static_cast<uint32_t>(std::min<int64_t>(sweep, UINT32_MAX));
  if (auto limits = root["limits"].as_table()) {
    static const std::set<std::string> KNOWN_LIMITS = {"max-key-bytes",
                                                       "max-value-bytes",
                                                       "max-batch-ops",
                                                       "max-message-bytes",
                                                       "max-scan-limit",
                                                       "listener-buffer-events",
                                                       "resp-subscriber-output-bytes"};
    for (auto& [k, _] : *limits) {
      if (!KNOWN_LIMITS.count(std::string(k.str())))
        throw ConfigError("limits." + std::string(k.str()) + ": unknown option");
    }
    readInt(*limits, "max-key-bytes", "limits.", &o->limits.maxKeyBytes);
    readInt(*limits, "max-value-bytes", "limits.", &o->limits.maxValueBytes);
    readInt(*limits, "max-batch-ops", "limits.", &o->limits.maxBatchOps);
    readInt(*limits, "max-message-bytes", "limits.", &o->limits.maxMessageBytes);
    readInt(*limits, "max-scan-limit", "limits.", &o->limits.maxScanLimit);
    readInt(*limits, "listener-buffer-events", "limits.", &o->limits.listenerBufferEvents);
    readInt(*limits, "resp-subscriber-output-bytes", "limits.", &o->limits.respSubscriberOutputBytes);
  }
  if (auto cluster = root["cluster"].as_table()) {
    static const std::set<std::string> KNOWN_CLUSTER = {"name",
                                                        "zone",
                                                        "backup-count",
                                                        "async-backup-count",
                                                        "heartbeat-interval",
                                                        "failure-timeout",
                                                        "join-timeout",
                                                        "initial-min-cluster-size",
                                                        "min-cluster-size",
                                                        "fill-chunk-entries",
                                                        "merge-probe-interval",
                                                        "restart-wait",
                                                        "anti-entropy-interval"};
    for (auto& [k, _] : *cluster) {
      if (!KNOWN_CLUSTER.count(std::string(k.str())))
        throw ConfigError("cluster." + std::string(k.str()) + ": unknown option");
    }
    auto& c = o->cluster;
    readString(*cluster, "name", "cluster.", &c.name);
    readString(*cluster, "zone", "cluster.", &c.zone);
    readInt(*cluster, "backup-count", "cluster.", &c.backupCount);
    readInt(*cluster, "async-backup-count", "cluster.", &c.asyncBackupCount);
    readInt(*cluster, "initial-min-cluster-size", "cluster.", &c.initialMinClusterSize);
    readInt(*cluster, "min-cluster-size", "cluster.", &c.minClusterSize);
    readInt(*cluster, "fill-chunk-entries", "cluster.", &c.fillChunkEntries);
    for (auto [key, field] :
         {std::pair{"heartbeat-interval", &c.heartbeatIntervalMs},
          std::pair{"failure-timeout", &c.failureTimeoutMs}, std::pair{"join-timeout", &c.joinTimeoutMs},
          std::pair{"merge-probe-interval", &c.mergeProbeIntervalMs},
          std::pair{"restart-wait", &c.restartWaitMs},
          std::pair{"anti-entropy-interval", &c.antiEntropyIntervalMs}}) {
      int64_t ms = *field;
      readDuration(*cluster, key, "cluster.", &ms);
      *field = static_cast<uint32_t>(std::min<int64_t>(ms, UINT32_MAX));
    }
  }
  if (auto defaults = root["map-defaults"].as_table()) readMap(*defaults, "map-defaults.", &o->defaultMap);
  if (auto maps = root["maps"].as_table()) {
    for (auto& [name, node] : *maps) {
      auto* t = node.as_table();
      if (!t) throw ConfigError("maps." + std::string(name.str()) + ": expected a table");
      MapOptions m = o->defaultMap;
      readMap(*t, "maps." + std::string(name.str()) + ".", &m);
      o->maps[std::string(name.str())] = m;
    }
  }
  if (auto defaults = root["topic-defaults"].as_table())
    readTopic(*defaults, "topic-defaults.", &o->defaultTopic);
  if (auto topics = root["topics"].as_table()) {
    for (auto& [name, node] : *topics) {
      auto* t = node.as_table();
      if (!t) throw ConfigError("topics." + std::string(name.str()) + ": expected a table");
      TopicOptions topic = o->defaultTopic;
      readTopic(*t, "topics." + std::string(name.str()) + ".", &topic);
      o->topics[std::string(name.str())] = topic;
    }
  }
}

}  // namespace

int loadOptions(int argc, char** argv, NodeOptions* options) {
  CLI::App app{"shoald " SHOAL_VERSION ": a Shoal data grid member"};
  app.set_version_flag("--version", SHOAL_VERSION);
  std::string config, name, listen, seeds, dataDir, logLevel, resp, clusterName, zone;
  std::optional<uint32_t> backupCount, asyncBackupCount;
  app.add_option("--config", config, "TOML config file (every option of it documented in README)")
      ->envname("SHOAL_CONFIG");
  app.add_option("--name", name, "member name (default shoal-1)")->envname("SHOAL_NAME");
  app.add_option("--listen", listen, "RPC address HOST:PORT (default 127.0.0.1:5701; port 0 picks one)")
      ->envname("SHOAL_LISTEN");
  app.add_option("--seeds", seeds, "members to join, HOST:PORT,... (default none)")->envname("SHOAL_SEEDS");
  app.add_option("--data-dir", dataDir, "data directory (default: none, in memory)")
      ->envname("SHOAL_DATA_DIR");
  app.add_option("--resp", resp, "Redis protocol (RESP) address HOST:PORT (default: off)")
      ->envname("SHOAL_RESP");
  app.add_option("--cluster-name", clusterName, "cluster name (default shoal)")
      ->envname("SHOAL_CLUSTER_NAME");
  app.add_option("--zone", zone, "this member's zone; replicas prefer distinct zones (default none)")
      ->envname("SHOAL_ZONE");
  app.add_option("--backup-count", backupCount, "synchronous backups per partition, 0..6 (default 1)")
      ->envname("SHOAL_BACKUP_COUNT");
  app.add_option("--async-backup-count", asyncBackupCount,
                 "backups per partition after the synchronous ones, not waited for (default 0)")
      ->envname("SHOAL_ASYNC_BACKUP_COUNT");
  app.add_option("--log-level", logLevel, "trace|debug|info|warn|error|off (default info)")
      ->envname("SHOAL_LOG_LEVEL");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  try {
    if (!config.empty()) readConfigFile(config, options);
    if (!name.empty()) options->name = name;
    if (!listen.empty()) options->listen = listen;
    if (!seeds.empty()) options->seeds = splitList(seeds);
    if (!dataDir.empty()) options->dataDir = dataDir;
    if (!logLevel.empty()) options->logLevel = logLevel;
    if (!resp.empty()) options->resp = resp;
    if (!clusterName.empty()) options->cluster.name = clusterName;
    if (!zone.empty()) options->cluster.zone = zone;
    if (backupCount) options->cluster.backupCount = *backupCount;
    if (asyncBackupCount) options->cluster.asyncBackupCount = *asyncBackupCount;
    options->validate();
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "shoald: invalid configuration: %s\n", e.what());
    return 2;
  } catch (const shoal::Error& e) {
    std::fprintf(stderr, "shoald: %s\n", e.what());
    return 2;
  }
  return -1;
}

}  // namespace shoal::shoald

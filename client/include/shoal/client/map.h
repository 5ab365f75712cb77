// Map<K, V>: a typed handle over RawMap; keys and values go through shoal::Codec.
#pragma once

#include <future>
#include <optional>
#include <utility>
#include <vector>

#include "shoal/client/codec.h"

namespace shoal {

template <typename K, typename V>
class Map {
 public:
  explicit Map(RawMap raw) : raw_(std::move(raw)) {}

  std::optional<V> get(const K& key) const { return decodeOpt(raw_.get(Codec<K>::encode(key))); }
  std::optional<EntryView> getEntry(const K& key) const { return raw_.getEntry(Codec<K>::encode(key)); }
  bool containsKey(const K& key) const { return raw_.containsKey(Codec<K>::encode(key)); }
  std::optional<V> put(const K& key, const V& value, const WriteOptions& o = {}) const {
    return decodeOpt(raw_.put(Codec<K>::encode(key), Codec<V>::encode(value), o));
  }
  void set(const K& key, const V& value, const WriteOptions& o = {}) const {
    raw_.set(Codec<K>::encode(key), Codec<V>::encode(value), o);
  }
  std::optional<V> putIfAbsent(const K& key, const V& value, const WriteOptions& o = {}) const {
    return decodeOpt(raw_.putIfAbsent(Codec<K>::encode(key), Codec<V>::encode(value), o));
  }
  std::optional<V> replace(const K& key, const V& value, const WriteOptions& o = {}) const {
    return decodeOpt(raw_.replace(Codec<K>::encode(key), Codec<V>::encode(value), o));
  }
  bool replaceIfEqual(const K& key, const V& expected, const V& value, const WriteOptions& o = {}) const {
    return raw_.replaceIfEqual(Codec<K>::encode(key), Codec<V>::encode(expected), Codec<V>::encode(value), o);
  }
  bool replaceIfVersion(const K& key, uint64_t version, const V& value, const WriteOptions& o = {}) const {
    return raw_.replaceIfVersion(Codec<K>::encode(key), version, Codec<V>::encode(value), o);
  }
  std::optional<V> remove(const K& key) const { return decodeOpt(raw_.remove(Codec<K>::encode(key))); }
  bool removeIfEqual(const K& key, const V& expected) const {
    return raw_.removeIfEqual(Codec<K>::encode(key), Codec<V>::encode(expected));
  }
  bool removeIfVersion(const K& key, uint64_t version) const {
    return raw_.removeIfVersion(Codec<K>::encode(key), version);
  }
  uint64_t size() const { return raw_.size(); }
  uint64_t clear() const { return raw_.clear(); }

  std::vector<std::pair<K, V>> getAll(const std::vector<K>& keys) const {
    std::vector<std::string> raw;
    raw.reserve(keys.size());
    for (auto& k : keys) raw.push_back(Codec<K>::encode(k));
    std::vector<std::pair<K, V>> out;
    for (auto& [k, v] : raw_.getAll(raw)) out.emplace_back(Codec<K>::decode(k), Codec<V>::decode(v));
    return out;
  }
  void putAll(const std::vector<std::pair<K, V>>& entries, const WriteOptions& o = {}) const {
    std::vector<std::pair<std::string, std::string>> raw;
    raw.reserve(entries.size());
    for (auto& [k, v] : entries) raw.emplace_back(Codec<K>::encode(k), Codec<V>::encode(v));
    raw_.putAll(raw, o);
  }

  std::future<std::optional<V>> getAsync(const K& key) const {
    auto promise = std::make_shared<std::promise<std::optional<V>>>();
    auto future = promise->get_future();
    raw_.getAsync(Codec<K>::encode(key), [promise](Result<std::optional<std::string>> r) {
      try {
        promise->set_value(decodeOpt(std::move(r).value()));
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
    return future;
  }
  std::future<std::optional<V>> putAsync(const K& key, const V& value, const WriteOptions& o = {}) const {
    auto promise = std::make_shared<std::promise<std::optional<V>>>();
    auto future = promise->get_future();
    raw_.putAsync(
        Codec<K>::encode(key), Codec<V>::encode(value),
        [promise](Result<std::optional<std::string>> r) {
          try {
            promise->set_value(decodeOpt(std::move(r).value()));
          } catch (...) {
            promise->set_exception(std::current_exception());
          }
        },
        o);
    return future;
  }

  ListenerId addListener(EntryListener listener, bool includeValues = true) const {
    return raw_.addListener(std::move(listener), includeValues);
  }
  void removeListener(ListenerId id) const { raw_.removeListener(id); }

  Map withTraceId(std::string traceId) const { return Map(raw_.withTraceId(std::move(traceId))); }
  Map withTimeout(std::chrono::milliseconds timeout) const { return Map(raw_.withTimeout(timeout)); }
  const RawMap& raw() const { return raw_; }

 private:
  static std::optional<V> decodeOpt(std::optional<std::string> bytes) {
    if (!bytes) return std::nullopt;
    return Codec<V>::decode(*bytes);
  }
  RawMap raw_;
};

}  // namespace shoal

// Example: a Shoal member in front of your own database. `TableStore` implements
// shoal::persistence::MapStore over a mutex-guarded table — stand-in for a SQL table
// (map, partition, key) -> (value, version, expiration). The member writes through to it before
// acknowledging, and a member started again on the same store comes back with the data.
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>

#include "shoal/node/node.h"
#include "shoal/persistence/map_store.h"

namespace sp = shoal::persistence;

class TableStore final : public sp::MapStore {
 public:
  // A real store would run e.g. "SELECT value, version, expires FROM entries WHERE ..." here.
  sp::StoreResult<std::optional<sp::StoredValue>> load(std::string_view map, uint32_t partition,
                                                       std::string_view key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = rows_.find(Row{std::string(map), partition, std::string(key)});
    if (it == rows_.end()) return std::optional<sp::StoredValue>();
    return std::optional<sp::StoredValue>(it->second);
  }
  sp::StoreResult<void> store(std::string_view map, uint32_t partition, std::string_view key,
                              std::string_view value, const sp::StoredMeta& meta) override {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_[Row{std::string(map), partition, std::string(key)}] = sp::StoredValue{std::string(value), meta};
    ++writes_;
    return {};
  }
  sp::StoreResult<void> erase(std::string_view map, uint32_t partition, std::string_view key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_.erase(Row{std::string(map), partition, std::string(key)});
    ++writes_;
    return {};
  }
  sp::StoreResult<sp::KeyPage> listKeys(std::string_view map, std::optional<uint32_t> partition,
                                        std::string_view cursor, uint32_t limit) override {
    return sp::StoreError{sp::StoreErrorCode::INVALID_ARGUMENT, "listKeys is not needed by this example"};
  }
  // Restart recovery reads a partition's rows in one pass.
  sp::StoreResult<void> forEach(uint32_t partition, const sp::EntryVisitor& visit) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [row, stored] : rows_) {
      if (std::get<1>(row) != partition) continue;
      if (!visit(sp::StoredEntryView{std::get<0>(row), std::get<2>(row), stored.value, stored.meta})) break;
    }
    return {};
  }
  sp::StoreResult<void> dropPartition(uint32_t partition) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(rows_, [&](auto& r) { return std::get<1>(r.first) == partition; });
    return {};
  }
  size_t writes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return writes_;
  }

 private:
  using Row = std::tuple<std::string, uint32_t, std::string>;  // map, partition, key
  std::mutex mutex_;
  std::map<Row, sp::StoredValue> rows_;
  size_t writes_ = 0;
};

int main() {
  auto table = std::make_shared<TableStore>();
  shoal::NodeOptions options;
  options.listen = "";  // serve this process only
  options.logLevel = "warn";
  options.store = table;  // every map writes through to it (MapOptions::persistence default)

  {
    auto node = shoal::Node::start(options);
    auto prices = node->map("prices");
    prices.set("apple", "120");
    prices.set("pear", "95");
    prices.replaceIfEqual("apple", "120", "125");
    prices.remove("pear");
    std::printf("stored rows written: %zu\n", table->writes());
    node->stop();
  }

  // A new member on the same store: the data comes back, with its version.
  auto node = shoal::Node::start(options);
  auto apple = node->map("prices").getEntry("apple");
  if (!apple || apple->value != "125" || apple->version != 2 || node->map("prices").get("pear")) {
    std::fprintf(stderr, "custom_store: the restarted member did not get the stored data back\n");
    return 1;
  }
  std::printf("after restart: apple = %s (version %llu), pear absent\n", apple->value.c_str(),
              static_cast<unsigned long long>(apple->version));
  return 0;
}

// Multi-member test support; see cluster_support.h.
#include "cluster_support.h"

#include <stdexcept>
#include <unordered_map>

namespace shoal::test {

using namespace std::chrono_literals;

TestCluster::TestCluster(int size, std::vector<std::string> extraArgs) : extraArgs_(std::move(extraArgs)) {
  for (int i = 0; i < size; ++i) addMember();
}

size_t TestCluster::addMember() {
  auto args = extraArgs_;
  if (!members_.empty()) {
    args.push_back("--seeds");
    args.push_back(members_.front()->address());
  }
  auto name = "m" + std::to_string(members_.size() + 1);
  members_.push_back(std::make_unique<ShoaldProcess>(args, name));
  return members_.size() - 1;
}

std::vector<std::string> TestCluster::addresses() const {
  std::vector<std::string> out;
  for (auto& m : members_) {
    if (m->alive()) out.push_back(m->address());
  }
  return out;
}

std::unique_ptr<Client> TestCluster::client(std::chrono::milliseconds timeout) {
  ClientOptions options;
  options.servers = addresses();
  options.requestTimeout = timeout;
  return Client::connect(options);
}

std::unique_ptr<Client> TestCluster::clientOf(size_t i) {
  ClientOptions options;
  options.servers = {member(i).address()};
  options.requestTimeout = 10000ms;
  return Client::connect(options);
}

ClusterInfo TestCluster::waitSettled(size_t members, size_t via, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  auto client = clientOf(via);
  ClusterInfo info;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      info = client->cluster();
      if (info.members.size() == members && info.migrating == 0 && info.tableEpoch != 0) return info;
    } catch (const Error&) {
    }
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("cluster did not settle at " + std::to_string(members) + " members within " +
                           std::to_string(limit.count()) +
                           " ms (last: " + std::to_string(info.members.size()) + " members, " +
                           std::to_string(info.migrating) + " replicas migrating)");
}

AckedWriters::AckedWriters(Client& client, std::string map, int threads)
    : client_(client), map_(std::move(map)), lastAck_(std::chrono::steady_clock::now()) {
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { run(t); });
}

AckedWriters::~AckedWriters() {
  stop();
}

void AckedWriters::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void AckedWriters::run(int thread) {
  auto map = client_.rawMap(map_);
  for (int i = 0; !stop_; ++i) {
    auto key = "w" + std::to_string(thread) + ":" + std::to_string(i);
    auto value = "value-of-" + key;
    try {
      map.set(key, value);
      auto now = std::chrono::steady_clock::now();
      std::lock_guard<std::mutex> lock(mutex_);
      longestGap_ =
          std::max(longestGap_, std::chrono::duration_cast<std::chrono::milliseconds>(now - lastAck_));
      lastAck_ = now;
      acked_.push_back({key, value});
    } catch (const Error& e) {
      ++failures_;
      std::lock_guard<std::mutex> lock(mutex_);
      lastFailure_ = e.what();
    }
  }
}

std::vector<AckedWriters::Ack> AckedWriters::acked() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return acked_;
}

std::string AckedWriters::lastFailure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lastFailure_;
}

std::chrono::milliseconds AckedWriters::longestGap() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return longestGap_;
}

size_t AckedWriters::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return acked_.size();
}

void waitForAcks(const AckedWriters& writers, size_t atLeast) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (writers.count() < atLeast && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  if (writers.count() < atLeast) {
    throw std::runtime_error("writers reached " + std::to_string(writers.count()) +
                             " acknowledgements, not " + std::to_string(atLeast) +
                             ", within 20 s (last failure: " + writers.lastFailure() + ")");
  }
}

std::vector<std::string> missingWrites(Client& client, const std::string& map,
                                       const std::vector<AckedWriters::Ack>& acked) {
  std::vector<std::string> missing;
  auto m = client.rawMap(map);
  const size_t BATCH = 1000;
  for (size_t i = 0; i < acked.size(); i += BATCH) {
    std::vector<std::string> keys;
    for (size_t j = i; j < std::min(acked.size(), i + BATCH); ++j) keys.push_back(acked[j].key);
    std::unordered_map<std::string, std::string> values;
    for (auto& [k, v] : m.getAll(keys)) values[k] = v;
    for (size_t j = i; j < std::min(acked.size(), i + BATCH); ++j) {
      auto it = values.find(acked[j].key);
      if (it == values.end() || it->second != acked[j].value) missing.push_back(acked[j].key);
    }
  }
  return missing;
}

}  // namespace shoal::test

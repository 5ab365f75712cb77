// Multi-member test support: starts real shoald processes that join through the first one's
// address, waits until the partition table settles, and runs writers that record every
// acknowledged write. Every process is killed when the test ends, pass or fail.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shoal/client/client.h"
#include "shoald_process.h"

namespace shoal::test {

class TestCluster {
 public:
  // Starts `size` members named m1..mN; `extraArgs` go to every member.
  explicit TestCluster(int size, std::vector<std::string> extraArgs = {});

  // Starts one more member that joins through the first; returns its index.
  size_t addMember();
  ShoaldProcess& member(size_t i) { return *members_.at(i); }
  size_t size() const { return members_.size(); }
  std::vector<std::string> addresses() const;  // of members still alive

  // A client that knows every live member (it fails over between them).
  std::unique_ptr<Client> client(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  std::unique_ptr<Client> clientOf(size_t i);

  // Waits (up to `limit`) until member `via` reports `members` members and no migration under way.
  ClusterInfo waitSettled(size_t members, size_t via = 0,
                          std::chrono::milliseconds limit = std::chrono::milliseconds(20000));

 private:
  std::vector<std::string> extraArgs_;
  std::vector<std::unique_ptr<ShoaldProcess>> members_;
};

// Writers that each set unique keys in a loop and remember what was acknowledged, plus the
// longest stretch with no acknowledgement at all (the unavailability window).
class AckedWriters {
 public:
  AckedWriters(Client& client, std::string map, int threads);
  ~AckedWriters();
  void stop();

  struct Ack {
    std::string key, value;
  };
  std::vector<Ack> acked() const;
  uint64_t failures() const { return failures_; }
  std::string lastFailure() const;
  std::chrono::milliseconds longestGap() const;
  // Acknowledgements so far (to wait for progress).
  size_t count() const;

 private:
  void run(int thread);

  Client& client_;
  std::string map_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> failures_{0};
  mutable std::mutex mutex_;
  std::vector<Ack> acked_;
  std::string lastFailure_;
  std::chrono::steady_clock::time_point lastAck_;
  std::chrono::milliseconds longestGap_{0};
  std::vector<std::thread> threads_;
};

// Waits (up to 20 s) until `writers` has at least `atLeast` acknowledgements; fails the test if not.
void waitForAcks(const AckedWriters& writers, size_t atLeast);

// Keys of `acked` whose value the cluster does not return (empty: nothing lost).
std::vector<std::string> missingWrites(Client& client, const std::string& map,
                                       const std::vector<AckedWriters::Ack>& acked);

}  // namespace shoal::test

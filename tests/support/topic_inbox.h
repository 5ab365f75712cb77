// Collects what a topic subscription delivers (messages, gaps, the end) and waits for a condition
// with a deadline; for tests of the client library's topics.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shoal/error.h"
#include "shoal/types.h"

namespace shoal::test {

struct TopicInbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<TopicMessage> messages;
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  std::optional<Error> closed;
  uint64_t closedNext = 0;

  TopicHandler handler() {
    TopicHandler h;
    h.onMessage = [this](const TopicMessage& m) {
      std::lock_guard<std::mutex> lock(mutex);
      messages.push_back(m);
      changed.notify_all();
    };
    h.onGap = [this](const std::string&, uint64_t from, uint64_t to) {
      std::lock_guard<std::mutex> lock(mutex);
      gaps.emplace_back(from, to);
      changed.notify_all();
    };
    h.onClosed = [this](const std::string&, const Error& e, uint64_t next) {
      std::lock_guard<std::mutex> lock(mutex);
      closed = e;
      closedNext = next;
      changed.notify_all();
    };
    return h;
  }
  // Waits until `count` messages arrived; false after `timeout`.
  bool waitFor(size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return messages.size() >= count; });
  }
  // Waits until a message with sequence number >= `seq` arrived; false after `timeout`.
  bool waitForSeq(uint64_t seq, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return !messages.empty() && messages.back().seq >= seq; });
  }
  bool waitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return closed.has_value(); });
  }
  std::vector<uint64_t> seqs() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<uint64_t> out;
    for (auto& m : messages) out.push_back(m.seq);
    return out;
  }
};

inline std::vector<uint64_t> seqRange(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (auto s = from; s <= to; ++s) out.push_back(s);
  return out;
}

}  // namespace shoal::test

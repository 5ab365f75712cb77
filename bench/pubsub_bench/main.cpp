// shoal-pubsub-bench: publish -> deliver throughput and end-to-end latency of Shoal topics or
// Redis PUBLISH/SUBSCRIBE, driven the same way. One publisher keeps up to --window publishes
// unacknowledged (at --rate messages/s, or as fast as it can); --subscribers subscribers each
// receive every message. Each payload starts with its send time, so every delivery is timed.
// Prints one JSON object: delivered messages/s (all subscribers), publishes/s, latency p50/p99/max.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "histogram.h"
#include "targets.h"

using Clock = std::chrono::steady_clock;

namespace {

uint64_t nowNs() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

struct Subscriber {
  shoal::bench::LatencyHistogram latency;
  uint64_t received = 0;
  uint64_t lastNs = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shoal-pubsub-bench: topic publish -> deliver throughput and latency, Shoal or Redis"};
  std::string target = "shoal", address, channel = "bench";
  int subscribers = 1;
  uint64_t messages = 100000;
  size_t size = 100;
  uint32_t window = 1000;
  double rate = 0;
  app.add_option("--target", target, "shoal or redis")->check(CLI::IsMember({"shoal", "redis"}));
  app.add_option("--address", address, "HOST:PORT of shoald (RPC) or redis-server")->required();
  app.add_option("--subscribers", subscribers, "subscribers, each receiving every message")
      ->check(CLI::Range(1, 1000));
  app.add_option("--messages", messages, "messages to publish");
  app.add_option("--size", size, "payload bytes (>= 8)")->check(CLI::Range(8, 1 << 24));
  app.add_option("--window", window, "publishes unacknowledged at most");
  app.add_option("--rate", rate, "messages per second (0: as fast as acknowledged)");
  app.add_option("--channel", channel, "topic / channel name");
  CLI11_PARSE(app, argc, argv);

  try {
    auto system = target == "redis" ? shoal::bench::redisTarget(address) : shoal::bench::shoalTarget(address);
    std::vector<Subscriber> subs(subscribers);
    std::mutex mutex;
    std::condition_variable allDone;
    std::atomic<int> finished{0};
    system->subscribe(channel, subscribers, [&](int i, std::string_view payload) {
      auto& s = subs[i];
      uint64_t sent = 0;
      if (payload.size() >= 8) memcpy(&sent, payload.data(), 8);
      auto now = nowNs();
      s.latency.record(now > sent ? now - sent : 0);
      s.lastNs = now;
      if (++s.received == messages) {
        std::lock_guard<std::mutex> lock(mutex);
        ++finished;
        allDone.notify_all();
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // subscriptions settle

    std::atomic<uint64_t> outstanding{0}, failed{0};
    std::mutex ackMutex;
    std::condition_variable acked;
    std::string payload(size, 'x');
    auto started = Clock::now();
    auto startNs = nowNs();
    for (uint64_t n = 0; n < messages; ++n) {
      if (rate > 0)
        std::this_thread::sleep_until(started + std::chrono::nanoseconds(uint64_t(double(n) * 1e9 / rate)));
      {
        std::unique_lock<std::mutex> lock(ackMutex);
        acked.wait(lock, [&] { return outstanding.load() < window; });
      }
      ++outstanding;
      auto stamp = nowNs();
      memcpy(payload.data(), &stamp, 8);
      system->publish(channel, payload, [&](bool ok) {
        if (!ok) ++failed;
        std::lock_guard<std::mutex> lock(ackMutex);
        --outstanding;
        acked.notify_one();
      });
    }
    {
      std::unique_lock<std::mutex> lock(ackMutex);
      acked.wait(lock, [&] { return outstanding.load() == 0; });
    }
    auto publishSeconds = std::chrono::duration<double>(Clock::now() - started).count();
    bool complete;
    {
      std::unique_lock<std::mutex> lock(mutex);
      complete =
          allDone.wait_for(lock, std::chrono::seconds(60), [&] { return finished.load() == subscribers; });
    }
    system->close();
    shoal::bench::LatencyHistogram all;
    uint64_t delivered = 0, lastNs = startNs;
    for (auto& s : subs) {
      all.merge(s.latency);
      delivered += s.received;
      lastNs = std::max(lastNs, s.lastNs);
    }
    double seconds = double(lastNs - startNs) / 1e9;
    nlohmann::json out = {{"target", target},
                          {"subscribers", subscribers},
                          {"messages", messages},
                          {"size", size},
                          {"rate", rate},
                          {"complete", complete},
                          {"failed_publishes", failed.load()},
                          {"delivered", delivered},
                          {"publishes_per_s", double(messages) / publishSeconds},
                          {"deliveries_per_s", seconds > 0 ? double(delivered) / seconds : 0.0},
                          {"p50_us", double(all.valueAt(0.50)) / 1e3},
                          {"p99_us", double(all.valueAt(0.99)) / 1e3},
                          {"max_us", double(all.max()) / 1e3}};
    std::cout << out.dump() << std::endl;
    return complete && failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "shoal-pubsub-bench: " << e.what() << std::endl;
    return 2;
  }
}

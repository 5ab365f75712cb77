// A Shoal member embedded in a host process: start it with an RPC port (so clients and shoalctl
// can reach the same data), use a map from the host's own threads, watch it with a listener, and
// stop gracefully. Exits 0 when everything behaved as described; CI runs it.
//
//   embedded_member [HOST:PORT]   (default 127.0.0.1:0 — the kernel picks a free port)
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shoal/node/node.h"

using namespace std::chrono_literals;

namespace {

// Collects listener events; the listener runs on the member's event thread, the host waits here.
class EventLog {
 public:
  void add(const shoal::EntryEvent& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(e);
    changed_.notify_all();
  }
  bool waitFor(size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
  }
  std::vector<shoal::EntryEvent> snapshot() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<shoal::EntryEvent> events_;
};

int fail(const char* what) {
  std::fprintf(stderr, "embedded_member: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  shoal::NodeOptions options;
  options.name = "embedded-example";
  options.listen = argc > 1 ? argv[1] : "127.0.0.1:0";
  options.logLevel = "warn";
  // A per-map configuration: entries of "sessions" expire after 30 minutes unless a write says
  // otherwise.
  options.maps["sessions"].defaultTtlMs = 30 * 60 * 1000;

  std::unique_ptr<shoal::Node> node;
  try {
    node = shoal::Node::start(options);  // validates options, binds, starts the member's threads
  } catch (const shoal::Error& e) {
    std::fprintf(stderr, "embedded_member: cannot start: %s\n", e.what());
    return 1;
  }
  std::printf("member '%s' listening on %s\n", node->options().name.c_str(), node->address().c_str());

  auto users = node->map("users");
  EventLog events;
  auto listenerId = users.addListener([&events](const shoal::EntryEvent& e) { events.add(e); });

  // Plain map operations from two host threads at once: the API is thread-safe.
  std::thread writer([&users] {
    for (int i = 0; i < 100; ++i) users.set("bulk:" + std::to_string(i), "x");
  });
  users.put("alice", R"({"role":"admin"})");
  users.put("alice", R"({"role":"owner"})");
  writer.join();

  auto alice = users.getEntry("alice");
  if (!alice || alice->version != 2) return fail("alice should exist at version 2");
  std::printf("alice = %s (version %llu)\n", alice->value.c_str(),
              static_cast<unsigned long long>(alice->version));

  // Compare-and-set on the version just read: succeeds once, then the version has moved on.
  if (!users.replaceIfVersion("alice", alice->version, R"({"role":"viewer"})")) {
    return fail("replaceIfVersion with the current version should succeed");
  }
  if (users.replaceIfVersion("alice", alice->version, "stale")) {
    return fail("replaceIfVersion with a stale version should fail");
  }
  users.remove("alice");
  std::printf("users holds %llu entries\n", static_cast<unsigned long long>(users.size()));
  if (users.size() != 100) return fail("users should hold the 100 bulk entries");

  // 100 bulk adds + alice added, updated, updated (CAS), removed = 104 events, in order per key.
  if (!events.waitFor(104, 5s)) return fail("the listener did not receive every event");
  users.removeListener(listenerId);
  std::vector<shoal::EntryEventType> aliceEvents;
  for (auto& e : events.snapshot()) {
    if (e.key == "alice") aliceEvents.push_back(e.type);
  }
  const std::vector<shoal::EntryEventType> expected = {
      shoal::EntryEventType::ADDED, shoal::EntryEventType::UPDATED, shoal::EntryEventType::UPDATED,
      shoal::EntryEventType::REMOVED};
  if (aliceEvents != expected) return fail("alice's events are not added, updated, updated, removed");
  std::printf("listener saw %zu events for alice, in order\n", aliceEvents.size());

  // The configured default TTL applies to writes that give none.
  auto sessions = node->map("sessions");
  sessions.set("token-1", "alice");
  auto token = sessions.getEntry("token-1");
  if (!token || token->ttlMs != 30 * 60 * 1000) return fail("sessions should carry the 30 min default TTL");
  shoal::WriteOptions shortLived;
  shortLived.ttl = 50ms;  // unset maxIdle: the map's default
  sessions.set("token-2", "bob", shortLived);
  std::this_thread::sleep_for(300ms);
  if (sessions.get("token-2")) return fail("token-2 should have expired after 50 ms");

  node->stop();  // graceful: stops accepting, closes connections, joins threads
  try {
    users.get("bulk:1");
    return fail("a stopped member still answered");
  } catch (const shoal::Error& e) {
    std::printf("after stop: %s\n", e.what());
  }
  std::printf("embedded_member: ok\n");
  return 0;
}

// Write-through persistence with real shoald processes: what was acknowledged survives kill -9,
// versions and TTLs come back, foreign directories are refused, a full disk fails writes clearly.
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "raw_resp_client.h"
#include "shoal/client/client.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::ShoaldProcess;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/shoal-persist-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

std::unique_ptr<shoal::Client> connectTo(const ShoaldProcess& member) {
  shoal::ClientOptions options;
  options.servers = {member.address()};
  options.requestTimeout = 5000ms;
  return shoal::Client::connect(options);
}

}  // namespace

TEST_CASE("persistence: every acknowledged write survives kill -9", "[persistence][integration]") {
  TempDir dir;
  auto member = std::make_unique<ShoaldProcess>(std::vector<std::string>{"--data-dir", dir.path});
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> acked;
  std::atomic<bool> stop{false};
  {
    auto client = connectTo(*member);
    auto m = client->rawMap("orders");
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          auto key = "w" + std::to_string(t) + ":" + std::to_string(i);
          try {
            m.set(key, "v" + key);
            std::lock_guard<std::mutex> lock(mutex);
            acked.emplace_back(key, "v" + key);
          } catch (const shoal::Error&) {
            return;  // the member died under us: this write was not acknowledged
          }
        }
      });
    }
    std::this_thread::sleep_for(700ms);
    member->kill9();
    stop = true;
    for (auto& w : writers) w.join();
  }
  REQUIRE(acked.size() > 100);
  member = std::make_unique<ShoaldProcess>(std::vector<std::string>{"--data-dir", dir.path});
  auto client = connectTo(*member);
  auto m = client->rawMap("orders");
  size_t missing = 0;
  for (auto& [k, v] : acked) missing += m.get(k) != std::optional<std::string>(v);
  INFO(acked.size() << " acknowledged writes");
  CHECK(missing == 0);
}

TEST_CASE("persistence: versions, TTLs and removals come back after a restart",
          "[persistence][integration]") {
  TempDir dir;
  {
    ShoaldProcess member({"--data-dir", dir.path});
    auto client = connectTo(member);
    auto m = client->rawMap("users");
    m.set("alice", "1");
    m.set("alice", "2");
    m.set("alice", "3");
    m.set("session", "s", shoal::WriteOptions{.ttl = 1h});
    m.set("short", "x", shoal::WriteOptions{.ttl = 300ms});
    m.set("gone", "x");
    m.remove("gone");
    CHECK(member.terminate() == 0);
  }
  std::this_thread::sleep_for(400ms);  // "short" expires while the member is down
  ShoaldProcess member({"--data-dir", dir.path});
  auto client = connectTo(member);
  auto m = client->rawMap("users");
  auto alice = m.getEntry("alice");
  REQUIRE(alice);
  CHECK(alice->value == "3");
  CHECK(alice->version == 3);
  CHECK(m.replaceIfVersion("alice", 3, "4"));  // compare-and-set keeps working across restarts
  auto session = m.getEntry("session");
  REQUIRE(session);
  CHECK(session->expirationTimeMs > 0);
  CHECK_FALSE(m.get("short"));
  CHECK_FALSE(m.get("gone"));
  CHECK(m.size() == 2);
  CHECK_THAT(member.log(), Catch::Contains("restored"));
}

TEST_CASE("persistence: a map configured in memory only is not stored", "[persistence][integration]") {
  TempDir dir;
  std::string config = dir.path + "/../" + fs::path(dir.path).filename().string() + ".toml";
  std::ofstream(config) << "[maps.cache]\npersistence = \"none\"\n";
  {
    ShoaldProcess member({"--data-dir", dir.path, "--config", config});
    auto client = connectTo(member);
    client->rawMap("cache").set("k", "v");
    client->rawMap("kept").set("k", "v");
    member.kill9();
  }
  ShoaldProcess member({"--data-dir", dir.path, "--config", config});
  auto client = connectTo(member);
  CHECK_FALSE(client->rawMap("cache").get("k"));
  CHECK(client->rawMap("kept").get("k") == std::optional<std::string>("v"));
  fs::remove(config);
}

TEST_CASE("persistence: a foreign data directory is refused and left alone", "[persistence][integration]") {
  TempDir dir;
  std::ofstream(dir.path + "/precious.txt") << "not shoal's";
  auto r =
      shoal::test::runCommand({ShoaldProcess::binary(), "--listen", "127.0.0.1:0", "--data-dir", dir.path});
  CHECK(r.exitCode != 0);
  CHECK_THAT(r.err, Catch::Contains("data-dir"));
  CHECK(fs::exists(dir.path + "/precious.txt"));
}

TEST_CASE("persistence: a full disk fails writes with STORE_FAILED and keeps what was stored",
          "[persistence][integration]") {
  TempDir dir;
  if (mount("tmpfs", dir.path.c_str(), "tmpfs", 0, "size=192m") != 0) {
    WARN("cannot mount a tmpfs here (needs root): skipped");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir.path};

  std::vector<std::string> stored;
  bool sawStoreFailed = false;
  {
    ShoaldProcess member({"--data-dir", dir.path});
    auto client = connectTo(member);
    auto m = client->rawMap("big");
    std::string value(256 * 1024, 'x');  // the store keeps 128 MiB free (reservedDiskBytes)
    for (int i = 0; i < 2000 && !sawStoreFailed; ++i) {
      try {
        m.set("k" + std::to_string(i), value);
        stored.push_back("k" + std::to_string(i));
      } catch (const shoal::Error& e) {
        INFO(e.what());
        CHECK(e.code() == shoal::ErrorCode::STORE_FAILED);
        sawStoreFailed = true;
      }
    }
    CHECK(sawStoreFailed);
    CHECK(member.alive());
    // Reads keep working while the disk is full.
    if (!stored.empty()) CHECK(m.get(stored.front()));
    member.kill9();
  }
  REQUIRE(!stored.empty());
  ShoaldProcess member({"--data-dir", dir.path});
  auto client = connectTo(member);
  auto m = client->rawMap("big");
  size_t missing = 0;
  for (auto& k : stored) missing += !m.get(k).has_value();
  CHECK(missing == 0);
}

TEST_CASE("persistence: entries evicted from memory are read through from the store",
          "[persistence][integration]") {
  TempDir dir;
  std::string config = dir.path + ".toml";
  std::ofstream(config) << "[maps.small]\nmax-entries = 100\n";
  ShoaldProcess member({"--data-dir", dir.path, "--config", config});
  auto client = connectTo(member);
  auto m = client->rawMap("small");
  for (int i = 0; i < 1000; ++i) m.set("k" + std::to_string(i), "v" + std::to_string(i));
  CHECK(m.size() <= 100);  // memory holds at most 100; the store holds all 1000
  size_t missing = 0;
  for (int i = 0; i < 1000; ++i)
    missing += m.get("k" + std::to_string(i)) != std::optional<std::string>("v" + std::to_string(i));
  CHECK(missing == 0);
  // Conditional writes see the stored entry too: putIfAbsent on an evicted key does not apply.
  m.set("first", "1");
  for (int i = 0; i < 300; ++i) m.set("push" + std::to_string(i), "x");  // evicts "first" (most likely)
  CHECK(m.putIfAbsent("first", "2") == std::optional<std::string>("1"));
  auto entry = m.getEntry("first");
  REQUIRE(entry);
  CHECK(entry->version == 1);
  CHECK_FALSE(m.get("never-written"));
  fs::remove(config);
}

// Pipelined Redis commands and their replies, up to a closing ECHO (so every reply is in).
class RespScript {
 public:
  explicit RespScript(const ShoaldProcess& member) : redis_(shoal::test::portOf(member.respAddress())) {}
  std::string run(const std::string& commands) {
    static const std::string END = "$10\r\nend-marker\r\n";
    redis_.send(commands + "ECHO end-marker\r\n");
    auto reply = redis_.readUntil(END);
    REQUIRE(reply.size() >= END.size());
    return reply.substr(0, reply.size() - END.size());
  }

 private:
  shoal::test::RawClient redis_;
};

// SET k0..k{n-1} to v0..; GET of each; the GET replies expected.
struct NumberedKeys {
  std::string sets, gets, expected;
  explicit NumberedKeys(int n) {
    for (int i = 0; i < n; ++i) {
      auto v = "v" + std::to_string(i);
      sets += "SET k" + std::to_string(i) + " " + v + "\r\n";
      gets += "GET k" + std::to_string(i) + "\r\n";
      expected += "$" + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    }
  }
};

TEST_CASE("persistence: Redis commands read entries evicted from memory through from the store",
          "[persistence][integration][resp]") {
  TempDir dir;
  std::string config = dir.path + ".toml";
  std::ofstream(config) << "[maps.default]\nmax-entries = 100\n";  // the RESP map
  ShoaldProcess member({"--data-dir", dir.path, "--config", config, "--resp", "127.0.0.1:0"});
  RespScript redis(member);
  auto run = [&](const std::string& commands) { return redis.run(commands); };
  NumberedKeys keys(1000);
  run(keys.sets);
  CHECK(run(keys.gets) == keys.expected);  // memory holds at most 100 of them; the store has all 1000
  // Writes see the stored entry too: INCR goes on from the stored count, DEL removes it for good.
  run("SET counter 41\r\nSET gone 1\r\n");
  std::string evict;
  for (int i = 0; i < 300; ++i) evict += "SET push" + std::to_string(i) + " x\r\n";
  run(evict);
  CHECK(run("INCR counter\r\n") == ":42\r\n");
  CHECK(run("DEL gone\r\n") == ":1\r\n");
  run(evict);
  CHECK(run("GET gone\r\nEXISTS gone\r\n") == "$-1\r\n:0\r\n");
  fs::remove(config);
}

TEST_CASE("persistence: Redis commands routed to another member read its evicted entries through",
          "[persistence][integration][resp][cluster]") {
  TempDir dir;
  std::string config = dir.path + ".toml";
  std::ofstream(config) << "[maps.default]\nmax-entries = 50\n";  // per member
  ShoaldProcess first({"--data-dir", dir.path + "/a", "--config", config, "--resp", "127.0.0.1:0"}, "m1");
  ShoaldProcess second({"--data-dir", dir.path + "/b", "--config", config, "--seeds", first.address()}, "m2");
  auto client = connectTo(first);
  for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
    auto info = client->cluster();
    if (info.members.size() == 2 && info.migrating == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(client->cluster().members.size() == 2);
  // Through m1's RESP port: about half the keys live on m2, which answers them (routed commands).
  RespScript redis(first);
  NumberedKeys keys(600);
  redis.run(keys.sets);
  CHECK(redis.run(keys.gets) == keys.expected);  // each member holds at most 50 in memory
  auto m = client->rawMap("default");
  size_t viaClient = 0;
  for (int i = 0; i < 600; ++i)
    viaClient += m.get("k" + std::to_string(i)) != std::optional<std::string>("v" + std::to_string(i));
  CHECK(viaClient == 0);  // and the same through the client library
  fs::remove(config);
}

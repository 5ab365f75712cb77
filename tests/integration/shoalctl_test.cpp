// shoalctl, the command-line client, run as a process against a real shoald: every command in
// human and --json form, exit codes, durations, paging, watch, and usage errors.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "shoal/client/client.h"
#include "shoald_process.h"

#ifndef SHOALCTL_BINARY
#error "SHOALCTL_BINARY must be defined by the build"
#endif

using namespace std::chrono_literals;
using nlohmann::json;
using shoal::test::CommandResult;
using shoal::test::runCommand;
using shoal::test::ShoaldProcess;

namespace {

// Runs shoalctl with `args` as given (no --servers added).
CommandResult shoalctl(std::vector<std::string> args, int timeoutMs = 20000) {
  args.insert(args.begin(), SHOALCTL_BINARY);
  return runCommand(args, timeoutMs);
}

// Runs shoalctl against `member`.
CommandResult ctl(const ShoaldProcess& member, std::vector<std::string> args, int timeoutMs = 20000) {
  args.insert(args.begin(), {"--servers", member.address()});
  return shoalctl(std::move(args), timeoutMs);
}

json parsed(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE_NOTHROW(json::parse(r.out));
  return json::parse(r.out);
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A file under /tmp holding `content`, removed when destroyed.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char name[] = "/tmp/shoalctl-test-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path_ = name;
    std::ofstream(path_) << content;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A loopback port nothing listens on: bound by the kernel's choice, then released.
std::string deadAddress() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

}  // namespace

TEST_CASE("shoalctl: ping reports the member", "[shoalctl][integration]") {
  ShoaldProcess member({}, "ping-member");
  auto human = ctl(member, {"ping"});
  CHECK(human.exitCode == 0);
  CHECK_THAT(human.out, Catch::StartsWith("pong from ping-member at ") && Catch::Contains("active"));

  auto doc = parsed(ctl(member, {"--json", "ping"}));
  CHECK(doc["name"] == "ping-member");
  CHECK(doc["state"] == "active");
  CHECK(doc["latencyMs"].get<double>() >= 0);
  CHECK(doc["uptimeMs"].get<int64_t>() >= 0);
}

TEST_CASE("shoalctl: put, get and remove in human form", "[shoalctl][integration]") {
  ShoaldProcess member;
  auto first = ctl(member, {"put", "users", "alice", "admin"});
  CHECK(first.exitCode == 0);
  CHECK(first.out.empty());  // no previous value
  auto second = ctl(member, {"put", "users", "alice", "owner"});
  CHECK(second.exitCode == 0);
  CHECK(second.out == "admin\n");
  auto got = ctl(member, {"get", "users", "alice"});
  CHECK(got.exitCode == 0);
  CHECK(got.out == "owner\n");
  auto removed = ctl(member, {"remove", "users", "alice"});
  CHECK(removed.exitCode == 0);
  CHECK(removed.out == "owner\n");

  auto absent = ctl(member, {"get", "users", "alice"});
  CHECK(absent.exitCode == 1);
  CHECK(absent.out.empty());
  CHECK_THAT(absent.err, Catch::Contains("alice"));
  CHECK(ctl(member, {"remove", "users", "alice"}).exitCode == 1);
}

TEST_CASE("shoalctl: put, get and remove in JSON form", "[shoalctl][integration]") {
  ShoaldProcess member;
  auto first = parsed(ctl(member, {"--json", "put", "users", "bob", "v1"}));
  CHECK(first == json{{"map", "users"}, {"key", "bob"}, {"previous", nullptr}});
  // --json may also follow the command.
  auto second = parsed(ctl(member, {"put", "users", "bob", "v2", "--json"}));
  CHECK(second["previous"] == "v1");
  auto got = parsed(ctl(member, {"--json", "get", "users", "bob"}));
  CHECK(got == json{{"map", "users"}, {"key", "bob"}, {"found", true}, {"value", "v2"}});
  auto removed = parsed(ctl(member, {"--json", "remove", "users", "bob"}));
  CHECK(removed["found"] == true);
  CHECK(removed["value"] == "v2");

  auto absent = ctl(member, {"--json", "get", "users", "bob"});
  CHECK(absent.exitCode == 1);
  CHECK(parsed(absent) == json{{"map", "users"}, {"key", "bob"}, {"found", false}, {"value", nullptr}});
  auto removeAbsent = ctl(member, {"--json", "remove", "users", "bob"});
  CHECK(removeAbsent.exitCode == 1);
  CHECK(parsed(removeAbsent)["found"] == false);
}

TEST_CASE("shoalctl: bytes that are not UTF-8 are base64 in JSON, raw in text", "[shoalctl][integration]") {
  ShoaldProcess member;
  std::string binary = "\xff\xfe\x01";
  std::string unicode = "h\xc3\xa9llo \xe2\x82\xac";  // "héllo €"
  REQUIRE(ctl(member, {"put", "bytes", "bin", binary}).exitCode == 0);
  REQUIRE(ctl(member, {"put", "bytes", unicode, unicode}).exitCode == 0);

  CHECK(ctl(member, {"get", "bytes", "bin"}).out == binary + "\n");
  auto doc = parsed(ctl(member, {"--json", "get", "bytes", "bin"}));
  CHECK(doc["value"] == json{{"base64", "//4B"}});
  auto text = parsed(ctl(member, {"--json", "get", "bytes", unicode}));
  CHECK(text["key"] == unicode);
  CHECK(text["value"] == unicode);
  auto watched = parsed(ctl(member, {"--json", "put", "bytes", binary, "x"}));
  CHECK(watched["key"] == json{{"base64", "//4B"}});
}

TEST_CASE("shoalctl: put --ttl makes the entry expire", "[shoalctl][integration]") {
  ShoaldProcess member;
  // Generous margins: the check right after put must land before expiry on a loaded machine.
  REQUIRE(ctl(member, {"put", "sessions", "short", "s", "--ttl", "2000ms"}).exitCode == 0);
  REQUIRE(ctl(member, {"put", "sessions", "long", "l", "--ttl", "1d"}).exitCode == 0);
  CHECK(ctl(member, {"get", "sessions", "short"}).out == "s\n");
  std::this_thread::sleep_for(3s);
  CHECK(ctl(member, {"get", "sessions", "short"}).exitCode == 1);
  CHECK(ctl(member, {"get", "sessions", "long"}).out == "l\n");
}

TEST_CASE("shoalctl: size, clear and maps", "[shoalctl][integration]") {
  ShoaldProcess member;
  CHECK(ctl(member, {"maps"}).out == "(no maps)\n");
  for (auto key : {"a", "b", "c"}) REQUIRE(ctl(member, {"put", "inventory", key, "1"}).exitCode == 0);
  REQUIRE(ctl(member, {"put", "other", "x", "1"}).exitCode == 0);

  CHECK(ctl(member, {"size", "inventory"}).out == "3\n");
  CHECK(parsed(ctl(member, {"--json", "size", "inventory"})) == json{{"map", "inventory"}, {"size", 3}});

  auto table = linesOf(ctl(member, {"maps"}).out);
  REQUIRE(table.size() == 3);
  CHECK_THAT(table[0], Catch::StartsWith("NAME") && Catch::Contains("ENTRIES"));
  CHECK_THAT(table[1], Catch::StartsWith("inventory") && Catch::Contains(" 3 "));
  CHECK_THAT(table[2], Catch::StartsWith("other"));
  auto maps = parsed(ctl(member, {"--json", "maps"}))["maps"];
  REQUIRE(maps.size() == 2);
  CHECK(maps[0]["name"] == "inventory");
  CHECK(maps[0]["entries"] == 3);
  CHECK(maps[0]["bytes"].get<uint64_t>() > 0);

  auto cleared = ctl(member, {"clear", "inventory"});
  CHECK(cleared.exitCode == 0);
  CHECK_THAT(cleared.out, Catch::Contains("removed 3 entries"));
  CHECK(ctl(member, {"size", "inventory"}).out == "0\n");
  CHECK(parsed(ctl(member, {"--json", "clear", "other"})) == json{{"map", "other"}, {"removed", 1}});
}

TEST_CASE("shoalctl: keys pages through the map and stops at --limit", "[shoalctl][integration]") {
  TempFile config("[limits]\nmax-scan-limit = 4\n");  // 23 keys take several pages
  ShoaldProcess member({"--config", config.path()});
  std::set<std::string> expected;
  for (int i = 0; i < 23; ++i) {
    auto key = "k" + std::to_string(i);
    expected.insert(key);
    REQUIRE(ctl(member, {"put", "paged", key, "v"}).exitCode == 0);
  }
  auto all = linesOf(ctl(member, {"keys", "paged"}).out);
  CHECK(std::set<std::string>(all.begin(), all.end()) == expected);
  CHECK(all.size() == 23);

  auto limited = ctl(member, {"keys", "paged", "--limit", "10"});
  CHECK(limited.exitCode == 0);
  CHECK(linesOf(limited.out).size() == 10);

  auto doc = parsed(ctl(member, {"--json", "keys", "paged", "--limit", "6"}));
  CHECK(doc["keys"].size() == 6);
  CHECK(doc["count"] == 6);
  CHECK(doc["complete"] == false);
  auto whole = parsed(ctl(member, {"--json", "keys", "paged"}));
  CHECK(whole["count"] == 23);
  CHECK(whole["complete"] == true);
}

TEST_CASE("shoalctl: watch --count prints events of a concurrent put", "[shoalctl][integration]") {
  ShoaldProcess member;
  bool asJson = GENERATE(false, true);
  std::vector<std::string> args = {"--servers", member.address(), "watch", "events", "--count", "3"};
  if (asJson) args.push_back("--json");
  CommandResult watched;
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    watched = shoalctl(args, 30000);
    done = true;
  });
  // Events before watch registered its listener are not seen; keep writing until it has 3.
  int i = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 25s;
       !done && std::chrono::steady_clock::now() < deadline;) {
    ctl(member, {"put", "events", "k" + std::to_string(i++), "v"});
    std::this_thread::sleep_for(50ms);
  }
  watcher.join();
  INFO("watch stdout: " << watched.out << "\nstderr: " << watched.err);
  CHECK(watched.exitCode == 0);
  auto lines = linesOf(watched.out);
  REQUIRE(lines.size() == 3);
  for (auto& line : lines) {
    if (asJson) {
      auto event = json::parse(line);
      CHECK(event["type"] == "added");
      CHECK(event["map"] == "events");
      CHECK(event["value"] == "v");
      CHECK(event["version"] == 1);
    } else {
      CHECK_THAT(line, Catch::Matches("added k[0-9]+: v"));
    }
  }
}

TEST_CASE("shoalctl: watch exits cleanly on SIGTERM and SIGINT", "[shoalctl][integration]") {
  ShoaldProcess member;
  std::string signal = GENERATE(as<std::string>{}, "TERM", "INT");
  TempFile out("");
  std::string ctlCmd = std::string(SHOALCTL_BINARY) + " --servers " + member.address();
  // The signal is sent once watch printed an event, i.e. is listening (or after ~100 tries, so
  // that a broken watch is still ended and reported, never left running).
  std::string script = ctlCmd + " watch sig > " + out.path() + " & pid=$!; i=0; until [ -s " + out.path() +
                       " ] || [ $i -ge 100 ]; do i=$((i+1)); " + ctlCmd +
                       " put sig k$i v > /dev/null; sleep 0.1; done; kill -" + signal +
                       " $pid; wait $pid; echo rc=$?";
  auto r = runCommand({"/bin/sh", "-c", script}, 30000);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exitCode == 0);
  CHECK(r.out == "rc=0\n");
}

TEST_CASE("shoalctl: cluster prints members, partitions and table epoch", "[shoalctl][integration]") {
  TempFile config("partition-count = 31\n");
  ShoaldProcess member({"--config", config.path()}, "cluster-member");
  auto human = ctl(member, {"cluster"});
  CHECK(human.exitCode == 0);
  auto lines = linesOf(human.out);
  REQUIRE(lines.size() >= 3);
  CHECK_THAT(lines[0], Catch::Contains("NAME") && Catch::Contains("ADDRESS") && Catch::Contains("AGE") &&
                           Catch::Contains("PRIMARIES") && Catch::Contains("BACKUPS"));
  CHECK_THAT(lines[1], Catch::StartsWith("cluster-member") && Catch::Contains(member.address()) &&
                           Catch::Contains(" 31 "));
  CHECK_THAT(human.out, Catch::Contains("31 partitions, partition table epoch"));

  auto doc = parsed(ctl(member, {"--json", "cluster"}));
  CHECK(doc["partitionCount"] == 31);
  CHECK(doc["tableEpoch"].get<uint64_t>() >= 1);
  REQUIRE(doc["members"].size() == 1);
  CHECK(doc["members"][0]["name"] == "cluster-member");
  CHECK(doc["members"][0]["address"] == member.address());
  CHECK(doc["members"][0]["partitions"] == 31);
}

TEST_CASE("shoalctl: nothing listening exits 3 quickly with advice", "[shoalctl][integration]") {
  auto dead = deadAddress();
  std::vector<std::string> command =
      GENERATE(std::vector<std::string>{"ping"}, std::vector<std::string>{"get", "m", "k"},
               std::vector<std::string>{"--json", "maps"});
  std::vector<std::string> args = {"--servers", dead, "--timeout", "300ms"};
  args.insert(args.end(), command.begin(), command.end());
  auto start = std::chrono::steady_clock::now();
  auto r = shoalctl(args);
  CHECK(r.exitCode == 3);
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains(dead) && Catch::Contains("--servers"));
}

TEST_CASE("shoalctl: SHOAL_SERVERS is the default for --servers", "[shoalctl][integration]") {
  ShoaldProcess member;
  setenv("SHOAL_SERVERS", member.address().c_str(), 1);
  auto fromEnv = shoalctl({"put", "env", "k", "v"});
  setenv("SHOAL_SERVERS", deadAddress().c_str(), 1);
  auto flagWins = shoalctl({"--servers", member.address(), "get", "env", "k"});
  auto envDead = shoalctl({"--timeout", "200ms", "get", "env", "k"});
  unsetenv("SHOAL_SERVERS");
  CHECK(fromEnv.exitCode == 0);
  CHECK(flagWins.out == "v\n");
  CHECK(envDead.exitCode == 3);
}

TEST_CASE("shoalctl: other server errors exit 4", "[shoalctl][integration]") {
  TempFile config("[limits]\nmax-value-bytes = 16\n");
  ShoaldProcess member({"--config", config.path()});
  auto r = ctl(member, {"put", "small", "k", std::string(100, 'x')});
  CHECK(r.exitCode == 4);
  CHECK_THAT(r.err, Catch::Contains("too large") && Catch::Contains("smaller"));
}

TEST_CASE("shoalctl: usage errors exit 2 and say what to do", "[shoalctl][integration]") {
  auto args = GENERATE(std::vector<std::string>{}, std::vector<std::string>{"frobnicate"},
                       std::vector<std::string>{"get", "m"}, std::vector<std::string>{"put", "m", "k"},
                       std::vector<std::string>{"put", "m", "k", "v", "--ttl", "5x"},
                       std::vector<std::string>{"put", "m", "k", "v", "--ttl", "-5s"},
                       std::vector<std::string>{"--timeout", "soon", "ping"},
                       std::vector<std::string>{"--timeout", "0s", "ping"},
                       std::vector<std::string>{"keys", "m", "--limit", "0"},
                       std::vector<std::string>{"watch", "m", "--count", "x"},
                       std::vector<std::string>{"--servers", "nohost", "ping"},
                       std::vector<std::string>{"get", "", "k"}, std::vector<std::string>{"ping", "extra"});
  auto r = shoalctl(args, 10000);
  CHECK(r.exitCode == 2);
  CHECK(r.out.empty());
  CHECK_FALSE(r.err.empty());
  CHECK_THAT(r.err, Catch::Contains("--help"));
}

TEST_CASE("shoalctl: --help documents commands, exit codes and JSON encoding", "[shoalctl][integration]") {
  auto r = shoalctl({"--help"});
  CHECK(r.exitCode == 0);
  for (auto word : {"watch", "cluster", "SHOAL_SERVERS", "Exit codes", "base64", "500ms"}) {
    CHECK_THAT(r.out, Catch::Contains(word));
  }
}

// Topics ----------------------------------------------------------------------------------------

namespace {

std::unique_ptr<shoal::Client> clientOf(const ShoaldProcess& member) {
  shoal::ClientOptions options;
  options.servers = {member.address()};
  return shoal::Client::connect(options);
}

// Reads a whole file ("" when missing).
std::string fileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Ends a process the test started through a shell, whatever state it was left in.
struct ProcessGuard {
  int pid = 0;
  ~ProcessGuard() {
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
    }
  }
};

}  // namespace

TEST_CASE("shoalctl: publish, subscribe and topics round trip", "[shoalctl][topic][integration]") {
  ShoaldProcess member;
  auto first = ctl(member, {"publish", "orders", "hello"});
  INFO("stderr: " << first.err);
  CHECK(first.exitCode == 0);
  CHECK(first.out == "1\n");
  CHECK(ctl(member, {"publish", "orders", "world", "--key", "k1", "--header", "a=1", "--header", "b=x=y"})
            .out == "2\n");
  auto doc = parsed(ctl(member, {"--json", "publish", "orders", "third"}));
  CHECK(doc["topic"] == "orders");
  CHECK(doc["seq"] == 3);

  auto human = ctl(member, {"subscribe", "orders", "--from", "earliest", "--count", "3"});
  INFO("stderr: " << human.err);
  CHECK(human.exitCode == 0);
  CHECK(human.out == "hello\nworld\nthird\n");
  CHECK(ctl(member, {"subscribe", "orders", "--from", "2", "--count", "1"}).out == "world\n");

  auto asJson = ctl(member, {"subscribe", "orders", "--from", "earliest", "--count", "2", "--json"});
  CHECK(asJson.exitCode == 0);
  auto lines = linesOf(asJson.out);
  REQUIRE(lines.size() == 2);
  auto m1 = json::parse(lines[0]), m2 = json::parse(lines[1]);
  CHECK(m1["topic"] == "orders");
  CHECK(m1["seq"] == 1);
  CHECK(m1["value"] == "hello");
  CHECK(m1["key"] == "");
  CHECK(m1["headers"] == json::array());
  CHECK(m2["seq"] == 2);
  CHECK(m2["key"] == "k1");
  CHECK(m2["headers"] == json::parse(R"([{"name":"a","value":"1"},{"name":"b","value":"x=y"}])"));
  CHECK(m2["publishTimeMs"].get<int64_t>() > 0);
  CHECK(m2["receivedTimeMs"].get<int64_t>() >= m2["publishTimeMs"].get<int64_t>() - 1000);

  ctl(member, {"publish", "alerts", "x"});
  auto table = ctl(member, {"topics"});
  CHECK(table.exitCode == 0);
  auto rows = linesOf(table.out);
  REQUIRE(rows.size() == 3);
  CHECK_THAT(rows[0],
             Catch::Matches("NAME +FIRST +LAST +RETAINED +SUBSCRIBERS +CAPACITY +RETENTION +DURABLE"));
  CHECK_THAT(rows[1], Catch::Matches("alerts +1 +1 +1 +0 +10000 +- +no"));
  CHECK_THAT(rows[2], Catch::Matches("orders +1 +3 +3 +0 +10000 +- +no"));
  auto listed = parsed(ctl(member, {"--json", "topics"}));
  REQUIRE(listed["topics"].size() == 2);
  CHECK(listed["topics"][1]["name"] == "orders");
  CHECK(listed["topics"][1]["lastSeq"] == 3);
  CHECK(listed["topics"][1]["capacity"] == 10000);
  CHECK(listed["topics"][1]["durable"] == false);
}

TEST_CASE("shoalctl: subscribe prints messages published after it started",
          "[shoalctl][topic][integration]") {
  ShoaldProcess member;
  CommandResult subscribed;
  std::atomic<bool> done{false};
  std::thread subscriber([&] {
    subscribed = ctl(member, {"subscribe", "live", "--count", "2"}, 30000);
    done = true;
  });
  // Messages before it subscribed are not seen (--from latest); keep publishing until it has 2.
  int i = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 25s;
       !done && std::chrono::steady_clock::now() < deadline;) {
    ctl(member, {"publish", "live", "v" + std::to_string(i++)});
    std::this_thread::sleep_for(50ms);
  }
  subscriber.join();
  INFO("stdout: " << subscribed.out << "\nstderr: " << subscribed.err);
  CHECK(subscribed.exitCode == 0);
  auto lines = linesOf(subscribed.out);
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[0], Catch::Matches("v[0-9]+"));
  CHECK(std::stoi(lines[1].substr(1)) == std::stoi(lines[0].substr(1)) + 1);  // consecutive
}

TEST_CASE("shoalctl: subscribe reports messages the topic dropped as a gap",
          "[shoalctl][topic][integration]") {
  ShoaldProcess member;  // default topic capacity: 10000
  std::vector<shoal::OutgoingMessage> messages;
  for (int i = 1; i <= 10'010; ++i) messages.push_back({"m" + std::to_string(i), {}, {}});
  clientOf(member)->topic("ring").publishAll(messages);  // 1..10 overwritten

  auto human = ctl(member, {"subscribe", "ring", "--from", "5", "--count", "1"});
  CHECK(human.exitCode == 0);
  CHECK(human.out == "m11\n");
  CHECK_THAT(human.err, Catch::Contains("gap: messages 5..10 were dropped"));

  auto asJson = ctl(member, {"--json", "subscribe", "ring", "--from", "1", "--count", "1"});
  CHECK(asJson.exitCode == 0);
  auto lines = linesOf(asJson.out);
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[0]) == json::parse(R"({"gap":{"from":1,"to":10}})"));
  CHECK(json::parse(lines[1])["seq"] == 11);
}

TEST_CASE("shoalctl: subscribe exits cleanly on SIGTERM and SIGINT", "[shoalctl][topic][integration]") {
  ShoaldProcess member;
  std::string signal = GENERATE(as<std::string>{}, "TERM", "INT");
  TempFile out("");
  std::string ctlCmd = std::string(SHOALCTL_BINARY) + " --servers " + member.address();
  // The signal is sent once subscribe printed a message, i.e. is subscribed (or after ~100 tries,
  // so that a broken subscribe is still ended and reported, never left running).
  std::string script = ctlCmd + " subscribe sig > " + out.path() + " & pid=$!; i=0; until [ -s " +
                       out.path() + " ] || [ $i -ge 100 ]; do i=$((i+1)); " + ctlCmd +
                       " publish sig m$i > /dev/null; sleep 0.1; done; kill -" + signal +
                       " $pid; wait $pid; echo rc=$?";
  auto r = runCommand({"/bin/sh", "-c", script}, 30000);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exitCode == 0);
  CHECK(r.out == "rc=0\n");
}

TEST_CASE("shoalctl: a subscription cut off for falling behind exits 6 and says where to resume",
          "[shoalctl][topic][integration]") {
  ShoaldProcess member;  // max subscriber lag: the capacity, 10000 messages
  auto client = clientOf(member);
  auto topic = client->topic("cut");
  TempFile out(""), err(""), pidFile("");
  std::string script = std::string(SHOALCTL_BINARY) + " --servers " + member.address() +
                       " --json subscribe cut > " + out.path() + " 2> " + err.path() + " & echo $! > " +
                       pidFile.path() + "; wait $!; echo rc=$?";
  CommandResult r;
  std::thread runner([&] { r = runCommand({"/bin/sh", "-c", script}, 60000); });
  ProcessGuard guard;
  // Once it prints, it is subscribed: stop it (SIGSTOP), so that it takes nothing more.
  for (int i = 0; i < 200 && fileText(out.path()).empty(); ++i) {
    topic.publish("warm-up");
    std::this_thread::sleep_for(50ms);
  }
  guard.pid = std::atoi(fileText(pidFile.path()).c_str());
  REQUIRE(guard.pid > 0);
  ::kill(guard.pid, SIGSTOP);
  // Publish until the member cut it off (it no longer counts the subscriber): more than the lag
  // allowed plus what the connection's flow-control window lets through while it is stopped.
  std::vector<shoal::OutgoingMessage> big(1000, shoal::OutgoingMessage{std::string(4096, 'x'), {}, {}});
  auto subscribers = [&] {
    for (auto& t : client->topics()) {
      if (t.name == "cut") return t.subscribers;
    }
    return 0u;
  };
  for (int round = 0; round < 40 && subscribers() > 0; ++round) topic.publishAll(big);
  CHECK(subscribers() == 0);
  ::kill(guard.pid, SIGCONT);
  runner.join();
  guard.pid = 0;
  auto stderrText = fileText(err.path());
  INFO("stderr: " << stderrText);
  CHECK(r.out == "rc=6\n");
  CHECK_THAT(stderrText, Catch::Contains("overloaded") && Catch::Contains("--from "));
  // Where to resume: right after the last message it printed.
  auto printed = linesOf(fileText(out.path()));
  REQUIRE_FALSE(printed.empty());
  auto next = json::parse(printed.back())["seq"].get<uint64_t>() + 1;
  CHECK_THAT(stderrText, Catch::Contains("subscribe cut --from " + std::to_string(next)));
}

TEST_CASE("shoalctl: bad topic commands are usage errors", "[shoalctl][topic][integration]") {
  auto args =
      GENERATE(std::vector<std::string>{"publish", "t"}, std::vector<std::string>{"publish", "$t", "m"},
               std::vector<std::string>{"publish", "a{b}", "m"},
               std::vector<std::string>{"publish", "t", "m", "--header", "novalue"},
               std::vector<std::string>{"subscribe", "t", "--from", "soon"},
               std::vector<std::string>{"subscribe", "t", "--from", "0"},
               std::vector<std::string>{"subscribe", "t", "--count", "0"},
               std::vector<std::string>{"subscribe"}, std::vector<std::string>{"topics", "extra"});
  auto r = shoalctl(args, 10000);
  INFO("stderr: " << r.err);
  CHECK(r.exitCode == 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains("--help"));
}

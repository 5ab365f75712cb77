// shoald's configuration edge: flags, environment and the TOML file. An invalid option exits 2
// with a message naming it; a valid file is applied; SIGTERM leaves with exit code 0.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "shoal/client/client.h"
#include "shoal/version.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::runCommand;
using shoal::test::ShoaldProcess;

namespace {

// A config file that exists for the scope of a test.
class TempConfig {
 public:
  explicit TempConfig(const std::string& toml) {
    char path[] = "/tmp/shoald-config-XXXXXX.toml";
    int fd = mkstemps(path, 5);
    REQUIRE(fd >= 0);
    ::close(fd);
    path_ = path;
    std::ofstream(path_) << toml;
  }
  ~TempConfig() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An environment variable set for the scope of a test (child processes inherit it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

// Runs shoald with `args`; it must refuse to start with exit code 2 and name `option` on stderr.
// A shoald that wrongly starts is killed after `timeoutMs` (exit code -1).
void expectRejected(const std::vector<std::string>& args, const std::string& option, int timeoutMs = 10000) {
  std::vector<std::string> argv = {ShoaldProcess::binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runCommand(argv, timeoutMs);
  INFO("stderr: " << r.err);
  CHECK(r.exitCode == 2);
  CHECK_THAT(r.err, Catch::Contains(option));
  CHECK(r.out.find("ready on") == std::string::npos);
}

void expectConfigRejected(const std::string& toml, const std::string& option, int timeoutMs = 10000) {
  TempConfig config(toml);
  INFO("config:\n" << toml);
  expectRejected({"--config", config.path(), "--listen", "127.0.0.1:0"}, option, timeoutMs);
}

}  // namespace

TEST_CASE("shoald config: invalid flags exit 2 naming the option", "[integration]") {
  expectRejected({"--listen", "no-port-here"}, "listen");
  expectRejected({"--listen", "127.0.0.1:70000"}, "listen");
  expectRejected({"--bogus-flag", "1"}, "--bogus-flag");
  expectRejected({"--listen", "127.0.0.1:0", "--log-level", "loud"}, "log-level");
  expectRejected({"--listen", "127.0.0.1:0", "--seeds", "a:1,not-an-address"}, "seeds");
  expectRejected({"--listen", "127.0.0.1:0", "--config", "/nonexistent/shoald.toml"},
                 "/nonexistent/shoald.toml");
  expectRejected({"--listen", "127.0.0.1:0", "--backup-count", "7"}, "cluster.backup-count");
  expectRejected({"--listen", "127.0.0.1:0", "--backup-count", "4", "--async-backup-count", "3"},
                 "cluster.async-backup-count");
}

TEST_CASE("shoald config: invalid config files exit 2 naming the option", "[integration]") {
  expectConfigRejected("colour = \"red\"\n", "colour: unknown option");
  expectConfigRejected("[limits]\nmax-widgets = 3\n", "limits.max-widgets");
  expectConfigRejected("[maps.orders]\nttl = \"1s\"\n", "maps.orders.ttl");
  expectConfigRejected("partition-count = \"many\"\n", "partition-count");
  expectConfigRejected("name = 42\n", "name");
  expectConfigRejected("seeds = \"a:1\"\n", "seeds");
  expectConfigRejected("[map-defaults]\ndefault-ttl = \"10 fortnights\"\n", "map-defaults.default-ttl");
  expectConfigRejected("[maps.x]\ndefault-max-idle = \"soon\"\n", "maps.x.default-max-idle");
  expectConfigRejected("expiry-sweep-interval = \"-5s\"\n", "expiry-sweep-interval");
  expectConfigRejected("partition-count = 0\n", "partition-count");
  expectConfigRejected("partition-count = 70000\n", "partition-count");
  expectConfigRejected("log-level = \"chatty\"\n", "log-level");
  expectConfigRejected("[maps.x]\neviction = \"random\"\n", "maps.x.eviction");
  expectConfigRejected("[limits]\nmax-message-bytes = 1024\n", "limits.max-message-bytes");
  expectConfigRejected("[limits]\nmax-batch-ops = 0\n", "limits.max-batch-ops");
  expectConfigRejected("[cluster]\nasync-backup-count = 7\n", "cluster.async-backup-count");
  expectConfigRejected("[maps.x]\nread-backup-data = \"yes\"\n", "maps.x.read-backup-data");
  expectConfigRejected("[maps.x]\nwrite-behind-queue-capacity = -5\n", "maps.x.write-behind-queue-capacity");
  expectConfigRejected("[limits]\nmax-key-bytes = -1\n", "limits.max-key-bytes");
  expectConfigRejected("[topics.orders]\nsize = 3\n", "topics.orders.size");
  expectConfigRejected("[topic-defaults]\noverload = \"drop\"\n", "topic-defaults.overload");
  expectConfigRejected("[topics.orders]\noverload = \"reject\"\n", "topics.orders.overload");
  expectConfigRejected("[topics.orders]\ncapacity = 0\n", "topics.orders.capacity");
  expectConfigRejected("[topics.orders]\ndurable = true\n", "topics.orders.durable");
  expectConfigRejected("[maps.orders]\nwrite-behind-sync = \"yes\"\n", "maps.orders.write-behind-sync");
  expectConfigRejected("name = \"unterminated\n", "line 1");  // TOML syntax error: file and line
}

TEST_CASE("shoald config: integers beyond their field's range are rejected, not wrapped", "[integration]") {
  // 4294967297 = 2^32 + 1: cast to a 32-bit field it would silently become 1.
  expectConfigRejected("partition-count = 4294967297\n", "partition-count", 3000);
  expectConfigRejected("[limits]\nmax-key-bytes = 4294967297\n", "limits.max-key-bytes", 3000);
  expectConfigRejected("[limits]\nmax-value-bytes = 4294967297\n", "limits.max-value-bytes", 3000);
}

TEST_CASE("shoald config: environment variables are honoured, flags override them", "[integration]") {
  SECTION("SHOAL_LISTEN") {
    ScopedEnv env("SHOAL_LISTEN", "env-address-without-port");
    expectRejected({}, "env-address-without-port");
  }
  SECTION("SHOAL_LOG_LEVEL") {
    ScopedEnv env("SHOAL_LOG_LEVEL", "shouty");
    expectRejected({"--listen", "127.0.0.1:0"}, "log-level");
  }
  SECTION("SHOAL_SEEDS") {
    ScopedEnv env("SHOAL_SEEDS", "bad-seed");
    expectRejected({"--listen", "127.0.0.1:0"}, "bad-seed");
  }
  SECTION("the environment overrides the config file") {
    TempConfig config("log-level = \"debug\"\n");
    ScopedEnv env("SHOAL_LOG_LEVEL", "env-level");
    expectRejected({"--config", config.path(), "--listen", "127.0.0.1:0"}, "env-level");
  }
  SECTION("a flag overrides the environment") {
    // The bad SHOAL_LISTEN is overridden, so validation gets as far as partition-count.
    TempConfig config("partition-count = 0\n");
    ScopedEnv env("SHOAL_LISTEN", "bogus");
    expectRejected({"--config", config.path(), "--listen", "127.0.0.1:0"}, "partition-count");
  }
  SECTION("SHOAL_CONFIG names the config file") {
    TempConfig config("[maps.from-env]\ndefault-ttl = \"7s\"\n");
    ScopedEnv env("SHOAL_CONFIG", config.path());
    ShoaldProcess member;
    shoal::ClientOptions options;
    options.servers = {member.address()};
    auto client = shoal::Client::connect(options);
    auto m = client->rawMap("from-env");
    m.set("k", "v");
    auto entry = m.getEntry("k");
    REQUIRE(entry);
    CHECK(entry->ttlMs == 7000);
  }
  CHECK(std::getenv("SHOAL_LISTEN") == nullptr);  // nothing leaks into later tests
}

TEST_CASE("shoald config: a valid TOML file configures limits and per-map defaults", "[integration]") {
  TempConfig config(R"(# every section of the documented format
name = "configured"
partition-count = 64
log-level = "info"
expiry-sweep-interval = "50ms"

[limits]
max-key-bytes = 1024
max-value-bytes = 65536
max-message-bytes = 2097152

[map-defaults]
default-ttl = "1h"

[maps.sessions]
default-ttl = "2s"
default-max-idle = 1500
eviction = "lfu"
max-entries = 1000

[maps.forever]
default-ttl = 0
)");
  ShoaldProcess member({"--config", config.path()}, "flag-name");
  shoal::ClientOptions options;
  options.servers = {member.address()};
  auto client = shoal::Client::connect(options);

  auto info = client->ping();
  CHECK(info.name == "flag-name");  // --name overrides the file's name
  CHECK(client->cluster().partitionCount == 64);

  auto ttlOf = [&](const std::string& map) {
    auto m = client->rawMap(map);
    m.set("k", "v");
    auto entry = m.getEntry("k");
    REQUIRE(entry);
    return std::make_pair(entry->ttlMs, entry->maxIdleMs);
  };
  CHECK(ttlOf("sessions") == std::make_pair<int64_t, int64_t>(2000, 1500));
  CHECK(ttlOf("forever") == std::make_pair<int64_t, int64_t>(0, 0));
  CHECK(ttlOf("anything-else") == std::make_pair<int64_t, int64_t>(3'600'000, 0));
  // A write's own TTL wins over the map's default.
  auto sessions = client->rawMap("sessions");
  sessions.set("explicit", "v", shoal::WriteOptions{.ttl = 10min, .maxIdle = {}});
  CHECK(sessions.getEntry("explicit")->ttlMs == 600'000);

  try {
    client->rawMap("sessions").set(std::string(1025, 'k'), "v");
    FAIL("a key over the configured limits.max-key-bytes was accepted");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::TOO_LARGE);
    CHECK_THAT(e.what(), Catch::Contains("limits.max-key-bytes (1024)"));
  }
}

TEST_CASE("shoald config: --help and --version exit 0", "[integration]") {
  auto help = runCommand({ShoaldProcess::binary(), "--help"});
  CHECK(help.exitCode == 0);
  CHECK_THAT(help.out, Catch::Contains("--listen") && Catch::Contains("--config"));
  auto version = runCommand({ShoaldProcess::binary(), "--version"});
  CHECK(version.exitCode == 0);
  CHECK_THAT(version.out, Catch::Contains(SHOAL_VERSION));
}

TEST_CASE("shoald config: an address already in use fails to start, naming listen", "[integration]") {
  ShoaldProcess first;
  auto r = runCommand({ShoaldProcess::binary(), "--listen", first.address()}, 10000);
  INFO("stderr: " << r.err);
  CHECK(r.exitCode == 1);
  CHECK_THAT(r.err, Catch::Contains("listen") && Catch::Contains(first.address()));
}

TEST_CASE("shoald config: SIGTERM leaves gracefully with exit code 0", "[integration]") {
  ShoaldProcess member;
  {
    shoal::ClientOptions options;
    options.servers = {member.address()};
    auto client = shoal::Client::connect(options);
    client->rawMap("m").set("k", "v");
  }
  int status = member.terminate(10000);
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(member.log(), Catch::Contains("SIGTERM"));
}

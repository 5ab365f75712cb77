// A grid of real shoald processes on loopback: forming, refusing strangers, serving any key from
// any member, and losing no acknowledged write when a member is killed (-9), stopped (SIGSTOP),
// leaves (SIGTERM) or joins while clients write.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "cluster_support.h"
#include "shoal/partition/partitioner.h"
#include "shoal/proto/shoal.capnp.h"

using namespace std::chrono_literals;
using shoal::test::AckedWriters;
using shoal::test::missingWrites;
using shoal::test::runCommand;
using shoal::test::ShoaldProcess;
using shoal::test::TestCluster;
using shoal::test::waitForAcks;

namespace {}  // namespace

TEST_CASE("cluster: three members form a grid and any member serves any key", "[cluster]") {
  TestCluster cluster(3);
  auto info = cluster.waitSettled(3);
  CHECK(info.partitionCount == 271);
  uint32_t primaries = 0, backups = 0;
  for (auto& m : info.members) {
    primaries += m.partitionsOwned;
    backups += m.partitionsBackedUp;
    CHECK(m.partitionsOwned > 0);  // every member owns a share
  }
  CHECK(primaries == 271);
  CHECK(backups == 271);                // backup-count 1
  CHECK(info.members[0].name == "m1");  // the oldest coordinates
  for (auto& p : info.partitions) {
    REQUIRE(p.replicas.size() == 2);
    CHECK(p.replicas[0] != p.replicas[1]);
  }

  auto writer = cluster.clientOf(0);
  auto m = writer->rawMap("grid");
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 1000; ++i)
    entries.emplace_back("key-" + std::to_string(i), "value-" + std::to_string(i));
  m.putAll(entries);
  for (size_t via = 0; via < 3; ++via) {
    auto reader = cluster.clientOf(via);
    auto r = reader->rawMap("grid");
    INFO("reading through m" << via + 1);
    CHECK(r.size() == 1000);
    CHECK(r.get("key-7") == std::optional<std::string>("value-7"));
    std::set<std::string> seen;
    uint64_t cursor = 0;
    do {
      auto page = r.scan(cursor, 100, false);
      for (auto& [k, _] : page.entries) seen.insert(k);
      cursor = page.cursor;
    } while (cursor != 0);
    CHECK(seen.size() == 1000);
  }
  CHECK(writer->rawMap("grid").clear() == 1000);
  CHECK(cluster.clientOf(2)->rawMap("grid").size() == 0);
}

TEST_CASE("cluster: a member of another cluster or partition count is refused, on both sides", "[cluster]") {
  ShoaldProcess first({"--cluster-name", "blue"}, "first");
  auto otherName = runCommand({ShoaldProcess::binary(), "--listen", "127.0.0.1:0", "--name", "stranger",
                               "--cluster-name", "green", "--seeds", first.address()},
                              20000);
  CHECK(otherName.exitCode == 2);
  CHECK_THAT(otherName.err, Catch::Contains("cluster name 'green' differs from this cluster's 'blue'"));
  std::string config = shoal::test::writeTempFile("partition-count = 7\n[cluster]\nname = \"blue\"\n");
  auto otherCount = runCommand({ShoaldProcess::binary(), "--listen", "127.0.0.1:0", "--name", "odd",
                                "--config", config, "--seeds", first.address()},
                               20000);
  std::remove(config.c_str());
  CHECK(otherCount.exitCode == 2);
  CHECK_THAT(otherCount.err, Catch::Contains("partition count 7 differs from this cluster's 271"));
  auto log = first.log();
  CHECK_THAT(log, Catch::Contains("refused member 'stranger'"));
  CHECK_THAT(log, Catch::Contains("refused member 'odd'"));
}

TEST_CASE("cluster: kill -9 of a member under load loses no acknowledged write", "[cluster][fault]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  bool killTheClientsMember = GENERATE(false, true);
  INFO((killTheClientsMember ? "killing the member the client talks to" : "killing another member"));
  // The client knows every member and talks to the first it reaches (m1, the coordinator).
  auto client = cluster.client();
  AckedWriters writers(*client, "orders", 4);
  waitForAcks(writers, 500);
  auto victim = killTheClientsMember ? 0 : 2;
  cluster.member(victim).kill9();
  auto before = writers.count();
  waitForAcks(writers, before + 2000);  // writes go on after the failover
  writers.stop();
  auto survivor = victim == 0 ? 1 : 0;
  cluster.waitSettled(2, survivor);
  auto acked = writers.acked();
  auto missing = missingWrites(*cluster.clientOf(survivor), "orders", acked);
  INFO(acked.size() << " acknowledged writes, " << writers.failures()
                    << " failed calls (last: " << writers.lastFailure() << "), longest gap without an ack "
                    << writers.longestGap().count() << " ms");
  CHECK(missing.empty());
  CHECK(writers.failures() == 0);  // retries within the deadline hide the failover
}

TEST_CASE("cluster: a member joining under load takes over partitions without losing writes",
          "[cluster][fault]") {
  TestCluster cluster(2);
  cluster.waitSettled(2);
  auto client = cluster.client();
  AckedWriters writers(*client, "orders", 4);
  waitForAcks(writers, 2000);
  cluster.addMember();
  auto info = cluster.waitSettled(3);
  auto before = writers.count();
  waitForAcks(writers, before + 500);
  writers.stop();
  for (auto& m : info.members) CHECK(m.partitionsOwned > 0);
  auto acked = writers.acked();
  INFO(acked.size() << " acknowledged writes, " << writers.failures()
                    << " failed calls (last: " << writers.lastFailure() << ")");
  CHECK(writers.failures() == 0);
  CHECK(missingWrites(*cluster.clientOf(2), "orders", acked).empty());
  CHECK(cluster.clientOf(2)->rawMap("orders").size() == acked.size());
}

TEST_CASE("cluster: a graceful leave (SIGTERM) hands partitions off and no client operation fails",
          "[cluster][fault]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  auto client = cluster.clientOf(0);
  AckedWriters writers(*client, "orders", 4);
  waitForAcks(writers, 1000);
  CHECK(cluster.member(2).terminate(30000) == 0);
  auto before = writers.count();
  waitForAcks(writers, before + 500);
  writers.stop();
  auto info = cluster.waitSettled(2);
  CHECK(info.members.size() == 2);
  auto acked = writers.acked();
  INFO(acked.size() << " acknowledged writes, last failure: " << writers.lastFailure());
  CHECK(writers.failures() == 0);
  CHECK(missingWrites(*client, "orders", acked).empty());
  CHECK_THAT(cluster.member(2).log(), Catch::Contains("left the cluster"));
}

TEST_CASE("cluster: a stopped primary (SIGSTOP) is replaced, and after SIGCONT it rejoins with nothing lost",
          "[cluster][fault]") {
  TestCluster cluster(3);
  cluster.waitSettled(3);
  auto client = cluster.clientOf(0);
  AckedWriters writers(*client, "orders", 4);
  waitForAcks(writers, 500);
  ::kill(cluster.member(2).pid(), SIGSTOP);
  auto before = writers.count();
  waitForAcks(writers, before + 2000);
  cluster.waitSettled(2);
  ::kill(cluster.member(2).pid(), SIGCONT);
  // It learns it was declared dead, drops what it held and joins again as a fresh member.
  auto info = cluster.waitSettled(3);
  before = writers.count();
  waitForAcks(writers, before + 500);
  writers.stop();
  auto acked = writers.acked();
  INFO(acked.size() << " acknowledged writes, " << writers.failures()
                    << " failed calls (last: " << writers.lastFailure() << ")");
  CHECK(missingWrites(*cluster.clientOf(2), "orders", acked).empty());
  CHECK(writers.failures() == 0);
  CHECK_THAT(cluster.member(2).log(), Catch::Contains("joins again"));
  for (auto& m : info.members) CHECK(m.partitionsOwned > 0);
}

TEST_CASE("cluster: async backups are not waited for, and after kill -9 of a primary they hold its writes",
          "[cluster][fault]") {
  // A failure timeout of 3 s: a write waiting for a stopped backup would wait that long.
  std::string config = shoal::test::writeTempFile("[cluster]\nfailure-timeout = \"3s\"\n");
  TestCluster cluster(3, {"--config", config, "--backup-count", "0", "--async-backup-count", "1"});
  std::remove(config.c_str());
  auto info = cluster.waitSettled(3);
  std::map<uint64_t, size_t> indexOf;  // member id -> index
  for (auto& m : info.members) indexOf[m.id] = std::stoul(m.name.substr(1)) - 1;
  for (auto& p : info.partitions) REQUIRE(p.replicas.size() == 2);  // primary + 1 async backup

  // With m3 stopped, writes to partitions m3 is the async backup of are answered at once.
  shoal::partition::Partitioner partitioner(info.partitionCount);
  std::vector<std::string> backedUpByM3;
  for (int i = 0; backedUpByM3.size() < 100; ++i) {
    auto key = "k-" + std::to_string(i);
    auto& r = info.partitions[partitioner.partitionOf(key)].replicas;
    if (indexOf[r[1]] == 2) backedUpByM3.push_back(key);
  }
  ::kill(cluster.member(2).pid(), SIGSTOP);
  {
    shoal::ClientOptions options;
    options.servers = {cluster.member(0).address(), cluster.member(1).address()};
    options.requestTimeout = 1500ms;  // half the failure timeout: a wait for m3 would fail
    auto client = shoal::Client::connect(options);
    auto m = client->rawMap("async");
    for (auto& key : backedUpByM3) CHECK_NOTHROW(m.set(key, "while-m3-stopped"));
  }
  ::kill(cluster.member(2).pid(), SIGCONT);
  info = cluster.waitSettled(3, 0, 30s);  // m3 may have been declared dead meanwhile and rejoined

  // Writes reach the async backups soon after they are answered; a primary's kill -9 then loses none.
  auto client = cluster.client();
  auto m = client->rawMap("async");
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 2000; ++i) entries.emplace_back("e-" + std::to_string(i), std::to_string(i));
  m.putAll(entries);
  std::this_thread::sleep_for(1s);
  cluster.member(0).kill9();
  cluster.waitSettled(2, 1, 30s);
  auto reader = cluster.clientOf(1);
  auto r = reader->rawMap("async");
  size_t missing = 0;
  for (auto& [k, v] : entries) missing += r.get(k) != std::optional<std::string>(v);
  CHECK(missing == 0);
}

TEST_CASE("cluster: a retried write reaching the new primary after a failover is not applied twice",
          "[cluster][fault]") {
  TestCluster cluster(3);
  auto info = cluster.waitSettled(3);
  // The key's primary and backup, by the table.
  auto p = shoal::partition::Partitioner(info.partitionCount).partitionOf("k");
  auto primaryId = info.partitions[p].replicas.at(0), backupId = info.partitions[p].replicas.at(1);
  size_t primary = 0, backup = 0;
  for (size_t i = 0; i < info.members.size(); ++i) {
    for (size_t j = 0; j < cluster.size(); ++j) {
      if (cluster.member(j).address() != info.members[i].address) continue;
      if (info.members[i].id == primaryId) primary = j;
      if (info.members[i].id == backupId) backup = j;
    }
  }
  REQUIRE(primary != backup);

  auto io = kj::setupAsyncIo();
  auto address = io.provider->getNetwork().parseAddress(cluster.member(backup).address()).wait(io.waitScope);
  auto stream = address->connect().wait(io.waitScope);
  capnp::TwoPartyClient rpc(*stream);
  auto member = rpc.bootstrap().castAs<shoal::wire::Member>();
  auto sendPut = [&](const char* value, uint64_t requestId) {
    auto request = member.executeRequest();
    auto batch = request.initBatch();
    batch.setClientId(0xFA11);
    batch.setLowestPending(1);
    auto op = batch.initOps(1)[0];
    op.setMap("d");
    op.setKey(kj::StringPtr("k").asBytes());
    op.setRequestId(requestId);
    op.initPut().setValue(kj::StringPtr(value).asBytes());
    auto response = request.send().wait(io.waitScope);
    auto r = response.getResults()[0];
    if (r.isFailure()) FAIL("put " << value << " failed: " << r.getFailure().getMessage().cStr());
    return r.isValue() ? std::string(reinterpret_cast<const char*>(r.getValue().begin()), r.getValue().size())
                       : std::string("<absent>");
  };
  CHECK(sendPut("v1", 1) == "<absent>");  // forwarded to the primary, replicated to this backup
  CHECK(sendPut("v2", 2) == "v1");
  cluster.member(primary).kill9();
  cluster.waitSettled(2, backup);
  CHECK(sendPut("v2", 2) == "v1");  // the "retry" now lands on the promoted backup: first result
  auto entry = cluster.clientOf(backup)->rawMap("d").getEntry("k");
  REQUIRE(entry);
  CHECK(entry->version == 2);  // two writes applied, not three
}

namespace {

std::string redisCli(const ShoaldProcess& member, std::vector<std::string> args) {
  auto port = member.respAddress().substr(member.respAddress().rfind(':') + 1);
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-p", port};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runCommand(argv, 20000);
  REQUIRE(r.exitCode == 0);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

}  // namespace

TEST_CASE("cluster: Redis clients reach every key through any member", "[cluster][resp]") {
  TestCluster cluster(3, {"--resp", "127.0.0.1:0"});
  cluster.waitSettled(3);
  for (int i = 0; i < 30; ++i)
    redisCli(cluster.member(i % 3), {"SET", "key" + std::to_string(i), "v" + std::to_string(i)});
  for (size_t m = 0; m < 3; ++m) {
    INFO("through m" << m + 1);
    CHECK(redisCli(cluster.member(m), {"GET", "key17"}) == "v17");
    CHECK(redisCli(cluster.member(m), {"DBSIZE"}) == "30");  // every member's partitions, counted once
    auto keys = redisCli(cluster.member(m), {"KEYS", "key1*"});
    CHECK(std::count(keys.begin(), keys.end(), '\n') + 1 == 11);  // key1, key10..key19
    auto scanned = redisCli(cluster.member(m), {"--scan"});
    CHECK(std::count(scanned.begin(), scanned.end(), '\n') + 1 == 30);
  }
  // Atomic at the key's owner, whoever receives the command.
  for (int i = 0; i < 9; ++i) redisCli(cluster.member(i % 3), {"INCR", "counter"});
  CHECK(redisCli(cluster.member(1), {"GET", "counter"}) == "9");
  // Keys on one member work together (hash tags put them on one partition); keys on several
  // members give Redis Cluster's CROSSSLOT error.
  CHECK(redisCli(cluster.member(2), {"MSET", "{u}a", "1", "{u}b", "2"}) == "OK");
  CHECK(redisCli(cluster.member(0), {"MGET", "{u}a", "{u}b"}) == "1\n2");
  bool crossslotSeen = false;
  for (int i = 0; i < 10 && !crossslotSeen; ++i) {
    auto reply =
        redisCli(cluster.member(0), {"MGET", "key" + std::to_string(i), "key" + std::to_string(i + 10)});
    crossslotSeen = reply.find("CROSSSLOT") != std::string::npos;
  }
  CHECK(crossslotSeen);
  CHECK(redisCli(cluster.member(1), {"FLUSHDB"}) == "OK");
  CHECK(redisCli(cluster.member(2), {"DBSIZE"}) == "0");
}

TEST_CASE("cluster: pipelined Redis commands for keys on every member are answered in order",
          "[cluster][resp]") {
  TestCluster cluster(3, {"--resp", "127.0.0.1:0"});
  cluster.waitSettled(3);
  // One write of ~460 commands through m2: most keys live on the other members, so their commands
  // go there in batches while m2 runs its own; every reply must come back in the sent order, and
  // DBSIZE (every member answers) must see the writes sent before it and none after.
  std::string script;
  std::string expected;
  auto add = [&](const std::string& command, const std::string& reply) {
    script += command + "\r\n";
    expected += reply;
  };
  for (int i = 0; i < 100; ++i) {
    auto key = "p" + std::to_string(i);
    auto next = std::to_string(i + 1);
    add("SET " + key + " " + std::to_string(i), "+OK\r\n");
    add("INCR " + key, ":" + next + "\r\n");
    add("GET " + key, "$" + std::to_string(next.size()) + "\r\n" + next + "\r\n");
  }
  add("DBSIZE", ":100\r\n");
  for (int i = 0; i < 100; i += 2) add("DEL p" + std::to_string(i), ":1\r\n");
  add("DBSIZE", ":50\r\n");
  for (int i = 0; i < 10; ++i) add("EXISTS p" + std::to_string(i), i % 2 ? ":1\r\n" : ":0\r\n");
  add("QUIT", "+OK\r\n");
  std::string file = "/tmp/shoal-pipelined-" + std::to_string(getpid()) + ".resp";
  {
    FILE* f = fopen(file.c_str(), "w");
    fputs(script.c_str(), f);
    fclose(f);
  }
  auto& member = cluster.member(1);
  auto port = member.respAddress().substr(member.respAddress().rfind(':') + 1);
  auto r = runCommand({"/bin/bash", "-c",
                       "exec 3<>/dev/tcp/127.0.0.1/" + port + "; cat " + file + " >&3; timeout 10 cat <&3"});
  std::remove(file.c_str());
  CHECK(r.out == expected);
  CHECK(r.exitCode == 0);  // QUIT closed the connection (timeout did not have to end cat)
  CHECK(redisCli(cluster.member(0), {"GET", "p99"}) == "100");
}

TEST_CASE("cluster: partitions are assigned once initial-min-cluster-size members joined", "[cluster]") {
  std::string config = "/tmp/shoal-min-size-" + std::to_string(getpid()) + ".toml";
  {
    FILE* f = fopen(config.c_str(), "w");
    fputs("[cluster]\ninitial-min-cluster-size = 2\n", f);
    fclose(f);
  }
  TestCluster cluster(1, {"--config", config});
  auto client = cluster.client(1000ms);  // the refusal is retried until this deadline
  try {
    client->rawMap("m").set("k", "v");
    FAIL("a write was served before the cluster reached its initial size");
  } catch (const shoal::Error& e) {
    CHECK(e.code() == shoal::ErrorCode::UNAVAILABLE);
    CHECK_THAT(e.what(), Catch::Contains("initial-min-cluster-size (2)"));
  }
  cluster.addMember();
  cluster.waitSettled(2);
  std::remove(config.c_str());
  client->rawMap("m").set("k", "v");
  CHECK(cluster.clientOf(1)->rawMap("m").get("k") == std::optional<std::string>("v"));
}

TEST_CASE("cluster: with min-cluster-size, a member that hears too few members refuses writes",
          "[cluster][fault]") {
  std::string config = "/tmp/shoal-quorum-" + std::to_string(getpid()) + ".toml";
  {
    FILE* f = fopen(config.c_str(), "w");
    // backup-count 2: every member holds every partition, so m1 keeps the data while alone.
    fputs("[cluster]\nmin-cluster-size = 2\nbackup-count = 2\n", f);
    fclose(f);
  }
  TestCluster cluster(3, {"--config", config});
  std::remove(config.c_str());
  cluster.waitSettled(3);
  // Every write through m1 (no smart routing: a write for a stopped member's key would wait for
  // it at the client instead of reaching m1).
  shoal::ClientOptions options;
  options.servers = {cluster.member(0).address()};
  options.requestTimeout = 500ms;
  options.smartRouting = false;
  auto client = shoal::Client::connect(options);
  client->rawMap("q").set("before", "1");
  // Cut m1 off from both others (they are stopped: from m1's side, a partition of one).
  ::kill(cluster.member(1).pid(), SIGSTOP);
  ::kill(cluster.member(2).pid(), SIGSTOP);
  auto stopped = std::chrono::steady_clock::now();
  std::string refusal;
  for (int i = 0; refusal.empty() && std::chrono::steady_clock::now() - stopped < 5s; ++i) {
    try {
      client->rawMap("q").set("during-" + std::to_string(i), "1");
    } catch (const shoal::Error& e) {
      if (std::string(e.what()).find("min-cluster-size") != std::string::npos) refusal = e.what();
    }
  }
  auto after =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopped);
  INFO("refused after " << after.count() << " ms: " << refusal);
  CHECK_THAT(refusal, Catch::Contains("fewer than cluster.min-cluster-size (2)"));
  CHECK(after < 3s);  // "within about 2 s": 1 s failure timeout, then every write is refused
  ::kill(cluster.member(1).pid(), SIGCONT);
  ::kill(cluster.member(2).pid(), SIGCONT);
  cluster.waitSettled(3);
  auto again = cluster.client(5000ms);
  again->rawMap("q").set("after", "1");
  CHECK(again->rawMap("q").get("before") == std::optional<std::string>("1"));
}

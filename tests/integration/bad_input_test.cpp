// Bad input never crashes a member: garbage streams and half-sent messages cost only their own
// connection, oversized keys/values/batches/messages get an error naming the limit, and the member
// keeps serving everyone else. Each case runs against a real shoald process.
#include <arpa/inet.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shoal/client/client.h"
#include "shoal/proto/shoal.capnp.h"
#include "shoald_process.h"

using namespace std::chrono_literals;
using shoal::test::ShoaldProcess;

namespace {

// A plain TCP connection, for sending bytes no well-behaved client would send.
class RawSocket {
 public:
  explicit RawSocket(const std::string& address) {
    auto colon = address.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawSocket() { close(); }
  void send(const void* data, size_t size) {
    // The member may close mid-write once it has seen enough; that is the behaviour under test.
    (void)::send(fd_, data, size, MSG_NOSIGNAL);
  }
  void send(const std::string& bytes) { send(bytes.data(), bytes.size()); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // True when the member closes its end (EOF or reset) within `timeout`; data it sends is skipped.
  bool closedByPeer(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
};

std::unique_ptr<shoal::Client> connectTo(const ShoaldProcess& member) {
  shoal::ClientOptions options;
  options.servers = {member.address()};
  options.requestTimeout = 3000ms;
  return shoal::Client::connect(options);
}

// The member is alive and a brand-new client can write and read.
void checkServesFreshClient(const ShoaldProcess& member) {
  REQUIRE(member.alive());
  auto client = connectTo(member);
  auto m = client->rawMap("after-bad-input");
  m.set("k", "v");
  CHECK(m.get("k") == std::optional<std::string>("v"));
}

std::string word(uint32_t lo, uint32_t hi) {
  std::string w(8, '\0');
  std::memcpy(w.data(), &lo, 4);  // Cap'n Proto frames are little-endian, as is this host
  std::memcpy(w.data() + 4, &hi, 4);
  return w;
}

// A Cap'n Proto connection speaking the wire schema directly, bypassing shoal::Client's checks.
struct RawRpc {
  explicit RawRpc(const std::string& address)
      : io(kj::setupAsyncIo()),
        stream(
            io.provider->getNetwork().parseAddress(address).wait(io.waitScope)->connect().wait(io.waitScope)),
        rpc(*stream),
        member(rpc.bootstrap().castAs<shoal::wire::Member>()) {}
  // Runs `execute` with `count` ops; returns the call's failure description, or "" on success.
  std::string execute(uint32_t count, size_t valueBytes) {
    auto request = member.executeRequest();
    auto ops = request.initBatch().initOps(count);
    std::string value(valueBytes, 'v');
    for (uint32_t i = 0; i < count; ++i) {
      ops[i].setMap("raw");
      auto key = "k" + std::to_string(i);
      ops[i].setKey(kj::arrayPtr(reinterpret_cast<const kj::byte*>(key.data()), key.size()));
      ops[i].initSet().setValue(kj::arrayPtr(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
    }
    try {
      request.send().wait(io.waitScope);
      return "";
    } catch (const kj::Exception& e) {
      return e.getDescription().cStr();
    }
  }
  std::string pingName() { return member.pingRequest().send().wait(io.waitScope).getMember().getName(); }

  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient rpc;
  shoal::wire::Member::Client member;
};

// A member whose limits are small enough to reach: 1 MiB messages, 64 KiB values.
std::unique_ptr<ShoaldProcess> startWithSmallLimits() {
  char path[] = "/tmp/shoal-limits-XXXXXX.toml";
  int fd = mkstemps(path, 5);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << "[limits]\nmax-message-bytes = 1048576\nmax-value-bytes = 65536\n";
  auto member = std::make_unique<ShoaldProcess>(std::vector<std::string>{"--config", path});
  unlink(path);
  return member;
}

}  // namespace

TEST_CASE("bad input: garbage streams close only their connection", "[integration]") {
  ShoaldProcess member;
  auto seed =
      std::getenv("SHOAL_TEST_SEED") ? std::stoul(std::getenv("SHOAL_TEST_SEED")) : std::random_device{}();
  std::printf("bad input: garbage seed %lu (rerun with SHOAL_TEST_SEED=%lu)\n", seed, seed);
  std::mt19937 rng(seed);
  auto randomBytes = [&rng](size_t n) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    return bytes;
  };
  // Random bytes whose first word certainly announces more than Cap'n Proto's 512 segments.
  auto random = word(0x7fffff00u | (rng() & 0xff), 0) + randomBytes(4096);

  const std::vector<std::pair<std::string, std::string>> patterns = {
      {"random bytes", random},
      {"segment table claiming 32 GiB", word(0, 0xfffffff0u) + std::string(64, 'x')},
      {"segment table of 600 segments", word(599, 1) + std::string(4096, '\0')},
      {"HTTP request", "GET /health HTTP/1.1\r\nHost: shoal\r\nUser-Agent: curl/8\r\n\r\n"},
  };
  for (auto& [what, bytes] : patterns) {
    INFO(what);
    RawSocket socket(member.address());
    socket.send(bytes);
    CHECK(socket.closedByPeer(5s));
    checkServesFreshClient(member);
  }
  // Well-framed messages of random content reach the RPC layer's decoder. Some may be answered
  // (an unknown message type gets "unimplemented") rather than closed; none may hurt the member.
  for (int i = 0; i < 50; ++i) {
    auto words = 1 + rng() % 64;
    RawSocket socket(member.address());
    socket.send(word(0, words) + randomBytes(words * 8));
    socket.closedByPeer(20ms);
  }
  checkServesFreshClient(member);
  CHECK_THAT(member.log(), Catch::Contains("malformed stream"));
}

TEST_CASE("bad input: a client that disconnects mid-message or mid-call leaves the member fine",
          "[integration]") {
  ShoaldProcess member;
  SECTION("half a message, then close") {
    RawSocket socket(member.address());
    socket.send(word(0, 100) + std::string(40, '\0'));  // announces 800 bytes, sends 40
    socket.close();
  }
  SECTION("a complete call, then close before the answer") {
    capnp::MallocMessageBuilder bootstrap;
    bootstrap.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
    capnp::MallocMessageBuilder call;
    auto c = call.initRoot<capnp::rpc::Message>().initCall();
    c.setQuestionId(1);
    c.initTarget().initPromisedAnswer().setQuestionId(0);
    c.setInterfaceId(capnp::typeId<shoal::wire::Member>());
    c.setMethodId(0);  // execute
    auto ops =
        c.initParams().getContent().initAs<shoal::wire::Member::ExecuteParams>().initBatch().initOps(5000);
    const std::string value(100, 'v');
    for (auto op : ops) {
      op.setMap("dropped");
      op.initSet().setValue(kj::arrayPtr(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
    }
    RawSocket socket(member.address());
    for (auto* message : {&bootstrap, &call}) {
      auto bytes = capnp::messageToFlatArray(*message);
      socket.send(bytes.asBytes().begin(), bytes.asBytes().size());
    }
    socket.close();
  }
  std::this_thread::sleep_for(200ms);
  checkServesFreshClient(member);
}

TEST_CASE("bad input: oversized keys and values get TOO_LARGE naming the limit", "[integration]") {
  ShoaldProcess member;
  auto client = connectTo(member);
  auto m = client->rawMap("sizes");
  m.set(std::string(64 * 1024, 'k'), "at the key limit is fine");
  auto expectTooLarge = [](auto&& operation, const char* limit) {
    try {
      operation();
      FAIL("accepted input over " << limit);
    } catch (const shoal::Error& e) {
      CHECK(e.code() == shoal::ErrorCode::TOO_LARGE);
      CHECK_THAT(e.what(), Catch::Contains(limit));
      CHECK_FALSE(e.retriable());
    }
  };
  expectTooLarge([&] { m.set(std::string(64 * 1024 + 1, 'k'), "v"); }, "limits.max-key-bytes");
  expectTooLarge([&] { m.get(std::string(64 * 1024 + 1, 'k')); }, "limits.max-key-bytes");
  expectTooLarge([&] { m.set("v", std::string(8 * 1024 * 1024 + 1, 'v')); }, "limits.max-value-bytes");
  CHECK(m.size() == 1);
  checkServesFreshClient(member);
}

TEST_CASE("bad input: a batch over max-batch-ops fails the call, the connection keeps serving",
          "[integration]") {
  ShoaldProcess member;
  RawRpc raw(member.address());
  auto failure = raw.execute(20000, 1);
  CHECK_THAT(failure, Catch::Contains("max-batch-ops") && Catch::Contains("10000"));
  CHECK(raw.execute(10000, 1).empty());  // exactly at the limit is accepted
  CHECK(raw.pingName() == "test-member");
}

TEST_CASE("bad input: a message over max-message-bytes is refused, the member stays up", "[integration]") {
  auto memberOwner = startWithSmallLimits();
  auto& member = *memberOwner;
  {
    auto client = connectTo(member);
    auto m = client->rawMap("small-limits");
    m.set("max", std::string(65536, 'v'));
    try {
      m.set("over", std::string(65537, 'v'));
      FAIL("a value over limits.max-value-bytes was accepted");
    } catch (const shoal::Error& e) {
      CHECK(e.code() == shoal::ErrorCode::TOO_LARGE);
      CHECK_THAT(e.what(), Catch::Contains("limits.max-value-bytes (65536)"));
    }
  }
  {
    // 20 values of 60 KB are each valid but together exceed the 1 MiB message limit.
    RawRpc raw(member.address());
    auto failure = raw.execute(20, 60000);
    INFO("call failure: " << failure);
    CHECK_FALSE(failure.empty());
  }
  CHECK(connectTo(member)->rawMap("raw").size() == 0);  // nothing of the refused message applied
  checkServesFreshClient(member);
}

TEST_CASE("bad input: concurrent valid writes coalesced past max-message-bytes all succeed",
          "[integration]") {
  auto memberOwner = startWithSmallLimits();
  auto& member = *memberOwner;

  // Each write is within every limit; the client must not turn them into one oversized message.
  auto client = connectTo(member);
  auto m = client->rawMap("coalesced");
  std::vector<std::future<std::optional<std::string>>> pending;
  for (int i = 0; i < 40; ++i)
    pending.push_back(m.putFuture("k" + std::to_string(i), std::string(60000, 'v')));
  int failures = 0;
  for (auto& f : pending) {
    try {
      f.get();
    } catch (const shoal::Error& e) {
      if (failures++ == 0) UNSCOPED_INFO("first failure: " << e.what());
    }
  }
  CHECK(failures == 0);
  CHECK(member.alive());
}

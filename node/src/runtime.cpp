// The shard thread: KJ event loop, RPC listener and connections, expiry sweeps; see runtime.h.
#include "runtime.h"

#include <arpa/inet.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/serialize-async.h>
#include <kj/async-io.h>
#include <kj/common.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <cstring>
#include <future>

#include "cluster/cluster.h"
#include "last_view.h"
#include "local_listeners.h"
#include "map_persistence.h"
#include "map_service.h"
#include "member_log.h"
#include "member_service.h"
#include "resp/resp_cluster.h"
#include "resp/resp_server.h"
#include "shoal/error.h"
#include "shoal/persistence/rocksdb_store.h"
#include "topic/local_pattern_subscriptions.h"
#include "topic/local_subscriptions.h"
#include "topic/topic_hub.h"
#include "write_behind_driver.h"
#include "write_behind_maps.h"

namespace shoal::node {
namespace {

constexpr size_t SWEEP_BUDGET_PER_MAP = 2000;  // expired entries removed per map per tick
constexpr int64_t LEAVE_TIMEOUT_MS = 30'000;   // graceful leave: longest wait for the hand-off

std::string peerOf(kj::AsyncIoStream& stream) {
  sockaddr_storage addr{};
  uint len = sizeof addr;
  try {
    stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &len);
  } catch (...) {
    return "unknown peer";
  }
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    port = ntohs(in->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

// Reads messages like AsyncIoMessageStream, and logs why a connection is dropped when the byte
// stream itself is malformed (bad framing, too many segments, over the size limit).
class LoggingMessageStream final : public capnp::MessageStream {
 public:
  LoggingMessageStream(kj::AsyncIoStream& stream, std::string peer)
      : inner_(stream), peer_(std::move(peer)) {}

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(
      kj::ArrayPtr<kj::AutoCloseFd> fdSpace, capnp::ReaderOptions options,
      kj::ArrayPtr<capnp::word> scratch) override {
    return inner_.tryReadMessage(fdSpace, options, scratch)
        .catch_([this](kj::Exception&& e) -> kj::Maybe<capnp::MessageReaderAndFds> {
          if (e.getType() != kj::Exception::Type::DISCONNECTED) {
            memberLog().warn("closing connection from {}: malformed stream: {}", peer_,
                             e.getDescription().cStr());
          }
          kj::throwFatalException(kj::mv(e));
        });
  }
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    return inner_.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(
      kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    return inner_.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner_.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner_.end(); }

 private:
  capnp::AsyncIoMessageStream inner_;
  std::string peer_;
};

// One accepted client connection and its RPC system; destroyed when the peer disconnects.
struct Connection {
  Connection(kj::Own<kj::AsyncIoStream> s, capnp::Capability::Client bootstrap, capnp::ReaderOptions options)
      : stream(kj::mv(s)),
        peer(peerOf(*stream)),
        messages(*stream, peer),
        network(messages, capnp::rpc::twoparty::Side::SERVER, options),
        rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {
    memberLog().debug("connection from {}", peer);
  }
  ~Connection() { memberLog().debug("connection from {} closed", peer); }
  kj::Own<kj::AsyncIoStream> stream;
  std::string peer;
  LoggingMessageStream messages;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

class ConnectionTasks final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& e) override {
    memberLog().warn("connection closed: {}", e.getDescription().cStr());
  }
};

// Routes KJ's own log lines (e.g. a peer sending a malformed message) to spdlog.
class KjLogToSpdlog final : public kj::ExceptionCallback {
 public:
  void logMessage(kj::LogSeverity severity, const char* file, int line, int contextDepth,
                  kj::String&& text) override {
    switch (severity) {
      case kj::LogSeverity::INFO:
        memberLog().info("{}", text.cStr());
        break;
      case kj::LogSeverity::WARNING:
        memberLog().warn("{}", text.cStr());
        break;
      default:
        memberLog().error("{}", text.cStr());
        break;
    }
  }
};

kj::Promise<void> acceptLoop(kj::ConnectionReceiver& receiver, capnp::Capability::Client bootstrap,
                             capnp::ReaderOptions options, kj::TaskSet& connections) {
  return receiver.accept().then([&receiver, bootstrap = kj::mv(bootstrap), options,
                                 &connections](kj::Own<kj::AsyncIoStream>&& stream) mutable {
    auto connection = kj::heap<Connection>(kj::mv(stream), bootstrap, options);
    connection->rpc.setFlowLimit(options.traversalLimitInWords / 2);
    auto done = connection->network.onDisconnect();
    connections.add(done.attach(kj::mv(connection)));
    return acceptLoop(receiver, kj::mv(bootstrap), options, connections);
  });
}

kj::Promise<void> sweepLoop(kj::Timer& timer, MapService& maps, uint32_t intervalMs) {
  return timer.afterDelay(intervalMs * kj::MILLISECONDS).then([&timer, &maps, intervalMs]() {
    maps.sweepExpired(SWEEP_BUDGET_PER_MAP);
    // Expired entries leave the store too; a failing store is already logged by persistence.
    return maps.commit().catch_([](kj::Exception&&) {}).then([&timer, &maps, intervalMs]() {
      return sweepLoop(timer, maps, intervalMs);
    });
  });
}

constexpr int64_t STOP_DRAIN_TIMEOUT_MS = 5000;  // write-behind flushing at a graceful stop

// The member's backing store (the embedder's own, or RocksDB in data-dir, or none) and the
// RocksDB store in data-dir that holds the write-behind queues (none without a data-dir).
struct MemberStores {
  std::shared_ptr<persistence::RocksDbStore> dataDir;
  std::shared_ptr<persistence::MapStore> target;
};

MemberStores openStores(const NodeOptions& options) {
  MemberStores stores;
  if (!options.dataDir.empty()) {
    persistence::RocksDbStoreOptions o;
    o.path = options.dataDir;
    o.clusterName = options.cluster.name;
    o.partitionCount = options.partitionCount;
    // Maps with a memory limit read evicted entries back from the store while it is written.
    auto limited = [](const MapOptions& m) { return m.maxEntries > 0 || m.maxBytes > 0; };
    o.pointReads = limited(options.defaultMap);
    for (auto& [_, m] : options.maps) o.pointReads |= limited(m);
    auto store = persistence::RocksDbStore::open(o);
    if (!store) {
      throw Error(ErrorCode::UNAVAILABLE,
                  "cannot use data-dir '" + options.dataDir + "': " + store.error().toString());
    }
    stores.dataDir = std::shared_ptr<persistence::RocksDbStore>(std::move(store).value().release());
  }
  // With an embedder's store, data-dir (if any) holds only the write-behind queues.
  stores.target = options.store ? options.store : stores.dataDir;
  return stores;
}

std::string hostOf(const std::string& address) {
  auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

}  // namespace

Runtime::Runtime(const NodeOptions& options) : options_(options) {
  options_.validate();
  memberLog().set_level(spdlog::level::from_str(options_.logLevel));
  std::promise<void> ready;
  auto started = ready.get_future();
  thread_ = std::thread([this, &ready] {
    try {
      shardMain_ready_ = &ready;
      shardMain();
    } catch (...) {
      if (shardMain_ready_) {
        shardMain_ready_->set_exception(std::current_exception());
      } else {
        memberLog().critical("shard thread of member '{}' failed", options_.name);
      }
    }
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

Runtime::~Runtime() {
  stop();
}

void Runtime::shardMain() {
  KjLogToSpdlog logRouting;
  auto io = kj::setupAsyncIo();
  SystemClock clock;
  MapService maps(options_, clock,
                  [this](std::function<void()> fn) { boost::asio::post(eventThread_, std::move(fn)); });
  MemberIdentity identity{options_.name, "", clock.nowMs()};

  // Persistence: store and queue calls run on the blocking-work pool, never on this loop; the
  // pool is joined before the queues and stores go (the queues before their store).
  auto stores = openStores(options_);
  // A member with a data directory keeps its identity there, and reports its copies when joining.
  cluster::RestoredMember restored;
  if (stores.dataDir) restored.id = stores.dataDir->marker().memberId;
  std::unique_ptr<WriteBehindMaps> writeBehindMaps;
  if (stores.dataDir) {
    writeBehindMaps = std::make_unique<WriteBehindMaps>(*stores.dataDir, *stores.target, options_);
  }
  boost::asio::thread_pool blockingPool(2);
  KJ_DEFER(blockingPool.join());
  std::unique_ptr<MapPersistence> persistence;
  std::unique_ptr<WriteBehindDriver> writeBehind;
  if (stores.target) {
    // RocksDB in data-dir is this member's own; an embedder's store is shared by the members.
    bool ownStore = stores.target == stores.dataDir;
    persistence = std::make_unique<MapPersistence>(*stores.target, writeBehindMaps.get(), blockingPool,
                                                   io.provider->getTimer(), ownStore);
    maps.setPersistence(persistence.get());
    auto isWriteBehind = [&maps](const std::string& name) {
      return maps.modeOf(name) == MapPersistenceMode::WRITE_BEHIND;
    };
    auto started = std::chrono::steady_clock::now();
    auto restoredData = persistence->restoreAll(
        options_.partitionCount,
        [&maps](const std::string& name) { return maps.isPersistent(name) ? &maps.records(name) : nullptr; },
        isWriteBehind);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    for (auto& [p, _] : restoredData.copies) restored.loaded.insert(p);
    if (ownStore) {  // a shared store's data is nobody's copy
      restored.copies = std::move(restoredData.copies);
      restored.lastMembers = std::max(restoredData.lastMembers, readLastViewMembers(options_.dataDir));
    }
    memberLog().info(
        "restored {} entries ({} partitions) from {} in {} ms", restoredData.entries, restored.loaded.size(),
        options_.store ? std::string("the embedder's store") : "data-dir '" + options_.dataDir + "'",
        ms.count());
    if (writeBehindMaps) {
      writeBehind = std::make_unique<WriteBehindDriver>(*writeBehindMaps, blockingPool,
                                                        io.provider->getTimer(), isWriteBehind);
      writeBehind->start();
    }
  }

  auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
  kj::Own<kj::ConnectionReceiver> receiver;
  if (!options_.listen.empty()) {
    try {
      auto address = io.provider->getNetwork().parseAddress(options_.listen).wait(io.waitScope);
      receiver = address->listen();
    } catch (const kj::Exception& e) {
      throw Error(ErrorCode::UNAVAILABLE,
                  "cannot listen on '" + options_.listen + "' (listen): " + e.getDescription().cStr());
    }
    address_ = hostOf(options_.listen) + ":" + std::to_string(receiver->getPort());
    identity.address = address_;
  }

  capnp::ReaderOptions readerOptions;
  // Twice the message limit: execute() sizes a batch (one full traversal) before reading it.
  readerOptions.traversalLimitInWords = options_.limits.maxMessageBytes / 8 * 2;
  readerOptions.nestingLimit = 64;
  // Declared before the connections: their calls may wait on the cluster's links, so they go first.
  cluster::Cluster cluster(options_, clock, *io.provider, maps, readerOptions, address_, std::move(restored));
  // Redis commands: this member's gateway routes keys owned elsewhere; other members' gateways
  // route theirs here.
  resp::ClusterGateway respGateway(cluster, maps, options_.respMap, clock, address_);
  cluster.setRespHandler(
      [&respGateway](std::vector<cluster::RespCall> calls) { return respGateway.run(std::move(calls)); });
  // Topics: subscribers of the topics this member owns; messages go out once committed.
  auto topics = std::make_shared<topic::TopicHub>(maps, io.provider->getTimer());
  maps.setPublishHook([&topics](const std::string& name, uint64_t seq) { topics->applied(name, seq); });
  cluster.addViewListener([&topics, &cluster](const cluster::View&, const cluster::View&) {
    topics->closeMoved([&cluster](partition::PartitionId p) { return cluster.membership().isPrimary(p); });
  });

  // Entry listeners hear every member's partitions: registered at the others as members come.
  auto listeners = std::make_shared<ClusterListeners>(cluster);
  cluster.addViewListener([weak = std::weak_ptr<ClusterListeners>(listeners)](const cluster::View&,
                                                                              const cluster::View& current) {
    if (auto l = weak.lock()) l->onView(current);
  });
  if (stores.dataDir && stores.target == stores.dataDir) {
    // The last view's size, for the wait after a restart (last_view.h); rare, on the pool.
    cluster.addViewListener([this, &blockingPool, &cluster](const cluster::View& previous,
                                                            const cluster::View& current) {
      if (current.members.size() == previous.members.size() || !current.find(cluster.membership().selfId()))
        return;
      boost::asio::post(blockingPool, [dir = options_.dataDir, members = uint32_t(current.members.size())]() {
        if (!writeLastViewMembers(dir, members)) memberLog().warn("cannot write {}/LAST_VIEW", dir);
      });
    });
  }

  ConnectionTasks connectionErrors;
  kj::TaskSet connections(connectionErrors);
  capnp::Capability::Client bootstrap =
      kj::heap<MemberService>(maps, cluster, identity, clock, writeBehind.get(), *topics, *listeners);
  auto localMember = bootstrap.castAs<wire::Member>();
  topic::LocalSubscriptions subscriptions(
      localMember, io.provider->getTimer(),
      [this](std::function<void()> fn) { boost::asio::post(eventThread_, std::move(fn)); });
  topic::LocalPatternSubscriptions patterns(localMember, io.provider->getTimer(), subscriptions);
  LocalListeners localListeners(
      maps, *listeners, [this](std::function<void()> fn) { boost::asio::post(eventThread_, std::move(fn)); });
  // After the member's own RPC face: Redis PUBLISH / SUBSCRIBE go through it.
  kj::Own<resp::Server> respServer;
  if (!options_.resp.empty()) {
    kj::Own<kj::ConnectionReceiver> respReceiver;
    try {
      auto address = io.provider->getNetwork().parseAddress(options_.resp).wait(io.waitScope);
      respReceiver = address->listen();
    } catch (const kj::Exception& e) {
      throw Error(ErrorCode::UNAVAILABLE,
                  "cannot listen on '" + options_.resp + "' (resp): " + e.getDescription().cStr());
    }
    auto respAddress = hostOf(options_.resp) + ":" + std::to_string(respReceiver->getPort());
    resp::ParserLimits limits;
    limits.maxBulkBytes = std::max<uint64_t>(options_.limits.maxValueBytes, options_.limits.maxKeyBytes);
    limits.maxQueryBytes = options_.limits.maxMessageBytes;
    respServer = kj::heap<resp::Server>(kj::mv(respReceiver), io.unixEventPort, maps, options_.respMap, clock,
                                        respAddress, limits, &respGateway, localMember,
                                        io.provider->getTimer(), options_.limits.respSubscriberOutputBytes);
    respAddress_ = respAddress;
    memberLog().info("member '{}' speaks RESP on {} (map '{}')", options_.name, respAddress,
                     options_.respMap);
  }

  kj::Promise<void> accepting = kj::READY_NOW;
  if (receiver) {
    accepting = acceptLoop(*receiver, bootstrap, readerOptions, connections)
                    .catch_([](kj::Exception&& e) {
                      memberLog().error("accept loop stopped: {}", e.getDescription().cStr());
                    })
                    .eagerlyEvaluate(nullptr);
  }
  auto sweeping = sweepLoop(io.provider->getTimer(), maps, options_.expirySweepIntervalMs)
                      .eagerlyEvaluate([](kj::Exception&& e) {
                        memberLog().error("expiry sweep stopped: {}", e.getDescription().cStr());
                      });

  {
    std::lock_guard<std::mutex> lock(lifecycleMutex_);
    executor_ = kj::getCurrentThreadExecutor().addRef();
    stopFulfiller_ = kj::mv(stop.fulfiller);
    maps_ = &maps;
    member_ = &localMember;
    subscriptions_ = &subscriptions;
    patterns_ = &patterns;
    listeners_ = &localListeners;
  }
  if (!address_.empty()) memberLog().info("member '{}' listening on {}", options_.name, address_);
  // Join (or form) the cluster; the loop serves other members' calls meanwhile.
  try {
    cluster.start().wait(io.waitScope);
  } catch (const kj::Exception& e) {
    std::string text = e.getDescription().cStr();
    auto at = text.find("shoal:invalid-argument: ");
    throw Error(ErrorCode::INVALID_ARGUMENT,
                "cannot join the cluster: " + (at == std::string::npos ? text : text.substr(at + 24)));
  }
  shardMain_ready_->set_value();
  shardMain_ready_ = nullptr;

  stop.promise.wait(io.waitScope);

  // Graceful stop: hand this member's partitions to the others first (serving meanwhile), then no
  // new connections, listeners told why, then connections closed.
  memberLog().info("member '{}' stopping", options_.name);
  if (cluster.membership().view().members.size() > 1) {
    memberLog().info("member '{}' leaves the cluster: handing off its partitions", options_.name);
    try {
      io.provider->getTimer()
          .timeoutAfter(LEAVE_TIMEOUT_MS * kj::MILLISECONDS, cluster.membership().leave())
          .wait(io.waitScope);
    } catch (const kj::Exception& e) {
      memberLog().warn("leaving the cluster did not complete: {}", e.getDescription().cStr());
    }
  }
  accepting = kj::READY_NOW;
  receiver = nullptr;
  respServer = nullptr;
  maps.closeListeners("member '" + options_.name + "' is stopping");
  patterns.closeAll();
  subscriptions.closeAll();
  topics->closeAll("member '" + options_.name + "' is stopping; subscribe again to resume");
  io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
  // Write-behind: store what is queued (bounded; the rest stays durably queued for the next start).
  if (writeBehind) writeBehind->drain(STOP_DRAIN_TIMEOUT_MS).wait(io.waitScope);
  {
    std::lock_guard<std::mutex> lock(lifecycleMutex_);
    maps_ = nullptr;
    member_ = nullptr;
    subscriptions_ = nullptr;
    patterns_ = nullptr;
    listeners_ = nullptr;
  }
  // Connections (and with them every capability) go before the maps they point into.
}

kj::Own<const kj::Executor> Runtime::shardExecutor() {
  std::lock_guard<std::mutex> lock(lifecycleMutex_);
  if (stopped_ || !executor_) throw Error(ErrorCode::UNAVAILABLE, "the member is stopped");
  return executor_->addRef();
}

void Runtime::runOnShard(const std::function<void(MapService&)>& fn) {
  auto executor = shardExecutor();
  // Errors thrown by `fn` cross back as they are (KJ would flatten them into kj::Exception).
  std::exception_ptr failure;
  try {
    executor->executeSync([this, &fn, &failure]() -> kj::Promise<void> {
      try {
        if (maps_ == nullptr) throw Error(ErrorCode::UNAVAILABLE, "the member is stopping");
        fn(*maps_);
      } catch (...) {
        failure = std::current_exception();
        return kj::READY_NOW;
      }
      // Write-through: the host's call returns once its changes are stored.
      return maps_->commit().catch_([&failure](kj::Exception&& e) {
        std::string text = e.getDescription().cStr();
        auto at = text.find("shoal:store-failed: ");
        failure = std::make_exception_ptr(
            Error(ErrorCode::STORE_FAILED, at == std::string::npos ? text : text.substr(at + 20)));
      });
    });
  } catch (const kj::Exception& e) {
    throw Error(ErrorCode::UNAVAILABLE, std::string("the member is stopped: ") + e.getDescription().cStr());
  }
  if (failure) std::rethrow_exception(failure);
}

void Runtime::waitOnShard(const std::function<kj::Promise<void>()>& fn) {
  auto executor = shardExecutor();
  std::exception_ptr failure;
  try {
    executor->executeSync([&fn, &failure]() -> kj::Promise<void> {
      return fn().catch_([&failure](kj::Exception&& e) {
        // "shoal:<code>: message", as the member fails a whole call.
        static const std::pair<const char*, ErrorCode> CODES[] = {
            {"shoal:too-large: ", ErrorCode::TOO_LARGE},
            {"shoal:invalid-argument: ", ErrorCode::INVALID_ARGUMENT},
            {"shoal:unavailable: ", ErrorCode::UNAVAILABLE},
            {"shoal:store-failed: ", ErrorCode::STORE_FAILED},
            {"shoal:wrong-owner: ", ErrorCode::WRONG_OWNER},
            {"shoal:overloaded: ", ErrorCode::OVERLOADED}};
        std::string text = e.getDescription().cStr();
        for (auto& [prefix, code] : CODES) {
          auto at = text.find(prefix);
          if (at != std::string::npos) {
            failure = std::make_exception_ptr(Error(code, text.substr(at + strlen(prefix))));
            return;
          }
        }
        failure = std::make_exception_ptr(Error(ErrorCode::INTERNAL, text));
      });
    });
  } catch (const kj::Exception& e) {
    throw Error(ErrorCode::UNAVAILABLE, std::string("the member is stopped: ") + e.getDescription().cStr());
  }
  if (failure) std::rethrow_exception(failure);
}

void Runtime::callOnShard(const std::function<kj::Promise<void>(wire::Member::Client&)>& fn) {
  waitOnShard([this, &fn]() -> kj::Promise<void> {
    if (member_ == nullptr) return KJ_EXCEPTION(FAILED, "shoal:unavailable: the member is stopping");
    return fn(*member_);
  });
}

void Runtime::callOnSubscriptions(const std::function<kj::Promise<void>(topic::LocalSubscriptions&)>& fn) {
  waitOnShard([this, &fn]() -> kj::Promise<void> {
    if (subscriptions_ == nullptr) return KJ_EXCEPTION(FAILED, "shoal:unavailable: the member is stopping");
    return fn(*subscriptions_);
  });
}

void Runtime::callOnListeners(const std::function<kj::Promise<void>(LocalListeners&)>& fn) {
  waitOnShard([this, &fn]() -> kj::Promise<void> {
    if (listeners_ == nullptr) return KJ_EXCEPTION(FAILED, "shoal:unavailable: the member is stopping");
    return fn(*listeners_);
  });
}

void Runtime::callOnPatterns(const std::function<kj::Promise<void>(topic::LocalPatternSubscriptions&)>& fn) {
  waitOnShard([this, &fn]() -> kj::Promise<void> {
    if (patterns_ == nullptr) return KJ_EXCEPTION(FAILED, "shoal:unavailable: the member is stopping");
    return fn(*patterns_);
  });
}

void Runtime::stop() {
  {
    std::lock_guard<std::mutex> lock(lifecycleMutex_);
    if (stopped_) return;
    stopped_ = true;
    if (stopFulfiller_) stopFulfiller_->fulfill();
  }
  if (thread_.joinable()) thread_.join();
  eventThread_.join();
  memberLog().info("member '{}' stopped", options_.name);
}

}  // namespace shoal::node

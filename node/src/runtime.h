// The running member: the shard thread (one KJ event loop owning every partition's records and
// the RPC listener) and the event thread (embedded listener callbacks). Other threads reach the
// shard only through its kj::Executor.
#pragma once

#include <kj/async.h>

#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "shoal/node/options.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::node {

class MapService;
class LocalListeners;
namespace topic {
class LocalSubscriptions;
class LocalPatternSubscriptions;
}  // namespace topic

class Runtime {
 public:
  // Validates options, starts the threads and binds; throws shoal::Error on failure.
  explicit Runtime(const NodeOptions& options);
  ~Runtime();

  void stop();
  std::string address() const { return address_; }
  std::string respAddress() const { return respAddress_; }
  const NodeOptions& options() const { return options_; }

  // Runs `fn(maps)` on the shard thread and waits for it. Throws UNAVAILABLE once stopped.
  void runOnShard(const std::function<void(MapService&)>& fn);
  // Runs `fn(member)` on the shard thread, where `member` is this member's own RPC face (so a call
  // is routed to the key's owner, replicated and stored like a client's), and waits for the
  // promise it returns. A failed call throws shoal::Error with the member's code and message.
  void callOnShard(const std::function<kj::Promise<void>(wire::Member::Client&)>& fn);
  // Runs `fn` with the embedded topic subscriptions on the shard thread and waits likewise.
  void callOnSubscriptions(const std::function<kj::Promise<void>(topic::LocalSubscriptions&)>& fn);
  // Likewise with the embedded entry listeners.
  void callOnListeners(const std::function<kj::Promise<void>(LocalListeners&)>& fn);
  // Likewise with the embedded pattern subscriptions (whose remove() also ends plain subscriptions).
  void callOnPatterns(const std::function<kj::Promise<void>(topic::LocalPatternSubscriptions&)>& fn);

 private:
  struct Shard;
  void shardMain();
  kj::Own<const kj::Executor> shardExecutor();  // throws UNAVAILABLE once stopped
  // Runs `fn` on the shard and waits; a rejected promise throws shoal::Error with its code.
  void waitOnShard(const std::function<kj::Promise<void>()>& fn);

  NodeOptions options_;
  std::string address_;
  std::string respAddress_;
  boost::asio::thread_pool eventThread_{1};
  std::thread thread_;
  std::mutex lifecycleMutex_;
  kj::Own<const kj::Executor> executor_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stopFulfiller_;
  MapService* maps_ = nullptr;                            // set while the shard runs; under lifecycleMutex_
  wire::Member::Client* member_ = nullptr;                // likewise: the member's own RPC face
  topic::LocalSubscriptions* subscriptions_ = nullptr;    // likewise: embedded topic subscriptions
  topic::LocalPatternSubscriptions* patterns_ = nullptr;  // likewise: embedded pattern subscriptions
  LocalListeners* listeners_ = nullptr;                   // likewise: embedded entry listeners
  std::promise<void>* shardMain_ready_ = nullptr;         // start-up handshake with the constructor
  bool stopped_ = false;                                  // under lifecycleMutex_
};

}  // namespace shoal::node

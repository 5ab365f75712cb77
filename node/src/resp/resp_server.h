// The RESP gateway's listener and connections, on the shard thread. All client sockets sit in one
// epoll set of the gateway's own, which the KJ event loop watches as a single fd: one wake-up
// serves every ready client (like redis-server's loop) instead of one KJ event per client. Each
// client's readable bytes are parsed into commands (pipelining), executed in order, and answered
// with one write. A protocol error gets Redis's error reply and closes that connection only.
// Pub/sub (resp_pubsub.h): a subscribed client's pushes are appended to its output; one whose
// unsent output exceeds the subscriber output limit is disconnected (Redis's
// client-output-buffer-limit pubsub), so a subscriber that never reads costs bounded memory.
#pragma once

#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "resp_commands.h"
#include "resp_pubsub.h"
#include "resp_routing.h"

namespace shoal::node::resp {

class Server : private kj::TaskSet::ErrorHandler {
 public:
  // `cluster` (may be null: a lone member) routes commands whose keys live on other members.
  // `member` is the member's own RPC face (publishes and subscriptions go through it);
  // `subscriberOutputLimit`: unsent bytes a subscribed client may hold before it is disconnected.
  Server(kj::Own<kj::ConnectionReceiver> receiver, kj::UnixEventPort& eventPort, MapService& maps,
         std::string mapName, const Clock& clock, std::string address, ParserLimits limits,
         ClusterAccess* cluster, wire::Member::Client member, kj::Timer& timer,
         uint64_t subscriberOutputLimit);
  ~Server();
  const std::string& address() const { return address_; }

 private:
  class Connection;
  kj::Promise<void> acceptLoop();
  kj::Promise<void> pollLoop();
  // Serves ready clients until the epoll set has nothing ready (or a turn's budget is spent).
  bool serveReady();
  void watch(int fd, uint32_t events);
  void close(int fd);
  // Closes client `id` (if still connected) on a later turn, not under its caller's feet.
  void closeLater(int fd, int64_t id);
  void taskFailed(kj::Exception&& exception) override;

  kj::Own<kj::ConnectionReceiver> receiver_;
  ServerStats stats_;
  MapService& maps_;
  Commands commands_;
  ClusterAccess* cluster_;
  std::string address_;
  ParserLimits limits_;
  int64_t nextClientId_ = 1;
  uint64_t subscriberOutputLimit_;
  std::unordered_map<int64_t, int> clientFds_;  // client id -> fd, for pub/sub pushes
  // Before the connections: closing one drops its subscriptions here.
  std::unique_ptr<PubSub> pubsub_;
  kj::AutoCloseFd epoll_;
  kj::UnixEventPort::FdObserver epollObserver_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  kj::TaskSet tasks_;
  kj::Promise<void> accepting_;
  kj::Promise<void> polling_;
};

}  // namespace shoal::node::resp

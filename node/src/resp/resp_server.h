// The RESP gateway's listener and connections, on the shard thread. All client sockets sit in one
// epoll set of the gateway's own, which the KJ event loop watches as a single fd: one wake-up
// serves every ready client (like redis-server's loop) instead of one KJ event per client. Each
// client's readable bytes are parsed into commands (pipelining), executed in order, and answered
// with one write. A protocol error gets Redis's error reply and closes that connection only.
#pragma once

#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "resp_commands.h"
#include "resp_routing.h"

namespace shoal::node::resp {

class Server : private kj::TaskSet::ErrorHandler {
 public:
  // `cluster` (may be null: a lone member) routes commands whose keys live on other members.
  Server(kj::Own<kj::ConnectionReceiver> receiver, kj::UnixEventPort& eventPort, MapService& maps,
         std::string mapName, const Clock& clock, std::string address, ParserLimits limits,
         ClusterAccess* cluster = nullptr);
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
  void taskFailed(kj::Exception&& exception) override;

  kj::Own<kj::ConnectionReceiver> receiver_;
  ServerStats stats_;
  MapService& maps_;
  Commands commands_;
  ClusterAccess* cluster_;
  std::string address_;
  ParserLimits limits_;
  int64_t nextClientId_ = 1;
  kj::AutoCloseFd epoll_;
  kj::UnixEventPort::FdObserver epollObserver_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  kj::TaskSet tasks_;
  kj::Promise<void> accepting_;
  kj::Promise<void> polling_;
};

}  // namespace shoal::node::resp

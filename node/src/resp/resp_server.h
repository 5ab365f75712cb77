// The RESP gateway's listener and connections, on the shard thread: each connection reads,
// parses every complete command in what arrived (pipelining), executes them in order and writes
// all replies at once. A protocol error gets Redis's error reply and closes that connection only.
#pragma once

#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <memory>
#include <string>

#include "resp_commands.h"

namespace shoal::node::resp {

class Server : private kj::TaskSet::ErrorHandler {
 public:
  Server(kj::Own<kj::ConnectionReceiver> receiver, kj::UnixEventPort& eventPort, MapService& maps,
         std::string mapName, const Clock& clock, std::string address, ParserLimits limits);
  ~Server();
  const std::string& address() const { return address_; }

 private:
  class Connection;
  kj::Promise<void> acceptLoop();
  void taskFailed(kj::Exception&& exception) override;

  kj::Own<kj::ConnectionReceiver> receiver_;
  kj::UnixEventPort& eventPort_;
  ServerStats stats_;
  MapService& maps_;
  Commands commands_;
  std::string address_;
  ParserLimits limits_;
  int64_t nextClientId_ = 1;
  kj::TaskSet tasks_;
  kj::Promise<void> accepting_;
};

}  // namespace shoal::node::resp

// RESP gateway connections; see resp_server.h.
#include "resp_server.h"

#include <cstring>

#include "../member_log.h"

namespace shoal::node::resp {
namespace {
constexpr size_t READ_CHUNK = 64 * 1024;
}

class Server::Connection {
 public:
  Connection(Server& server, kj::Own<kj::AsyncIoStream> stream, int64_t id)
      : server_(server), stream_(kj::mv(stream)), parser_(server.limits_) {
    session_.id = id;
    server_.stats_.connectedClients++;
  }
  ~Connection() { server_.stats_.connectedClients--; }

  kj::Promise<void> run() { return readMore(); }

 private:
  kj::Promise<void> readMore() {
    if (filled_ >= server_.limits_.maxQueryBytes) {
      memberLog().info("RESP client {} exceeded the query buffer limit; closing its connection", session_.id);
      out_ = "-ERR Protocol error: request larger than limits.max-message-bytes\r\n";
      return stream_->write(out_.data(), out_.size());
    }
    if (in_.size() - filled_ < READ_CHUNK) in_.resize(filled_ + READ_CHUNK);
    return stream_->tryRead(in_.data() + filled_, 1, in_.size() - filled_).then([this](size_t n) -> kj::Promise<void> {
      if (n == 0) return kj::READY_NOW;  // the client closed the connection
      filled_ += n;
      bool close = processBuffered();
      if (out_.empty()) return close ? kj::Promise<void>(kj::READY_NOW) : readMore();
      return stream_->write(out_.data(), out_.size()).then([this, close]() -> kj::Promise<void> {
        out_.clear();
        if (close) return kj::READY_NOW;
        return readMore();
      });
    });
  }

  // Executes every complete command in the buffer; true when the connection must close.
  bool processBuffered() {
    ReplyWriter writer(&out_);
    size_t offset = 0;
    bool close = false;
    while (!close) {
      size_t consumed = 0;
      auto status = parser_.next(std::string_view(in_.data() + offset, filled_ - offset), &args_, &consumed);
      if (status == RequestParser::Status::NEED_MORE) break;
      if (status == RequestParser::Status::PROTOCOL_ERROR) {
        memberLog().info("RESP client {} sent a malformed request ({}); closing its connection", session_.id,
                     parser_.error());
        writer.error("ERR " + parser_.error());
        close = true;
        break;
      }
      offset += consumed;
      server_.commands_.execute(args_, session_, writer);
      close = session_.closeAfterReply;
    }
    // Keep the unparsed tail at the front of the buffer.
    if (offset > 0) {
      std::memmove(in_.data(), in_.data() + offset, filled_ - offset);
      filled_ -= offset;
    }
    return close;
  }

  Server& server_;
  kj::Own<kj::AsyncIoStream> stream_;
  RequestParser parser_;
  Session session_;
  std::string in_;
  size_t filled_ = 0;
  std::string out_;
  std::vector<std::string_view> args_;
};

Server::Server(kj::Own<kj::ConnectionReceiver> receiver, MapService& maps, std::string mapName, const Clock& clock,
               std::string address, ParserLimits limits)
    : receiver_(kj::mv(receiver)),
      commands_(maps, std::move(mapName), clock, stats_, address),
      address_(std::move(address)),
      limits_(limits),
      tasks_(*this),
      accepting_(nullptr) {
  stats_.startedAtMs = clock.nowMs();
  accepting_ = acceptLoop().eagerlyEvaluate([](kj::Exception&& e) {
    memberLog().error("RESP accept loop stopped: {}", e.getDescription().cStr());
  });
}

Server::~Server() = default;

kj::Promise<void> Server::acceptLoop() {
  return receiver_->accept().then([this](kj::Own<kj::AsyncIoStream>&& stream) {
    stats_.connectionsReceived++;
    auto connection = kj::heap<Connection>(*this, kj::mv(stream), nextClientId_++);
    auto done = connection->run();
    tasks_.add(done.attach(kj::mv(connection)));
    return acceptLoop();
  });
}

void Server::taskFailed(kj::Exception&& exception) {
  // A reset or broken connection: only that client is affected.
  memberLog().debug("RESP connection closed: {}", exception.getDescription().cStr());
}

}  // namespace shoal::node::resp

// RESP gateway connections; see resp_server.h.
#include "resp_server.h"

#include <kj/async-unix.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../member_log.h"

namespace shoal::node::resp {
namespace {
constexpr size_t READ_CHUNK = 64 * 1024;
}

// One client. The socket is driven directly (read / write on a non-blocking fd, an edge-triggered
// observer for readiness) rather than through kj::AsyncIoStream: a short read proves the socket
// drained, so a request costs epoll + read + write — the same system calls as redis-server —
// instead of an extra read that only returns EAGAIN.
class Server::Connection {
 public:
  Connection(Server& server, int fd, int64_t id)
      : server_(server),
        fd_(fd),
        observer_(server.eventPort_, fd, kj::UnixEventPort::FdObserver::OBSERVE_READ_WRITE),
        parser_(server.limits_) {
    session_.id = id;
    server_.stats_.connectedClients++;
  }
  ~Connection() { server_.stats_.connectedClients--; }

  kj::Promise<void> run() { return readMore(); }

 private:
  kj::Promise<void> readMore() {
    for (int spins = 0; spins < 16; ++spins) {
      if (filled_ >= server_.limits_.maxQueryBytes) {
        memberLog().info("RESP client {} exceeded the query buffer limit; closing its connection",
                         session_.id);
        out_ = "-ERR Protocol error: request larger than limits.max-message-bytes\r\n";
        return flush(true);
      }
      if (in_.size() - filled_ < READ_CHUNK) in_.resize(filled_ + READ_CHUNK);
      size_t space = in_.size() - filled_;
      ssize_t n = ::read(fd_, in_.data() + filled_, space);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return observer_.whenBecomesReadable().then([this]() { return readMore(); });
        }
        memberLog().debug("RESP client {}: read failed: {}", session_.id, strerror(errno));
        return kj::READY_NOW;
      }
      if (n == 0) return kj::READY_NOW;  // the client closed the connection
      filled_ += n;
      bool close = processBuffered();
      bool drained = size_t(n) < space;
      if (server_.maps_.hasPendingChanges()) {
        // Write-through: the replies go out once this round's changes are stored.
        return server_.maps_.commit()
            .catch_([this](kj::Exception&& e) {
              std::string text = e.getDescription().cStr();
              auto at = text.find("shoal:store-failed: ");
              auto reason = at == std::string::npos ? text : text.substr(at + 20);
              out_.clear();
              ReplyWriter writer(&out_);
              for (size_t i = 0; i < executed_; ++i) writer.error("ERR store failed, not stored: " + reason);
            })
            .then([this, close]() { return flush(close); })
            .then([this, close, drained]() -> kj::Promise<void> {
              if (close) return kj::READY_NOW;
              if (drained) return observer_.whenBecomesReadable().then([this]() { return readMore(); });
              return readMore();
            });
      }
      if (!out_.empty() || close) {
        return flush(close).then([this, close, drained]() -> kj::Promise<void> {
          if (close) return kj::READY_NOW;
          if (drained) return observer_.whenBecomesReadable().then([this]() { return readMore(); });
          return readMore();
        });
      }
      if (drained) return observer_.whenBecomesReadable().then([this]() { return readMore(); });
    }
    // A client that keeps the socket full gets its turn again after the others.
    return kj::evalLater([this]() { return readMore(); });
  }

  // Writes all of out_ (waiting for the socket when it is full), then clears it.
  kj::Promise<void> flush(bool close) {
    while (written_ < out_.size()) {
      ssize_t n = ::write(fd_, out_.data() + written_, out_.size() - written_);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return observer_.whenBecomesWritable().then([this, close]() { return flush(close); });
        }
        memberLog().debug("RESP client {}: write failed: {}", session_.id, strerror(errno));
        return KJ_EXCEPTION(DISCONNECTED, "RESP client went away");
      }
      written_ += n;
    }
    out_.clear();
    written_ = 0;
    return kj::READY_NOW;
  }

  // Executes every complete command in the buffer; true when the connection must close.
  bool processBuffered() {
    ReplyWriter writer(&out_);
    executed_ = 0;
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
      ++executed_;
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
  kj::AutoCloseFd fd_;
  kj::UnixEventPort::FdObserver observer_;
  RequestParser parser_;
  Session session_;
  std::string in_;
  size_t filled_ = 0;
  std::string out_;
  size_t written_ = 0;
  size_t executed_ = 0;  // commands answered in out_ (replaced by errors if their store fails)
  std::vector<std::string_view> args_;
};

Server::Server(kj::Own<kj::ConnectionReceiver> receiver, kj::UnixEventPort& eventPort, MapService& maps,
               std::string mapName, const Clock& clock, std::string address, ParserLimits limits)
    : receiver_(kj::mv(receiver)),
      eventPort_(eventPort),
      maps_(maps),
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
    // Take the socket out of the stream: a dup of the fd (same non-blocking socket) is ours to
    // drive, and dropping the stream closes its own fd and unregisters its observer.
    int fd = -1;
    KJ_IF_MAYBE (original, stream->getFd()) {
      fd = ::dup(*original);
    }
    stream = nullptr;
    if (fd < 0) {
      memberLog().warn("RESP: cannot take over an accepted socket: {}", strerror(errno));
      return acceptLoop();
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto connection = kj::heap<Connection>(*this, fd, nextClientId_++);
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

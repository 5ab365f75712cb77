// RESP gateway connections; see resp_server.h.
#include "resp_server.h"

#include <kj/async-unix.h>
#include <kj/debug.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "../member_log.h"

namespace shoal::node::resp {
namespace {
constexpr size_t READ_CHUNK = 64 * 1024;
}

// One client: a non-blocking socket in the server's epoll set (level-triggered).
class Server::Connection {
 public:
  Connection(Server& server, int fd, int64_t id) : server_(server), fd_(fd), parser_(server.limits_) {
    session_.id = id;
    server_.stats_.connectedClients++;
    server_.clientFds_[id] = fd;
  }
  ~Connection() {
    server_.stats_.connectedClients--;
    server_.clientFds_.erase(session_.id);
    server_.pubsub_->drop(session_.id);
  }
  int fd() const { return fd_.get(); }

  // A pub/sub message for this client. While a reply is awaited it waits behind it (replies and
  // pushes stay in order); over the subscriber output limit, the client is disconnected.
  void push(std::string_view bytes) {
    if (overLimit_) return;
    auto& to = waitingCommit_ ? held_ : out_;
    if (session_.protocol == 3 && !bytes.empty() && bytes[0] == '*') {
      to.push_back('>');  // RESP3: the same array as a push
      to.append(bytes.substr(1));
    } else {
      to.append(bytes);
    }
    if (!waitingCommit_) {
      if (!writeOut()) {
        overLimit_ = true;
        server_.closeLater(fd_, session_.id);
        return;
      }
    }
    if (out_.size() - written_ + held_.size() > server_.subscriberOutputLimit_) {
      memberLog().info(
          "RESP client {} is a subscriber with more than {} bytes of unsent output "
          "(limits.resp-subscriber-output-bytes); closing its connection",
          session_.id, server_.subscriberOutputLimit_);
      overLimit_ = true;
      server_.closeLater(fd_, session_.id);
    }
  }

  // The socket is readable: read what is there, answer it. Returns false to close.
  bool onReadable() {
    for (int round = 0; round < 4; ++round) {
      if (filled_ >= server_.limits_.maxQueryBytes) {
        memberLog().info("RESP client {} exceeded the query buffer limit; closing its connection",
                         session_.id);
        out_ = "-ERR Protocol error: request larger than limits.max-message-bytes\r\n";
        writeOut();
        return false;
      }
      if (in_.size() - filled_ < READ_CHUNK) in_.resize(filled_ + READ_CHUNK);
      size_t space = in_.size() - filled_;
      ssize_t n = ::read(fd_, in_.data() + filled_, space);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      if (n == 0) return false;  // the client closed the connection
      filled_ += n;
      closing_ = processBuffered() == Round::CLOSE;
      if (mustWait()) return awaitRound();
      if (!writeOut()) return false;
      if (closing_) return out_.empty() ? false : true;
      if (size_t(n) < space || blocked_) return true;  // drained, or waiting to write
    }
    return true;  // more may be there: level-triggered epoll reports it again
  }

  // The socket can take more of a reply that did not fit. Returns false to close.
  bool onWritable() {
    if (!writeOut()) return false;
    if (out_.empty() && closing_) return false;
    return true;
  }

 private:
  // The round's replies cannot go out yet: some wait for other members (or for a pub/sub call),
  // or its writes must first be stored and replicated.
  bool mustWait() const { return !deferred_.empty() || server_.maps_.hasPendingChanges(); }

  // Waits for the round's remote replies and for its writes to be stored, then puts every reply
  // in order and goes on with the buffered commands. Meanwhile the client is not read (its
  // requests wait in the socket, in order) and pushes wait in held_.
  bool awaitRound() {
    server_.watch(fd_, 0);
    waitingCommit_ = true;
    kj::Promise<std::optional<std::string>> stored = std::optional<std::string>();
    if (server_.maps_.hasPendingChanges()) {
      stored = server_.maps_.commit().then(
          []() { return std::optional<std::string>(); },
          [](kj::Exception&& e) {
            std::string text = e.getDescription().cStr();
            auto at = text.find("shoal:store-failed: ");
            return std::optional<std::string>(at == std::string::npos ? text : text.substr(at + 20));
          });
    }
    auto replies = kj::heapArrayBuilder<kj::Promise<std::string>>(deferred_.size());
    for (auto& d : deferred_) replies.add(kj::mv(d));
    deferred_.clear();
    auto remote = kj::joinPromises(replies.finish());
    // The continuation finds the connection again by fd and id: it may have been closed (and the
    // fd reused) meanwhile.
    int fd = fd_;
    int64_t id = session_.id;
    Server* server = &server_;
    server_.tasks_.add(
        stored
            .then([remote = kj::mv(remote)](std::optional<std::string> failure) mutable {
              return remote.then([failure](kj::Array<std::string> replies) {
                return std::make_pair(failure, kj::mv(replies));
              });
            })
            .then([server, fd, id](std::pair<std::optional<std::string>, kj::Array<std::string>> done) {
              auto it = server->connections_.find(fd);
              if (it == server->connections_.end() || it->second->session_.id != id) return;
              auto& c = *it->second;
              c.waitingCommit_ = false;
              c.completeRound(done.first, done.second);
              c.releaseHeld();
              if (!c.continueRound()) server->close(fd);
            }));
    return true;
  }

  // Puts the round's replies in order: the local ones (errors if the round's writes could not be
  // stored) and the remote ones where their commands were.
  void completeRound(const std::optional<std::string>& failure, kj::Array<std::string>& remote) {
    std::string out = out_.substr(0, roundStart_);
    ReplyWriter writer(&out);
    size_t from = roundStart_;
    size_t next = 0;
    for (auto& entry : round_) {
      if (entry.kind == Entry::REMOTE) {
        out += remote[next++];
      } else if (failure && entry.kind == Entry::LOCAL) {
        writer.error("ERR store failed, not stored: " + *failure);
      } else {
        out.append(out_, from, entry.end - from);
      }
      from = entry.end;
    }
    out_ = std::move(out);
    round_.clear();
  }

  // A reply that comes later (another member's, or a pub/sub call's): it takes its command's place.
  void defer(kj::Promise<std::string> reply) {
    deferred_.push_back(reply.catch_([](kj::Exception&& e) {
      return "-TRYAGAIN the member owning the key did not answer (" + std::string(e.getDescription().cStr()) +
             "); retry\r\n";
    }));
    round_.push_back(Entry{out_.size(), Entry::REMOTE});
  }

  // Every member answers for its own partitions, this one included; the replies are combined.
  kj::Promise<std::string> fanOut() {
    std::string mine;
    {
      ReplyWriter writer(&mine, session_.protocol);
      server_.commands_.execute(args_, session_, writer);
    }
    auto others = server_.cluster_->otherMemberAddresses();
    auto replies = kj::heapArrayBuilder<kj::Promise<std::string>>(others.size());
    for (auto& address : others) {
      replies.add(server_.cluster_->forward(address, std::vector<std::string>(args_.begin(), args_.end()),
                                            true, session_.protocol));
    }
    return kj::joinPromises(replies.finish())
        .then([mine = std::move(mine), name = remoteName_](kj::Array<std::string> rest) {
          std::vector<std::string> all{mine};
          for (auto& o : rest) all.push_back(kj::mv(o));
          return combineReplies(name, all);
        });
  }

  void releaseHeld() {
    out_ += held_;
    held_.clear();
  }

  enum class PubSubStep { NOT_PUBSUB, DONE, ASYNC };
  // Pub/sub commands, and Redis's rules for a client in subscribed mode (RESP2: only
  // (P)(UN)SUBSCRIBE, PING, QUIT and RESET; RESP3: any command). ASYNC: pending_ holds the reply.
  PubSubStep pubsubCommand(ReplyWriter& writer) {
    std::string name(args_[0]);
    for (auto& ch : name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    auto& pubsub = *server_.pubsub_;
    auto id = session_.id;
    size_t argc = args_.size();
    bool subscribed = pubsub.count(id) > 0 && session_.protocol == 2;
    int protocol = session_.protocol;
    auto rest = [this]() { return std::vector<std::string>(args_.begin() + 1, args_.end()); };
    auto arityError = [&]() {
      writer.error("ERR wrong number of arguments for '" + name + "' command");
      return PubSubStep::DONE;
    };
    if (name == "subscribe" || name == "psubscribe") {
      if (argc < 2) return arityError();
      pending_ = name == "subscribe" ? pubsub.subscribe(id, rest(), protocol)
                                     : pubsub.psubscribe(id, rest(), protocol);
      return PubSubStep::ASYNC;
    }
    if (name == "unsubscribe" || name == "punsubscribe") {
      auto reply = name == "unsubscribe" ? pubsub.unsubscribe(id, rest(), protocol)
                                         : pubsub.punsubscribe(id, rest(), protocol);
      writer.raw(reply);
      return PubSubStep::DONE;
    }
    if (name == "reset") {
      if (argc != 1) return arityError();
      pubsub.drop(id);
      session_.name.clear();
      session_.protocol = 2;  // as Redis: RESET returns to RESP2
      writer.simple("RESET");
      return PubSubStep::DONE;
    }
    if (subscribed && name == "ping") {
      if (argc > 2) return arityError();
      writer.arrayHeader(2);
      writer.bulk("pong");
      writer.bulk(argc == 2 ? args_[1] : std::string_view());
      return PubSubStep::DONE;
    }
    if (subscribed && name != "quit" && (name == "publish" || server_.commands_.knows(name, argc))) {
      writer.error("ERR Can't execute '" + name +
                   "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
                   "context");
      return PubSubStep::DONE;
    }
    if (name == "publish") {
      if (argc != 3) return arityError();
      pending_ = pubsub.publish(std::string(args_[1]), std::string(args_[2]));
      return PubSubStep::ASYNC;
    }
    return PubSubStep::NOT_PUBSUB;
  }

  // After a waited round: the rest of the buffered commands, then the usual commit / write.
  bool continueRound() {
    if (!closing_) closing_ = processBuffered() == Round::CLOSE;  // after QUIT, nothing more
    if (mustWait()) return awaitRound();
    if (!writeOut() || (out_.empty() && closing_)) return false;
    server_.watch(fd_, blocked_ ? EPOLLOUT : EPOLLIN);
    return true;
  }

  // Writes as much of out_ as the socket takes; false when the connection broke.
  bool writeOut() {
    while (written_ < out_.size()) {
      ssize_t n = ::write(fd_, out_.data() + written_, out_.size() - written_);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!blocked_) server_.watch(fd_, EPOLLOUT);  // stop reading until the reply is out
          blocked_ = true;
          return true;
        }
        return false;
      }
      written_ += n;
    }
    out_.clear();
    written_ = 0;
    if (blocked_) {
      blocked_ = false;
      server_.watch(fd_, EPOLLIN);
    }
    return true;
  }

  enum class Round { DONE, CLOSE };
  // Executes the complete commands in the buffer (one round). Commands whose keys live on other
  // members are queued for them (deferred_: one call per member carries every client's commands of
  // this turn); a pub/sub call that waits ends the round.
  Round processBuffered() {
    roundStart_ = out_.size();
    round_.clear();
    size_t offset = 0;
    bool close = false;
    bool stop = false;
    while (!close && !stop) {
      ReplyWriter writer(&out_, session_.protocol);  // per command: HELLO may change the protocol
      size_t consumed = 0;
      auto status = parser_.next(std::string_view(in_.data() + offset, filled_ - offset), &args_, &consumed);
      if (status == RequestParser::Status::NEED_MORE) break;
      if (status == RequestParser::Status::PROTOCOL_ERROR) {
        memberLog().info("RESP client {} sent a malformed request ({}); closing its connection", session_.id,
                         parser_.error());
        writer.error("ERR " + parser_.error());
        round_.push_back(Entry{out_.size(), Entry::FIXED});
        close = true;
        break;
      }
      offset += consumed;
      runCommand(writer, &close, &stop);
    }
    // Keep the unparsed tail at the front of the buffer.
    if (offset > 0) {
      std::memmove(in_.data(), in_.data() + offset, filled_ - offset);
      filled_ -= offset;
    }
    return close ? Round::CLOSE : Round::DONE;
  }

  // Runs the command (args_, copied) once `loaded` resolves, and answers once its writes are stored.
  kj::Promise<std::string> readThrough(kj::Promise<void> loaded) {
    std::vector<std::string> args(args_.begin(), args_.end());
    int fd = fd_;
    int64_t id = session_.id;
    Server* server = &server_;
    return loaded.then([server, fd, id, args = std::move(args)]() -> kj::Promise<std::string> {
      auto it = server->connections_.find(fd);
      if (it == server->connections_.end() || it->second->session_.id != id) return std::string();
      auto& c = *it->second;
      std::string reply;
      {
        ReplyWriter writer(&reply, c.session_.protocol);
        std::vector<std::string_view> views(args.begin(), args.end());
        server->commands_.execute(views, c.session_, writer);
      }
      if (!server->maps_.hasPendingChanges()) return reply;
      return server->maps_.commit().then(
          [reply]() { return reply; },
          [](kj::Exception&& e) {
            return "-ERR store failed, not stored: " + std::string(e.getDescription().cStr()) + "\r\n";
          });
    });
  }

  // One parsed command (args_): here, at other members, or a pub/sub call. `stop`: the round ends
  // after it (a subscription changes what the next commands may do).
  void runCommand(ReplyWriter& writer, bool* close, bool* stop) {
    if (!args_.empty()) {
      auto step = pubsubCommand(writer);
      if (step == PubSubStep::ASYNC) {
        KJ_IF_MAYBE (reply, pending_) {
          defer(kj::mv(*reply));
        }
        pending_ = nullptr;
        *stop = true;
        return;
      }
      if (step == PubSubStep::DONE) {
        round_.push_back(Entry{out_.size(), Entry::LOCAL});
        return;
      }
    }
    if (server_.cluster_ != nullptr && server_.cluster_->memberCount() > 1 && !args_.empty()) {
      remoteName_.assign(args_[0]);
      for (auto& ch : remoteName_) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
      if (isWriteCommand(remoteName_)) {
        if (auto refused = server_.cluster_->writesRefused()) {
          writer.error("CLUSTERDOWN " + *refused);
          round_.push_back(Entry{out_.size(), Entry::FIXED});
          return;
        }
      }
      auto route = routeCommand(remoteName_, args_, server_.maps_.partitioner(), *server_.cluster_, false);
      if (route.kind == Route::Kind::REFUSE) {
        writer.error(route.error);
        round_.push_back(Entry{out_.size(), Entry::FIXED});
        return;
      }
      if (route.kind == Route::Kind::THERE) {
        return defer(server_.cluster_->forward(
            route.address, std::vector<std::string>(args_.begin(), args_.end()), false, session_.protocol));
      }
      if (route.kind == Route::Kind::EVERYWHERE) return defer(fanOut());
    }
    KJ_IF_MAYBE (loading, server_.commands_.loadEvicted(args_)) {
      // Keys evicted from memory come back from the store first; the round ends with this command,
      // so the commands after it run after it.
      defer(readThrough(kj::mv(*loading)));
      *stop = true;
      return;
    }
    server_.commands_.execute(args_, session_, writer);
    round_.push_back(Entry{out_.size(), Entry::LOCAL});
    *close = session_.closeAfterReply;
  }

  Server& server_;
  kj::AutoCloseFd fd_;
  RequestParser parser_;
  Session session_;
  std::string in_;
  size_t filled_ = 0;
  std::string out_;
  size_t written_ = 0;
  bool blocked_ = false;        // a reply waits for the socket to take it (reading is paused)
  bool closing_ = false;        // QUIT or a protocol error: close once the reply is out
  bool waitingCommit_ = false;  // replies wait for the store; the socket is not read meanwhile
  bool overLimit_ = false;      // a subscriber over the output limit: closed on the next turn
  std::string held_;            // pushes that arrived while a reply was awaited
  kj::Maybe<kj::Promise<std::string>> pending_;  // the reply of a pub/sub command run here

  friend class Server;
  std::vector<std::string_view> args_;
  std::string remoteName_;  // lower-cased name of the command being routed
  // The round being answered: where each command's reply ends in out_ and what it is. REMOTE
  // replies come from deferred_, in order; LOCAL ones become errors if the round's writes fail to
  // be stored; FIXED ones (refusals, protocol errors) stay as they are.
  struct Entry {
    size_t end;
    enum Kind { LOCAL, REMOTE, FIXED } kind;
  };
  std::vector<Entry> round_;
  size_t roundStart_ = 0;
  std::vector<kj::Promise<std::string>> deferred_;
};

Server::Server(kj::Own<kj::ConnectionReceiver> receiver, kj::UnixEventPort& eventPort, MapService& maps,
               std::string mapName, const Clock& clock, std::string address, ParserLimits limits,
               ClusterAccess* cluster, wire::Member::Client member, kj::Timer& timer,
               uint64_t subscriberOutputLimit)
    : receiver_(kj::mv(receiver)),
      maps_(maps),
      commands_(maps, std::move(mapName), clock, stats_, address),
      cluster_(cluster),
      address_(std::move(address)),
      limits_(limits),
      subscriberOutputLimit_(subscriberOutputLimit),
      pubsub_(std::make_unique<PubSub>(kj::mv(member), timer,
                                       [this](int64_t client, std::string_view bytes) {
                                         auto it = clientFds_.find(client);
                                         if (it == clientFds_.end()) return;
                                         auto c = connections_.find(it->second);
                                         if (c != connections_.end()) c->second->push(bytes);
                                       })),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      epollObserver_(eventPort, epoll_, kj::UnixEventPort::FdObserver::OBSERVE_READ),
      tasks_(*this),
      accepting_(nullptr),
      polling_(nullptr) {
  stats_.startedAtMs = clock.nowMs();
  accepting_ = acceptLoop().eagerlyEvaluate([](kj::Exception&& e) {
    memberLog().error("RESP accept loop stopped: {}", e.getDescription().cStr());
  });
  polling_ = pollLoop().eagerlyEvaluate(
      [](kj::Exception&& e) { memberLog().error("RESP poll loop stopped: {}", e.getDescription().cStr()); });
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
    connections_[fd] = std::make_unique<Connection>(*this, fd, nextClientId_++);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      memberLog().warn("RESP: cannot watch a client socket: {}", strerror(errno));
      connections_.erase(fd);
    }
    return acceptLoop();
  });
}

kj::Promise<void> Server::pollLoop() {
  // The epoll fd is watched edge-triggered by KJ: serve until nothing is ready before waiting.
  if (serveReady()) return kj::evalLater([this]() { return pollLoop(); });
  return epollObserver_.whenBecomesReadable().then([this]() { return pollLoop(); });
}

bool Server::serveReady() {
  constexpr int MAX_EVENTS = 256;
  epoll_event events[MAX_EVENTS];
  for (int round = 0; round < 8; ++round) {
    int n = ::epoll_wait(epoll_, events, MAX_EVENTS, 0);
    if (n <= 0) return false;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      auto it = connections_.find(fd);
      if (it == connections_.end()) continue;
      bool keep = true;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        // Hung up: answer what it sent before (unless already answered and waiting), then close.
        if (!it->second->waitingCommit_) it->second->onReadable();
        keep = false;
      } else if (events[i].events & EPOLLOUT) {
        keep = it->second->onWritable();
      } else if (events[i].events & EPOLLIN) {
        keep = it->second->onReadable();
      }
      if (!keep) close(fd);
    }
  }
  return true;  // still busy: let the rest of the loop (RPC clients) run first
}

void Server::watch(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
}

void Server::close(int fd) {
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  connections_.erase(fd);  // closes the socket
}

void Server::closeLater(int fd, int64_t id) {
  tasks_.add(kj::evalLater([this, fd, id]() {
    auto it = connections_.find(fd);
    if (it != connections_.end() && it->second->session_.id == id) close(fd);
  }));
}

void Server::taskFailed(kj::Exception&& exception) {
  memberLog().debug("RESP task failed: {}", exception.getDescription().cStr());
}

}  // namespace shoal::node::resp

// Redis side of shoal-pubsub-bench: RESP over blocking loopback sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "targets.h"

namespace shoal::bench {
namespace {

int connectTo(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("redis address must be HOST:PORT: " + address);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("not an IPv4 address: " + address);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw std::runtime_error("cannot connect to redis at " + address);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void writeAll(int fd, const std::string& data) {
  size_t at = 0;
  while (at < data.size()) {
    auto n = ::write(fd, data.data() + at, data.size() - at);
    if (n <= 0) throw std::runtime_error("redis connection closed while writing");
    at += size_t(n);
  }
}

std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a.data(), a.size());
    out += "\r\n";
  }
  return out;
}

// Reads RESP replies from a socket: enough of RESP2 for PUBLISH replies and pub/sub pushes.
class RespReader {
 public:
  explicit RespReader(int fd) : fd_(fd) {}
  // Reads one reply; arrays come back as their elements, scalars as one element.
  bool next(std::vector<std::string_view>* parts) {
    parts->clear();
    compact();
    for (;;) {
      size_t at = start_;
      if (parse(&at, parts)) {
        start_ = at;
        return true;
      }
      parts->clear();
      if (!fill()) return false;
    }
  }

 private:
  bool parse(size_t* at, std::vector<std::string_view>* parts) {
    std::string_view line;
    if (!readLine(at, &line) || line.empty()) return false;
    if (line[0] == '*') {
      long n = std::stol(std::string(line.substr(1)));
      for (long i = 0; i < n; ++i) {
        if (!element(at, parts)) return false;
      }
      return true;
    }
    *at -= line.size() + 2;
    return element(at, parts);
  }
  bool element(size_t* at, std::vector<std::string_view>* parts) {
    std::string_view line;
    if (!readLine(at, &line) || line.empty()) return false;
    if (line[0] != '$') {
      parts->push_back(line.substr(1));
      return true;
    }
    long n = std::stol(std::string(line.substr(1)));
    if (n < 0) {
      parts->push_back({});
      return true;
    }
    if (buffer_.size() - *at < size_t(n) + 2) return false;
    parts->push_back(std::string_view(buffer_).substr(*at, size_t(n)));
    *at += size_t(n) + 2;
    return true;
  }
  bool readLine(size_t* at, std::string_view* line) {
    auto end = buffer_.find("\r\n", *at);
    if (end == std::string::npos) return false;
    *line = std::string_view(buffer_).substr(*at, end - *at);
    *at = end + 2;
    return true;
  }
  bool fill() {
    char chunk[65536];
    auto n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer_.append(chunk, size_t(n));
    return true;
  }
  void compact() {
    if (start_ > (1 << 20)) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
  }
  int fd_;
  std::string buffer_;
  size_t start_ = 0;
};

class RedisTarget final : public PubSubTarget {
 public:
  explicit RedisTarget(std::string address) : address_(std::move(address)) {
    publisher_ = connectTo(address_);
    replies_ = std::thread([this] { readReplies(); });
  }
  ~RedisTarget() override { close(); }

  void subscribe(const std::string& channel, int count, OnMessage onMessage) override {
    for (int i = 0; i < count; ++i) {
      int fd = connectTo(address_);
      subscribers_.push_back(fd);
      writeAll(fd, command({"SUBSCRIBE", channel}));
      auto reader = std::make_shared<RespReader>(fd);
      std::vector<std::string_view> parts;
      if (!reader->next(&parts)) throw std::runtime_error("redis SUBSCRIBE failed");
      threads_.emplace_back([reader, i, onMessage] {
        std::vector<std::string_view> parts;
        while (reader->next(&parts)) {
          if (parts.size() == 3 && parts[0] == "message") onMessage(i, parts[2]);
        }
      });
    }
  }

  void publish(const std::string& channel, std::string payload, std::function<void(bool)> acked) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      waiting_.push_back(std::move(acked));
    }
    writeAll(publisher_, command({"PUBLISH", channel, payload}));
  }

  void close() override {
    if (closed_.exchange(true)) return;
    ::shutdown(publisher_, SHUT_RDWR);
    for (int fd : subscribers_) ::shutdown(fd, SHUT_RDWR);
    if (replies_.joinable()) replies_.join();
    for (auto& t : threads_) t.join();
    ::close(publisher_);
    for (int fd : subscribers_) ::close(fd);
  }

 private:
  void readReplies() {
    RespReader reader(publisher_);
    std::vector<std::string_view> parts;
    while (reader.next(&parts)) {
      std::function<void(bool)> done;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (waiting_.empty()) continue;
        done = std::move(waiting_.front());
        waiting_.pop_front();
      }
      done(true);
    }
  }

  std::string address_;
  int publisher_ = -1;
  std::vector<int> subscribers_;
  std::thread replies_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::deque<std::function<void(bool)>> waiting_;
  std::atomic<bool> closed_{false};
};

}  // namespace

std::unique_ptr<PubSubTarget> redisTarget(const std::string& address) {
  return std::make_unique<RedisTarget>(address);
}

}  // namespace shoal::bench

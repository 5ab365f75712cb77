// A plain RESP connection to a loopback port for tests that compare bytes on the wire; every
// read has a deadline. Header-only: it uses Catch2's REQUIRE.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <utility>

namespace shoal::test {

// The port of a "host:port" address.
inline int portOf(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

// A plain RESP connection; every read has a deadline.
class RawClient {
 public:
  explicit RawClient(int port, int receiveBuffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (receiveBuffer > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() { ::close(fd_); }

  void send(const std::string& bytes) {
    REQUIRE(::write(fd_, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
  }

  // Everything received until it ends with `marker` (or the deadline passed).
  std::string readUntil(const std::string& marker,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!(buffer_.size() >= marker.size() &&
             buffer_.compare(buffer_.size() - marker.size(), marker.size(), marker) == 0)) {
      if (readSome(deadline) <= 0) break;
    }
    return std::exchange(buffer_, std::string());
  }

  // Reads (and drops) until the server closes the connection; false if it did not by the deadline.
  bool waitClosed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto n = readSome(deadline);
      buffer_.clear();
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  // > 0 bytes read, 0 closed, < 0 error or deadline (errno ETIMEDOUT).
  ssize_t readSome(std::chrono::steady_clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    char chunk[65536];
    auto n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) buffer_.append(chunk, n);
    return n;
  }

  int fd_ = -1;
  std::string buffer_;
};

}  // namespace shoal::test

// redis-server for comparison tests; see redis_process.h.
#include "redis_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "shoald_process.h"

namespace shoal::test {

bool RedisProcess::available() {
  return access("/usr/bin/redis-server", X_OK) == 0;
}

int RedisProcess::freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

RedisProcess::RedisProcess() {
  port_ = freePort();
  pid_ = fork();
  if (pid_ == 0) {
    std::string port = std::to_string(port_);
    execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save",
          "", "--appendonly", "no", "--logfile", "/dev/null", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = runCommand({"/usr/bin/redis-cli", "-p", std::to_string(port_), "ping"}, 2000);
    if (r.out == "PONG\n") return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  throw std::runtime_error("redis-server did not start");
}

RedisProcess::~RedisProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

}  // namespace shoal::test

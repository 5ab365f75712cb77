// A real redis-server on a free loopback port, for tests that compare Shoal with Redis; killed
// in the destructor. `available()` is false when redis-server is not installed.
#pragma once

#include <string>

namespace shoal::test {

class RedisProcess {
 public:
  RedisProcess();
  ~RedisProcess();
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;
  int port() const { return port_; }

  static bool available();
  static int freePort();

 private:
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace shoal::test

// Starts a real `shoald` process on a loopback port picked by the kernel, learns the port from
// its "ready on" line, and kills it (SIGKILL if SIGTERM is not enough) when destroyed — so a
// failing test leaves no process or port behind.
#pragma once

#include <string>
#include <vector>

namespace shoal::test {

// Writes `text` to a new file under /tmp (a config file for shoald) and returns its path.
std::string writeTempFile(const std::string& text, const std::string& suffix = ".toml");

class ShoaldProcess {
 public:
  // Starts shoald with `--listen 127.0.0.1:0` plus `extraArgs`; throws if it is not ready in 10 s.
  // `netns`: the network namespace (a name under /run/netns) it runs in; "" = this process's. A
  // process in a namespace is also killed when the test process dies (PR_SET_PDEATHSIG).
  explicit ShoaldProcess(std::vector<std::string> extraArgs = {}, std::string name = "test-member",
                         std::string netns = "");
  ~ShoaldProcess();
  ShoaldProcess(const ShoaldProcess&) = delete;
  ShoaldProcess& operator=(const ShoaldProcess&) = delete;

  const std::string& address() const { return address_; }
  // The RESP address when started with --resp, else empty.
  const std::string& respAddress() const { return respAddress_; }
  int pid() const { return pid_; }
  bool alive() const;
  // SIGTERM and wait; returns the exit status (as from waitpid), or -1 on timeout.
  int terminate(int timeoutMs = 10000);
  void kill9();
  // Path of the file the member's stderr (its log) goes to.
  const std::string& logPath() const { return logPath_; }
  std::string log() const;

  static std::string binary();  // path of the shoald under test

 private:
  int pid_ = -1;
  std::string address_;
  std::string respAddress_;
  std::string logPath_;
};

// Runs a command to completion with a timeout; captures stdout and the exit code.
struct CommandResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};
CommandResult runCommand(const std::vector<std::string>& argv, int timeoutMs = 20000);

}  // namespace shoal::test

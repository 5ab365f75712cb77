// Real shoald processes for integration tests; see shoald_process.h.
#include "shoald_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef SHOALD_BINARY
#error "SHOALD_BINARY must be defined by the build"
#endif

namespace shoal::test {
namespace {

bool waitExit(int pid, int timeoutMs, int* status) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    int r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string writeTempFile(const std::string& text, const std::string& suffix) {
  std::string path = "/tmp/shoal-test-XXXXXX" + suffix;
  int fd = mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += size_t(n);
  }
  close(fd);
  if (done != text.size()) throw std::runtime_error("cannot write " + path);
  return path;
}

std::string ShoaldProcess::binary() {
  return SHOALD_BINARY;
}

ShoaldProcess::ShoaldProcess(std::vector<std::string> extraArgs, std::string name, std::string netns) {
  char logTemplate[] = "/tmp/shoald-test-XXXXXX";
  int logFd = mkstemp(logTemplate);
  if (logFd < 0) throw std::runtime_error("mkstemp failed");
  logPath_ = logTemplate;
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");

  std::vector<std::string> args = {binary(), "--name", name};
  bool hasListen = false;
  for (auto& a : extraArgs) hasListen |= a == "--listen";
  if (!hasListen) args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  pid_ = fork();
  if (pid_ == 0) {
    if (!netns.empty()) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int nsFd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsFd < 0 || setns(nsFd, CLONE_NEWNET) != 0) _exit(126);
    }
    dup2(out[1], 1);
    dup2(logFd, 2);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(logFd);
  // Read the "shoald NAME ready on HOST:PORT" line.
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  while (std::chrono::steady_clock::now() < deadline && line.find('\n') == std::string::npos) {
    char buf[256];
    auto n = read(out[0], buf, sizeof buf);
    if (n > 0) {
      line.append(buf, n);
    } else if (n == 0) {
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  close(out[0]);
  auto at = line.find(" ready on ");
  if (at == std::string::npos) {
    kill9();
    throw std::runtime_error("shoald did not become ready; its log:\n" + log());
  }
  line = line.substr(at + 10);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  // "HOST:PORT" then, with --resp, " resp HOST:PORT".
  auto space = line.find(' ');
  address_ = line.substr(0, space);
  auto resp = line.find(" resp ");
  if (resp != std::string::npos) respAddress_ = line.substr(resp + 6);
}

ShoaldProcess::~ShoaldProcess() {
  if (pid_ > 0 && terminate(5000) == -1) kill9();
  if (logPath_.empty()) return;
  if (std::getenv("SHOAL_TEST_KEEP_LOGS")) {  // to read a failed test's member logs afterwards
    std::fprintf(stderr, "member log kept: %s\n", logPath_.c_str());
  } else {
    unlink(logPath_.c_str());
  }
}

bool ShoaldProcess::alive() const {
  return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0;
}

int ShoaldProcess::terminate(int timeoutMs) {
  if (pid_ <= 0) return 0;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!waitExit(pid_, timeoutMs, &status)) return -1;
  pid_ = -1;
  return status;
}

void ShoaldProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ShoaldProcess::log() const {
  return readFile(logPath_);
}

CommandResult runCommand(const std::vector<std::string>& args, int timeoutMs) {
  char outTemplate[] = "/tmp/shoal-cmd-out-XXXXXX";
  char errTemplate[] = "/tmp/shoal-cmd-err-XXXXXX";
  int outFd = mkstemp(outTemplate);
  int errFd = mkstemp(errTemplate);
  int pid = fork();
  if (pid == 0) {
    dup2(outFd, 1);
    dup2(errFd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(outFd);
  close(errFd);
  CommandResult result;
  int status = 0;
  if (!waitExit(pid, timeoutMs, &status)) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.exitCode = -1;
  } else {
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result.out = readFile(outTemplate);
  result.err = readFile(errTemplate);
  unlink(outTemplate);
  unlink(errTemplate);
  return result;
}

}  // namespace shoal::test

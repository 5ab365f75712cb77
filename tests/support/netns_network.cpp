// Network namespaces, a bridge and nftables cuts for partition tests; see netns_network.h.
#include "netns_network.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "shoald_process.h"

namespace shoal::test {
namespace {

const char* IP = "/usr/sbin/ip";
const char* NFT = "/usr/sbin/nft";
const std::string PREFIX = "shnt";  // every name made here starts with this, then the owner's pid

CommandResult run(std::vector<std::string> argv) {
  return runCommand(argv, 20000);
}

void must(std::vector<std::string> argv) {
  auto r = run(argv);
  if (r.exitCode != 0) {
    std::string line;
    for (auto& a : argv) line += a + " ";
    throw std::runtime_error("netns set-up: `" + line + "` failed (" + std::to_string(r.exitCode) +
                             "): " + r.err + r.out);
  }
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// The pid in a name made here ("shnt<pid>…"), or -1 when the name is not ours.
int ownerOf(const std::string& name) {
  if (name.rfind(PREFIX, 0) != 0) return -1;
  size_t i = PREFIX.size(), start = i;
  while (i < name.size() && isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i == start) return -1;
  return std::stoi(name.substr(start, i - start));
}

bool processAlive(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

void killProcessesIn(const std::string& ns) {
  for (auto& l : lines(run({IP, "netns", "pids", ns}).out)) {
    int pid = std::atoi(l.c_str());
    if (pid > 0) ::kill(pid, SIGKILL);
  }
}

// Serialises subnet choice and bridge creation between concurrent test processes.
class SetupLock {
 public:
  SetupLock() : fd_(open("/tmp/shoal-netns.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~SetupLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_;
};

char runLetter() {
  static int made = 0;  // NetnsNetworks made by this process, so each gets its own names
  return static_cast<char>('a' + made++ % 26);
}

}  // namespace

std::optional<std::string> NetnsNetwork::unsupportedReason() {
  if (geteuid() != 0) return "network namespace tests need root (ip netns, nftables)";
  return std::nullopt;
}

void NetnsNetwork::removeLeftovers() {
  for (auto& l : lines(run({IP, "netns", "list"}).out)) {
    auto name = l.substr(0, l.find(' '));
    int owner = ownerOf(name);
    if (owner < 0 || processAlive(owner)) continue;
    killProcessesIn(name);
    run({IP, "netns", "del", name});
  }
  for (auto& l : lines(run({IP, "-o", "link", "show"}).out)) {
    // "7: shnt123av1@if2: <...>"
    auto colon = l.find(": ");
    if (colon == std::string::npos) continue;
    auto name = l.substr(colon + 2);
    name = name.substr(0, name.find_first_of("@:"));
    int owner = ownerOf(name);
    if (owner >= 0 && !processAlive(owner)) run({IP, "link", "del", name});
  }
}

NetnsNetwork::NetnsNetwork(size_t hosts)
    : hosts_(hosts), prefix_(PREFIX + std::to_string(getpid()) + runLetter()), bridge_(prefix_ + "br") {
  if (hosts == 0 || hosts > 99) throw std::invalid_argument("NetnsNetwork: 1..99 hosts");
  try {
    SetupLock lock;
    removeLeftovers();
    std::set<int> used;
    for (auto& l : lines(run({IP, "-4", "-o", "addr", "show"}).out)) {
      auto at = l.find("inet 10.77.");
      if (at != std::string::npos) used.insert(std::atoi(l.c_str() + at + 11));
    }
    for (int n = 0; n < 255 && subnet_ < 0; ++n)
      if (!used.count(n)) subnet_ = n;
    if (subnet_ < 0) throw std::runtime_error("netns set-up: no free 10.77.N.0/24 subnet");
    bridgeAddress_ = "10.77." + std::to_string(subnet_) + ".1";
    must({IP, "link", "add", bridge_, "type", "bridge"});
    must({IP, "addr", "add", bridgeAddress_ + "/24", "dev", bridge_});
    must({IP, "link", "set", bridge_, "up"});
  } catch (...) {
    teardown();
    throw;
  }
  std::string rules = "/tmp/" + prefix_ + ".nft";
  {
    std::ofstream f(rules);
    f << "table inet shoalcut {\n"
         "  set peers { type ipv4_addr; }\n"
         "  chain in { type filter hook input priority 0; ip saddr @peers drop; }\n"
         "  chain out { type filter hook output priority 0; ip daddr @peers drop; }\n"
         "}\n";
  }
  try {
    for (size_t i = 0; i < hosts; ++i) {
      auto ns = prefix_ + "m" + std::to_string(i);
      auto veth = prefix_ + "v" + std::to_string(i);
      must({IP, "netns", "add", ns});
      namespaces_.push_back(ns);
      must({IP, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns});
      must({IP, "link", "set", veth, "master", bridge_, "up"});
      must({IP, "-n", ns, "addr", "add", hostAddress(i) + "/24", "dev", "eth0"});
      must({IP, "-n", ns, "link", "set", "eth0", "up"});
      must({IP, "-n", ns, "link", "set", "lo", "up"});
      must({IP, "netns", "exec", ns, NFT, "-f", rules});
    }
  } catch (...) {
    std::remove(rules.c_str());
    teardown();
    throw;
  }
  std::remove(rules.c_str());
}

NetnsNetwork::~NetnsNetwork() {
  teardown();
}

void NetnsNetwork::teardown() {
  for (auto& ns : namespaces_) {
    killProcessesIn(ns);
    run({IP, "netns", "del", ns});
  }
  for (size_t i = 0; i < namespaces_.size(); ++i) run({IP, "link", "del", prefix_ + "v" + std::to_string(i)});
  namespaces_.clear();
  run({IP, "link", "del", bridge_});
}

std::string NetnsNetwork::hostAddress(size_t host) const {
  return "10.77." + std::to_string(subnet_) + "." + std::to_string(11 + host);
}

void NetnsNetwork::blockPeer(size_t host, size_t peer) {
  if (!blocked_.insert({host, peer}).second) return;
  must({IP, "netns", "exec", namespaceOf(host), NFT, "add", "element", "inet", "shoalcut", "peers", "{",
        hostAddress(peer), "}"});
}

void NetnsNetwork::cut(const std::vector<size_t>& sideA, const std::vector<size_t>& sideB) {
  for (auto a : sideA) {
    for (auto b : sideB) {
      blockPeer(a, b);
      blockPeer(b, a);
    }
  }
}

void NetnsNetwork::heal() {
  std::set<size_t> hosts;
  for (auto& [host, _] : blocked_) hosts.insert(host);
  for (auto host : hosts)
    must({IP, "netns", "exec", namespaceOf(host), NFT, "flush", "set", "inet", "shoalcut", "peers"});
  blocked_.clear();
}

}  // namespace shoal::test

// A private network for partition tests: one Linux network namespace per member, each with a
// veth pair onto a bridge in the root namespace and one 10.77.N.x address, so the test process
// (root namespace, 10.77.N.1) reaches every member while nftables rules inside the namespaces cut
// and heal the links between members. Needs root. Names carry the test process's pid (`st<pid>…`),
// so parallel test processes never collide, and a new network first removes what a dead process
// with that prefix left behind (a test killed before its destructors ran).
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace shoal::test {

class NetnsNetwork {
 public:
  // Why this machine cannot run namespace tests (not root), else nullopt.
  static std::optional<std::string> unsupportedReason();

  // Creates the bridge and `hosts` namespaces (host i has address hostAddress(i)); throws with the
  // failing command's output if any step fails (what was made is removed again).
  explicit NetnsNetwork(size_t hosts);
  ~NetnsNetwork();
  NetnsNetwork(const NetnsNetwork&) = delete;
  NetnsNetwork& operator=(const NetnsNetwork&) = delete;

  size_t size() const { return hosts_; }
  const std::string& namespaceOf(size_t host) const { return namespaces_.at(host); }
  std::string hostAddress(size_t host) const;  // "10.77.N.(11 + host)"
  const std::string& bridgeAddress() const { return bridgeAddress_; }

  // Drops every packet between each host of `sideA` and each host of `sideB` (both directions);
  // traffic with the root namespace (the test's clients) keeps flowing.
  void cut(const std::vector<size_t>& sideA, const std::vector<size_t>& sideB);
  // Removes every cut.
  void heal();

  // Removes namespaces, links and processes left by test processes that are no longer running.
  static void removeLeftovers();

 private:
  void blockPeer(size_t host, size_t peer);
  void teardown();

  size_t hosts_;
  std::string prefix_;  // "st<pid><letter>"
  std::string bridge_;
  int subnet_ = -1;  // N of 10.77.N.0/24
  std::string bridgeAddress_;
  std::vector<std::string> namespaces_;
  std::set<std::pair<size_t, size_t>> blocked_;  // (host, peer) pairs with a drop rule
};

}  // namespace shoal::test

// Connections from this member to other members, one per address, made on first use and again
// after a failure. Callers get Member / Peer capabilities at once (calls queue until connected);
// when a call fails with a broken connection the caller drops the link and the next use
// reconnects. Shard thread only.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <map>
#include <string>

#include "shoal/proto/shoal.capnp.h"

namespace shoal::node::cluster {

class PeerLinks {
 public:
  PeerLinks(kj::Network& network, capnp::ReaderOptions readerOptions);
  ~PeerLinks();

  wire::Member::Client member(const std::string& address);
  wire::Peer::Client peer(const std::string& address);
  // Forgets the connection to `address` (after a failed call); the next use reconnects.
  void drop(const std::string& address);
  void dropAll();

 private:
  struct Link;
  Link& linkTo(const std::string& address);

  kj::Network& network_;
  capnp::ReaderOptions readerOptions_;
  std::map<std::string, kj::Own<Link>> links_;
  class TaskErrors;
  kj::Own<TaskErrors> taskErrors_;
  kj::Own<kj::TaskSet> retired_;  // dropped links die on a later turn, never inside their own callbacks
};

}  // namespace shoal::node::cluster

// Member-to-member connections; see peer_links.h.
#include "peer_links.h"

#include "../member_log.h"

namespace shoal::node::cluster {

struct PeerLinks::Link {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  kj::Maybe<wire::Member::Client> member;
  kj::Maybe<wire::Peer::Client> peer;
  kj::Promise<void> connecting = nullptr;
};

class PeerLinks::TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&&) override {}
};

PeerLinks::PeerLinks(kj::Network& network, capnp::ReaderOptions readerOptions)
    : network_(network),
      readerOptions_(readerOptions),
      taskErrors_(kj::heap<TaskErrors>()),
      retired_(kj::heap<kj::TaskSet>(*taskErrors_)) {}

PeerLinks::~PeerLinks() = default;

PeerLinks::Link& PeerLinks::linkTo(const std::string& address) {
  auto it = links_.find(address);
  if (it != links_.end()) return *it->second;
  auto link = kj::heap<Link>();
  auto* raw = link.get();
  auto options = readerOptions_;
  auto bootstrap = network_.parseAddress(address)
                       .then([](kj::Own<kj::NetworkAddress> a) { return a->connect().attach(kj::mv(a)); })
                       .then([raw, options](kj::Own<kj::AsyncIoStream> stream) -> capnp::Capability::Client {
                         raw->stream = kj::mv(stream);
                         raw->network = kj::heap<capnp::TwoPartyVatNetwork>(
                             *raw->stream, capnp::rpc::twoparty::Side::CLIENT, options);
                         raw->rpc = kj::heap<capnp::RpcSystem<capnp::rpc::twoparty::VatId>>(
                             capnp::makeRpcClient(*raw->network));
                         capnp::word scratch[4];
                         memset(scratch, 0, sizeof scratch);
                         capnp::MallocMessageBuilder message(scratch);
                         auto vat = message.getRoot<capnp::rpc::twoparty::VatId>();
                         vat.setSide(capnp::rpc::twoparty::Side::SERVER);
                         return raw->rpc->bootstrap(vat);
                       })
                       .fork();
  wire::Member::Client member = capnp::Capability::Client(bootstrap.addBranch()).castAs<wire::Member>();
  link->peer = member.peerRequest().send().getPeer();
  link->member = kj::mv(member);
  link->connecting = bootstrap.addBranch().ignoreResult().catch_([address](kj::Exception&& e) {
    memberLog().debug("cannot connect to member {}: {}", address, e.getDescription().cStr());
  });
  return *links_.emplace(address, kj::mv(link)).first->second;
}

wire::Member::Client PeerLinks::member(const std::string& address) {
  KJ_IF_MAYBE (m, linkTo(address).member) return *m;
  KJ_UNREACHABLE;
}

wire::Peer::Client PeerLinks::peer(const std::string& address) {
  KJ_IF_MAYBE (p, linkTo(address).peer) return *p;
  KJ_UNREACHABLE;
}

void PeerLinks::drop(const std::string& address) {
  auto it = links_.find(address);
  if (it == links_.end()) return;
  retired_->add(kj::evalLater([link = kj::mv(it->second)]() {}));
  links_.erase(it);
}

void PeerLinks::dropAll() {
  while (!links_.empty()) drop(links_.begin()->first);
}

}  // namespace shoal::node::cluster

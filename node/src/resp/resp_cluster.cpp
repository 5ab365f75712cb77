// RESP gateway and cluster; see resp_cluster.h.
#include "resp_cluster.h"

#include <cctype>

namespace shoal::node::resp {

ClusterGateway::ClusterGateway(cluster::Cluster& cluster, MapService& maps, std::string mapName,
                               const Clock& clock, std::string address)
    : cluster_(cluster),
      maps_(maps),
      commands_(maps, std::move(mapName), clock, stats_, std::move(address)) {}

size_t ClusterGateway::memberCount() const {
  return cluster_.membership().view().members.size();
}

bool ClusterGateway::owns(partition::PartitionId p) const {
  return cluster_.membership().isPrimary(p);
}

std::optional<std::string> ClusterGateway::ownerAddress(partition::PartitionId p) const {
  auto& membership = cluster_.membership();
  auto* address = membership.addressOf(membership.view().table.primaryOf(p));
  if (!address) return std::nullopt;
  return *address;
}

std::vector<std::string> ClusterGateway::otherMemberAddresses() const {
  std::vector<std::string> out;
  auto& membership = cluster_.membership();
  for (auto& m : membership.view().members) {
    if (m.id != membership.selfId()) out.push_back(m.address);
  }
  return out;
}

std::optional<std::string> ClusterGateway::writesRefused() const {
  return cluster_.membership().writesRefused();
}

kj::Promise<std::string> ClusterGateway::forward(const std::string& address,
                                                 const std::vector<std::string>& args, bool localOnly,
                                                 int protocol) {
  auto request = cluster_.links().peer(address).respRequest();
  auto out = request.initArgs(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    out.set(i, kj::arrayPtr(reinterpret_cast<const kj::byte*>(args[i].data()), args[i].size()));
  }
  request.setLocalOnly(localOnly);
  request.setProtocol(static_cast<uint8_t>(protocol));
  auto timeout = 2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS;
  return cluster_.timer()
      .timeoutAfter(timeout, request.send())
      .then(
          [](capnp::Response<wire::Peer::RespResults>&& response) {
            auto r = response.getReply();
            return std::string(reinterpret_cast<const char*>(r.begin()), r.size());
          },
          [this, address](kj::Exception&& e) -> std::string {
            cluster_.links().drop(address);
            return "-TRYAGAIN member " + address + " did not answer; retry\r\n";
          });
}

kj::Promise<std::string> ClusterGateway::run(std::vector<std::string> args, int protocol) {
  if (args.empty()) return std::string("-ERR empty command\r\n");
  std::vector<std::string_view> views(args.begin(), args.end());
  std::string name(args[0]);
  for (auto& ch : name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  std::string reply;
  session_.protocol = protocol;
  ReplyWriter writer(&reply, protocol);
  auto route = routeCommand(name, views, maps_.partitioner(), *this, true);
  if (route.kind != Route::Kind::HERE) {
    writer.error(route.kind == Route::Kind::REFUSE ? route.error : "TRYAGAIN the partition moved; retry");
    return reply;
  }
  commands_.execute(views, session_, writer);
  if (!maps_.hasPendingChanges()) return reply;
  return maps_.commit().then(
      [reply]() { return reply; },
      [](kj::Exception&& e) {
        std::string text = e.getDescription().cStr();
        auto at = text.find("shoal:");
        return "-ERR not stored: " + (at == std::string::npos ? text : text.substr(at)) + "\r\n";
      });
}

}  // namespace shoal::node::resp

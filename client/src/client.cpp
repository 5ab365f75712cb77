// shoal::Client: connection set-up and the member-level calls (ping, maps, cluster).
#include "shoal/client/client.h"

#include "transport.h"

namespace shoal {
namespace {

MemberInfo memberOf(wire::MemberInfo::Reader m) {
  return MemberInfo{m.getName(),
                    m.getAddress(),
                    m.getState(),
                    m.getVersion(),
                    m.getUptimeMs(),
                    m.getPartitionsOwned(),
                    m.getPartitionsBackedUp(),
                    m.getId(),
                    m.getZone(),
                    m.getOpsForwarded()};
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

void ClientOptions::validate() const {
  auto require = [](bool ok, const std::string& field, const std::string& what) {
    if (!ok) throw Error(ErrorCode::INVALID_ARGUMENT, "invalid client option " + field + ": " + what);
  };
  require(!servers.empty(), "servers", "give at least one HOST:PORT");
  for (auto& s : servers) {
    require(s.rfind(':') != std::string::npos && s.rfind(':') + 1 < s.size(), "servers",
            "'" + s + "' is not HOST:PORT");
  }
  require(requestTimeout.count() > 0, "requestTimeout", "must be > 0");
  require(connectTimeout.count() > 0, "connectTimeout", "must be > 0");
  require(maxBatchOps >= 1, "maxBatchOps", "must be >= 1");
  require(maxBatchBytes >= 1024, "maxBatchBytes", "must be >= 1024");
  require(maxCallsInFlight >= 1, "maxCallsInFlight", "must be >= 1");
  require(backoffInitial.count() >= 1 && backoffMax >= backoffInitial, "backoffInitial/backoffMax",
          "need 1 <= backoffInitial <= backoffMax");
  require(breakerFailureThreshold >= 1, "breakerFailureThreshold", "must be >= 1");
}

std::unique_ptr<Client> Client::connect(const ClientOptions& options) {
  auto transport = std::make_shared<client::Transport>(options);
  std::unique_ptr<Client> client(new Client(transport));
  try {
    client->transport_->call(
        [](wire::Member::Client& member) { return member.pingRequest().send().ignoreResult(); },
        options.connectTimeout);
  } catch (const Error& e) {
    throw Error(ErrorCode::UNAVAILABLE,
                "no member reachable at " + joined(options.servers) + ": " + e.what());
  }
  // With the table known before the first operation, keyed operations go straight to their
  // primaries from the start.
  client->transport_->learnTable(options.connectTimeout);
  return client;
}

Client::~Client() {
  close();
}

void Client::close() {
  transport_->close();
}

RawMap Client::rawMap(std::string_view name) {
  if (name.empty()) throw Error(ErrorCode::INVALID_ARGUMENT, "map name is empty");
  return RawMap(transport_, std::string(name));
}

MemberInfo Client::ping() {
  MemberInfo info;
  transport_->call(
      [&info](wire::Member::Client& member) {
        return member.pingRequest().send().then(
            [&info](capnp::Response<wire::Member::PingResults>&& r) { info = memberOf(r.getMember()); });
      },
      transport_->options().requestTimeout);
  return info;
}

std::vector<MapInfo> Client::maps() {
  std::vector<MapInfo> out;
  transport_->call(
      [&out](wire::Member::Client& member) {
        return member.listMapsRequest().send().then(
            [&out](capnp::Response<wire::Member::ListMapsResults>&& r) {
              out.clear();
              for (auto m : r.getMaps()) out.push_back(MapInfo{m.getName(), m.getEntries(), m.getBytes()});
            });
      },
      transport_->options().requestTimeout);
  return out;
}

ClusterInfo Client::cluster() {
  ClusterInfo out;
  transport_->call(
      [&out](wire::Member::Client& member) {
        return member.clusterRequest().send().then([&out](capnp::Response<wire::Member::ClusterResults>&& r) {
          out.members.clear();
          for (auto m : r.getMembers()) out.members.push_back(memberOf(m));
          out.partitionCount = r.getPartitionCount();
          out.tableEpoch = r.getTableEpoch();
          out.partitions.clear();
          for (auto p : r.getPartitions()) {
            PartitionInfo info;
            for (auto id : p.getReplicas()) info.replicas.push_back(id);
            for (auto id : p.getFilling()) info.filling.push_back(id);
            out.partitions.push_back(std::move(info));
          }
          out.migrating = r.getMigrating();
        });
      },
      transport_->options().requestTimeout);
  return out;
}

}  // namespace shoal

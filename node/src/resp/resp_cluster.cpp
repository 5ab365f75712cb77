// RESP gateway and cluster; see resp_cluster.h.
#include "resp_cluster.h"

#include <kj/vector.h>

#include <cctype>
#include <memory>

#include "../member_log.h"

namespace shoal::node::resp {

ClusterGateway::ClusterGateway(cluster::Cluster& cluster, MapService& maps, std::string mapName,
                               const Clock& clock, std::string address)
    : cluster_(cluster),
      maps_(maps),
      commands_(maps, std::move(mapName), clock, stats_, std::move(address)),
      tasks_(*this) {}

ClusterGateway::~ClusterGateway() noexcept = default;

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

kj::Promise<std::string> ClusterGateway::forward(const std::string& address, std::vector<std::string> args,
                                                 bool localOnly, int protocol) {
  auto paf = kj::newPromiseAndFulfiller<std::string>();
  queued_[address].push_back(
      Queued{cluster::RespCall{std::move(args), localOnly, protocol}, kj::mv(paf.fulfiller)});
  if (!flushScheduled_) {
    // After the rest of this turn: the commands every client sends meanwhile go in the same call.
    flushScheduled_ = true;
    tasks_.add(kj::evalLater([this]() { flush(); }));
  }
  return kj::mv(paf.promise);
}

void ClusterGateway::flush() {
  flushScheduled_ = false;
  auto queued = std::move(queued_);
  queued_.clear();
  // A call stays well under the receiver's message limit; one command larger than that goes alone.
  const size_t budget = cluster_.options().limits.maxMessageBytes / 4;
  for (auto& [address, commands] : queued) {
    std::vector<Queued> batch;
    size_t bytes = 0;
    for (auto& q : commands) {
      size_t size = 64;
      for (auto& a : q.call.args) size += a.size() + 16;
      if (!batch.empty() && bytes + size > budget) {
        send(address, std::move(batch));
        batch.clear();
        bytes = 0;
      }
      bytes += size;
      batch.push_back(std::move(q));
    }
    if (!batch.empty()) send(address, std::move(batch));
  }
}

void ClusterGateway::send(const std::string& address, std::vector<Queued> batch) {
  auto request = cluster_.links().peer(address).respRequest();
  auto commands = request.initCommands(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& args = batch[i].call.args;
    auto out = commands[i].initArgs(args.size());
    for (size_t j = 0; j < args.size(); ++j) {
      out.set(j, kj::arrayPtr(reinterpret_cast<const kj::byte*>(args[j].data()), args[j].size()));
    }
    commands[i].setLocalOnly(batch[i].call.localOnly);
    commands[i].setProtocol(static_cast<uint8_t>(batch[i].call.protocol));
  }
  auto timeout = 2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS;
  auto waiting = std::make_shared<std::vector<Queued>>(std::move(batch));
  tasks_.add(cluster_.timer()
                 .timeoutAfter(timeout, request.send())
                 .then(
                     [waiting](capnp::Response<wire::Peer::RespResults>&& response) {
                       auto replies = response.getReplies();
                       for (size_t i = 0; i < waiting->size(); ++i) {
                         auto& q = (*waiting)[i];
                         if (i < replies.size()) {
                           auto r = replies[i];
                           q.reply->fulfill(std::string(reinterpret_cast<const char*>(r.begin()), r.size()));
                         } else {
                           q.reply->fulfill("-ERR the owning member sent no reply for this command\r\n");
                         }
                       }
                     },
                     [this, address, waiting](kj::Exception&& e) {
                       cluster_.links().drop(address);
                       for (auto& q : *waiting)
                         q.reply->fulfill("-TRYAGAIN member " + address + " did not answer; retry\r\n");
                     }));
}

void ClusterGateway::taskFailed(kj::Exception&& exception) {
  memberLog().debug("RESP forward failed: {}", exception.getDescription().cStr());
}

struct ClusterGateway::Run {
  std::vector<cluster::RespCall> calls;
  std::vector<std::string> replies;
  bool executed = false;     // some command ran here (its writes must be stored before any reply)
  size_t loaded = SIZE_MAX;  // the command whose keys were just loaded (absent ones stay absent)
};

kj::Promise<std::vector<std::string>> ClusterGateway::run(std::vector<cluster::RespCall> calls) {
  auto run = std::make_shared<Run>();
  run->replies.resize(calls.size());
  run->calls = std::move(calls);
  return runFrom(run, 0);
}

kj::Promise<std::vector<std::string>> ClusterGateway::runFrom(std::shared_ptr<Run> run, size_t first) {
  for (size_t i = first; i < run->calls.size(); ++i) {
    auto& call = run->calls[i];
    auto& reply = run->replies[i];
    auto& args = call.args;
    if (args.empty()) {
      reply = "-ERR empty command\r\n";
      continue;
    }
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string name(args[0]);
    for (auto& ch : name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    session_.protocol = call.protocol;
    ReplyWriter writer(&reply, call.protocol);
    auto route = routeCommand(name, views, maps_.partitioner(), *this, true);
    if (route.kind != Route::Kind::HERE) {
      writer.error(route.kind == Route::Kind::REFUSE ? route.error : "TRYAGAIN the partition moved; retry");
      continue;
    }
    // Read-through: keys evicted from memory come back from the store right before the command
    // runs (loading the whole batch first could evict some of them again), in order.
    if (run->loaded != i) {
      KJ_IF_MAYBE (loading, commands_.loadEvicted(views)) {
        return loading->then([this, run, i]() {
          run->loaded = i;
          return runFrom(run, i);
        });
      }
    }
    commands_.execute(views, session_, writer);
    run->executed = true;
  }
  if (!run->executed || !maps_.hasPendingChanges()) return std::move(run->replies);
  return maps_.commit().then(
      [run]() mutable { return std::move(run->replies); },
      [count = run->calls.size()](kj::Exception&& e) {
        std::string text = e.getDescription().cStr();
        auto at = text.find("shoal:");
        auto error = "-ERR not stored: " + (at == std::string::npos ? text : text.substr(at)) + "\r\n";
        return std::vector<std::string>(count, error);
      });
}

}  // namespace shoal::node::resp

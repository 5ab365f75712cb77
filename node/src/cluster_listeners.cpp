// Cluster-wide entry listeners; see cluster_listeners.h.
#include "cluster_listeners.h"

#include <kj/vector.h>

#include <algorithm>

#include "cluster/cluster.h"
#include "member_log.h"

namespace shoal::node {
namespace {
constexpr uint32_t RETRY_DELAY_MS = 1000;  // a member that refused or missed a registration: again
}

ClusterListeners::ClusterListeners(cluster::Cluster& cluster) : cluster_(cluster), tasks_(*this) {}

ClusterListeners::~ClusterListeners() = default;

void ClusterListeners::taskFailed(kj::Exception&& e) {
  memberLog().debug("listener registration task failed: {}", e.getDescription().cStr());
}

ClusterListeners::Added ClusterListeners::add(std::string map, wire::EntryListener::Client listener,
                                              bool includeValues) {
  auto f = std::make_shared<Fanout>(std::move(map), kj::mv(listener), includeValues);
  fanouts_.erase(std::remove_if(fanouts_.begin(), fanouts_.end(), [](auto& w) { return w.expired(); }),
                 fanouts_.end());
  fanouts_.push_back(f);
  auto& membership = cluster_.membership();
  kj::Vector<kj::Promise<void>> attempts;
  for (auto& m : membership.view().members) {
    if (m.id != membership.selfId()) attempts.add(registerAt(f, m.id, m.address));
  }
  // The attempts go on whether or not the caller waits for them.
  auto all = kj::joinPromises(attempts.releaseAsArray()).fork();
  tasks_.add(all.addBranch());
  return Added{f, all.addBranch()};
}

void ClusterListeners::onView(const cluster::View& current) {
  auto self = cluster_.membership().selfId();
  bool member = current.find(self) != nullptr;
  for (auto& weak : fanouts_) {
    auto f = weak.lock();
    if (!f) continue;
    for (auto it = f->at_.begin(); it != f->at_.end();) {
      auto* m = current.find(it->first);
      if (!member || m == nullptr || m->address != it->second.address) {
        it = f->at_.erase(it);  // dropping the registration ends it there (if it is still reachable)
      } else {
        ++it;
      }
    }
    if (!member) continue;
    for (auto& m : current.members) {
      if (m.id != self && !f->at_.count(m.id)) tasks_.add(registerAt(f, m.id, m.address));
    }
  }
}

kj::Promise<void> ClusterListeners::registerAt(const std::shared_ptr<Fanout>& f, cluster::MemberId member,
                                               const std::string& address) {
  f->at_[member] = Fanout::At{address, nullptr};
  auto request = cluster_.links().member(address).addListenerRequest();
  request.setMap(f->map_);
  request.setListener(f->listener_);
  request.setIncludeValues(f->includeValues_);
  request.setLocalOnly(true);
  std::weak_ptr<Fanout> weak = f;
  auto timeout = 2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS;
  auto attempt =
      cluster_.timer()
          .timeoutAfter(timeout, request.send())
          .then(
              [weak, member,
               address](capnp::Response<wire::Member::AddListenerResults>&& response) -> kj::Promise<void> {
                auto f = weak.lock();
                if (!f) return kj::READY_NOW;  // removed meanwhile: the registration is dropped here
                auto it = f->at_.find(member);
                if (it != f->at_.end() && it->second.address == address) {
                  it->second.registration = response.getRegistration();
                }
                return kj::READY_NOW;
              },
              [this, weak, member, address](kj::Exception&& e) -> kj::Promise<void> {
                memberLog().debug("listener registration at {} failed: {}", address,
                                  e.getDescription().cStr());
                cluster_.links().drop(address);
                tasks_.add(cluster_.timer()
                               .afterDelay(RETRY_DELAY_MS * kj::MILLISECONDS)
                               .then([this, weak, member, address]() -> kj::Promise<void> {
                                 auto f = weak.lock();
                                 if (!f) return kj::READY_NOW;
                                 auto it = f->at_.find(member);
                                 auto* m = cluster_.membership().view().find(member);
                                 if (it == f->at_.end() || it->second.address != address || m == nullptr)
                                   return kj::READY_NOW;
                                 return registerAt(f, member, address);
                               }));
                return kj::READY_NOW;
              });
  return attempt;
}

}  // namespace shoal::node

// wire::Member's topic calls (subscribe, listTopics); publishing is an execute op (MapOp.publish).
#include <algorithm>

#include "member_log.h"
#include "member_service.h"
#include "topic/topic_hub.h"
#include "topic/topic_log.h"

namespace shoal::node {
namespace {

kj::Exception callFailure(const char* code, const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                       kj::str("shoal:", code, ": ", message.c_str()));
}

struct TopicRow {
  std::string name;
  uint64_t first = 0, last = 0, retained = 0, bytes = 0;
  uint32_t subscribers = 0, capacity = 0;
  int64_t retentionMs = 0;
  bool durable = false;
};

void writeRows(std::vector<TopicRow>& rows, capnp::List<wire::TopicInfo>::Builder out) {
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    out[i].setName(r.name);
    out[i].setFirstSeq(r.first);
    out[i].setLastSeq(r.last);
    out[i].setRetained(r.retained);
    out[i].setBytes(r.bytes);
    out[i].setSubscribers(r.subscribers);
    out[i].setCapacity(r.capacity);
    out[i].setRetentionMs(r.retentionMs);
    out[i].setDurable(r.durable);
  }
}

}  // namespace

kj::Promise<void> MemberService::subscribe(SubscribeContext context) {
  auto params = context.getParams();
  std::string topicName = params.getTopic();
  if (auto invalid = topic::invalidName(topicName)) return callFailure("invalid-argument", *invalid);
  if (!params.hasSubscriber()) return callFailure("invalid-argument", "subscribe needs a subscriber");
  if (!cluster_.ready()) return callFailure("unavailable", cluster_.notReadyReason());
  auto p = maps_.partitioner().partitionOf(topicName);
  auto& membership = cluster_.membership();
  if (membership.isPrimary(p)) {
    auto started = topics_.subscribe(topicName, p, params.getFrom(), params.getSubscriber());
    context.getResults().setSubscription(kj::mv(started.subscription));
    context.getResults().setNext(started.next);
    return kj::READY_NOW;
  }
  auto& view = membership.view();
  if (params.getForwarded()) {
    return callFailure("wrong-owner", "topic '" + topicName + "' (partition " + std::to_string(p) +
                                          ") is not owned by member '" + identity_.name + "' (table epoch " +
                                          std::to_string(view.version) + "); retry");
  }
  auto* address = membership.addressOf(view.table.primaryOf(p));
  if (address == nullptr)
    return callFailure("unavailable", "topic '" + topicName + "' has no owner right now; retry");
  // The owner serves it; the subscriber's capability goes along, so its messages flow through
  // this member's connection to the owner.
  auto request = cluster_.links().member(*address).subscribeRequest();
  request.setTopic(topicName);
  request.setFrom(params.getFrom());
  request.setSubscriber(params.getSubscriber());
  request.setForwarded(true);
  auto owner = *address;
  return cluster_.timer()
      .timeoutAfter(2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS, request.send())
      .then(
          [context](capnp::Response<wire::Member::SubscribeResults>&& response) mutable -> kj::Promise<void> {
            context.getResults().setSubscription(response.getSubscription());
            context.getResults().setNext(response.getNext());
            return kj::READY_NOW;
          },
          [this, owner](kj::Exception&& e) -> kj::Promise<void> {
            std::string text = e.getDescription().cStr();
            if (text.find("shoal:") != std::string::npos) return kj::mv(e);
            cluster_.links().drop(owner);
            return callFailure("unavailable", "the member at " + owner +
                                                  " owning this topic did not answer (" + text + "); retry");
          });
}

kj::Promise<void> MemberService::listTopics(ListTopicsContext context) {
  if (!cluster_.ready()) return callFailure("unavailable", cluster_.notReadyReason());
  auto rows = std::make_shared<std::vector<TopicRow>>();
  for (auto* map : maps_.allMaps()) {
    if (!topic::isTopicMap(map->name())) continue;
    std::string name(topic::topicOfMap(map->name()));
    auto p = maps_.partitioner().partitionOf(name);
    if (!maps_.owns(p)) continue;
    auto* ring = maps_.findRecords(map->name());
    topic::TopicLog log(*ring, p, name);
    TopicRow row;
    row.name = name;
    row.last = topics_.lastCommitted(name, p);
    uint64_t held = log.firstHeldFrom(log.state().first, row.last);
    row.first = held <= row.last ? held : 0;
    row.retained = log.retained();
    row.bytes = ring->bytes();
    row.subscribers = topics_.subscribers(name);
    auto& o = maps_.topicOptions(name);
    row.capacity = o.capacity;
    row.retentionMs = o.retentionMs;
    row.durable = o.durable && maps_.modeOf(map->name()) != MapPersistenceMode::NONE;
    rows->push_back(std::move(row));
  }
  kj::Vector<kj::Promise<void>> calls;
  if (!context.getParams().getForwarded()) {
    for (auto& member : cluster_.membership().view().members) {
      if (member.id == cluster_.membership().selfId()) continue;
      auto request = cluster_.links().member(member.address).listTopicsRequest();
      request.setForwarded(true);
      auto address = member.address;
      calls.add(
          cluster_.timer()
              .timeoutAfter(2 * cluster_.options().cluster.failureTimeoutMs * kj::MILLISECONDS,
                            request.send())
              .then(
                  [rows](capnp::Response<wire::Member::ListTopicsResults>&& response) -> kj::Promise<void> {
                    for (auto t : response.getTopics()) {
                      rows->push_back(TopicRow{t.getName(), t.getFirstSeq(), t.getLastSeq(), t.getRetained(),
                                               t.getBytes(), t.getSubscribers(), t.getCapacity(),
                                               t.getRetentionMs(), t.getDurable()});
                    }
                    return kj::READY_NOW;
                  },
                  [this, address](kj::Exception&& e) -> kj::Promise<void> {
                    cluster_.links().drop(address);
                    return callFailure("unavailable", "member at " + address + " did not answer (" +
                                                          e.getDescription().cStr() +
                                                          "); the topic list is incomplete, retry");
                  }));
    }
  }
  return kj::joinPromises(calls.releaseAsArray()).then([context, rows]() mutable {
    std::sort(rows->begin(), rows->end(),
              [](const TopicRow& a, const TopicRow& b) { return a.name < b.name; });
    writeRows(*rows, context.getResults().initTopics(rows->size()));
  });
}

void MemberService::notifyPublished(ExecuteContext context, const Routing& routing) {
  auto ops = context.getParams().getBatch().getOps();
  auto results = context.getResults().getResults();
  // Once per topic with its newest sequence number: a call per message would push the batch's
  // first message alone (the subscriber's one call in flight) and the rest after it returned.
  std::vector<std::pair<std::string, uint64_t>> newest;
  for (uint32_t i = 0; i < ops.size(); ++i) {
    if (ops[i].which() != wire::MapOp::PUBLISH || !isLocal(routing, i) || !results[i].isCount()) continue;
    auto map = ops[i].getMap();
    std::string_view name(map.cStr(), map.size());
    auto seq = results[i].getCount();
    auto it = std::find_if(newest.begin(), newest.end(), [name](auto& t) { return t.first == name; });
    if (it == newest.end()) {
      newest.emplace_back(std::string(name), seq);
    } else {
      it->second = std::max(it->second, seq);
    }
  }
  for (auto& [topic, seq] : newest) topics_.committed(topic, seq);
}

}  // namespace shoal::node

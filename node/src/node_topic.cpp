// The embedding API's topics (shoal::TopicHandle): publishes go through the member's own RPC face
// as execute batches (so they reach the topic's owner and return once replicated); subscriptions
// live in topic::LocalSubscriptions on the shard thread. Also Node::subscribePattern /
// unsubscribe (topic::LocalPatternSubscriptions).
#include <capnp/message.h>

#include "runtime.h"
#include "shoal/node/node.h"
#include "shoal/wire_error_code.h"
#include "topic/local_pattern_subscriptions.h"
#include "topic/local_subscriptions.h"

namespace shoal {
namespace {

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

}  // namespace

uint64_t TopicHandle::publish(std::string_view value) const {
  return publishAll({OutgoingMessage{std::string(value), {}, {}}}).front();
}

uint64_t TopicHandle::publish(const OutgoingMessage& message) const {
  return publishAll({message}).front();
}

std::vector<uint64_t> TopicHandle::publishAll(const std::vector<OutgoingMessage>& messages) const {
  std::vector<uint64_t> seqs;
  if (messages.empty()) return seqs;
  capnp::MallocMessageBuilder results;
  runtime_->callOnShard([&](wire::Member::Client& member) {
    auto request = member.executeRequest();
    auto batch = request.initBatch();
    batch.setTraceId("embedded");
    auto ops = batch.initOps(messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
      auto op = ops[i];
      op.setMap(name_);
      op.setKey(bytesOf(name_));
      auto m = op.initPublish();
      m.setValue(bytesOf(messages[i].value));
      m.setKey(bytesOf(messages[i].key));
      auto headers = m.initHeaders(messages[i].headers.size());
      for (size_t h = 0; h < messages[i].headers.size(); ++h) {
        headers[h].setName(messages[i].headers[h].first);
        headers[h].setValue(bytesOf(messages[i].headers[h].second));
      }
    }
    return request.send().then(
        [&results](capnp::Response<wire::Member::ExecuteResults>&& response) { results.setRoot(response); });
  });
  auto answers = results.getRoot<wire::Member::ExecuteResults>().asReader().getResults();
  for (auto r : answers) {
    if (r.isFailure())
      throw Error(toPublicCode(r.getFailure().getCode()), r.getFailure().getMessage().cStr());
    seqs.push_back(r.getCount());
  }
  if (seqs.size() != messages.size()) throw Error(ErrorCode::INTERNAL, "the member returned too few results");
  return seqs;
}

SubscriptionId TopicHandle::subscribe(TopicHandler handler, SubscribeFrom from) const {
  SubscriptionId id = 0;
  runtime_->callOnSubscriptions([&](node::topic::LocalSubscriptions& subscriptions) {
    return subscriptions.add(name_, from, std::move(handler)).then([&id](SubscriptionId added) {
      id = added;
    });
  });
  return id;
}

void TopicHandle::unsubscribe(SubscriptionId id) const {
  runtime_->callOnSubscriptions([id](node::topic::LocalSubscriptions& subscriptions) {
    subscriptions.remove(id);
    return kj::Promise<void>(kj::READY_NOW);
  });
}

SubscriptionId Node::subscribePattern(std::string pattern, TopicHandler handler) {
  if (!handler.onMessage) {
    throw Error(ErrorCode::INVALID_ARGUMENT, "subscribePattern('" + pattern + "') needs a handler.onMessage");
  }
  if (pattern.empty()) throw Error(ErrorCode::INVALID_ARGUMENT, "subscribePattern needs a non-empty pattern");
  SubscriptionId id = 0;
  runtime_->callOnPatterns([&](node::topic::LocalPatternSubscriptions& patterns) {
    return patterns.add(std::move(pattern), std::move(handler)).then([&id](SubscriptionId added) {
      id = added;
    });
  });
  return id;
}

void Node::unsubscribe(SubscriptionId id) {
  runtime_->callOnPatterns([id](node::topic::LocalPatternSubscriptions& patterns) {
    patterns.remove(id);
    return kj::Promise<void>(kj::READY_NOW);
  });
}

}  // namespace shoal

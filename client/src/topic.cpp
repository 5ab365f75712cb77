// Topic: publishes go through the transport as PUBLISH operations (batched, retried under one
// request id like map writes); subscriptions are the transport's (subscriptions.h). Also
// Client::topic / topics / subscribePattern / unsubscribe and the topic-name rule.
#include <future>

#include "shoal/client/client.h"
#include "transport.h"

namespace shoal {
namespace {

constexpr size_t MAX_TOPIC_NAME_BYTES = 200;

std::unique_ptr<client::Operation> publishOp(const std::string& topic, OutgoingMessage m,
                                             std::chrono::milliseconds timeout) {
  auto op = std::make_unique<client::Operation>();
  op->kind = client::OpKind::PUBLISH;
  // A topic lives on the partition of its name: routed, batched and retried like a write to it.
  op->map = topic;
  op->key = topic;
  op->value = std::move(m.value);
  op->messageKey = std::move(m.key);
  op->headers = std::move(m.headers);
  op->timeout = timeout;
  return op;
}

std::future<Result<uint64_t>> submitPublish(client::Transport& transport,
                                            std::unique_ptr<client::Operation> op) {
  auto promise = std::make_shared<std::promise<Result<uint64_t>>>();
  auto future = promise->get_future();
  op->done = [promise](Result<client::Outcome> r) {
    promise->set_value(r.ok() ? Result<uint64_t>(r.value().count) : Result<uint64_t>(r.error()));
  };
  transport.submit(std::move(op));
  return future;
}

}  // namespace

std::optional<std::string> topicNameProblem(std::string_view name) {
  if (name.empty()) return "a topic name must not be empty";
  if (name.size() > MAX_TOPIC_NAME_BYTES) {
    return "topic name is " + std::to_string(name.size()) + " bytes; the limit is " +
           std::to_string(MAX_TOPIC_NAME_BYTES);
  }
  if (name.find_first_of("{}") != std::string_view::npos) {
    return "topic name '" + std::string(name) + "' contains '{' or '}', which topic names may not";
  }
  if (name.front() == '$') return "topic name '" + std::string(name) + "' starts with '$' (reserved)";
  return std::nullopt;
}

uint64_t Topic::publish(std::string_view value) const {
  return publish(OutgoingMessage{std::string(value), {}, {}});
}

uint64_t Topic::publish(const OutgoingMessage& m) const {
  transport_->requireNotIoThread("publish");
  return submitPublish(*transport_, publishOp(name_, m, timeout_)).get().value();
}

std::vector<uint64_t> Topic::publishAll(const std::vector<OutgoingMessage>& ms) const {
  transport_->requireNotIoThread("publishAll");
  // Submitted together, so they share batches (and keep their order in them).
  std::vector<std::future<Result<uint64_t>>> futures;
  futures.reserve(ms.size());
  for (auto& m : ms) futures.push_back(submitPublish(*transport_, publishOp(name_, m, timeout_)));
  std::vector<uint64_t> seqs;
  seqs.reserve(ms.size());
  std::optional<Error> firstError;
  for (auto& f : futures) {
    auto r = f.get();
    if (r.ok()) {
      seqs.push_back(r.value());
    } else if (!firstError) {
      firstError = r.error();
    }
  }
  if (firstError) throw *firstError;
  return seqs;
}

void Topic::publishAsync(OutgoingMessage m, std::function<void(Result<uint64_t>)> done) const {
  auto op = publishOp(name_, std::move(m), timeout_);
  op->done = [done = std::move(done)](Result<client::Outcome> r) {
    done(r.ok() ? Result<uint64_t>(r.value().count) : Result<uint64_t>(r.error()));
  };
  transport_->submit(std::move(op));
}

SubscriptionId Topic::subscribe(TopicHandler handler, SubscribeFrom from) const {
  if (!handler.onMessage) {
    throw Error(ErrorCode::INVALID_ARGUMENT, "subscribe to topic '" + name_ + "' needs a handler.onMessage");
  }
  return transport_->subscribe(name_, std::move(handler), from);
}

void Topic::unsubscribe(SubscriptionId id) const {
  transport_->unsubscribe(id);
}

Topic Topic::withTimeout(std::chrono::milliseconds timeout) const {
  Topic copy = *this;
  copy.timeout_ = timeout;
  return copy;
}

Topic Client::topic(std::string_view name) {
  if (auto problem = topicNameProblem(name)) throw Error(ErrorCode::INVALID_ARGUMENT, *problem);
  return Topic(transport_, std::string(name));
}

SubscriptionId Client::subscribePattern(std::string pattern, TopicHandler handler) {
  if (!handler.onMessage) {
    throw Error(ErrorCode::INVALID_ARGUMENT, "subscribePattern('" + pattern + "') needs a handler.onMessage");
  }
  if (pattern.empty()) throw Error(ErrorCode::INVALID_ARGUMENT, "subscribePattern needs a non-empty pattern");
  return transport_->subscribePattern(pattern, std::move(handler));
}

void Client::unsubscribe(SubscriptionId id) {
  transport_->unsubscribe(id);
}

std::vector<TopicInfo> Client::topics() {
  std::vector<TopicInfo> out;
  transport_->call(
      [&out](wire::Member::Client& member) {
        auto request = member.listTopicsRequest();
        request.setForwarded(false);
        return request.send().then([&out](capnp::Response<wire::Member::ListTopicsResults>&& r) {
          out.clear();
          for (auto t : r.getTopics()) {
            out.push_back(TopicInfo{t.getName(), t.getFirstSeq(), t.getLastSeq(), t.getRetained(),
                                    t.getBytes(), t.getSubscribers(), t.getCapacity(), t.getRetentionMs(),
                                    t.getDurable()});
          }
        });
      },
      transport_->options().requestTimeout);
  return out;
}

}  // namespace shoal

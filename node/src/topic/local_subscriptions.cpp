// Embedded subscriptions; see local_subscriptions.h.
#include "local_subscriptions.h"

#include <kj/debug.h>

#include <vector>

#include "member_log.h"
#include "shoal/error.h"
#include "shoal/wire_error_code.h"

namespace shoal::node::topic {
namespace {

constexpr auto CHECK_INTERVAL = 500 * kj::MILLISECONDS;  // position check of a live subscription
constexpr auto CHECK_TIMEOUT = 1500 * kj::MILLISECONDS;  // no answer: the owner is gone
constexpr auto SUBSCRIBE_TIMEOUT = 5 * kj::SECONDS;
constexpr auto RETRY_DELAY = 200 * kj::MILLISECONDS;

std::string stringOf(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

// Runs `fn` on the event thread; the promise resolves once it ran.
kj::Promise<void> onEventThread(const LocalSubscriptions::PostEvent& post, std::function<void()> fn) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>(kj::mv(paf.fulfiller));
  post([fn = std::move(fn), fulfiller]() {
    try {
      fn();
    } catch (const std::exception& e) {
      memberLog().warn("a topic subscriber's callback threw: {}", e.what());
    } catch (...) {
      memberLog().warn("a topic subscriber's callback threw");
    }
    (*fulfiller)->fulfill();
  });
  return kj::mv(paf.promise);
}

}  // namespace

struct LocalSubscriptions::Sub {
  SubscriptionId id;
  std::string topic;
  SubscribeFrom from;  // until the owner said where it starts
  std::shared_ptr<TopicHandler> handler;
  uint64_t next = 0;  // the next sequence number to hand to the host; 0: not known yet
  uint64_t generation = 1;
  kj::Maybe<wire::TopicSubscription::Client> registration;
  kj::Promise<void> watcher = kj::READY_NOW;
};

// The subscriber capability the owner calls; one per attempt (generation), so a late call of an
// abandoned attempt is ignored.
class LocalSubscriptions::Receiver final : public wire::TopicSubscriber::Server {
 public:
  Receiver(std::shared_ptr<LocalSubscriptions*> owner, SubscriptionId id, uint64_t generation)
      : owner_(std::move(owner)), id_(id), generation_(generation) {}

  kj::Promise<void> onMessages(OnMessagesContext context) override {
    auto* sub = current();
    if (sub == nullptr) return kj::READY_NOW;
    auto params = context.getParams();
    auto messages = std::make_shared<std::vector<TopicMessage>>();
    for (auto m : params.getMessages()) {
      if (sub->next != 0 && m.getSeq() < sub->next) continue;  // seen before a resume: no duplicates
      TopicMessage out;
      out.topic = sub->topic;
      out.seq = m.getSeq();
      out.key = stringOf(m.getKey());
      out.value = stringOf(m.getValue());
      out.publishTimeMs = m.getPublishTimeMs();
      for (auto h : m.getHeaders()) out.headers.emplace_back(h.getName().cStr(), stringOf(h.getValue()));
      sub->next = out.seq + 1;
      messages->push_back(std::move(out));
    }
    if (messages->empty()) return kj::READY_NOW;
    auto handler = sub->handler;
    return onEventThread((*owner_)->postEvent_, [handler, messages]() {
      if (!handler->onMessage) return;
      for (auto& m : *messages) handler->onMessage(m);
    });
  }

  kj::Promise<void> onGap(OnGapContext context) override {
    auto* sub = current();
    if (sub == nullptr) return kj::READY_NOW;
    auto from = context.getParams().getFrom();
    auto to = context.getParams().getTo();
    if (sub->next != 0 && to < sub->next) return kj::READY_NOW;
    sub->next = to + 1;
    auto handler = sub->handler;
    std::string topic = sub->topic;
    return onEventThread((*owner_)->postEvent_, [handler, topic, from, to]() {
      if (handler->onGap) handler->onGap(topic, from, to);
    });
  }

  kj::Promise<void> onClosed(OnClosedContext context) override {
    auto* sub = current();
    if (sub == nullptr) return kj::READY_NOW;
    auto reason = context.getParams().getReason();
    std::string message = reason.getMessage();
    auto* owner = *owner_;
    if (reason.getCode() != wire::ErrorCode::OVERLOADED) {
      owner->resubscribe(id_, generation_, message);  // moved or stopping: resume elsewhere
      return kj::READY_NOW;
    }
    if (sub->next == 0) sub->next = context.getParams().getNext();
    owner->endCutOff(id_, message);
    return kj::READY_NOW;
  }

 private:
  Sub* current() {
    auto* owner = *owner_;
    if (owner == nullptr) return nullptr;
    auto it = owner->subs_.find(id_);
    if (it == owner->subs_.end() || it->second->generation != generation_) return nullptr;
    return it->second.get();
  }
  std::shared_ptr<LocalSubscriptions*> owner_;
  SubscriptionId id_;
  uint64_t generation_;
};

LocalSubscriptions::LocalSubscriptions(wire::Member::Client member, kj::Timer& timer, PostEvent postEvent)
    : member_(kj::mv(member)),
      timer_(timer),
      postEvent_(std::move(postEvent)),
      self_(std::make_shared<LocalSubscriptions*>(this)),
      tasks_(*this) {}

LocalSubscriptions::~LocalSubscriptions() {
  *self_ = nullptr;
}

kj::Promise<SubscriptionId> LocalSubscriptions::add(std::string topic, SubscribeFrom from,
                                                    TopicHandler handler, SubscriptionId* idOut) {
  auto id = nextId_++;
  if (idOut != nullptr) *idOut = id;
  auto sub = std::make_unique<Sub>();
  sub->id = id;
  sub->topic = std::move(topic);
  sub->from = from;
  sub->handler = std::make_shared<TopicHandler>(std::move(handler));
  auto& ref = *sub;
  subs_.emplace(id, std::move(sub));
  return subscribe(ref, from).then([id]() -> kj::Promise<SubscriptionId> { return id; },
                                   [this, id](kj::Exception&& e) -> kj::Promise<SubscriptionId> {
                                     subs_.erase(id);
                                     return kj::mv(e);
                                   });
}

kj::Promise<void> LocalSubscriptions::subscribe(Sub& sub, SubscribeFrom from) {
  auto request = member_.subscribeRequest();
  request.setTopic(sub.topic);
  auto f = request.initFrom();
  switch (from.kind) {
    case SubscribeFrom::Kind::LATEST:
      f.setLatest();
      break;
    case SubscribeFrom::Kind::EARLIEST:
      f.setEarliest();
      break;
    case SubscribeFrom::Kind::SEQ:
      f.setSeq(from.seq);
      break;
  }
  request.setSubscriber(kj::heap<Receiver>(self_, sub.id, sub.generation));
  auto id = sub.id;
  auto generation = sub.generation;
  return timer_.timeoutAfter(SUBSCRIBE_TIMEOUT, request.send())
      .then([this, id, generation](capnp::Response<wire::Member::SubscribeResults>&& response) {
        auto it = subs_.find(id);
        if (it == subs_.end() || it->second->generation != generation) return;
        auto& sub = *it->second;
        sub.registration = response.getSubscription();
        if (sub.next == 0) sub.next = response.getNext();
        sub.watcher = watch(id, generation).eagerlyEvaluate(nullptr);
      });
}

kj::Promise<void> LocalSubscriptions::watch(SubscriptionId id, uint64_t generation) {
  return timer_.afterDelay(CHECK_INTERVAL).then([this, id, generation]() -> kj::Promise<void> {
    auto it = subs_.find(id);
    if (it == subs_.end() || it->second->generation != generation) return kj::READY_NOW;
    KJ_IF_MAYBE (registration, it->second->registration) {
      auto request = registration->positionRequest();
      return timer_.timeoutAfter(CHECK_TIMEOUT, request.send())
          .then([this, id, generation](capnp::Response<wire::TopicSubscription::PositionResults>&&)
                    -> kj::Promise<void> { return watch(id, generation); },
                [this, id, generation](kj::Exception&& e) -> kj::Promise<void> {
                  std::string text = e.getDescription().cStr();
                  auto at = text.find("shoal:overloaded: ");
                  if (at == std::string::npos) {
                    resubscribe(id, generation, text);
                  } else {
                    // Cut off: its onClosed may still be queued behind deliveries; end it now, once.
                    endCutOff(id, text.substr(at + 18));
                  }
                  return kj::READY_NOW;
                });
    }
    return kj::READY_NOW;
  });
}

void LocalSubscriptions::resubscribe(SubscriptionId id, uint64_t generation, const std::string& why) {
  auto it = subs_.find(id);
  if (it == subs_.end() || it->second->generation != generation) return;
  auto& sub = *it->second;
  ++sub.generation;
  sub.registration = nullptr;
  memberLog().debug("subscription {} to topic '{}' resumes from seq {}: {}", id, sub.topic, sub.next, why);
  auto attempt = sub.generation;
  tasks_.add(timer_.afterDelay(RETRY_DELAY).then([this, id, attempt]() -> kj::Promise<void> {
    auto it = subs_.find(id);
    if (it == subs_.end() || it->second->generation != attempt) return kj::READY_NOW;
    auto& sub = *it->second;
    auto from = sub.next != 0 ? SubscribeFrom::at(sub.next) : sub.from;
    return subscribe(sub, from).catch_(
        [this, id, attempt](kj::Exception&& e) { resubscribe(id, attempt, e.getDescription().cStr()); });
  }));
}

void LocalSubscriptions::endCutOff(SubscriptionId id, const std::string& reason) {
  auto it = subs_.find(id);
  if (it == subs_.end()) return;
  auto handler = it->second->handler;
  std::string topic = it->second->topic;
  uint64_t next = it->second->next;
  subs_.erase(it);
  postEvent_([handler, topic, reason, next]() {
    if (handler->onClosed) handler->onClosed(topic, Error(ErrorCode::OVERLOADED, reason), next);
  });
}

void LocalSubscriptions::remove(SubscriptionId id) {
  subs_.erase(id);
}

void LocalSubscriptions::closeAll() {
  subs_.clear();
}

void LocalSubscriptions::taskFailed(kj::Exception&& exception) {
  memberLog().debug("embedded subscription task failed: {}", exception.getDescription().cStr());
}

}  // namespace shoal::node::topic

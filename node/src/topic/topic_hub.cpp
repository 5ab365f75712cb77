// Topic subscribers; see topic_hub.h.
#include "topic_hub.h"

#include <kj/debug.h>

#include <vector>

#include "map_service.h"
#include "member_log.h"
#include "topic_log.h"

namespace shoal::node::topic {
namespace {

constexpr size_t MESSAGES_PER_CALL = 512;
constexpr size_t BYTES_PER_CALL = 1 << 20;
constexpr auto CLOSE_TIMEOUT = 5 * kj::SECONDS;  // an onClosed the subscriber does not take

}  // namespace

struct TopicHub::Subscriber {
  uint64_t id;
  std::string topic;
  PartitionId partition;
  uint64_t next;
  wire::TopicSubscriber::Client cap;
  bool sending = false;
  bool closed = false;
};

// The capability a subscriber holds; dropping it (or cancel()) ends the subscription.
class SubscriptionImpl final : public wire::TopicSubscription::Server {
 public:
  SubscriptionImpl(std::weak_ptr<TopicHub> hub, std::string topic, uint64_t id)
      : hub_(std::move(hub)), topic_(std::move(topic)), id_(id) {}
  ~SubscriptionImpl() {
    if (auto hub = hub_.lock()) hub->forget(topic_, id_);
  }
  kj::Promise<void> position(PositionContext context) override {
    auto hub = hub_.lock();
    if (!hub) return KJ_EXCEPTION(DISCONNECTED, "shoal:unavailable: the member is stopping");
    auto [next, last] = hub->position(topic_, id_);
    context.getResults().setNext(next);
    context.getResults().setLast(last);
    return kj::READY_NOW;
  }
  kj::Promise<void> cancel(CancelContext) override {
    if (auto hub = hub_.lock()) hub->remove(topic_, id_);
    return kj::READY_NOW;
  }

 private:
  std::weak_ptr<TopicHub> hub_;
  std::string topic_;
  uint64_t id_;
};

TopicHub::TopicHub(MapService& maps, kj::Timer& timer) : maps_(maps), timer_(timer), tasks_(*this) {}

TopicHub::~TopicHub() = default;

TopicHub::Topic& TopicHub::topicState(const std::string& topic, PartitionId p) {
  auto it = topics_.find(topic);
  if (it != topics_.end()) return it->second;
  // First heard of here (a restart, or this member just became the owner): what it holds is what
  // survived, so all of it counts as committed.
  Topic t;
  t.partition = p;
  if (auto* ring = maps_.findRecords(mapNameOf(topic))) t.committed = TopicLog(*ring, p, topic).last();
  return topics_.emplace(topic, std::move(t)).first->second;
}

void TopicHub::applied(const std::string& topic, uint64_t seq) {
  if (topics_.count(topic)) return;
  Topic t;
  t.partition = maps_.partitioner().partitionOf(topic);
  t.committed = seq - 1;
  topics_.emplace(topic, std::move(t));
}

void TopicHub::committed(const std::string& topic, uint64_t seq) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  auto& t = it->second;
  if (seq <= t.committed) return;
  t.committed = seq;
  if (t.subscribers.empty()) return;
  auto maxLag = maps_.topicOptions(topic).maxSubscriberLag;
  if (maxLag == 0) maxLag = maps_.topicOptions(topic).capacity;
  std::vector<std::shared_ptr<Subscriber>> subs;
  for (auto& [_, s] : t.subscribers) subs.push_back(s);
  for (auto& s : subs) {
    uint64_t behind = seq + 1 > s->next ? seq + 1 - s->next : 0;
    if (behind > maxLag) {
      close(s, wire::ErrorCode::OVERLOADED,
            "subscriber fell " + std::to_string(behind) + " messages behind topic '" + topic +
                "' (max-subscriber-lag " + std::to_string(maxLag) + "); subscribe again from seq " +
                std::to_string(s->next) + " to resume");
    } else {
      pump(s);
    }
  }
}

uint64_t TopicHub::lastCommitted(const std::string& topic, PartitionId p) {
  return topicState(topic, p).committed;
}

TopicHub::Started TopicHub::subscribe(const std::string& topic, PartitionId p,
                                      wire::SubscribeFrom::Reader from,
                                      wire::TopicSubscriber::Client subscriber) {
  auto& t = topicState(topic, p);
  auto s = std::make_shared<Subscriber>(Subscriber{nextId_++, topic, p, t.committed + 1, kj::mv(subscriber)});
  switch (from.which()) {
    case wire::SubscribeFrom::LATEST:
      break;
    case wire::SubscribeFrom::EARLIEST:
      if (auto* ring = maps_.findRecords(mapNameOf(topic))) {
        TopicLog log(*ring, p, topic);
        s->next = log.firstHeldFrom(log.state().first, t.committed);
      } else {
        s->next = 1;
      }
      break;
    case wire::SubscribeFrom::SEQ:
      s->next = std::max<uint64_t>(from.getSeq(), 1);
      break;
  }
  t.subscribers.emplace(s->id, s);
  memberLog().debug("subscriber {} on topic '{}' from seq {}", s->id, topic, s->next);
  Started started{kj::heap<SubscriptionImpl>(weak_from_this(), topic, s->id), s->next};
  pump(s);
  return started;
}

void TopicHub::pump(const std::shared_ptr<Subscriber>& s) {
  if (s->sending || s->closed) return;
  auto it = topics_.find(s->topic);
  if (it == topics_.end()) return;
  uint64_t last = it->second.committed;
  if (s->next > last) return;
  auto* ring = maps_.findRecords(mapNameOf(s->topic));
  if (ring == nullptr) return;
  TopicLog log(*ring, s->partition, s->topic);
  uint64_t held = log.firstHeldFrom(s->next, last);
  if (held > s->next) {
    // Dropped (overwritten, expired) before this subscriber got them: say so, then go on.
    auto request = s->cap.onGapRequest();
    request.setTopic(s->topic);
    request.setFrom(s->next);
    request.setTo(held - 1);
    s->next = held;
    sent(s, request.send());
    return;
  }
  auto& t = it->second;
  if (!(t.batch && t.batchFrom == s->next && t.batchTo <= last)) {
    // Encoded once, sent to every subscriber at this position (they usually move together).
    std::vector<std::pair<uint64_t, std::string>> batch;
    size_t bytes = 0;
    for (uint64_t seq = s->next; seq <= last && batch.size() < MESSAGES_PER_CALL && bytes < BYTES_PER_CALL;
         ++seq) {
      std::string encoded;
      if (!log.read(seq, &encoded)) break;  // a hole: the next round sends a gap signal
      bytes += encoded.size();
      batch.emplace_back(seq, std::move(encoded));
    }
    if (batch.empty()) return;
    t.batch = std::make_unique<capnp::MallocMessageBuilder>(bytes / 8 + batch.size() * 16 + 64);
    auto out = t.batch->initRoot<wire::TopicSubscriber::OnMessagesParams>().initMessages(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!decodeInto(batch[i].second, batch[i].first, out[i])) {
        memberLog().error("topic '{}': message {} is malformed in memory; skipped", s->topic, batch[i].first);
        out[i].setSeq(batch[i].first);
      }
    }
    t.batchFrom = batch.front().first;
    t.batchTo = batch.back().first;
    t.batchWords = bytes / 8 + batch.size() * 16 + 64;
  }
  auto messages = t.batch->getRoot<wire::TopicSubscriber::OnMessagesParams>().asReader().getMessages();
  auto request = s->cap.onMessagesRequest(capnp::MessageSize{t.batchWords, 0});
  request.setTopic(s->topic);
  request.setMessages(messages);
  s->next = t.batchTo + 1;
  sent(s, request.send());
}

void TopicHub::sent(const std::shared_ptr<Subscriber>& s, kj::Promise<void> delivery) {
  s->sending = true;
  std::weak_ptr<Subscriber> weak = s;
  std::weak_ptr<TopicHub> hub = weak_from_this();
  tasks_.add(delivery.then(
      [weak, hub]() {
        auto s = weak.lock();
        auto h = hub.lock();
        if (!s || !h) return;
        s->sending = false;
        h->pump(s);
      },
      [weak, hub](kj::Exception&& e) {
        // The subscriber is gone (its connection closed): nothing to tell it.
        auto s = weak.lock();
        auto h = hub.lock();
        if (!s || !h) return;
        memberLog().debug("subscriber {} of topic '{}' dropped: {}", s->id, s->topic,
                          e.getDescription().cStr());
        h->remove(s->topic, s->id);
      }));
}

void TopicHub::close(const std::shared_ptr<Subscriber>& s, wire::ErrorCode code, const std::string& reason) {
  if (s->closed) return;
  s->closed = true;
  memberLog().info("subscriber {} of topic '{}' closed: {}", s->id, s->topic, reason);
  auto request = s->cap.onClosedRequest();
  request.setTopic(s->topic);
  auto failure = request.initReason();
  failure.setCode(code);
  failure.setMessage(reason);
  request.setNext(s->next);
  if (code == wire::ErrorCode::OVERLOADED) cutOff_[s->id] = reason;
  tasks_.add(
      timer_.timeoutAfter(CLOSE_TIMEOUT, request.send().ignoreResult()).catch_([](kj::Exception&&) {}));
  remove(s->topic, s->id);
}

void TopicHub::closeMoved(const std::function<bool(PartitionId)>& owned) {
  for (auto it = topics_.begin(); it != topics_.end();) {
    if (owned(it->second.partition)) {
      ++it;
      continue;
    }
    auto subs = it->second.subscribers;
    for (auto& [_, s] : subs) {
      close(s, wire::ErrorCode::WRONG_OWNER,
            "topic '" + s->topic + "' moved to another member; subscribe again from seq " +
                std::to_string(s->next));
    }
    it = topics_.erase(it);
  }
}

void TopicHub::closeAll(const std::string& reason) {
  for (auto& [_, t] : topics_) {
    auto subs = t.subscribers;
    for (auto& [_, s] : subs) close(s, wire::ErrorCode::UNAVAILABLE, reason);
  }
}

uint32_t TopicHub::subscribers(const std::string& topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : static_cast<uint32_t>(it->second.subscribers.size());
}

std::pair<uint64_t, uint64_t> TopicHub::position(const std::string& topic, uint64_t id) {
  if (auto cut = cutOff_.find(id); cut != cutOff_.end()) {
    kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str("shoal:overloaded: ", cut->second.c_str())));
  }
  auto it = topics_.find(topic);
  auto s = it == topics_.end() ? decltype(it->second.subscribers.end()){} : it->second.subscribers.find(id);
  if (it == topics_.end() || s == it->second.subscribers.end()) {
    kj::throwFatalException(
        KJ_EXCEPTION(FAILED, "shoal:wrong-owner: the subscription has ended; subscribe again"));
  }
  return {s->second->next, it->second.committed};
}

void TopicHub::remove(const std::string& topic, uint64_t id) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  auto s = it->second.subscribers.find(id);
  if (s == it->second.subscribers.end()) return;
  s->second->closed = true;
  it->second.subscribers.erase(s);
}

void TopicHub::forget(const std::string& topic, uint64_t id) {
  cutOff_.erase(id);
  remove(topic, id);
}

void TopicHub::taskFailed(kj::Exception&& exception) {
  memberLog().debug("topic delivery task failed: {}", exception.getDescription().cStr());
}

}  // namespace shoal::node::topic

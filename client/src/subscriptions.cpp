// Topic subscriptions: making them, keeping them alive across failovers, in-order delivery
// without duplicates; see subscriptions.h.
#include "subscriptions.h"

#include <kj/debug.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>

#include "shoal/wire_error_code.h"
#include "wire_conversion.h"

namespace shoal::client {
namespace {

// How often each subscription's owner is asked for its position, and how long an answer may take
// before the owner counts as gone (a kill -9 sends no onClosed).
constexpr auto POSITION_INTERVAL = std::chrono::milliseconds(500);
constexpr auto POSITION_DEADLINE = std::chrono::milliseconds(1500);
// The owner answered position() with "the subscription has ended": its onClosed, which says why
// (a cut-off must not be resumed automatically), is queued behind the message batches still with
// the event thread. It is awaited this long after those ran; then the subscription is made again.
constexpr auto ENDED_GRACE = std::chrono::milliseconds(1500);
// Batches a subscription may have with the event thread before the member's next call waits: a
// batch is acknowledged at once while fewer are queued, otherwise when the oldest of them has run.
// The member sends at most 512 messages (1 MiB) per call, so this bounds what a slow handler
// leaves queued in the client; beyond it the member stops pushing and, further behind, cuts off.
constexpr uint32_t BATCHES_AHEAD = 4;

// The handler and whether it may still be called; shared with the event thread.
struct Callbacks {
  explicit Callbacks(TopicHandler h) : handler(std::move(h)) {}
  TopicHandler handler;
  std::atomic<bool> active{true};
  // Batches posted to the event thread and not yet run, and the acknowledgements waiting for one
  // of them to run (BATCHES_AHEAD): the event thread wakes the I/O thread only for those.
  std::mutex mutex;
  uint32_t queued = 0;
  std::deque<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> heldAcks;
  Clock::time_point lastRun{};
};

// Failures after which subscribing again cannot help.
bool endsSubscription(ErrorCode code) {
  return code == ErrorCode::INVALID_ARGUMENT || code == ErrorCode::TOO_LARGE ||
         code == ErrorCode::UNAUTHORIZED;
}

void wireFrom(wire::SubscribeFrom::Builder out, const SubscribeFrom& from) {
  switch (from.kind) {
    case SubscribeFrom::Kind::LATEST:
      out.setLatest();
      break;
    case SubscribeFrom::Kind::EARLIEST:
      out.setEarliest();
      break;
    case SubscribeFrom::Kind::SEQ:
      out.setSeq(from.seq);
      break;
  }
}

}  // namespace

struct Subscriptions::Subscription {
  SubscriptionId id = 0;
  std::string topic;
  std::shared_ptr<Callbacks> callbacks;
  SubscribeFrom from;  // where the first attempt starts; later ones resume from `next`
  uint64_t next = 0;   // sequence number after the last one delivered; 0: not known yet
  enum class State { WAITING, SUBSCRIBING, ACTIVE } state = State::WAITING;
  uint64_t attempt = 0;   // +1 per attempt; calls from an older attempt's subscriber are ignored
  uint32_t failures = 0;  // consecutive, for the backoff; reset by a successful position check
  kj::Maybe<wire::TopicSubscription::Client> subscription;  // dropping it cancels at the owner
  uint64_t connectionId = 0;                                // the connection it was made through
  bool checking = false;                                    // a position() call is in flight
  std::optional<Clock::time_point> endedSince;              // the owner said it ended; awaiting its onClosed
  bool everActive = false;
  std::optional<Error> lastProblem;
  kj::Own<kj::PromiseFulfiller<std::shared_ptr<const Error>>> started;  // add()'s promise, until resolved
};

// One delivery for the event thread: a message, or a gap.
struct Subscriptions::Event {
  bool gap = false;
  TopicMessage message;
  uint64_t from = 0, to = 0;
};

// The member calls this for one attempt of one subscription.
class Subscriptions::Subscriber final : public wire::TopicSubscriber::Server {
 public:
  Subscriber(std::shared_ptr<Subscriptions*> owner, SubscriptionId id, uint64_t attempt)
      : owner_(std::move(owner)), id_(id), attempt_(attempt) {}

  kj::Promise<void> onMessages(OnMessagesContext context) override {
    if (*owner_ == nullptr) return kj::READY_NOW;
    return (*owner_)->onMessages(id_, attempt_, context.getParams().getMessages());
  }
  kj::Promise<void> onGap(OnGapContext context) override {
    if (*owner_ == nullptr) return kj::READY_NOW;
    auto p = context.getParams();
    return (*owner_)->onGap(id_, attempt_, p.getFrom(), p.getTo());
  }
  kj::Promise<void> onClosed(OnClosedContext context) override {
    if (*owner_ != nullptr) {
      auto p = context.getParams();
      (*owner_)->onClosed(id_, attempt_, p.getReason(), p.getNext());
    }
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<Subscriptions*> owner_;
  SubscriptionId id_;
  uint64_t attempt_;
};

Subscriptions::Subscriptions(RegistrationHost& host)
    : host_(host),
      self_(std::make_shared<Subscriptions*>(this)),
      tasks_(*this),
      positions_(positionLoop().eagerlyEvaluate(nullptr)) {}

Subscriptions::~Subscriptions() {
  *self_ = nullptr;
  closeAll();
}

void Subscriptions::taskFailed(kj::Exception&& e) {
  // Every task handles its own failures; reaching here is a bug worth seeing.
  fprintf(stderr, "shoal client: unexpected subscription task failure: %s\n", e.getDescription().cStr());
}

kj::Promise<std::shared_ptr<const Error>> Subscriptions::add(std::string topic, TopicHandler handler,
                                                             SubscribeFrom from, SubscriptionId& idOut) {
  auto s = std::make_unique<Subscription>();
  s->id = idOut = nextId_++;
  s->topic = std::move(topic);
  s->callbacks = std::make_shared<Callbacks>(std::move(handler));
  s->from = from;
  // Sequence numbers start at 1: "from 0" is "from 1".
  if (from.kind == SubscribeFrom::Kind::SEQ) s->next = std::max<uint64_t>(from.seq, 1);
  auto paf = kj::newPromiseAndFulfiller<std::shared_ptr<const Error>>();
  s->started = kj::mv(paf.fulfiller);
  auto& ref = *s;
  subscriptions_[s->id] = std::move(s);
  attempt(ref);
  return kj::mv(paf.promise);
}

std::optional<Error> Subscriptions::lastProblem(SubscriptionId id) const {
  auto it = subscriptions_.find(id);
  return it == subscriptions_.end() ? std::nullopt : it->second->lastProblem;
}

void Subscriptions::remove(SubscriptionId id) {
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  it->second->callbacks->active = false;
  subscriptions_.erase(it);  // drops the TopicSubscription: the owner ends it
}

void Subscriptions::closeAll() {
  for (auto& [id, s] : subscriptions_) s->callbacks->active = false;
  subscriptions_.clear();
}

Subscriptions::Subscription* Subscriptions::find(SubscriptionId id, uint64_t attempt) {
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end() || it->second->attempt != attempt) return nullptr;
  return it->second.get();
}

void Subscriptions::attempt(Subscription& s) {
  s.state = Subscription::State::SUBSCRIBING;
  auto id = s.id;
  auto attempt = ++s.attempt;
  auto timeout = host_.callTimeout();
  tasks_.add(host_.home()
                 .then([this, id, attempt](RegistrationHost::Home home) -> kj::Promise<void> {
                   auto* s = find(id, attempt);
                   if (s == nullptr) return kj::READY_NOW;
                   auto request = home.member.subscribeRequest();
                   request.setTopic(s->topic);
                   // A first attempt starts where the caller asked; any later one resumes.
                   if (s->next != 0) {
                     request.initFrom().setSeq(s->next);
                   } else {
                     wireFrom(request.initFrom(), s->from);
                   }
                   request.setSubscriber(kj::heap<Subscriber>(self_, id, attempt));
                   request.setForwarded(false);
                   auto connectionId = home.connectionId;
                   return request.send().then([this, id, attempt, connectionId](
                                                  capnp::Response<wire::Member::SubscribeResults>&& r) {
                     onSubscribed(id, attempt, connectionId, r.getNext(), r.getSubscription());
                   });
                 })
                 .exclusiveJoin(host_.timer()
                                    .afterDelay(timeout.count() * kj::MILLISECONDS)
                                    .then([this, id, attempt, timeout]() {
                                      onAttemptFailed(id, attempt,
                                                      Error(ErrorCode::TIMEOUT,
                                                            "no answer to subscribe within " +
                                                                std::to_string(timeout.count()) + " ms"));
                                    }))
                 .catch_([this, id, attempt](kj::Exception&& e) {
                   onAttemptFailed(id, attempt, errorOfCall(e, "the home member"));
                 }));
}

void Subscriptions::onSubscribed(SubscriptionId id, uint64_t attempt, uint64_t connectionId, uint64_t next,
                                 wire::TopicSubscription::Client subscription) {
  auto* s = find(id, attempt);
  if (s == nullptr) return;  // removed or superseded: dropping `subscription` ends it at the owner
  s->subscription = kj::mv(subscription);
  s->connectionId = connectionId;
  s->state = Subscription::State::ACTIVE;
  s->endedSince.reset();
  s->everActive = true;
  s->lastProblem.reset();
  // A resume keeps its own `next`: messages the owner no longer holds arrive as a gap first (and a
  // jump without one is reported as a gap on delivery), so nothing is skipped silently.
  if (s->next == 0) s->next = next;
  if (s->started) {
    s->started->fulfill(nullptr);
    s->started = nullptr;
  }
}

void Subscriptions::onAttemptFailed(SubscriptionId id, uint64_t attempt, const Error& error) {
  auto* s = find(id, attempt);
  if (s == nullptr) return;
  s->lastProblem = error;
  // Before the first success an internal failure (say, a member without topics) is reported to
  // the caller; once running, only a request the members reject for good ends the subscription.
  bool final = endsSubscription(error.code()) || (!s->everActive && error.code() == ErrorCode::INTERNAL);
  if (!final) {
    restart(*s, error.what());
    return;
  }
  if (s->started) {
    s->started->fulfill(std::make_shared<const Error>(error));
    s->callbacks->active = false;
    subscriptions_.erase(id);
    return;
  }
  finish(*s, error, s->next);
}

void Subscriptions::restart(Subscription& s, const std::string& why) {
  s.subscription = nullptr;  // ends the old one at its owner, if that is still reachable
  s.state = Subscription::State::WAITING;
  s.checking = false;
  {
    // The old attempt's subscriber is cancelled: its held calls need no answer.
    std::lock_guard<std::mutex> lock(s.callbacks->mutex);
    s.callbacks->heldAcks.clear();
  }
  s.endedSince.reset();
  auto id = s.id;
  auto attempt = ++s.attempt;  // the old subscriber is not listened to from now on
  auto delay = host_.backoff(s.failures++);
  host_.debug("topic '" + s.topic + "': subscription " + std::to_string(id) + " resubscribes from seq " +
              std::to_string(s.next) + " in " + std::to_string(delay.count()) + " ms: " + why);
  tasks_.add(host_.timer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, id, attempt]() {
    if (auto* s = find(id, attempt)) this->attempt(*s);
  }));
}

void Subscriptions::finish(Subscription& s, const Error& reason, uint64_t next) {
  host_.debug("topic '" + s.topic + "': subscription " + std::to_string(s.id) + " ended: " + reason.what());
  host_.postEvent([callbacks = s.callbacks, topic = s.topic, reason, next] {
    if (!callbacks->active.exchange(false)) return;
    if (!callbacks->handler.onClosed) return;
    try {
      callbacks->handler.onClosed(topic, reason, next);
    } catch (...) {
      // A throwing handler must not break the client.
    }
  });
  subscriptions_.erase(s.id);
}

void Subscriptions::connectionLost(uint64_t connectionId) {
  std::vector<Subscription*> lost;
  for (auto& [id, s] : subscriptions_) {
    if (s->state == Subscription::State::ACTIVE && s->connectionId == connectionId) lost.push_back(s.get());
  }
  for (auto* s : lost) restart(*s, "the connection it was made through was lost");
}

kj::Promise<void> Subscriptions::onMessages(SubscriptionId id, uint64_t attempt,
                                            capnp::List<wire::TopicMessage>::Reader list) {
  auto* s = find(id, attempt);
  if (s == nullptr) return kj::READY_NOW;
  std::vector<Event> events;
  events.reserve(list.size());
  for (auto m : list) {
    auto seq = m.getSeq();
    if (s->next != 0 && seq < s->next) continue;  // delivered before a resume
    if (s->next != 0 && seq > s->next) {
      // The contract promises a gap signal first; should one be missing, say so anyway.
      Event gap;
      gap.gap = true;
      gap.from = s->next;
      gap.to = seq - 1;
      events.push_back(std::move(gap));
    }
    Event e;
    e.message.topic = s->topic;
    e.message.seq = seq;
    e.message.key = stringOf(m.getKey());
    e.message.value = stringOf(m.getValue());
    for (auto h : m.getHeaders()) e.message.headers.emplace_back(h.getName(), stringOf(h.getValue()));
    e.message.publishTimeMs = m.getPublishTimeMs();
    events.push_back(std::move(e));
    s->next = seq + 1;
  }
  return deliver(*s, std::move(events));
}

kj::Promise<void> Subscriptions::onGap(SubscriptionId id, uint64_t attempt, uint64_t from, uint64_t to) {
  auto* s = find(id, attempt);
  if (s == nullptr || to < from) return kj::READY_NOW;
  if (s->next != 0 && to < s->next) return kj::READY_NOW;  // already delivered or reported
  Event gap;
  gap.gap = true;
  gap.from = s->next != 0 ? s->next : from;  // covers anything between what was delivered and `from`
  gap.to = to;
  s->next = to + 1;
  std::vector<Event> events;
  events.push_back(std::move(gap));
  return deliver(*s, std::move(events));
}

void Subscriptions::onClosed(SubscriptionId id, uint64_t attempt, wire::Failure::Reader reason,
                             uint64_t next) {
  auto* s = find(id, attempt);
  if (s == nullptr) return;
  Error error(toPublicCode(reason.getCode()), reason.getMessage().cStr());
  if (s->next == 0) s->next = next;
  switch (error.code()) {
    case ErrorCode::WRONG_OWNER:  // the topic moved
    case ErrorCode::UNAVAILABLE:  // the member is stopping
    case ErrorCode::TIMEOUT:
      restart(*s, std::string("closed by the member: ") + error.what());
      return;
    default:  // cut off for falling behind, or worse: the user decides
      finish(*s, error, s->next);
  }
}

kj::Promise<void> Subscriptions::deliver(Subscription& s, std::vector<Event> events) {
  if (events.empty()) return kj::READY_NOW;
  auto& callbacks = *s.callbacks;
  kj::Promise<void> acknowledged = kj::READY_NOW;
  {
    std::lock_guard<std::mutex> lock(callbacks.mutex);
    if (++callbacks.queued > BATCHES_AHEAD) {
      auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
      callbacks.heldAcks.push_back(kj::mv(paf.fulfiller));
      acknowledged = kj::mv(paf.promise);
    }
  }
  auto shared = std::make_shared<std::vector<Event>>(std::move(events));
  host_.postEvent([callbacks = s.callbacks, topic = s.topic, shared] {
    auto& h = callbacks->handler;
    for (auto& e : *shared) {
      if (!callbacks->active) break;
      try {
        if (!e.gap) {
          h.onMessage(e.message);
        } else if (h.onGap) {
          h.onGap(topic, e.from, e.to);
        }
      } catch (...) {
        // A throwing handler must not stop the next message or the client.
      }
    }
    kj::Own<kj::CrossThreadPromiseFulfiller<void>> release;
    {
      std::lock_guard<std::mutex> lock(callbacks->mutex);
      callbacks->queued--;
      callbacks->lastRun = Clock::now();
      if (!callbacks->heldAcks.empty()) {
        release = kj::mv(callbacks->heldAcks.front());
        callbacks->heldAcks.pop_front();
      }
    }
    if (release) release->fulfill();  // acknowledges a held batch to the member: the next may come
  });
  return acknowledged;
}

kj::Promise<void> Subscriptions::positionLoop() {
  return host_.timer().afterDelay(POSITION_INTERVAL.count() * kj::MILLISECONDS).then([this]() {
    checkPositions();
    return positionLoop();
  });
}

void Subscriptions::checkPositions() {
  auto now = Clock::now();
  std::vector<Subscription*> silent;
  for (auto& [id, s] : subscriptions_) {
    if (s->state != Subscription::State::ACTIVE || s->checking) continue;
    if (s->endedSince) {
      uint32_t queued;
      Clock::time_point lastRun;
      {
        std::lock_guard<std::mutex> lock(s->callbacks->mutex);
        queued = s->callbacks->queued;
        lastRun = s->callbacks->lastRun;
      }
      if (queued == 0 && now - std::max(*s->endedSince, lastRun) > ENDED_GRACE) {
        silent.push_back(s.get());
      }
      continue;
    }
    s->checking = true;
    auto attempt = s->attempt;
    auto request = KJ_ASSERT_NONNULL(s->subscription).positionRequest();
    tasks_.add(
        request.send()
            .then([this, id = id, attempt](capnp::Response<wire::TopicSubscription::PositionResults>&&) {
              if (auto* s = find(id, attempt)) {
                s->checking = false;
                s->failures = 0;  // healthy: the next trouble starts with a short backoff
              }
            })
            .exclusiveJoin(host_.timer()
                               .afterDelay(POSITION_DEADLINE.count() * kj::MILLISECONDS)
                               .then([this, id = id, attempt]() {
                                 positionFailed(id, attempt,
                                                "no answer to position() within " +
                                                    std::to_string(POSITION_DEADLINE.count()) + " ms");
                               }))
            .catch_([this, id = id, attempt](kj::Exception&& e) {
              auto error = errorOfCall(e, "the topic's owner");
              if (error.code() == ErrorCode::WRONG_OWNER || error.code() == ErrorCode::OVERLOADED) {
                // The owner answered: it ended the subscription (OVERLOADED: cut off). Its
                // onClosed, queued behind deliveries, says why.
                if (auto* s = find(id, attempt)) {
                  s->checking = false;
                  if (!s->endedSince) s->endedSince = Clock::now();
                }
                return;
              }
              positionFailed(id, attempt, std::string("position() failed: ") + error.what());
            }));
  }
  for (auto* s : silent) restart(*s, "its owner ended it without an onClosed");
}

void Subscriptions::positionFailed(SubscriptionId id, uint64_t attempt, const std::string& why) {
  auto* s = find(id, attempt);
  if (s == nullptr || s->state != Subscription::State::ACTIVE) return;
  restart(*s, "its owner looks gone: " + why);
}

}  // namespace shoal::client

// The client's I/O thread: connections, auto-batching, deadlines, retries; see transport.h.
#include "transport.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <boost/asio/post.hpp>
#include <random>

#include "circuit_breaker.h"
#include "shoal/wire_error_code.h"
#include "wire_conversion.h"

namespace shoal::client {
namespace {

constexpr auto TICK = std::chrono::milliseconds(20);  // deadline and breaker check interval

uint64_t randomId() {
  std::random_device rd;
  return (uint64_t(rd()) << 32 | rd()) | 1;
}

}  // namespace

struct Transport::Link {
  Link(std::string a, const ClientOptions& o)
      : address(std::move(a)), breaker(o.breakerFailureThreshold, o.breakerOpenTime) {}
  std::string address;
  enum class State { IDLE, CONNECTING, READY } state = State::IDLE;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  kj::Maybe<wire::Member::Client> member;
  std::deque<std::unique_ptr<Operation>> queue;
  uint32_t inFlight = 0;
  CircuitBreaker breaker;
  uint32_t reconnectAttempt = 0;
  bool reconnectScheduled = false;
  uint64_t generation = 0;  // +1 on every connect and disconnect; stale completions compare it
  std::vector<kj::Own<kj::PromiseFulfiller<wire::Member::Client>>> readyWaiters;
  std::string lastError;
  uint32_t maxBatchOps = 1;  // learned from the member on connect, capped by the options
  uint64_t maxBatchBytes = 1024;
};

struct Transport::Listener {
  ListenerId id;
  std::string map;
  EntryListener fn;
  bool includeValues;
  kj::Maybe<wire::Registration::Client> registration;
};

struct Transport::Io : public kj::TaskSet::ErrorHandler {
  explicit Io(kj::AsyncIoContext& c) : context(c), tasks(*this) {}
  void taskFailed(kj::Exception&& e) override {
    // Every task handles its own failures; reaching here is a bug worth seeing.
    fprintf(stderr, "shoal client: unexpected task failure: %s\n", e.getDescription().cStr());
  }
  kj::AsyncIoContext& context;
  kj::TaskSet tasks;
  std::vector<std::unique_ptr<Link>> links;
  size_t active = 0;
  std::map<ListenerId, std::unique_ptr<Listener>> listeners;
  ListenerId nextListenerId = 1;
  std::mt19937_64 rng{std::random_device{}()};
  // Write request ids: windowBase is the lowest id not yet completed; writeDone[i] tells whether
  // id windowBase + i has completed. The member forgets dedupe results below windowBase.
  uint64_t windowBase = 1;
  std::deque<bool> writeDone;
};

// Receives pushed entry events and hands them to the event thread, in order.
class Transport::EntryListenerImpl final : public wire::EntryListener::Server {
 public:
  EntryListenerImpl(Transport& t, ListenerId id) : transport_(t), id_(id) {}
  kj::Promise<void> onEvents(OnEventsContext context) override {
    auto it = transport_.io_->listeners.find(id_);
    if (it == transport_.io_->listeners.end()) return kj::READY_NOW;
    std::vector<shoal::EntryEvent> events;
    for (auto e : context.getParams().getEvents()) {
      events.push_back(shoal::EntryEvent{publicType(e.getType()), e.getMap(), stringOf(e.getKey()),
                                         stringOf(e.getValue()), stringOf(e.getOldValue()), e.getVersion()});
    }
    boost::asio::post(transport_.eventThread_, [fn = it->second->fn, events = std::move(events)] {
      for (auto& e : events) {
        try {
          fn(e);
        } catch (...) {
          // A throwing listener must not stop the others or the client.
        }
      }
    });
    return kj::READY_NOW;
  }
  kj::Promise<void> onClosed(OnClosedContext context) override {
    // The member cut this listener off (it fell behind, or the member is stopping): register
    // again so events keep flowing.
    auto it = transport_.io_->listeners.find(id_);
    if (it != transport_.io_->listeners.end()) {
      it->second->registration = nullptr;
      transport_.registerListener(transport_.activeLink(), *it->second);
    }
    return kj::READY_NOW;
  }

 private:
  Transport& transport_;
  ListenerId id_;
};

Transport::Transport(const ClientOptions& options) : options_(options), clientId_(randomId()) {
  options_.validate();
  std::promise<void> ready;
  auto started = ready.get_future();
  ioThread_ = std::thread([this, &ready] { ioMain(ready); });
  started.get();
}

Transport::~Transport() {
  close();
}

void Transport::close() {
  {
    std::lock_guard<std::mutex> lock(inboxMutex_);
    if (closed_) return;
    closed_ = true;
    if (stop_) stop_->fulfill();
  }
  if (ioThread_.joinable()) ioThread_.join();
  eventThread_.join();
}

void Transport::ioMain(std::promise<void>& ready) {
  auto context = kj::setupAsyncIo();
  Io io(context);
  io_ = &io;
  for (auto& server : options_.servers) io.links.push_back(std::make_unique<Link>(server, options_));
  auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
  {
    std::lock_guard<std::mutex> lock(inboxMutex_);
    stop_ = kj::mv(stop.fulfiller);
  }
  executor_ = kj::getCurrentThreadExecutor().addRef();
  ioThreadId_ = std::this_thread::get_id();
  auto working = waitForWork().eagerlyEvaluate(nullptr);
  auto ticking = tickLoop().eagerlyEvaluate(nullptr);
  ready.set_value();

  stop.promise.wait(context.waitScope);

  Error closedError(ErrorCode::UNAVAILABLE, "the client was closed");
  {
    std::lock_guard<std::mutex> lock(inboxMutex_);
    for (auto& op : inbox_) complete(op, closedError);
    inbox_.clear();
  }
  for (auto& link : io.links) failAll(*link, closedError);
  io.listeners.clear();
  io_ = nullptr;
}

void Transport::requireNotIoThread(const char* what) const {
  if (std::this_thread::get_id() == ioThreadId_) {
    throw Error(ErrorCode::INVALID_ARGUMENT,
                std::string(what) +
                    " is a blocking call and was made from a callback on the client's "
                    "I/O thread, where it would deadlock; use the *Async form there");
  }
}

void Transport::submit(std::unique_ptr<Operation> op) {
  if (op->timeout.count() <= 0) op->timeout = options_.requestTimeout;
  op->deadline = Clock::now() + op->timeout;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> wake;
  {
    std::lock_guard<std::mutex> lock(inboxMutex_);
    if (closed_) {
      op->done(Error(ErrorCode::UNAVAILABLE, "the client was closed"));
      return;
    }
    inbox_.push_back(std::move(op));
    wake = kj::mv(wake_);
  }
  if (wake) wake->fulfill();
}

kj::Promise<void> Transport::waitForWork() {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  bool pending;
  {
    std::lock_guard<std::mutex> lock(inboxMutex_);
    pending = !inbox_.empty();
    if (!pending) wake_ = kj::mv(paf.fulfiller);
  }
  kj::Promise<void> ready = pending ? kj::Promise<void>(kj::READY_NOW) : kj::mv(paf.promise);
  return ready.then([this]() {
    drainInbox();
    return waitForWork();
  });
}

void Transport::drainInbox() {
  std::vector<std::unique_ptr<Operation>> ops;
  {
    std::lock_guard<std::mutex> lock(inboxMutex_);
    ops.swap(inbox_);
  }
  for (auto& op : ops) route(std::move(op));
  pump(activeLink());
}

Transport::Link& Transport::activeLink() {
  return *io_->links[io_->active];
}

void Transport::route(std::unique_ptr<Operation> op) {
  if (isWrite(op->kind) && op->requestId == 0) {
    // Ids are handed out here, on the I/O thread, in order; the window tracks which are done.
    op->requestId = io_->windowBase + io_->writeDone.size();
    io_->writeDone.push_back(false);
  }
  auto& link = activeLink();
  auto now = Clock::now();
  if (link.breaker.isOpen(now)) {
    complete(op, Error(ErrorCode::UNAVAILABLE, "circuit open for member " + link.address + " after " +
                                                   std::to_string(link.breaker.consecutiveFailures()) +
                                                   " consecutive failures (" + link.lastError +
                                                   "); failing fast, retry later"));
    return;
  }
  link.queue.push_back(std::move(op));
  ensureConnected(link);
}

void Transport::ensureConnected(Link& link) {
  if (link.state != Link::State::IDLE || link.reconnectScheduled) return;
  if (!link.breaker.allow(Clock::now())) return;
  connect(link);
}

void Transport::connect(Link& link) {
  link.state = Link::State::CONNECTING;
  auto generation = ++link.generation;
  auto& timer = io_->context.provider->getTimer();
  auto timeoutMs = options_.connectTimeout.count();
  io_->tasks.add(io_->context.provider->getNetwork()
                     .parseAddress(link.address)
                     .then([](kj::Own<kj::NetworkAddress> address) {
                       return address->connect().attach(kj::mv(address));
                     })
                     .exclusiveJoin(timer.afterDelay(timeoutMs * kj::MILLISECONDS)
                                        .then([timeoutMs]() -> kj::Own<kj::AsyncIoStream> {
                                          KJ_FAIL_REQUIRE("connect timed out", timeoutMs);
                                        }))
                     .then(
                         [this, &link, generation](kj::Own<kj::AsyncIoStream> stream) {
                           if (link.generation == generation) onConnected(link, kj::mv(stream));
                         },
                         [this, &link, generation](kj::Exception&& e) {
                           if (link.generation == generation) onConnectFailed(link, e);
                         }));
}

void Transport::onConnected(Link& link, kj::Own<kj::AsyncIoStream> stream) {
  link.stream = kj::mv(stream);
  link.rpc = kj::heap<capnp::TwoPartyClient>(*link.stream);
  link.member = link.rpc->bootstrap().castAs<wire::Member>();
  // Learn the member's limits before sending batches, so no batch is too large for it.
  auto generation = link.generation;
  io_->tasks.add(
      KJ_ASSERT_NONNULL(link.member)
          .pingRequest()
          .send()
          .then(
              [this, &link, generation](capnp::Response<wire::Member::PingResults>&& r) {
                if (link.generation != generation) return;
                auto m = r.getMember();
                link.maxBatchBytes = options_.maxBatchBytes;
                if (m.getMaxMessageBytes() > 0) {
                  // Half the limit leaves room for framing and per-op overhead.
                  link.maxBatchBytes = std::min<uint64_t>(link.maxBatchBytes, m.getMaxMessageBytes() / 2);
                }
                link.maxBatchOps = options_.maxBatchOps;
                if (m.getMaxBatchOps() > 0) link.maxBatchOps = std::min(link.maxBatchOps, m.getMaxBatchOps());
                onReady(link);
              },
              [this, &link, generation](kj::Exception&& e) {
                if (link.generation != generation) return;
                link.member = nullptr;
                io_->tasks.add(
                    kj::evalLater([rpc = kj::mv(link.rpc), stream = kj::mv(link.stream)]() mutable {
                      rpc = nullptr;
                      stream = nullptr;
                    }));
                onConnectFailed(link, e);
              })
          .exclusiveJoin(io_->context.provider->getTimer()
                             .afterDelay(options_.connectTimeout.count() * kj::MILLISECONDS)
                             .then([this, &link, generation]() {
                               if (link.generation != generation) return;
                               link.member = nullptr;
                               io_->tasks.add(kj::evalLater(
                                   [rpc = kj::mv(link.rpc), stream = kj::mv(link.stream)]() mutable {
                                     rpc = nullptr;
                                     stream = nullptr;
                                   }));
                               onConnectFailed(link,
                                               KJ_EXCEPTION(DISCONNECTED, "no reply to the first ping"));
                             })));
}

void Transport::onReady(Link& link) {
  link.state = Link::State::READY;
  link.reconnectAttempt = 0;
  // The breaker closes on the first successful call, not on TCP connect alone.
  auto& member = KJ_ASSERT_NONNULL(link.member);
  for (auto& waiter : link.readyWaiters) waiter->fulfill(wire::Member::Client(member));
  link.readyWaiters.clear();
  for (auto& [id, listener] : io_->listeners) registerListener(link, *listener);
  pump(link);
}

void Transport::onConnectFailed(Link& link, const kj::Exception& e) {
  link.state = Link::State::IDLE;
  link.lastError = std::string("cannot connect to ") + link.address + ": " + e.getDescription().cStr();
  link.breaker.recordFailure(Clock::now());
  // Waiting calls learn the cause now; they retry within their own deadline.
  for (auto& waiter : link.readyWaiters) {
    waiter->reject(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                                 kj::str(link.lastError.c_str())));
  }
  link.readyWaiters.clear();
  // With several servers, move on to the next one; queued operations follow.
  if (io_->links.size() > 1) {
    auto& next = *io_->links[(io_->active + 1) % io_->links.size()];
    io_->active = (io_->active + 1) % io_->links.size();
    while (!link.queue.empty()) {
      next.queue.push_back(std::move(link.queue.front()));
      link.queue.pop_front();
    }
    for (auto& w : link.readyWaiters) next.readyWaiters.push_back(kj::mv(w));
    link.readyWaiters.clear();
    scheduleReconnect(next);
    return;
  }
  scheduleReconnect(link);
}

void Transport::disconnect(Link& link, const std::string& why) {
  if (link.state == Link::State::IDLE) return;
  link.lastError = why;
  link.state = Link::State::IDLE;
  link.generation++;
  link.inFlight = 0;
  link.member = nullptr;
  for (auto& [id, listener] : io_->listeners) listener->registration = nullptr;
  // Tear the connection down outside the continuation that noticed the failure.
  io_->tasks.add(kj::evalLater([rpc = kj::mv(link.rpc), stream = kj::mv(link.stream)]() mutable {
    rpc = nullptr;
    stream = nullptr;
  }));
  link.breaker.recordFailure(Clock::now());
  scheduleReconnect(link);
}

std::chrono::milliseconds Transport::backoff(uint32_t attempt) {
  auto base = options_.backoffInitial.count() << std::min<uint32_t>(attempt, 16);
  auto capped = std::min<int64_t>(base, options_.backoffMax.count());
  std::uniform_int_distribution<int64_t> jitter(capped / 2, std::max<int64_t>(capped, 1));
  return std::chrono::milliseconds(jitter(io_->rng));
}

void Transport::scheduleReconnect(Link& link) {
  if (link.reconnectScheduled) return;
  bool needed = !link.queue.empty() || !link.readyWaiters.empty() || !io_->listeners.empty();
  if (!needed) return;
  link.reconnectScheduled = true;
  auto delay = backoff(link.reconnectAttempt++);
  io_->tasks.add(
      io_->context.provider->getTimer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, &link]() {
        link.reconnectScheduled = false;
        ensureConnected(link);
        // Still refused by an open breaker: try again after another backoff period.
        if (link.state == Link::State::IDLE) scheduleReconnect(link);
      }));
}

void Transport::pump(Link& link) {
  if (link.state != Link::State::READY) return;
  while (!link.queue.empty() && (link.inFlight == 0 || (link.queue.size() >= link.maxBatchOps &&
                                                        link.inFlight < options_.maxCallsInFlight))) {
    sendBatch(link);
  }
}

void Transport::sendBatch(Link& link) {
  auto& member = KJ_ASSERT_NONNULL(link.member);
  // Up to maxBatchOps operations and maxBatchBytes of payload; one oversized operation goes alone.
  size_t n = 0;
  uint64_t bytes = 0;
  for (auto& op : link.queue) {
    uint64_t size = op->map.size() + op->key.size() + op->value.size() + op->expected.size() + 64;
    if (n == link.maxBatchOps || (n > 0 && bytes + size > link.maxBatchBytes)) break;
    bytes += size;
    ++n;
  }
  auto ops = std::make_shared<std::vector<std::unique_ptr<Operation>>>();
  ops->reserve(n);
  auto latest = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    latest = std::max(latest, link.queue.front()->deadline);
    ops->push_back(std::move(link.queue.front()));
    link.queue.pop_front();
  }
  auto request = member.executeRequest();
  auto batch = request.initBatch();
  batch.setClientId(clientId_);
  batch.setLowestPending(io_->windowBase);
  auto trace = options_.traceIdPrefix + "-" + std::to_string(clientId_ % 1000000) + "-" +
               std::to_string(nextTrace_.fetch_add(1, std::memory_order_relaxed));
  batch.setTraceId(trace);
  auto list = batch.initOps(n);
  for (size_t i = 0; i < n; ++i) fillOp(list[i], *(*ops)[i]);

  link.inFlight++;
  auto generation = link.generation;
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(latest - Clock::now()).count();
  auto& timer = io_->context.provider->getTimer();
  io_->tasks.add(
      request.send()
          .then(
              [this, &link, generation, ops](capnp::Response<wire::Member::ExecuteResults>&& response) {
                onBatchDone(link, generation, *ops, response);
              },
              [this, &link, generation, ops](kj::Exception&& e) { onBatchFailed(link, generation, *ops, e); })
          .exclusiveJoin(
              timer.afterDelay(std::max<int64_t>(remaining, 1) * kj::MILLISECONDS)
                  .then([this, &link, generation, ops]() { onBatchTimedOut(link, generation, *ops); })));
}

void Transport::onBatchDone(Link& link, uint64_t generation, std::vector<std::unique_ptr<Operation>>& ops,
                            wire::Member::ExecuteResults::Reader response) {
  if (link.generation == generation) {
    link.inFlight--;
    link.breaker.recordSuccess();
  }
  auto results = response.getResults();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (i >= results.size()) {
      complete(ops[i], Error(ErrorCode::INTERNAL, "member returned too few results"));
      continue;
    }
    auto outcome = outcomeOf(results[i]);
    // Retriable answers (the member shed load, the partition moved, its owner was unreachable)
    // are sent again after a backoff, under the same request id, until the deadline.
    if (!outcome.ok() && outcome.error().retriable() && Clock::now() < ops[i]->deadline) {
      retryLater(std::move(ops[i]), outcome.error());
      continue;
    }
    complete(ops[i], std::move(outcome));
  }
  pump(link);
}

void Transport::onBatchFailed(Link& link, uint64_t generation, std::vector<std::unique_ptr<Operation>>& ops,
                              const kj::Exception& e) {
  auto error = errorOfCall(e, link.address);
  if (link.generation == generation) link.inFlight--;
  if (e.getType() == kj::Exception::Type::DISCONNECTED || generation != link.generation) {
    if (link.generation == generation) disconnect(link, error.what());
    requeueFront(link, ops, error);  // same request ids: the member applies a write once
    return;
  }
  for (auto& op : ops) {
    if (error.retriable() && Clock::now() < op->deadline) {
      retryLater(std::move(op), error);
    } else {
      complete(op, error);
    }
  }
  pump(link);
}

void Transport::onBatchTimedOut(Link& link, uint64_t generation,
                                std::vector<std::unique_ptr<Operation>>& ops) {
  // No answer in time: the member may be stopped or wedged. Drop the connection and retry what
  // still has time left on a new one.
  Error timeout(ErrorCode::TIMEOUT, "no reply from member " + link.address + " in time");
  if (link.generation == generation) disconnect(link, timeout.what());
  requeueFront(link, ops, timeout);
}

void Transport::requeueFront(Link& link, std::vector<std::unique_ptr<Operation>>& ops, const Error& cause) {
  auto now = Clock::now();
  for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
    auto& op = *it;
    if (!op) continue;
    if (now >= op->deadline) {
      complete(op, Error(cause.code() == ErrorCode::TIMEOUT ? ErrorCode::TIMEOUT : ErrorCode::UNAVAILABLE,
                         std::string(cause.what()) + "; gave up after " +
                             std::to_string(op->timeout.count()) + " ms (requestTimeout)"));
      continue;
    }
    op->attempts++;
    link.queue.push_front(std::move(op));
  }
  ensureConnected(link);
  pump(link);
}

void Transport::retryLater(std::unique_ptr<Operation> op, const Error& cause) {
  auto delay = backoff(op->attempts++);
  auto shared = std::make_shared<std::unique_ptr<Operation>>(std::move(op));
  io_->tasks.add(
      io_->context.provider->getTimer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, shared]() {
        route(std::move(*shared));
        pump(activeLink());
      }));
}

void Transport::complete(std::unique_ptr<Operation>& op, Result<Outcome> result) {
  if (op->requestId != 0 && io_ != nullptr && op->requestId >= io_->windowBase) {
    io_->writeDone[op->requestId - io_->windowBase] = true;
    while (!io_->writeDone.empty() && io_->writeDone.front()) {
      io_->writeDone.pop_front();
      io_->windowBase++;
    }
  }
  auto fn = std::move(op->done);
  op.reset();
  if (fn) fn(std::move(result));
}

void Transport::failAll(Link& link, const Error& error) {
  while (!link.queue.empty()) {
    auto op = std::move(link.queue.front());
    link.queue.pop_front();
    complete(op, error);
  }
  for (auto& waiter : link.readyWaiters) {
    waiter->reject(
        kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str(error.what())));
  }
  link.readyWaiters.clear();
}

kj::Promise<void> Transport::tickLoop() {
  return io_->context.provider->getTimer().afterDelay(TICK.count() * kj::MILLISECONDS).then([this]() {
    tick();
    return tickLoop();
  });
}

void Transport::tick() {
  auto now = Clock::now();
  for (auto& link : io_->links) {
    if (link->breaker.isOpen(now) && !link->queue.empty()) {
      failAll(*link, Error(ErrorCode::UNAVAILABLE, "circuit open for member " + link->address + " (" +
                                                       link->lastError + "); failing fast, retry later"));
      continue;
    }
    for (auto it = link->queue.begin(); it != link->queue.end();) {
      if (now >= (*it)->deadline) {
        complete(*it, Error(ErrorCode::TIMEOUT,
                            "no reply from member " + link->address + " within " +
                                std::to_string((*it)->timeout.count()) + " ms (requestTimeout)" +
                                (link->lastError.empty() ? "" : "; last error: " + link->lastError)));
        it = link->queue.erase(it);
      } else {
        ++it;
      }
    }
  }
}

kj::Promise<wire::Member::Client> Transport::whenReady(Link& link) {
  if (link.state == Link::State::READY) return wire::Member::Client(KJ_ASSERT_NONNULL(link.member));
  auto paf = kj::newPromiseAndFulfiller<wire::Member::Client>();
  link.readyWaiters.push_back(kj::mv(paf.fulfiller));
  ensureConnected(link);
  scheduleReconnect(link);
  return kj::mv(paf.promise);
}

kj::Promise<void> Transport::callWithRetry(std::function<kj::Promise<void>(wire::Member::Client&)> fn,
                                           Clock::time_point deadline) {
  auto& link = activeLink();
  if (link.breaker.isOpen(Clock::now())) {
    return kj::Exception(
        kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
        kj::str("circuit open for member ", link.address.c_str(), " (", link.lastError.c_str(), ")"));
  }
  auto generation = link.generation;
  return whenReady(link)
      .then([fn](wire::Member::Client member) mutable { return fn(member); })
      .then(
          [&link]() -> kj::Promise<void> {
            link.breaker.recordSuccess();
            return kj::READY_NOW;
          },
          [this, fn, deadline, &link, generation](kj::Exception&& e) -> kj::Promise<void> {
            if (e.getType() != kj::Exception::Type::DISCONNECTED || Clock::now() >= deadline)
              return kj::mv(e);
            link.lastError = e.getDescription().cStr();
            if (link.generation == generation || link.state == Link::State::READY) {
              disconnect(link, e.getDescription().cStr());
            }
            return io_->context.provider->getTimer()
                .afterDelay(backoff(link.reconnectAttempt).count() * kj::MILLISECONDS)
                .then([this, fn, deadline]() { return callWithRetry(fn, deadline); });
          });
}

void Transport::call(std::function<kj::Promise<void>(wire::Member::Client&)> fn,
                     std::chrono::milliseconds timeout) {
  requireNotIoThread("this");
  if (timeout.count() <= 0) timeout = options_.requestTimeout;
  auto deadline = Clock::now() + timeout;
  std::exception_ptr failure;
  std::string address;
  try {
    executor_->executeSync([&]() -> kj::Promise<void> {
      if (io_ == nullptr) {
        failure = std::make_exception_ptr(Error(ErrorCode::UNAVAILABLE, "the client was closed"));
        return kj::READY_NOW;
      }
      address = activeLink().address;
      return callWithRetry(fn, deadline)
          .exclusiveJoin(io_->context.provider->getTimer()
                             .afterDelay(timeout.count() * kj::MILLISECONDS)
                             .then([this, &failure, timeout, &address]() {
                               auto& link = activeLink();
                               if (link.state != Link::State::READY && !link.lastError.empty()) {
                                 failure = std::make_exception_ptr(Error(
                                     ErrorCode::UNAVAILABLE, link.lastError + " (gave up after " +
                                                                 std::to_string(timeout.count()) + " ms)"));
                                 return;
                               }
                               failure = std::make_exception_ptr(
                                   Error(ErrorCode::TIMEOUT, "no reply from " + address + " within " +
                                                                 std::to_string(timeout.count()) + " ms"));
                             }))
          .catch_([&failure, &address](kj::Exception&& e) {
            failure = std::make_exception_ptr(errorOfCall(e, address));
          });
    });
  } catch (const kj::Exception& e) {
    throw Error(ErrorCode::UNAVAILABLE, std::string("the client was closed: ") + e.getDescription().cStr());
  }
  if (failure) std::rethrow_exception(failure);
}

void Transport::registerListener(Link& link, Listener& listener) {
  if (link.state != Link::State::READY) return;
  auto& member = KJ_ASSERT_NONNULL(link.member);
  auto request = member.addListenerRequest();
  request.setMap(listener.map);
  request.setIncludeValues(listener.includeValues);
  request.setListener(kj::heap<EntryListenerImpl>(*this, listener.id));
  auto id = listener.id;
  io_->tasks.add(request.send().then(
      [this, id](capnp::Response<wire::Member::AddListenerResults>&& response) {
        auto it = io_->listeners.find(id);
        if (it != io_->listeners.end()) it->second->registration = response.getRegistration();
      },
      [](kj::Exception&&) {
        // The connection failed; listeners are registered again when it comes back.
      }));
}

ListenerId Transport::addListener(const std::string& map, EntryListener fn, bool includeValues) {
  ListenerId id = 0;
  try {
    addListenerCall(map, fn, includeValues, &id);
  } catch (...) {
    // Not registered: forget it, so it is not registered again on reconnect.
    if (id != 0) removeListener(id);
    throw;
  }
  return id;
}

void Transport::addListenerCall(const std::string& map, const EntryListener& fn, bool includeValues,
                                ListenerId* idOut) {
  auto& id = *idOut;
  call(
      [&](wire::Member::Client& member) -> kj::Promise<void> {
        if (id == 0) {
          id = io_->nextListenerId++;
          io_->listeners[id] = std::make_unique<Listener>(Listener{id, map, fn, includeValues, nullptr});
        }
        auto request = member.addListenerRequest();
        request.setMap(map);
        request.setIncludeValues(includeValues);
        request.setListener(kj::heap<EntryListenerImpl>(*this, id));
        return request.send().then([this, id](capnp::Response<wire::Member::AddListenerResults>&& response) {
          auto it = io_->listeners.find(id);
          if (it != io_->listeners.end()) it->second->registration = response.getRegistration();
        });
      },
      options_.requestTimeout);
}

void Transport::removeListener(ListenerId id) {
  requireNotIoThread("removeListener");
  executor_->executeSync([&]() {
    if (io_ == nullptr) return;
    io_->listeners.erase(id);  // dropping the Registration capability removes it on the member
  });
}

}  // namespace shoal::client

// The client's I/O thread: connections, auto-batching, deadlines, retries; see transport.h.
#include "transport.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <boost/asio/post.hpp>
#include <random>

#include "circuit_breaker.h"
#include "entry_listeners.h"
#include "pattern_subscriptions.h"
#include "routing_table.h"
#include "shoal/wire_error_code.h"
#include "subscriptions.h"
#include "transport_state.h"
#include "wire_conversion.h"

namespace shoal::client {
namespace {

constexpr auto TICK = std::chrono::milliseconds(20);  // deadline and breaker check interval

uint64_t randomId() {
  std::random_device rd;
  return (uint64_t(rd()) << 32 | rd()) | 1;
}

}  // namespace

// The transport as entry listeners and subscriptions see it (registration_host.h).
class Transport::Host final : public RegistrationHost {
 public:
  explicit Host(Transport& t) : t_(t) {}
  kj::Promise<Home> home() override {
    auto timeoutMs = t_.options_.connectTimeout.count();
    return t_.whenReady(t_.homeLink())
        .exclusiveJoin(timer().afterDelay(timeoutMs * kj::MILLISECONDS).then([this]() -> Home {
          kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "no connection to the home member in time",
                                               t_.homeLink().address, t_.homeLink().lastError));
        }));
  }
  std::chrono::milliseconds backoff(uint32_t attempt) override { return t_.backoff(attempt); }
  kj::Timer& timer() override { return t_.io_->context.provider->getTimer(); }
  void postEvent(std::function<void()> fn) override { boost::asio::post(t_.eventThread_, std::move(fn)); }
  std::chrono::milliseconds callTimeout() const override { return t_.options_.requestTimeout; }
  void debug(const std::string& message) override {
    if (t_.options_.debugLog) t_.options_.debugLog(message);
  }

 private:
  Transport& t_;
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
  Host host(*this);
  io.listeners = std::make_unique<EntryListeners>(host);
  io.subscriptions = std::make_unique<Subscriptions>(host);
  io.patterns = std::make_unique<PatternSubscriptions>(host, *io.subscriptions);
  for (auto& server : options_.servers) linkFor(server);
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
  io.patterns.reset();
  io.subscriptions.reset();
  io.listeners.reset();
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
  pumpAll();
}

Transport::Link& Transport::homeLink() {
  return *io_->links[io_->home];
}

Transport::Link& Transport::linkFor(const std::string& address) {
  auto it = io_->byAddress.find(address);
  if (it != io_->byAddress.end()) return *it->second;
  // Links are never removed (their count is bounded by the members ever seen), so references to
  // them held by pending promises stay valid.
  io_->links.push_back(std::make_unique<Link>(address, options_));
  auto& link = *io_->links.back();
  io_->byAddress[address] = &link;
  return link;
}

std::vector<Transport::Link*> Transport::allLinks() const {
  // A snapshot: routing an op may add a link (a member at a new address), which may reallocate
  // io_->links under a loop over it.
  std::vector<Link*> out;
  out.reserve(io_->links.size());
  for (auto& link : io_->links) out.push_back(link.get());
  return out;
}

void Transport::pumpAll() {
  for (auto* link : allLinks()) pump(*link);
}

Transport::Link* Transport::ownerLink(const Operation& op) {
  if (!options_.smartRouting || op.kind == OpKind::SIZE || op.kind == OpKind::CLEAR) return nullptr;
  auto* address = io_->table.primaryOf(op.key);
  if (address == nullptr) return nullptr;
  auto& link = linkFor(*address);
  if (&link == &homeLink()) return &link;
  if (link.down || link.breaker.isOpen(Clock::now())) {
    // Unreachable for now: the home member forwards meanwhile; a reconnect is under way (or this
    // starts one), and the next table may name another primary.
    ensureConnected(link);
    return nullptr;
  }
  return &link;
}

void Transport::route(std::unique_ptr<Operation> op) {
  if (isWrite(op->kind) && op->requestId == 0) {
    // Ids are handed out here, on the I/O thread, in order; the window tracks which are done.
    op->requestId = io_->windowBase + io_->writeDone.size();
    io_->writeDone.push_back(false);
  }
  auto* owner = ownerLink(*op);
  auto& link = owner ? *owner : homeLink();
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

void Transport::reroute(Link& link) {
  // Order among the link's queued ops is kept per destination.
  std::deque<std::unique_ptr<Operation>> ops;
  ops.swap(link.queue);
  for (auto& op : ops) route(std::move(op));
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
  // A connection the member closed (it stopped, or was killed) is noticed at once, also when no
  // call is in flight (a client that only subscribes): its registrations are made again elsewhere.
  io_->tasks.add(link.calls.wrap(link.rpc->onDisconnect())
                     .then([]() { return true; }, [](kj::Exception&&) { return false; })
                     .then([this, &link, generation](bool closedByPeer) {
                       if (closedByPeer && link.generation == generation && link.state != Link::State::IDLE) {
                         disconnect(link, "connection to " + link.address + " closed");
                       }
                     }));
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
  link.down = false;
  link.connectionId = io_->nextConnectionId++;
  // The breaker closes on the first successful call, not on TCP connect alone.
  auto& member = KJ_ASSERT_NONNULL(link.member);
  for (auto& waiter : link.readyWaiters) waiter->fulfill({wire::Member::Client(member), link.connectionId});
  link.readyWaiters.clear();
  if (io_->tableStale) refreshTable(&link);
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
  link.down = true;
  // With several members, the home moves on to the next one; queued operations follow (keyed
  // ones to their owner when it is reachable, else to the new home).
  if (&link == &homeLink()) moveHome(link);
  if (&link != &homeLink()) {
    reroute(link);
    pumpAll();
  }
  scheduleReconnect(link);
}

void Transport::moveHome(Link& failed) {
  auto n = io_->links.size();
  if (n < 2) return;
  // Prefer a member already connected, then one not known to be down, then simply the next.
  size_t next = (io_->home + 1) % n;
  for (int pass = 0; pass < 2; ++pass) {
    bool found = false;
    for (size_t i = 1; i < n && !found; ++i) {
      auto& candidate = *io_->links[(io_->home + i) % n];
      if (pass == 0 ? candidate.state == Link::State::READY : !candidate.down) {
        next = (io_->home + i) % n;
        found = true;
      }
    }
    if (found) break;
  }
  // Registrations on the old home follow when its connection is dropped (connectionLost).
  io_->home = next;
  auto& home = homeLink();
  for (auto& w : failed.readyWaiters) home.readyWaiters.push_back(kj::mv(w));
  failed.readyWaiters.clear();
  if (home.state == Link::State::READY) {
    for (auto& waiter : home.readyWaiters) {
      waiter->fulfill({wire::Member::Client(KJ_ASSERT_NONNULL(home.member)), home.connectionId});
    }
    home.readyWaiters.clear();
  } else {
    ensureConnected(home);
    scheduleReconnect(home);
  }
}

void Transport::disconnect(Link& link, const std::string& why) {
  if (link.state == Link::State::IDLE) return;
  link.lastError = why;
  link.state = Link::State::IDLE;
  link.generation++;
  link.inFlight = 0;
  link.member = nullptr;
  link.down = true;
  // Calls in flight on this connection fail now (and are retried elsewhere) rather than wait for
  // an answer that a stopped member may never send.
  link.calls.cancel(
      kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str(why.c_str())));
  // Listeners and subscriptions made on this connection are made again (at the home member).
  io_->listeners->connectionLost(link.connectionId);
  io_->subscriptions->connectionLost(link.connectionId);
  // Tear the connection down outside the continuation that noticed the failure.
  io_->tasks.add(kj::evalLater([rpc = kj::mv(link.rpc), stream = kj::mv(link.stream)]() mutable {
    rpc = nullptr;
    stream = nullptr;
  }));
  link.breaker.recordFailure(Clock::now());
  // The member may be gone: learn the table again, and send what waited for it elsewhere.
  refreshTable(nullptr);
  if (&link != &homeLink()) reroute(link);
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
  // A member of the current table is reconnected even when idle, so that its keys go straight to
  // it again as soon as it is back.
  bool needed = !link.queue.empty() || !link.readyWaiters.empty() ||
                (&link == &homeLink() &&
                 !(io_->listeners->empty() && io_->subscriptions->empty() && io_->patterns->empty())) ||
                io_->table.hasMember(link.address);
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

void Transport::refreshTable(Link* via) {
  if (!options_.smartRouting) return;
  if (io_->refreshing) {
    io_->refreshAgain = true;
    return;
  }
  auto now = Clock::now();
  // Ask the member that showed a newer table, else the home, else any member connected; one that
  // is not answering its calls (stopped?) only when no other is connected.
  auto usable = [now](Link* l) { return l != nullptr && l->state == Link::State::READY && !l->slow(now); };
  Link* link = usable(via) ? via : usable(&homeLink()) ? &homeLink() : nullptr;
  for (auto& candidate : io_->links) {
    if (link == nullptr && usable(candidate.get())) link = candidate.get();
  }
  if (link == nullptr && homeLink().state == Link::State::READY) link = &homeLink();
  if (link == nullptr || now < io_->nextRefresh) {
    io_->tableStale = true;  // done when a member is connected (onReady) or on the next trigger
    return;
  }
  io_->refreshing = true;
  io_->refreshAgain = false;
  io_->tableStale = false;
  // A wedged member must not hold refreshes up: give up after connectTimeout.
  auto timeoutMs = options_.connectTimeout.count();
  io_->tasks.add(
      KJ_ASSERT_NONNULL(link->member)
          .clusterRequest()
          .send()
          .then([this](capnp::Response<wire::Member::ClusterResults>&& r) { applyTable(r); })
          .exclusiveJoin(
              io_->context.provider->getTimer().afterDelay(timeoutMs * kj::MILLISECONDS).then([]() {
                KJ_FAIL_REQUIRE("cluster() timed out");
              }))
          .then(
              [this]() {
                io_->refreshing = false;
                if (io_->refreshAgain) refreshTable(nullptr);
              },
              [this](kj::Exception&&) {
                // Keyed ops go on through the home member; try again on the next trigger.
                io_->refreshing = false;
                io_->tableStale = true;
                io_->nextRefresh = Clock::now() + options_.backoffInitial;
              }));
}

void Transport::applyTable(wire::Member::ClusterResults::Reader r) {
  RoutingTable::Snapshot s;
  s.epoch = r.getTableEpoch();
  s.partitionCount = r.getPartitionCount();
  for (auto p : r.getPartitions()) s.primaries.push_back(p.getReplicas().size() > 0 ? p.getReplicas()[0] : 0);
  for (auto m : r.getMembers()) s.members.emplace_back(m.getId(), m.getAddress());
  auto removed = io_->table.update(s);
  if (!removed) return;  // older than ours
  // Members no longer in the table (dead, or gone): stop waiting on calls in flight to them (a
  // stopped process never answers) and send their ops elsewhere.
  for (auto& address : *removed) {
    auto it = io_->byAddress.find(address);
    if (it == io_->byAddress.end()) continue;
    auto& link = *it->second;
    if (&link == &homeLink()) moveHome(link);
    disconnect(link, "member " + address + " left the partition table");
  }
  // Ops waiting in a queue follow the new table.
  for (auto* link : allLinks()) {
    if (link != &homeLink()) reroute(*link);
  }
  pumpAll();
}

void Transport::learnTable(std::chrono::milliseconds timeout) {
  if (!options_.smartRouting) return;
  try {
    call(
        [this](wire::Member::Client& member) {
          return member.clusterRequest().send().then(
              [this](capnp::Response<wire::Member::ClusterResults>&& r) { applyTable(r); });
        },
        timeout);
  } catch (const Error&) {
    // Keyed ops go through the home member until a later refresh succeeds.
  }
}

kj::Promise<void> Transport::tickLoop() {
  return io_->context.provider->getTimer().afterDelay(TICK.count() * kj::MILLISECONDS).then([this]() {
    tick();
    return tickLoop();
  });
}

void Transport::tick() {
  auto now = Clock::now();
  for (auto* link : allLinks()) {
    if (options_.smartRouting && link->slow(now) && now >= link->nextSlowCheck) {
      link->nextSlowCheck = now + SLOW_CALL;
      refreshTable(nullptr);
    }
    if (link->breaker.isOpen(now) && !link->queue.empty() && link != &homeLink()) {
      reroute(*link);  // to the home member, which forwards
      continue;
    }
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

kj::Promise<RegistrationHost::Home> Transport::whenReady(Link& link) {
  if (link.state == Link::State::READY) {
    return RegistrationHost::Home{wire::Member::Client(KJ_ASSERT_NONNULL(link.member)), link.connectionId};
  }
  auto paf = kj::newPromiseAndFulfiller<RegistrationHost::Home>();
  link.readyWaiters.push_back(kj::mv(paf.fulfiller));
  ensureConnected(link);
  scheduleReconnect(link);
  return kj::mv(paf.promise);
}

kj::Promise<void> Transport::callWithRetry(std::function<kj::Promise<void>(wire::Member::Client&)> fn,
                                           Clock::time_point deadline) {
  auto& link = homeLink();
  if (link.breaker.isOpen(Clock::now())) {
    return kj::Exception(
        kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
        kj::str("circuit open for member ", link.address.c_str(), " (", link.lastError.c_str(), ")"));
  }
  auto generation = link.generation;
  return whenReady(link)
      .then([fn](RegistrationHost::Home home) mutable { return fn(home.member); })
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
      address = homeLink().address;
      return callWithRetry(fn, deadline)
          .exclusiveJoin(io_->context.provider->getTimer()
                             .afterDelay(timeout.count() * kj::MILLISECONDS)
                             .then([this, &failure, timeout, &address]() {
                               auto& link = homeLink();
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

uint64_t Transport::awaitRegistration(
    const char* what, std::function<kj::Promise<std::shared_ptr<const Error>>(Io&, uint64_t& id)> start,
    std::function<std::optional<Error>(Io&, uint64_t id)> lastProblem,
    std::function<void(Io&, uint64_t id)> cancel) {
  requireNotIoThread(what);
  auto timeout = options_.requestTimeout;
  uint64_t id = 0;
  std::optional<Error> failure;
  try {
    executor_->executeSync([&]() -> kj::Promise<void> {
      if (io_ == nullptr) {
        failure = Error(ErrorCode::UNAVAILABLE, "the client was closed");
        return kj::READY_NOW;
      }
      return start(*io_, id)
          .then([&failure](std::shared_ptr<const Error> ended) {
            if (ended) failure = *ended;
          })
          .exclusiveJoin(
              io_->context.provider->getTimer()
                  .afterDelay(timeout.count() * kj::MILLISECONDS)
                  .then([&, what, timeout]() {
                    // UNAVAILABLE when the last attempt could not reach a member, else TIMEOUT.
                    auto last = lastProblem(*io_, id);
                    auto code = last && last->code() == ErrorCode::UNAVAILABLE ? ErrorCode::UNAVAILABLE
                                                                               : ErrorCode::TIMEOUT;
                    failure = Error(
                        code, std::string(what) + " not taken by " + homeLink().address + " within " +
                                  std::to_string(timeout.count()) + " ms (requestTimeout)" +
                                  (last ? std::string("; last failure: ") + last->what() : std::string()));
                  }))
          .then([&]() {
            if (failure) cancel(*io_, id);  // not taken in time: it must not start later
          });
    });
  } catch (const kj::Exception& e) {
    throw Error(ErrorCode::UNAVAILABLE, std::string("the client was closed: ") + e.getDescription().cStr());
  }
  if (failure) throw *failure;
  return id;
}

ListenerId Transport::addListener(const std::string& map, EntryListener fn, bool includeValues) {
  return awaitRegistration(
      "addListener",
      [&](Io& io, uint64_t& id) { return io.listeners->add(map, std::move(fn), includeValues, id); },
      [](Io& io, uint64_t id) { return io.listeners->lastProblem(id); },
      [](Io& io, uint64_t id) { io.listeners->remove(id); });
}

void Transport::removeListener(ListenerId id) {
  requireNotIoThread("removeListener");
  try {
    executor_->executeSync([&]() {
      if (io_ != nullptr) io_->listeners->remove(id);
    });
  } catch (const kj::Exception&) {
    // The client was closed: nothing is registered any more.
  }
}

SubscriptionId Transport::subscribe(const std::string& topic, TopicHandler handler, SubscribeFrom from) {
  return awaitRegistration(
      "subscribe",
      [&](Io& io, uint64_t& id) { return io.subscriptions->add(topic, std::move(handler), from, id); },
      [](Io& io, uint64_t id) { return io.subscriptions->lastProblem(id); },
      [](Io& io, uint64_t id) { io.subscriptions->remove(id); });
}

SubscriptionId Transport::subscribePattern(const std::string& pattern, TopicHandler handler) {
  return awaitRegistration(
      "subscribePattern",
      [&](Io& io, uint64_t& id) { return io.patterns->add(pattern, std::move(handler), id); },
      [](Io& io, uint64_t id) { return io.patterns->lastProblem(id); },
      [](Io& io, uint64_t id) { io.patterns->remove(id); });
}

void Transport::unsubscribe(SubscriptionId id) {
  requireNotIoThread("unsubscribe");
  try {
    executor_->executeSync([&]() {
      if (io_ != nullptr && !io_->patterns->remove(id)) io_->subscriptions->remove(id);
    });
  } catch (const kj::Exception&) {
    // The client was closed: its subscriptions have ended.
  }
}

}  // namespace shoal::client

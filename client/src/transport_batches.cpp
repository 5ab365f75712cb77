// The transport's batches: sending each member's queue (auto-batching), their results, retries of
// retriable failures with backoff under the same request id, and completion; see transport.h.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include "shoal/wire_error_code.h"
#include "transport.h"
#include "transport_state.h"
#include "wire_conversion.h"

namespace shoal::client {

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
    for (auto& [name, value] : op->headers) size += name.size() + value.size() + 16;
    size += op->messageKey.size();
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
  batch.setTableEpoch(io_->table.epoch());
  // The same lowest-pending for every member: see Io::windowBase for why that is safe.
  batch.setLowestPending(io_->windowBase);
  auto trace = options_.traceIdPrefix + "-" + std::to_string(clientId_ % 1000000) + "-" +
               std::to_string(nextTrace_.fetch_add(1, std::memory_order_relaxed));
  batch.setTraceId(trace);
  auto list = batch.initOps(n);
  for (size_t i = 0; i < n; ++i) fillOp(list[i], *(*ops)[i]);

  if (link.inFlight++ == 0) link.busySince = Clock::now();
  auto generation = link.generation;
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(latest - Clock::now()).count();
  auto& timer = io_->context.provider->getTimer();
  io_->tasks.add(
      link.calls.wrap(kj::Promise<capnp::Response<wire::Member::ExecuteResults>>(request.send()))
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
    link.busySince = Clock::now();
    link.breaker.recordSuccess();
  }
  // A member with a newer table than ours: ops may be going to former primaries (which forward).
  if (response.getTableEpoch() > io_->table.epoch()) refreshTable(&link);
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
      // The owner moved or could not be reached: the retry is routed by a fresh table.
      auto code = outcome.error().code();
      if (code == ErrorCode::WRONG_OWNER || code == ErrorCode::UNAVAILABLE) refreshTable(&link);
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
    if (&link == &homeLink()) {
      link.queue.push_front(std::move(op));
    } else {
      // Not the home member: its ops go to where the table says now (the home if it is down).
      // Routed in reverse, so they land at the front of their queue in their original order.
      auto* owner = ownerLink(*op);
      auto& target = owner ? *owner : homeLink();
      target.queue.push_front(std::move(op));
      ensureConnected(target);
    }
  }
  ensureConnected(link);
  pumpAll();
}

void Transport::retryLater(std::unique_ptr<Operation> op, const Error& cause) {
  auto delay = backoff(op->attempts++);
  auto shared = std::make_shared<std::unique_ptr<Operation>>(std::move(op));
  io_->tasks.add(
      io_->context.provider->getTimer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, shared]() {
        route(std::move(*shared));
        pumpAll();
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

}  // namespace shoal::client

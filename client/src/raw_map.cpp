// RawMap: builds Operations, submits them to the transport and adapts outcomes to each method's
// return type. Synchronous methods wait on a future fulfilled by the I/O thread.
#include <future>

#include "shoal/client/client.h"
#include "transport.h"

namespace shoal {
namespace {

using client::Operation;
using client::OpKind;
using client::Outcome;

std::optional<std::string> valueOf(Outcome&& o) {
  if (o.kind == Outcome::VALUE) return std::move(o.value);
  return std::nullopt;
}

}  // namespace

namespace {
struct Submitter {
  client::Transport& transport;
  const std::string& map;
  const std::string& traceId;
  std::chrono::milliseconds timeout;

  std::unique_ptr<Operation> make(OpKind kind, std::string_view key) const {
    auto op = std::make_unique<Operation>();
    op->kind = kind;
    op->map = map;
    op->key = std::string(key);
    op->traceId = traceId;
    op->timeout = timeout;
    return op;
  }
  static void withWrite(Operation& op, std::string_view value, const WriteOptions& o) {
    op.value = std::string(value);
    op.ttlMs = o.ttl ? o.ttl->count() : -1;
    op.maxIdleMs = o.maxIdle ? o.maxIdle->count() : -1;
  }
  // Submits and waits; throws the operation's error.
  Outcome run(std::unique_ptr<Operation> op) const {
    transport.requireNotIoThread("a synchronous map operation");
    auto promise = std::make_shared<std::promise<Result<Outcome>>>();
    auto future = promise->get_future();
    op->done = [promise](Result<Outcome> r) { promise->set_value(std::move(r)); };
    transport.submit(std::move(op));
    return future.get().value();
  }
  template <typename T, typename Adapt>
  void async(std::unique_ptr<Operation> op, std::function<void(Result<T>)> done, Adapt adapt) const {
    op->done = [done = std::move(done), adapt](Result<Outcome> r) {
      if (r.ok()) {
        done(Result<T>(adapt(std::move(r).value())));
      } else {
        done(Result<T>(r.error()));
      }
    };
    transport.submit(std::move(op));
  }
};
}  // namespace

#define SUBMITTER                          \
  Submitter {                              \
    *transport_, name_, traceId_, timeout_ \
  }

std::optional<std::string> RawMap::get(std::string_view key) const {
  return valueOf(SUBMITTER.run(SUBMITTER.make(OpKind::GET, key)));
}

std::optional<EntryView> RawMap::getEntry(std::string_view key) const {
  auto o = SUBMITTER.run(SUBMITTER.make(OpKind::GET_ENTRY, key));
  if (o.kind != Outcome::ENTRY) return std::nullopt;
  return std::move(o.entry);
}

bool RawMap::containsKey(std::string_view key) const {
  return SUBMITTER.run(SUBMITTER.make(OpKind::CONTAINS_KEY, key)).flag;
}

std::optional<std::string> RawMap::put(std::string_view key, std::string_view value,
                                       const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::PUT, key);
  Submitter::withWrite(*op, value, o);
  return valueOf(SUBMITTER.run(std::move(op)));
}

void RawMap::set(std::string_view key, std::string_view value, const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::SET, key);
  Submitter::withWrite(*op, value, o);
  SUBMITTER.run(std::move(op));
}

std::optional<std::string> RawMap::putIfAbsent(std::string_view key, std::string_view value,
                                               const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::PUT_IF_ABSENT, key);
  Submitter::withWrite(*op, value, o);
  return valueOf(SUBMITTER.run(std::move(op)));
}

std::optional<std::string> RawMap::replace(std::string_view key, std::string_view value,
                                           const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::REPLACE, key);
  Submitter::withWrite(*op, value, o);
  return valueOf(SUBMITTER.run(std::move(op)));
}

bool RawMap::replaceIfEqual(std::string_view key, std::string_view expected, std::string_view value,
                            const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::REPLACE_IF_VALUE, key);
  Submitter::withWrite(*op, value, o);
  op->expected = std::string(expected);
  return SUBMITTER.run(std::move(op)).flag;
}

bool RawMap::replaceIfVersion(std::string_view key, uint64_t expectedVersion, std::string_view value,
                              const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::REPLACE_IF_VERSION, key);
  Submitter::withWrite(*op, value, o);
  op->version = expectedVersion;
  return SUBMITTER.run(std::move(op)).flag;
}

std::optional<std::string> RawMap::remove(std::string_view key) const {
  return valueOf(SUBMITTER.run(SUBMITTER.make(OpKind::REMOVE, key)));
}

bool RawMap::erase(std::string_view key) const {
  return SUBMITTER.run(SUBMITTER.make(OpKind::DELETE, key)).flag;
}

bool RawMap::removeIfEqual(std::string_view key, std::string_view expected) const {
  auto op = SUBMITTER.make(OpKind::REMOVE_IF_VALUE, key);
  op->expected = std::string(expected);
  return SUBMITTER.run(std::move(op)).flag;
}

bool RawMap::removeIfVersion(std::string_view key, uint64_t expectedVersion) const {
  auto op = SUBMITTER.make(OpKind::REMOVE_IF_VERSION, key);
  op->version = expectedVersion;
  return SUBMITTER.run(std::move(op)).flag;
}

bool RawMap::setTtl(std::string_view key, std::chrono::milliseconds ttl) const {
  auto op = SUBMITTER.make(OpKind::SET_TTL, key);
  op->ttlMs = ttl.count();
  return SUBMITTER.run(std::move(op)).flag;
}

uint64_t RawMap::size() const {
  return SUBMITTER.run(SUBMITTER.make(OpKind::SIZE, "")).count;
}
uint64_t RawMap::clear() const {
  return SUBMITTER.run(SUBMITTER.make(OpKind::CLEAR, "")).count;
}

std::vector<std::pair<std::string, std::string>> RawMap::getAll(const std::vector<std::string>& keys) const {
  transport_->requireNotIoThread("getAll");
  std::vector<std::future<std::optional<std::string>>> futures;
  futures.reserve(keys.size());
  for (auto& k : keys) futures.push_back(getFuture(k));  // submitted together: one batch per member
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto v = futures[i].get()) out.emplace_back(keys[i], std::move(*v));
  }
  return out;
}

void RawMap::putAll(const std::vector<std::pair<std::string, std::string>>& entries,
                    const WriteOptions& o) const {
  transport_->requireNotIoThread("putAll");
  std::vector<std::future<Result<bool>>> futures;
  futures.reserve(entries.size());
  for (auto& [k, v] : entries) {
    auto promise = std::make_shared<std::promise<Result<bool>>>();
    futures.push_back(promise->get_future());
    setAsync(
        k, v, [promise](Result<bool> r) { promise->set_value(std::move(r)); }, o);
  }
  std::optional<Error> firstError;
  for (auto& f : futures) {
    auto r = f.get();
    if (!r.ok() && !firstError) firstError = r.error();
  }
  if (firstError) throw *firstError;
}

ScanPage RawMap::scan(uint64_t cursor, uint32_t limit, bool withValues) const {
  ScanPage page;
  auto name = name_;
  auto trace = traceId_;
  transport_->call(
      [&page, name, trace, cursor, limit, withValues](wire::Member::Client& member) {
        auto request = member.scanRequest();
        request.setMap(name);
        request.setCursor(cursor);
        request.setLimit(limit);
        request.setWithValues(withValues);
        request.setTraceId(trace);
        return request.send().then([&page](capnp::Response<wire::Member::ScanResults>&& response) {
          page.entries.clear();
          for (auto e : response.getEntries()) {
            page.entries.emplace_back(
                std::string(reinterpret_cast<const char*>(e.getKey().begin()), e.getKey().size()),
                std::string(reinterpret_cast<const char*>(e.getValue().begin()), e.getValue().size()));
          }
          page.cursor = response.getCursor();
        });
      },
      timeout_);
  return page;
}

void RawMap::getAsync(std::string_view key, Callback<std::optional<std::string>> done) const {
  SUBMITTER.async<std::optional<std::string>>(SUBMITTER.make(OpKind::GET, key), std::move(done), valueOf);
}

void RawMap::putAsync(std::string_view key, std::string_view value, Callback<std::optional<std::string>> done,
                      const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::PUT, key);
  Submitter::withWrite(*op, value, o);
  SUBMITTER.async<std::optional<std::string>>(std::move(op), std::move(done), valueOf);
}

void RawMap::setAsync(std::string_view key, std::string_view value, Callback<bool> done,
                      const WriteOptions& o) const {
  auto op = SUBMITTER.make(OpKind::SET, key);
  Submitter::withWrite(*op, value, o);
  SUBMITTER.async<bool>(std::move(op), std::move(done), [](Outcome&&) { return true; });
}

void RawMap::removeAsync(std::string_view key, Callback<std::optional<std::string>> done) const {
  SUBMITTER.async<std::optional<std::string>>(SUBMITTER.make(OpKind::REMOVE, key), std::move(done), valueOf);
}

std::future<std::optional<std::string>> RawMap::getFuture(std::string_view key) const {
  auto promise = std::make_shared<std::promise<std::optional<std::string>>>();
  auto future = promise->get_future();
  getAsync(key, [promise](Result<std::optional<std::string>> r) {
    if (r.ok()) {
      promise->set_value(std::move(r).value());
    } else {
      promise->set_exception(std::make_exception_ptr(r.error()));
    }
  });
  return future;
}

std::future<std::optional<std::string>> RawMap::putFuture(std::string_view key, std::string_view value,
                                                          const WriteOptions& o) const {
  auto promise = std::make_shared<std::promise<std::optional<std::string>>>();
  auto future = promise->get_future();
  putAsync(
      key, value,
      [promise](Result<std::optional<std::string>> r) {
        if (r.ok()) {
          promise->set_value(std::move(r).value());
        } else {
          promise->set_exception(std::make_exception_ptr(r.error()));
        }
      },
      o);
  return future;
}

ListenerId RawMap::addListener(EntryListener listener, bool includeValues) const {
  return transport_->addListener(name_, std::move(listener), includeValues);
}

void RawMap::removeListener(ListenerId id) const {
  transport_->removeListener(id);
}

RawMap RawMap::withTraceId(std::string traceId) const {
  RawMap copy = *this;
  copy.traceId_ = std::move(traceId);
  return copy;
}

RawMap RawMap::withTimeout(std::chrono::milliseconds timeout) const {
  RawMap copy = *this;
  copy.timeout_ = timeout;
  return copy;
}

}  // namespace shoal

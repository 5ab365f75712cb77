// The embedding API (shoal::Node, shoal::MapHandle): each call runs one operation on the shard
// thread through the same MapService code path as the RPC server, and waits for it.
#include "shoal/node/node.h"

#include <capnp/message.h>

#include "local_listeners.h"
#include "map_service.h"
#include "runtime.h"
#include "shoal/wire_error_code.h"

namespace shoal {
namespace {

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string stringOf(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

// One operation built as a wire message, executed on the shard, its result read back.
class OneOp {
 public:
  OneOp(const std::string& map, std::string_view key) : op_(opMessage_.initRoot<wire::MapOp>()) {
    op_.setMap(map);
    op_.setKey(bytesOf(key));
  }
  wire::MapOp::Builder op() { return op_; }

  // Through the member's own RPC face: in a cluster the operation goes to its key's owner and is
  // acknowledged once replicated (and stored), exactly as a client's.
  wire::OpResult::Reader run(node::Runtime& runtime) {
    runtime.callOnShard([this](wire::Member::Client& member) {
      auto request = member.executeRequest();
      auto batch = request.initBatch();
      batch.setTraceId("embedded");
      batch.setReadBackups(true);  // honoured for maps with read-backup-data only
      batch.initOps(1).setWithCaveats(0, op_.asReader());
      return request.send().then([this](capnp::Response<wire::Member::ExecuteResults>&& response) {
        auto results = response.getResults();
        if (results.size() == 1) {
          resultMessage_.setRoot(results[0]);
        } else {
          auto f = resultMessage_.initRoot<wire::OpResult>().initFailure();
          f.setCode(wire::ErrorCode::INTERNAL);
          f.setMessage("the member returned no result");
        }
      });
    });
    auto result = resultMessage_.getRoot<wire::OpResult>();
    auto r = result.asReader();
    if (r.isFailure()) {
      throw Error(toPublicCode(r.getFailure().getCode()), r.getFailure().getMessage().cStr());
    }
    return r;
  }

 private:
  capnp::MallocMessageBuilder opMessage_{256};
  capnp::MallocMessageBuilder resultMessage_{256};
  wire::MapOp::Builder op_;
};

void fillWrite(wire::Write::Builder w, std::string_view value, const WriteOptions& options) {
  w.setValue(bytesOf(value));
  w.setTtlMs(options.ttl ? options.ttl->count() : -1);
  w.setMaxIdleMs(options.maxIdle ? options.maxIdle->count() : -1);
}

std::optional<std::string> valueOrAbsent(wire::OpResult::Reader r) {
  if (r.isValue()) return stringOf(r.getValue());
  return std::nullopt;
}

}  // namespace

std::optional<std::string> MapHandle::get(std::string_view key) const {
  OneOp call(name_, key);
  call.op().setGet();
  return valueOrAbsent(call.run(*runtime_));
}

std::optional<EntryView> MapHandle::getEntry(std::string_view key) const {
  OneOp call(name_, key);
  call.op().setGetEntry();
  auto r = call.run(*runtime_);
  if (!r.isEntry()) return std::nullopt;
  auto e = r.getEntry();
  EntryView v;
  v.key = stringOf(e.getKey());
  v.value = stringOf(e.getValue());
  v.version = e.getVersion();
  v.creationTimeMs = e.getCreationTimeMs();
  v.updateTimeMs = e.getUpdateTimeMs();
  v.lastAccessTimeMs = e.getLastAccessTimeMs();
  v.expirationTimeMs = e.getExpirationTimeMs();
  v.ttlMs = e.getTtlMs();
  v.maxIdleMs = e.getMaxIdleMs();
  v.hits = e.getHits();
  return v;
}

bool MapHandle::containsKey(std::string_view key) const {
  OneOp call(name_, key);
  call.op().setContainsKey();
  return call.run(*runtime_).getFlag();
}

std::optional<std::string> MapHandle::put(std::string_view key, std::string_view value,
                                          const WriteOptions& options) const {
  OneOp call(name_, key);
  fillWrite(call.op().initPut(), value, options);
  return valueOrAbsent(call.run(*runtime_));
}

void MapHandle::set(std::string_view key, std::string_view value, const WriteOptions& options) const {
  OneOp call(name_, key);
  fillWrite(call.op().initSet(), value, options);
  call.run(*runtime_);
}

std::optional<std::string> MapHandle::putIfAbsent(std::string_view key, std::string_view value,
                                                  const WriteOptions& options) const {
  OneOp call(name_, key);
  fillWrite(call.op().initPutIfAbsent(), value, options);
  return valueOrAbsent(call.run(*runtime_));
}

std::optional<std::string> MapHandle::replace(std::string_view key, std::string_view value,
                                              const WriteOptions& options) const {
  OneOp call(name_, key);
  fillWrite(call.op().initReplace(), value, options);
  return valueOrAbsent(call.run(*runtime_));
}

bool MapHandle::replaceIfEqual(std::string_view key, std::string_view expected, std::string_view value,
                               const WriteOptions& options) const {
  OneOp call(name_, key);
  auto c = call.op().initReplaceIfValue();
  c.setExpected(bytesOf(expected));
  fillWrite(c.initWrite(), value, options);
  return call.run(*runtime_).getFlag();
}

bool MapHandle::replaceIfVersion(std::string_view key, uint64_t expectedVersion, std::string_view value,
                                 const WriteOptions& options) const {
  OneOp call(name_, key);
  auto c = call.op().initReplaceIfVersion();
  c.setExpectedVersion(expectedVersion);
  fillWrite(c.initWrite(), value, options);
  return call.run(*runtime_).getFlag();
}

std::optional<std::string> MapHandle::remove(std::string_view key) const {
  OneOp call(name_, key);
  call.op().setRemove();
  return valueOrAbsent(call.run(*runtime_));
}

bool MapHandle::removeIfEqual(std::string_view key, std::string_view expected) const {
  OneOp call(name_, key);
  call.op().setRemoveIfValue(bytesOf(expected));
  return call.run(*runtime_).getFlag();
}

bool MapHandle::removeIfVersion(std::string_view key, uint64_t expectedVersion) const {
  OneOp call(name_, key);
  call.op().setRemoveIfVersion(expectedVersion);
  return call.run(*runtime_).getFlag();
}

uint64_t MapHandle::size() const {
  OneOp call(name_, "");
  call.op().setSize();
  return call.run(*runtime_).getCount();
}

void MapHandle::clear() const {
  OneOp call(name_, "");
  call.op().setClear();
  call.run(*runtime_);
}

uint64_t MapHandle::scan(uint64_t cursor, uint32_t limit,
                         std::vector<std::pair<std::string, std::string>>* out, bool withValues) const {
  uint64_t next = 0;
  runtime_->runOnShard([&](node::MapService& maps) {
    auto* records = maps.findRecords(name_);
    if (!records) return;
    std::vector<node::MapRecords::ScanItem> items;
    next =
        records->scan(cursor, std::max(1u, std::min(limit, maps.limits().maxScanLimit)), withValues, &items);
    for (auto& item : items) out->emplace_back(std::move(item.key), std::move(item.value));
  });
  return next;
}

ListenerId MapHandle::addListener(EntryListener listener, bool includeValues) const {
  ListenerId id = 0;
  runtime_->callOnListeners([&](node::LocalListeners& listeners) {
    return listeners.add(name_, std::move(listener), includeValues).then([&id](uint64_t added) {
      id = added;
    });
  });
  return id;
}

void MapHandle::removeListener(ListenerId id) const {
  runtime_->callOnListeners([&](node::LocalListeners& listeners) -> kj::Promise<void> {
    listeners.remove(id);
    return kj::READY_NOW;
  });
}

std::unique_ptr<Node> Node::start(const NodeOptions& options) {
  return std::unique_ptr<Node>(new Node(std::make_unique<node::Runtime>(options)));
}

Node::Node(std::unique_ptr<node::Runtime> runtime) : runtime_(std::move(runtime)) {}
Node::~Node() {
  stop();
}

TopicHandle Node::topic(std::string_view name) {
  return TopicHandle(*runtime_, std::string(name));
}

MapHandle Node::map(std::string_view name) {
  if (name.empty()) throw Error(ErrorCode::INVALID_ARGUMENT, "map name is empty");
  return MapHandle(*runtime_, std::string(name));
}

std::string Node::address() const {
  return runtime_->address();
}
std::string Node::respAddress() const {
  return runtime_->respAddress();
}
const NodeOptions& Node::options() const {
  return runtime_->options();
}

std::vector<std::string> Node::mapNames() const {
  std::vector<std::string> names;
  runtime_->runOnShard([&](node::MapService& maps) {
    for (auto* m : maps.allMaps()) {
      if (m->name()[0] != '$') names.push_back(m->name());  // not topics' ring buffers
    }
  });
  return names;
}

void Node::stop() {
  runtime_->stop();
}

}  // namespace shoal

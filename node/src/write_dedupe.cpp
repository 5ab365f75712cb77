// Write dedupe by request id with client acknowledgement; see write_dedupe.h.
#include "write_dedupe.h"

namespace shoal::node {
namespace {
kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
}  // namespace

void WriteDedupe::beginBatch(uint64_t clientId, uint64_t lowestPending, int64_t nowMs) {
  if (clientId == 0) return;
  auto it = clients_.find(clientId);
  if (it == clients_.end()) return;  // created by the first remembered write
  auto& client = it->second;
  client.lastSeenMs = nowMs;
  if (lowestPending > 0)
    client.results.erase(client.results.begin(), client.results.lower_bound(lowestPending));
}

bool WriteDedupe::replay(uint64_t clientId, uint64_t requestId, wire::OpResult::Builder result) const {
  auto client = clients_.find(clientId);
  if (client == clients_.end()) return false;
  auto it = client->second.results.find(requestId);
  if (it == client->second.results.end()) return false;
  auto& c = it->second;
  switch (c.which) {
    case wire::OpResult::VALUE:
      result.setValue(bytesOf(c.value));
      break;
    case wire::OpResult::ABSENT:
      result.setAbsent();
      break;
    case wire::OpResult::FLAG:
      result.setFlag(c.flag);
      break;
    case wire::OpResult::COUNT:
      result.setCount(c.count);
      break;
    case wire::OpResult::FAILURE: {
      auto f = result.initFailure();
      f.setCode(c.code);
      f.setMessage(c.value);
      break;
    }
    case wire::OpResult::DONE:
    case wire::OpResult::ENTRY:  // writes never return entries
      result.setDone();
      break;
  }
  return true;
}

void WriteDedupe::remember(uint64_t clientId, uint64_t requestId, wire::OpResult::Reader result) {
  if (clientId == 0 || requestId == 0) return;
  auto& client = clients_[clientId];
  Cached c;
  c.which = result.which();
  switch (c.which) {
    case wire::OpResult::VALUE: {
      auto v = result.getValue();
      c.value.assign(reinterpret_cast<const char*>(v.begin()), v.size());
      break;
    }
    case wire::OpResult::FLAG:
      c.flag = result.getFlag();
      break;
    case wire::OpResult::COUNT:
      c.count = result.getCount();
      break;
    case wire::OpResult::FAILURE:
      c.code = result.getFailure().getCode();
      c.value = result.getFailure().getMessage();
      break;
    default:
      break;
  }
  client.results.insert_or_assign(requestId, std::move(c));
  while (client.results.size() > limits_.maxPerClient) client.results.erase(client.results.begin());
}

void WriteDedupe::forget(uint64_t clientId, uint64_t requestId) {
  auto it = clients_.find(clientId);
  if (it != clients_.end()) it->second.results.erase(requestId);
}

void WriteDedupe::expireIdle(int64_t nowMs) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (nowMs - it->second.lastSeenMs > limits_.idleClientMs) {
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t WriteDedupe::size() const {
  size_t n = 0;
  for (auto& [_, c] : clients_) n += c.results.size();
  return n;
}

}  // namespace shoal::node

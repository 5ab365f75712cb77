// Redis pub/sub on Shoal topics; see resp_pubsub.h.
#include "resp_pubsub.h"

#include <kj/debug.h>

#include "../member_log.h"
#include "../topic/topic_log.h"
#include "resp_commands.h"
#include "resp_protocol.h"
#include "shoal/error.h"

namespace shoal::node::resp {
namespace {

constexpr auto SCAN_INTERVAL = 1 * kj::SECONDS;  // how often patterns look for new topics
constexpr auto CALL_TIMEOUT = 5 * kj::SECONDS;

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// The member's message without the "shoal:<code>: " prefix of a failed call.
std::string reasonOf(const kj::Exception& e) {
  std::string text = e.getDescription().cStr();
  auto at = text.find("shoal:");
  if (at == std::string::npos) return text;
  auto colon = text.find(": ", at);
  return colon == std::string::npos ? text : text.substr(colon + 2);
}

std::string errorLine(std::string_view text) {
  std::string out;
  ReplyWriter(&out).error(text);
  return out;
}

void confirmation(ReplyWriter& out, std::string_view kind, const std::string* name, size_t count) {
  out.pushHeader(3);
  out.bulk(kind);
  name != nullptr ? out.bulk(*name) : out.null();
  out.integer(int64_t(count));
}

}  // namespace

PubSub::PubSub(wire::Member::Client member, kj::Timer& timer, Push push)
    : member_(member),
      timer_(timer),
      push_(std::move(push)),
      // Callbacks run right here on the shard thread: they only append to connections' buffers.
      subscriptions_(kj::mv(member), timer, [](std::function<void()> fn) { fn(); }),
      tasks_(*this) {}

PubSub::~PubSub() = default;

PubSub::Watched& PubSub::watch(const std::string& topic, SubscribeFrom from) {
  auto found = watched_.find(topic);
  if (found != watched_.end()) return *found->second;
  auto token = nextToken_++;
  auto paf = kj::newPromiseAndFulfiller<void>();
  auto w = std::unique_ptr<Watched>(new Watched{token, 0, paf.promise.fork(), kj::mv(paf.fulfiller), {}});
  auto& ref = *w;
  watched_.emplace(topic, std::move(w));

  TopicHandler handler;
  handler.onMessage = [this, topic](const TopicMessage& m) { deliver(topic, m.value); };
  handler.onGap = [topic](const std::string&, uint64_t from, uint64_t to) {
    memberLog().debug("RESP subscribers of '{}' missed messages {}..{} (dropped before delivery)", topic,
                      from, to);
  };
  // Cut off (fell behind): subscribe again from where it stopped, for whoever still wants it.
  handler.onClosed = [this, topic, token](const std::string&, const Error& reason, uint64_t next) {
    memberLog().info("RESP subscription to '{}' was cut off ({}); resuming from {}", topic, reason.what(),
                     next);
    tasks_.add(kj::evalLater([this, topic, token, next]() {
      auto it = watched_.find(topic);
      if (it == watched_.end() || it->second->token != token) return;
      auto clients = std::move(it->second->clients);
      watched_.erase(it);
      if (clients.empty() && !matchesPattern(topic)) return;
      watch(topic, SubscribeFrom::at(next)).clients = std::move(clients);
    }));
  };
  tasks_.add(subscriptions_.add(topic, from, std::move(handler))
                 .then(
                     [this, topic, token](SubscriptionId id) {
                       auto it = watched_.find(topic);
                       if (it == watched_.end() || it->second->token != token) {
                         subscriptions_.remove(id);  // nobody wants it any more
                         return;
                       }
                       it->second->id = id;
                       it->second->fulfiller->fulfill();
                     },
                     [this, topic, token](kj::Exception&& e) {
                       auto it = watched_.find(topic);
                       if (it == watched_.end() || it->second->token != token) return;
                       it->second->fulfiller->reject(kj::mv(e));
                       watched_.erase(it);  // the next SUBSCRIBE or topic scan tries again
                     }));
  return ref;
}

bool PubSub::matchesPattern(const std::string& topic) const {
  for (auto& [pattern, _] : patterns_) {
    if (globMatch(pattern, topic)) return true;
  }
  return false;
}

void PubSub::release(const std::string& topic) {
  auto it = watched_.find(topic);
  if (it == watched_.end() || !it->second->clients.empty() || matchesPattern(topic)) return;
  if (it->second->id != 0) subscriptions_.remove(it->second->id);
  watched_.erase(it);  // an add still in flight finds its token gone and removes what it made
}

kj::Promise<std::string> PubSub::subscribe(int64_t client, std::vector<std::string> channels, int protocol) {
  for (auto& channel : channels) {
    if (auto invalid = topic::invalidName(channel)) {
      return errorLine("ERR invalid channel name for a Shoal topic: " + *invalid);
    }
  }
  auto& c = clients_[client];
  size_t before = c.channels.size() + c.patterns.size();
  auto fresh = std::make_shared<std::vector<bool>>();
  auto waits = kj::heapArrayBuilder<kj::Promise<std::string>>(channels.size());
  for (auto& channel : channels) {
    fresh->push_back(c.channels.insert(channel).second);
    if (!fresh->back()) {
      waits.add(std::string());
      continue;
    }
    auto& w = watch(channel, SubscribeFrom::latest());
    w.clients.insert(client);
    waits.add(w.ready.addBranch().then([]() { return std::string(); },
                                       [](kj::Exception&& e) { return reasonOf(e); }));
  }
  return kj::joinPromises(waits.finish())
      .then([this, client, before, fresh, protocol,
             channels = std::move(channels)](kj::Array<std::string> failures) {
        std::string out;
        ReplyWriter writer(&out, protocol);
        auto it = clients_.find(client);
        if (it == clients_.end()) return out;  // the connection is gone
        size_t running = before;
        for (size_t i = 0; i < channels.size(); ++i) {
          if (!failures[i].empty()) {
            it->second.channels.erase(channels[i]);
            auto w = watched_.find(channels[i]);
            if (w != watched_.end()) w->second->clients.erase(client);
            release(channels[i]);
            writer.error("ERR cannot subscribe to '" + channels[i] + "': " + failures[i]);
            continue;
          }
          if ((*fresh)[i]) ++running;
          confirmation(writer, "subscribe", &channels[i], running);
        }
        if (it->second.channels.empty() && it->second.patterns.empty()) clients_.erase(it);
        return out;
      });
}

std::string PubSub::unsubscribe(int64_t client, const std::vector<std::string>& channels, int protocol) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  auto it = clients_.find(client);
  std::vector<std::string> all;
  if (channels.empty() && it != clients_.end())
    all.assign(it->second.channels.begin(), it->second.channels.end());
  auto& list = channels.empty() ? all : channels;
  if (list.empty()) confirmation(writer, "unsubscribe", nullptr, count(client));
  for (auto& channel : list) {
    if (it != clients_.end() && it->second.channels.erase(channel) > 0) {
      auto w = watched_.find(channel);
      if (w != watched_.end()) w->second->clients.erase(client);
      release(channel);
    }
    confirmation(writer, "unsubscribe", &channel, count(client));
  }
  if (it != clients_.end() && it->second.channels.empty() && it->second.patterns.empty()) clients_.erase(it);
  return out;
}

kj::Promise<std::string> PubSub::psubscribe(int64_t client, std::vector<std::string> patterns, int protocol) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  auto& c = clients_[client];
  for (auto& pattern : patterns) {
    c.patterns.insert(pattern);
    patterns_[pattern].insert(client);
    confirmation(writer, "psubscribe", &pattern, c.channels.size() + c.patterns.size());
  }
  if (!scanRunning_) {
    scanRunning_ = true;
    scanning_ = scanLoop().eagerlyEvaluate([this](kj::Exception&& e) {
      scanRunning_ = false;
      memberLog().warn("RESP pattern topic scan stopped: {}", e.getDescription().cStr());
    });
  }
  // The topics that exist now are subscribed before the confirmation goes out.
  return scanTopics().then([out = std::move(out)]() { return out; });
}

std::string PubSub::punsubscribe(int64_t client, const std::vector<std::string>& patterns, int protocol) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  auto it = clients_.find(client);
  std::vector<std::string> all;
  if (patterns.empty() && it != clients_.end())
    all.assign(it->second.patterns.begin(), it->second.patterns.end());
  auto& list = patterns.empty() ? all : patterns;
  if (list.empty()) confirmation(writer, "punsubscribe", nullptr, count(client));
  bool removed = false;
  for (auto& pattern : list) {
    if (it != clients_.end() && it->second.patterns.erase(pattern) > 0) {
      auto p = patterns_.find(pattern);
      if (p != patterns_.end() && p->second.erase(client) > 0 && p->second.empty()) {
        patterns_.erase(p);
        removed = true;
      }
    }
    confirmation(writer, "punsubscribe", &pattern, count(client));
  }
  if (removed) {
    std::vector<std::string> topics;
    for (auto& [topic, _] : watched_) topics.push_back(topic);
    for (auto& topic : topics) release(topic);
  }
  if (it != clients_.end() && it->second.channels.empty() && it->second.patterns.empty()) clients_.erase(it);
  return out;
}

size_t PubSub::count(int64_t client) const {
  auto it = clients_.find(client);
  return it == clients_.end() ? 0 : it->second.channels.size() + it->second.patterns.size();
}

void PubSub::drop(int64_t client) {
  if (clients_.count(client) == 0) return;
  unsubscribe(client, {}, 2);
  punsubscribe(client, {}, 2);
  clients_.erase(client);
}

kj::Promise<std::string> PubSub::publish(std::string channel, std::string message) {
  if (auto invalid = topic::invalidName(channel)) {
    return errorLine("ERR invalid channel name for a Shoal topic: " + *invalid);
  }
  auto request = member_.executeRequest();
  auto batch = request.initBatch();
  batch.setTraceId("resp");
  auto op = batch.initOps(1)[0];
  op.setMap(channel);
  op.setKey(bytesOf(channel));
  op.initPublish().setValue(bytesOf(message));
  return request.send().then(
      [this, channel](capnp::Response<wire::Member::ExecuteResults>&& response) -> std::string {
        auto results = response.getResults();
        if (results.size() != 1) return errorLine("ERR the member returned no result for the publish");
        if (results[0].isFailure()) {
          auto failure = results[0].getFailure();
          auto code = failure.getCode();
          bool retry = code == wire::ErrorCode::UNAVAILABLE || code == wire::ErrorCode::WRONG_OWNER ||
                       code == wire::ErrorCode::TIMEOUT;
          return errorLine(std::string(retry ? "TRYAGAIN " : "ERR ") + failure.getMessage().cStr());
        }
        // A pattern matches a topic not watched yet: watch it from this very message on.
        if (watched_.count(channel) == 0 && matchesPattern(channel)) {
          watch(channel, SubscribeFrom::at(results[0].getCount()));
        }
        std::string out;
        ReplyWriter(&out).integer(int64_t(receivers(channel)));
        return out;
      },
      [](kj::Exception&& e) { return errorLine("TRYAGAIN publish failed: " + reasonOf(e) + "; retry"); });
}

size_t PubSub::receivers(const std::string& channel) const {
  size_t n = 0;
  auto it = watched_.find(channel);
  if (it != watched_.end()) n += it->second->clients.size();
  for (auto& [pattern, clients] : patterns_) {
    if (globMatch(pattern, channel)) n += clients.size();
  }
  return n;
}

void PubSub::deliver(const std::string& topic, const std::string& payload) {
  std::string frame;
  ReplyWriter writer(&frame);
  auto it = watched_.find(topic);
  if (it != watched_.end() && !it->second->clients.empty()) {
    writer.arrayHeader(3);
    writer.bulk("message");
    writer.bulk(topic);
    writer.bulk(payload);
    for (auto client : it->second->clients) push_(client, frame);
  }
  for (auto& [pattern, clients] : patterns_) {
    if (!globMatch(pattern, topic)) continue;
    frame.clear();
    writer.arrayHeader(4);
    writer.bulk("pmessage");
    writer.bulk(pattern);
    writer.bulk(topic);
    writer.bulk(payload);
    for (auto client : clients) push_(client, frame);
  }
}

kj::Promise<void> PubSub::scanTopics() {
  auto request = member_.listTopicsRequest();
  return timer_.timeoutAfter(CALL_TIMEOUT, request.send())
      .then([this](capnp::Response<wire::Member::ListTopicsResults>&& response) {
        kj::Vector<kj::Promise<void>> waits;
        for (auto t : response.getTopics()) {
          std::string name = t.getName();
          if (watched_.count(name) > 0 || !matchesPattern(name)) continue;
          waits.add(watch(name, SubscribeFrom::latest()).ready.addBranch());
        }
        return kj::joinPromises(waits.releaseAsArray());
      })
      .catch_([](kj::Exception&& e) {
        memberLog().debug("RESP pattern subscriptions: listing topics failed ({}); next scan retries",
                          e.getDescription().cStr());
      });
}

kj::Promise<void> PubSub::scanLoop() {
  return timer_.afterDelay(SCAN_INTERVAL).then([this]() -> kj::Promise<void> {
    if (patterns_.empty()) {
      scanRunning_ = false;
      return kj::READY_NOW;
    }
    return scanTopics().then([this]() { return scanLoop(); });
  });
}

void PubSub::taskFailed(kj::Exception&& exception) {
  memberLog().debug("RESP pub/sub task failed: {}", exception.getDescription().cStr());
}

}  // namespace shoal::node::resp

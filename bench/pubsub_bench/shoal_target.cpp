// Shoal side of shoal-pubsub-bench: the client library's topics.
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "shoal/client/client.h"
#include "targets.h"

namespace shoal::bench {
namespace {

class ShoalTarget final : public PubSubTarget {
 public:
  explicit ShoalTarget(const std::string& address) : address_(address) {
    publisher_ = Client::connect(options());
  }
  ~ShoalTarget() override { close(); }

  void subscribe(const std::string& channel, int count, OnMessage onMessage) override {
    for (int i = 0; i < count; ++i) {
      auto client = Client::connect(options());
      TopicHandler handler;
      handler.onMessage = [i, onMessage](const TopicMessage& m) { onMessage(i, m.value); };
      client->topic(channel).subscribe(std::move(handler), SubscribeFrom::latest());
      subscribers_.push_back(std::move(client));
    }
  }

  void publish(const std::string& channel, std::string payload, std::function<void(bool)> acked) override {
    if (!topic_ || topic_->name() != channel) topic_ = std::make_unique<Topic>(publisher_->topic(channel));
    topic_->publishAsync(OutgoingMessage{std::move(payload), {}, {}},
                         [acked = std::move(acked)](Result<uint64_t> r) { acked(r.ok()); });
  }

  void close() override {
    topic_.reset();
    for (auto& c : subscribers_) c->close();
    if (publisher_) publisher_->close();
  }

 private:
  ClientOptions options() const {
    ClientOptions o;
    o.servers = {address_};
    return o;
  }
  std::string address_;
  std::unique_ptr<Client> publisher_;
  std::unique_ptr<Topic> topic_;
  std::vector<std::unique_ptr<Client>> subscribers_;
};

}  // namespace

std::unique_ptr<PubSubTarget> shoalTarget(const std::string& address) {
  return std::make_unique<ShoalTarget>(address);
}

}  // namespace shoal::bench

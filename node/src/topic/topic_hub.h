// The subscribers of the topics this member owns: where each one is (its next sequence number),
// pushing committed messages to it in order (one flow-controlled call in flight per subscriber,
// read straight from the topic's ring buffer, so a subscriber costs no copy of the messages), the
// gap signal, and cutting off a subscriber that falls further behind than the topic allows.
// Messages are delivered once committed: replicated to the backups (and stored, for durable
// topics), so a subscriber never sees a message a failover could take back. Shard thread only.
#pragma once

#include <capnp/message.h>
#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "record_store.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::node {
class MapService;
}

namespace shoal::node::topic {

class TopicHub : public std::enable_shared_from_this<TopicHub>, private kj::TaskSet::ErrorHandler {
 public:
  TopicHub(MapService& maps, kj::Timer& timer);
  ~TopicHub();

  // A new subscriber of `topic` (whose partition `p` this member owns).
  struct Started {
    wire::TopicSubscription::Client subscription;
    uint64_t next;  // the first sequence number it gets (a gap signal first if that is dropped)
  };
  Started subscribe(const std::string& topic, PartitionId p, wire::SubscribeFrom::Reader from,
                    wire::TopicSubscriber::Client subscriber);

  // A message was appended here (not yet committed).
  void applied(const std::string& topic, uint64_t seq);
  // Messages of `topic` up to `seq` are committed (replicated, stored): deliver them.
  void committed(const std::string& topic, uint64_t seq);
  // The last committed sequence number of `topic` (0: none).
  uint64_t lastCommitted(const std::string& topic, PartitionId p);

  // Ends the subscriptions of topics whose partition `owned` rejects (WRONG_OWNER: they moved) and
  // forgets what it knew of those topics.
  void closeMoved(const std::function<bool(PartitionId)>& owned);
  // Ends every subscription (UNAVAILABLE: the member is stopping).
  void closeAll(const std::string& reason);

  uint32_t subscribers(const std::string& topic) const;
  // Where subscription `id` of `topic` is: next to deliver, last committed. Throws
  // "shoal:overloaded: ..." for a subscriber that was cut off (its onClosed may still be queued
  // behind deliveries) and "shoal:wrong-owner: ..." for one that ended otherwise.
  std::pair<uint64_t, uint64_t> position(const std::string& topic, uint64_t id);
  void remove(const std::string& topic, uint64_t id);
  // The subscription capability is gone: forget it entirely.
  void forget(const std::string& topic, uint64_t id);

 private:
  struct Subscriber;
  struct Topic {
    uint64_t committed = 0;  // last committed sequence number
    PartitionId partition = 0;
    std::map<uint64_t, std::shared_ptr<Subscriber>> subscribers;
    // The last batch sent (messages batchFrom..batchTo, immutable), for subscribers at the same place.
    std::unique_ptr<capnp::MallocMessageBuilder> batch;
    uint64_t batchFrom = 0, batchTo = 0, batchWords = 0;
  };
  Topic& topicState(const std::string& topic, PartitionId p);
  void pump(const std::shared_ptr<Subscriber>& s);
  void sent(const std::shared_ptr<Subscriber>& s, kj::Promise<void> delivery);
  void close(const std::shared_ptr<Subscriber>& s, wire::ErrorCode code, const std::string& reason);
  void taskFailed(kj::Exception&& exception) override;

  MapService& maps_;
  kj::Timer& timer_;
  std::unordered_map<std::string, Topic> topics_;
  std::map<uint64_t, std::string> cutOff_;  // ids of cut-off subscribers (until their capability goes)
  uint64_t nextId_ = 1;
  kj::TaskSet tasks_;
};

}  // namespace shoal::node::topic

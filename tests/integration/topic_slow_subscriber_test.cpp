// A subscriber that stops taking messages, against a real shoald: the member's memory stays
// bounded while publishers go on, the member cuts the subscriber off, and the subscriber learns
// why (and where to resume) once it reads again. Spoken in raw Cap'n Proto, so the subscriber can
// misbehave exactly as a stuck process would.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "shoal/proto/shoal.capnp.h"
#include "shoald_process.h"

using shoal::test::ShoaldProcess;

namespace {

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

long rssKb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Takes its first batch, then blocks every later call until released.
class StuckSubscriber final : public shoal::wire::TopicSubscriber::Server {
 public:
  StuckSubscriber(kj::ForkedPromise<void>& release, uint64_t* received, std::string* closedReason,
                  uint64_t* resumeFrom)
      : release_(release), received_(received), closedReason_(closedReason), resumeFrom_(resumeFrom) {}
  kj::Promise<void> onMessages(OnMessagesContext context) override {
    *received_ += context.getParams().getMessages().size();
    return release_.addBranch();
  }
  kj::Promise<void> onGap(OnGapContext) override { return release_.addBranch(); }
  kj::Promise<void> onClosed(OnClosedContext context) override {
    auto params = context.getParams();
    *closedReason_ =
        std::string(params.getReason().getMessage().cStr()) +
        (params.getReason().getCode() == shoal::wire::ErrorCode::OVERLOADED ? " [overloaded]" : "");
    *resumeFrom_ = params.getNext();
    return kj::READY_NOW;
  }

 private:
  kj::ForkedPromise<void>& release_;
  uint64_t* received_;
  std::string* closedReason_;
  uint64_t* resumeFrom_;
};

}  // namespace

TEST_CASE("topics: a subscriber that never reads is cut off with a reason and member memory stays bounded",
          "[integration][topic]") {
  ShoaldProcess member;
  auto io = kj::setupAsyncIo();
  auto connect = [&]() {
    return io.provider->getNetwork()
        .parseAddress(member.address())
        .wait(io.waitScope)
        ->connect()
        .wait(io.waitScope);
  };
  auto subscriberStream = connect();
  capnp::TwoPartyClient subscriberRpc(*subscriberStream);
  auto subscriberSide = subscriberRpc.bootstrap().castAs<shoal::wire::Member>();
  auto publisherStream = connect();
  capnp::TwoPartyClient publisherRpc(*publisherStream);
  auto publisherSide = publisherRpc.bootstrap().castAs<shoal::wire::Member>();

  auto gate = kj::newPromiseAndFulfiller<void>();
  auto release = gate.promise.fork();
  uint64_t received = 0, resumeFrom = 0;
  std::string closedReason;
  auto subscribe = subscriberSide.subscribeRequest();
  subscribe.setTopic("firehose");
  subscribe.initFrom().setLatest();
  subscribe.setSubscriber(kj::heap<StuckSubscriber>(release, &received, &closedReason, &resumeFrom));
  auto subscription = subscribe.send().wait(io.waitScope).getSubscription();

  // 100 MB through a topic that keeps 10000 messages of 1 KiB (about 10 MB).
  std::string value(1024, 'm');
  auto baseline = rssKb(member.pid());
  long peak = baseline;
  uint64_t refused = 0;
  for (int batch = 0; batch < 100; ++batch) {
    auto request = publisherSide.executeRequest();
    auto ops = request.initBatch().initOps(1000);
    for (uint32_t i = 0; i < 1000; ++i) {
      ops[i].setMap("firehose");
      ops[i].setKey(bytesOf("firehose"));
      ops[i].initPublish().setValue(bytesOf(value));
    }
    auto response = request.send().wait(io.waitScope);
    for (auto r : response.getResults()) refused += r.isCount() ? 0 : 1;
    peak = std::max(peak, rssKb(member.pid()));
  }
  INFO("member RSS: " << baseline << " kB before, peak " << peak << " kB while 100 MB went through");
  CHECK(refused == 0);
  CHECK(peak - baseline < 96 * 1024);
  WARN("member RSS grew " << (peak - baseline) / 1024
                          << " MB while 100 MB went through a stuck subscriber's topic");

  // The member dropped the subscription: the topic lists no subscriber.
  auto topics = publisherSide.listTopicsRequest().send().wait(io.waitScope).getTopics();
  REQUIRE(topics.size() == 1);
  CHECK(topics[0].getSubscribers() == 0);
  CHECK(topics[0].getLastSeq() == 100000);
  CHECK(topics[0].getRetained() <= 10000);

  // Once the subscriber reads again it learns why and where to resume.
  gate.fulfiller->fulfill();
  for (int i = 0; i < 500 && closedReason.empty(); ++i)
    io.provider->getTimer().afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
  INFO("the subscriber took " << received << " messages before it stopped reading");
  CHECK(closedReason.find("behind") != std::string::npos);
  CHECK(closedReason.find("[overloaded]") != std::string::npos);
  CHECK(resumeFrom >= 1);
  CHECK(resumeFrom == received + 1);  // delivered: 1..received, nothing skipped
  CHECK(member.alive());
}

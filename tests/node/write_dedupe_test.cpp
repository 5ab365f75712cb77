// Write dedupe: a retried write gets its first result; acknowledged ids and idle clients are
// forgotten, so memory follows the writes in flight.
#include "write_dedupe.h"

#include <capnp/message.h>

#include <catch2/catch.hpp>

using shoal::node::WriteDedupe;
namespace wire = shoal::wire;

namespace {
struct ResultMessage {
  capnp::MallocMessageBuilder message;
  wire::OpResult::Builder result = message.initRoot<wire::OpResult>();
};
}  // namespace

TEST_CASE("node: a retried write replays its first result", "[node][unit]") {
  WriteDedupe dedupe;
  ResultMessage first;
  std::string previous = "old";
  first.result.setValue(kj::arrayPtr(reinterpret_cast<const kj::byte*>(previous.data()), previous.size()));
  dedupe.remember(7, 1, first.result.asReader());
  ResultMessage flag;
  flag.result.setFlag(true);
  dedupe.remember(7, 2, flag.result.asReader());

  ResultMessage replayed;
  REQUIRE(dedupe.replay(7, 1, replayed.result));
  REQUIRE(replayed.result.isValue());
  CHECK(std::string(reinterpret_cast<const char*>(replayed.result.getValue().begin()),
                    replayed.result.getValue().size()) == "old");
  ResultMessage other;
  CHECK_FALSE(dedupe.replay(8, 1, other.result));  // another client's id 1 is a different write
  CHECK_FALSE(dedupe.replay(7, 3, other.result));
  REQUIRE(dedupe.replay(7, 2, other.result));
  CHECK(other.result.getFlag());
}

TEST_CASE("node: dedupe forgets what the client acknowledged and idle clients", "[node][unit]") {
  WriteDedupe dedupe(WriteDedupe::Limits{.maxPerClient = 1000, .idleClientMs = 60'000});
  ResultMessage done;
  done.result.setDone();
  for (uint64_t id = 1; id <= 100; ++id) dedupe.remember(1, id, done.result.asReader());
  dedupe.remember(2, 1, done.result.asReader());
  CHECK(dedupe.size() == 101);
  dedupe.beginBatch(1, 91, 1000);  // client 1 waits only for ids >= 91
  CHECK(dedupe.size() == 11);
  ResultMessage out;
  CHECK_FALSE(dedupe.replay(1, 90, out.result));
  CHECK(dedupe.replay(1, 91, out.result));
  dedupe.expireIdle(1000 + 59'000);
  CHECK(dedupe.clients() == 2);
  dedupe.beginBatch(1, 0, 100'000);
  dedupe.expireIdle(100'000 + 1);  // client 2 silent since time 0, client 1 seen at 100000
  CHECK(dedupe.clients() == 1);
  for (uint64_t id = 200; id < 3000; ++id) dedupe.remember(1, id, done.result.asReader());
  CHECK(dedupe.size() == 1000);  // a client that never acknowledges is capped
}

// End to end: the same write sent twice with the same (client id, request id) — as a client's
// retry after a lost reply — is applied once and both replies carry the first result.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <catch2/catch.hpp>

#include "shoal/client/client.h"
#include "shoal/proto/shoal.capnp.h"
#include "shoald_process.h"

using shoal::test::ShoaldProcess;

TEST_CASE("dedupe: a retried write is applied once", "[integration]") {
  ShoaldProcess member;
  auto io = kj::setupAsyncIo();
  auto address = io.provider->getNetwork().parseAddress(member.address()).wait(io.waitScope);
  auto stream = address->connect().wait(io.waitScope);
  capnp::TwoPartyClient rpc(*stream);
  auto memberCap = rpc.bootstrap().castAs<shoal::wire::Member>();

  auto sendPut = [&](const char* value, uint64_t requestId, uint64_t lowestPending) {
    auto request = memberCap.executeRequest();
    auto batch = request.initBatch();
    batch.setClientId(0xC0FFEE);
    batch.setLowestPending(lowestPending);
    auto op = batch.initOps(1)[0];
    op.setMap("d");
    op.setKey(kj::StringPtr("k").asBytes());
    op.setRequestId(requestId);
    op.initPut().setValue(kj::StringPtr(value).asBytes());
    auto response = request.send().wait(io.waitScope);
    auto r = response.getResults()[0];
    return r.isValue() ? std::string(reinterpret_cast<const char*>(r.getValue().begin()), r.getValue().size())
                       : std::string("<absent>");
  };

  CHECK(sendPut("v1", 1, 1) == "<absent>");
  CHECK(sendPut("v2", 2, 2) == "v1");
  CHECK(sendPut("v2", 2, 2) == "v1");  // the retry: same id, same answer, not applied again
  CHECK(sendPut("v3", 3, 3) == "v2");

  shoal::ClientOptions options;
  options.servers = {member.address()};
  auto client = shoal::Client::connect(options);
  auto entry = client->rawMap("d").getEntry("k");
  REQUIRE(entry);
  CHECK(entry->version == 3);  // three writes applied, not four
  CHECK(entry->value == "v3");

  // Once acknowledged (lowestPending moved past it), an id is forgotten: reusing it applies again.
  CHECK(sendPut("v4", 2, 4) == "v3");
}

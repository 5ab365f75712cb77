// A service using Shoal through the client library: typed map handles, blocking and asynchronous
// (std::future) calls, per-write TTL, compare-and-set, and error handling by ErrorCode.
// Needs a running member:
//
//   shoald --listen 127.0.0.1:5701 &
//   client_app [HOST:PORT]        (default 127.0.0.1:5701)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "shoal/client/client.h"

using namespace std::chrono_literals;

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "client_app: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  shoal::ClientOptions options;
  options.servers = {argc > 1 ? argv[1] : "127.0.0.1:5701"};
  options.requestTimeout = 3s;  // deadline of every operation, retries included

  std::unique_ptr<shoal::Client> client;
  try {
    client = shoal::Client::connect(options);
  } catch (const shoal::Error& e) {
    // UNAVAILABLE: nothing answered at the address within connectTimeout.
    return fail(std::string("cannot connect to ") + options.servers[0] + ": " + e.what());
  }
  auto member = client->ping();
  std::printf("connected to member '%s' (%s), version %s\n", member.name.c_str(), member.address.c_str(),
              member.version.c_str());

  try {
    // Integers are stored as decimal text, so shoalctl and redis-cli read them as numbers.
    auto stock = client->map<std::string, int64_t>("example:stock");
    stock.clear();
    stock.set("apple", 120);
    stock.set("pear", 40);

    // Asynchronous calls: many in flight at once (coalesced into few round trips), collected later.
    std::vector<std::future<std::optional<int64_t>>> pending;
    for (int i = 0; i < 50; ++i) pending.push_back(stock.putAsync("sku-" + std::to_string(i), i * 10));
    for (auto& f : pending) f.get();  // rethrows a shoal::Error if the put failed
    auto pear = stock.getAsync("pear");
    std::printf("pear = %lld (read asynchronously)\n", static_cast<long long>(pear.get().value_or(-1)));
    std::printf("example:stock holds %llu entries\n", static_cast<unsigned long long>(stock.size()));
    if (stock.size() != 52) return fail("expected 52 entries");

    // Optimistic update: read the entry's version, write only if nobody changed it meanwhile.
    for (int attempt = 0;; ++attempt) {
      auto entry = stock.getEntry("apple");
      auto current = shoal::Codec<int64_t>::decode(entry->value);
      if (stock.replaceIfVersion("apple", entry->version, current - 1)) break;
      if (attempt == 10) return fail("apple kept changing under us");
    }
    std::printf("apple = %lld after selling one\n", static_cast<long long>(*stock.get("apple")));

    // TTL: a reservation that holds for 300 ms unless confirmed.
    auto holds = client->map<std::string, int64_t>("example:holds");
    shoal::WriteOptions hold300ms;
    hold300ms.ttl = 300ms;  // maxIdle left unset: the map's default
    holds.set("order-7", 3, hold300ms);
    auto hold = holds.getEntry("order-7");
    std::printf("hold order-7 expires in %lld ms\n", static_cast<long long>(hold ? hold->ttlMs : -1));
    std::this_thread::sleep_for(600ms);
    if (holds.get("order-7")) return fail("the hold should have expired");
    std::printf("hold order-7 expired\n");

    // Errors carry a code to act on; a value over the member's limit is TOO_LARGE, not retriable.
    auto blobs = client->rawMap("example:blobs");
    try {
      blobs.set("too-big", std::string(9 * 1024 * 1024, 'x'));
      std::printf("the member accepted a 9 MiB value (its limits.max-value-bytes is raised)\n");
    } catch (const shoal::Error& e) {
      if (e.code() != shoal::ErrorCode::TOO_LARGE) throw;
      std::printf("rejected as expected: %s (retriable: %s)\n", e.what(), e.retriable() ? "yes" : "no");
    }
    blobs.erase("too-big");
    stock.clear();
  } catch (const shoal::Error& e) {
    return fail(e.what());
  }
  client->close();
  std::printf("client_app: ok\n");
  return 0;
}

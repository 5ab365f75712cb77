// Storing your own Cap'n Proto structs in Shoal: a shoal::Codec<Order> specialisation encodes a
// plain C++ Order as a flat Cap'n Proto message (messageToFlatArray) and decodes it with a
// FlatArrayMessageReader, so any service that has example_types.capnp can read the values.
//
// Self-contained: it starts an embedded member on a free loopback port and connects a client to
// it. Exits 0 when every check passes; CI runs it.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "example_types.capnp.h"
#include "shoal/client/client.h"
#include "shoal/node/node.h"

namespace shoal::example {

// The application's type: plain C++, no Cap'n Proto in its interface.
struct Order {
  struct Line {
    std::string sku;
    uint32_t quantity = 0;
    bool operator==(const Line&) const = default;
  };
  uint64_t id = 0;
  std::string customer;
  int64_t amountCents = 0;
  std::vector<Line> lines;
  bool operator==(const Order&) const = default;
};

}  // namespace shoal::example

namespace shoal {

template <>
struct Codec<example::Order> {
  static std::string encode(const example::Order& order) {
    capnp::MallocMessageBuilder message;
    auto root = message.initRoot<example::schema::Order>();
    root.setId(order.id);
    root.setCustomer(order.customer);
    root.setAmountCents(order.amountCents);
    auto lines = root.initLines(order.lines.size());
    for (size_t i = 0; i < order.lines.size(); ++i) {
      lines[i].setSku(order.lines[i].sku);
      lines[i].setQuantity(order.lines[i].quantity);
    }
    auto words = capnp::messageToFlatArray(message);
    auto bytes = words.asBytes();
    return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  }

  // Stored bytes come from the network: a malformed value is reported as INVALID_ARGUMENT, never a
  // crash, and the traversal limit bounds the work a hostile value can cause.
  static example::Order decode(std::string_view bytes) {
    if (bytes.size() % sizeof(capnp::word) != 0) {
      throw Error(ErrorCode::INVALID_ARGUMENT, "stored bytes are not a Cap'n Proto message (size " +
                                                   std::to_string(bytes.size()) + " is not a multiple of 8)");
    }
    // FlatArrayMessageReader needs word-aligned memory; a std::string's buffer may not be.
    auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), bytes.data(), bytes.size());
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() + 64;
    try {
      capnp::FlatArrayMessageReader reader(words, options);
      auto root = reader.getRoot<example::schema::Order>();
      example::Order order;
      order.id = root.getId();
      order.customer = root.getCustomer();
      order.amountCents = root.getAmountCents();
      for (auto line : root.getLines()) order.lines.push_back({line.getSku(), line.getQuantity()});
      return order;
    } catch (const kj::Exception& e) {
      throw Error(ErrorCode::INVALID_ARGUMENT,
                  std::string("stored bytes are not a valid Order: ") + e.getDescription().cStr());
    }
  }
};

}  // namespace shoal

namespace {

using shoal::example::Order;

int fail(const std::string& what) {
  std::fprintf(stderr, "capnp_codec: %s\n", what.c_str());
  return 1;
}

int run(shoal::Node& node) {
  shoal::ClientOptions clientOptions;
  clientOptions.servers = {node.address()};
  auto client = shoal::Client::connect(clientOptions);

  // Keys: the built-in integer codec; values: Codec<Order> above.
  auto orders = client->map<uint64_t, Order>("orders");
  const Order first{1001, "alice", 4250, {{"apple", 3}, {"pear", 2}}};
  const Order second{1002, "bob", 999, {{"plum", 1}}};
  orders.set(first.id, first);
  orders.set(second.id, second);

  auto read = orders.get(first.id);
  if (!read || *read != first) return fail("order 1001 did not round-trip");
  std::printf("order %llu: customer %s, %lld cents, %zu lines\n", static_cast<unsigned long long>(read->id),
              read->customer.c_str(), static_cast<long long>(read->amountCents), read->lines.size());

  // Compare-and-set on the whole encoded value: capnp's encoding of equal structs is equal.
  Order discounted = second;
  discounted.amountCents = 899;
  if (!orders.replaceIfEqual(second.id, second, discounted)) return fail("replaceIfEqual did not apply");
  if (orders.get(second.id)->amountCents != 899) return fail("order 1002 was not discounted");

  // The embedded member sees the same bytes: the encoding is the contract, not the C++ type.
  auto stored = node.map("orders").get(shoal::Codec<uint64_t>::encode(first.id));
  if (!stored || shoal::Codec<Order>::decode(*stored) != first) return fail("member holds other bytes");
  std::printf("member holds %zu bytes for order 1001\n", stored->size());

  // A value that is not an Order is reported as a shoal::Error, not a crash.
  client->rawMap("orders").set(shoal::Codec<uint64_t>::encode(9999), "not a capnp message");
  try {
    orders.get(9999);
    return fail("garbage decoded as an Order");
  } catch (const shoal::Error& e) {
    if (e.code() != shoal::ErrorCode::INVALID_ARGUMENT) throw;
    std::printf("garbage rejected: %s\n", e.what());
  }
  if (orders.size() != 3) return fail("expected 3 entries in orders");
  client->close();
  return 0;
}

}  // namespace

int main() {
  shoal::NodeOptions options;
  options.name = "capnp-codec-example";
  options.listen = "127.0.0.1:0";
  options.logLevel = "warn";
  try {
    auto node = shoal::Node::start(options);
    int rc = run(*node);
    node->stop();
    if (rc == 0) std::printf("capnp_codec: ok\n");
    return rc;
  } catch (const shoal::Error& e) {
    return fail(e.what());
  }
}

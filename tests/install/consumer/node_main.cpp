// Consumer of an installed Shoal embedding API: starts a member in-process, uses a map, stops.
#include <cstdio>

#include "shoal/node/node.h"

int main() {
  try {
    shoal::NodeOptions options;
    options.name = "installed-node";
    options.listen = "127.0.0.1:0";
    options.logLevel = "warn";
    auto node = shoal::Node::start(options);
    auto m = node->map("consumer");
    m.put("k", "v");
    if (m.get("k") != std::optional<std::string>("v") || node->address().empty()) {
      std::fprintf(stderr, "node_consumer: the embedded member misbehaved\n");
      return 1;
    }
    std::printf("node_consumer: ok on %s\n", node->address().c_str());
    node->stop();
    return 0;
  } catch (const shoal::Error& e) {
    std::fprintf(stderr, "node_consumer: %s\n", e.what());
    return 1;
  }
}

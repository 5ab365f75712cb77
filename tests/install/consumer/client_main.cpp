// Consumer of an installed Shoal client library: connects to the member given as argv[1], writes
// and reads a typed map. Also built with `pkg-config --cflags --libs shoal`.
#include <cstdio>
#include <string>

#include "shoal/client/client.h"
#include "shoal/version.h"
#include "shoal/wire_error_code.h"  // the installed generated header shoal/proto/shoal.capnp.h

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: client_consumer HOST:PORT\n");
    return 2;
  }
  static_assert(static_cast<int>(shoal::wire::ErrorCode::TOO_LARGE) == 2);
  try {
    shoal::ClientOptions options;
    options.servers = {argv[1]};
    auto client = shoal::Client::connect(options);
    auto counts = client->map<std::string, int64_t>("consumer");
    counts.set("answer", 42);
    auto value = counts.get("answer");
    if (value != 42) {
      std::fprintf(stderr, "client_consumer: read back the wrong value\n");
      return 1;
    }
    std::printf("client_consumer %s: ok against %s\n", SHOAL_VERSION, client->ping().name.c_str());
    return 0;
  } catch (const shoal::Error& e) {
    std::fprintf(stderr, "client_consumer: %s\n", e.what());
    return 1;
  }
}

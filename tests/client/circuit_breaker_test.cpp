// The per-member circuit breaker: opens after consecutive failures, fails fast, probes once.
#include "circuit_breaker.h"

#include <catch2/catch.hpp>

using shoal::client::CircuitBreaker;
using namespace std::chrono_literals;

TEST_CASE("client: circuit breaker opens, fails fast and probes once", "[client][unit]") {
  CircuitBreaker breaker(3, 1000ms);
  auto t0 = CircuitBreaker::Clock::now();
  CHECK(breaker.allow(t0));
  breaker.recordFailure(t0);
  breaker.recordFailure(t0);
  CHECK_FALSE(breaker.isOpen(t0));
  breaker.recordSuccess();  // a success resets the count
  breaker.recordFailure(t0);
  breaker.recordFailure(t0);
  CHECK_FALSE(breaker.isOpen(t0));
  breaker.recordFailure(t0);
  CHECK(breaker.isOpen(t0));
  CHECK_FALSE(breaker.allow(t0 + 500ms));
  // After the open time: exactly one probe.
  CHECK(breaker.allow(t0 + 1001ms));
  CHECK(breaker.state() == CircuitBreaker::State::HALF_OPEN);
  CHECK_FALSE(breaker.allow(t0 + 1002ms));
  breaker.recordFailure(t0 + 1003ms);  // failed probe reopens
  CHECK(breaker.isOpen(t0 + 1004ms));
  CHECK(breaker.allow(t0 + 2100ms));
  breaker.recordSuccess();
  CHECK(breaker.state() == CircuitBreaker::State::CLOSED);
  CHECK(breaker.allow(t0 + 2101ms));
}

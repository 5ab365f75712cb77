// A per-member circuit breaker: after `threshold` consecutive failures it opens and callers fail
// fast for `openTime`; then one probe is let through (half-open) and its result closes or reopens.
#pragma once

#include <chrono>
#include <cstdint>

namespace shoal::client {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { CLOSED, OPEN, HALF_OPEN };

  CircuitBreaker(uint32_t threshold, std::chrono::milliseconds openTime)
      : threshold_(threshold), openTime_(openTime) {}

  // True when an attempt may go out now. In OPEN, turns HALF_OPEN once openTime has passed and
  // lets exactly one probe through.
  bool allow(Clock::time_point now) {
    if (state_ == State::OPEN && now >= openUntil_) {
      state_ = State::HALF_OPEN;
      probing_ = false;
    }
    if (state_ == State::CLOSED) return true;
    if (state_ == State::HALF_OPEN && !probing_) {
      probing_ = true;
      return true;
    }
    return false;
  }
  void recordSuccess() {
    state_ = State::CLOSED;
    failures_ = 0;
    probing_ = false;
  }
  void recordFailure(Clock::time_point now) {
    ++failures_;
    if (state_ == State::HALF_OPEN || failures_ >= threshold_) {
      state_ = State::OPEN;
      openUntil_ = now + openTime_;
      probing_ = false;
    }
  }
  // True while callers should fail fast instead of queueing.
  bool isOpen(Clock::time_point now) const { return state_ == State::OPEN && now < openUntil_; }
  State state() const { return state_; }
  uint32_t consecutiveFailures() const { return failures_; }

 private:
  uint32_t threshold_;
  std::chrono::milliseconds openTime_;
  State state_ = State::CLOSED;
  uint32_t failures_ = 0;
  bool probing_ = false;
  Clock::time_point openUntil_{};
};

}  // namespace shoal::client

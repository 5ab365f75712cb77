// Errors as values for every persistence call: a StoreError carries a code the caller can act on
// and a message that says what happened and what to do; StoreResult<T> is a value or that error.
// (C++20 has no std::expected; this is the small subset the module needs.)
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace shoal::persistence {

enum class StoreErrorCode : uint8_t {
  IO_ERROR,          // the disk or the store failed an operation; retrying may succeed
  NO_SPACE,          // the disk is full: writes fail until space is freed, reads keep working
  CORRUPTION,        // stored bytes are unreadable; an operator must look (restore or resync)
  INVALID_ARGUMENT,  // the call itself is wrong (bad partition, empty map name, bad cursor)
  INCOMPATIBLE,      // the data directory is not ours (no marker, other cluster, other format)
  LOCKED,            // another process (or store object) holds the data directory
  UNAVAILABLE,       // a remote store is down or busy; retry later
};

// Stable upper-case name of a code, e.g. "NO_SPACE", for logs and metrics labels.
const char* storeErrorCodeName(StoreErrorCode code);

struct StoreError {
  StoreErrorCode code = StoreErrorCode::IO_ERROR;
  std::string message;

  std::string toString() const { return std::string(storeErrorCodeName(code)) + ": " + message; }
};

template <typename T>
class [[nodiscard]] StoreResult {
 public:
  template <typename U = T>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, StoreError> &&
           !std::is_same_v<std::decay_t<U>, StoreResult>) StoreResult(U&& value)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}
  StoreResult(StoreError error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Reading the value of an error is a bug in the caller, reported by an exception.
  T& value() & { return checked(); }
  const T& value() const& { return const_cast<StoreResult*>(this)->checked(); }
  T&& value() && { return std::move(checked()); }
  T& operator*() & { return checked(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &value(); }

  const StoreError& error() const {
    if (ok()) throw std::logic_error("StoreResult::error() called on a value");
    return std::get<1>(state_);
  }

 private:
  T& checked() {
    if (!ok()) throw std::logic_error("StoreResult::value() called on an error: " + error().toString());
    return std::get<0>(state_);
  }

  std::variant<T, StoreError> state_;
};

template <>
class [[nodiscard]] StoreResult<void> {
 public:
  StoreResult() = default;
  StoreResult(StoreError error) : error_(std::move(error)) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const StoreError& error() const {
    if (ok()) throw std::logic_error("StoreResult::error() called on a success");
    return *error_;
  }

 private:
  std::optional<StoreError> error_;
};

}  // namespace shoal::persistence

// The public error type of Shoal's client library and embedding API: a code a caller can act on
// and a message that says what to do. Mirrors wire::ErrorCode in shoal.capnp.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace shoal {

enum class ErrorCode {
  INTERNAL,          // a bug; report it
  INVALID_ARGUMENT,  // the request can never succeed as sent
  TOO_LARGE,         // a key, value or batch exceeds a limit named in the message
  TIMEOUT,           // the deadline passed; retriable
  UNAVAILABLE,       // no member reachable, or the member is stopping; retriable
  OVERLOADED,        // the member shed load; retry after backoff
  CONFLICT,          // a precondition failed
  UNAUTHORIZED,
  WRONG_OWNER,   // the partition moved (cluster); the client refreshes and retries
  STORE_FAILED,  // the backing store refused the write (disk full, I/O error): it was not stored
};

std::string_view errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(std::string(errorCodeName(code)) + ": " + message), code_(code) {}
  ErrorCode code() const { return code_; }
  // True when retrying the same call later may succeed.
  bool retriable() const {
    return code_ == ErrorCode::TIMEOUT || code_ == ErrorCode::UNAVAILABLE || code_ == ErrorCode::OVERLOADED ||
           code_ == ErrorCode::WRONG_OWNER;
  }

 private:
  ErrorCode code_;
};

inline std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::INTERNAL:
      return "internal";
    case ErrorCode::INVALID_ARGUMENT:
      return "invalid argument";
    case ErrorCode::TOO_LARGE:
      return "too large";
    case ErrorCode::TIMEOUT:
      return "timeout";
    case ErrorCode::UNAVAILABLE:
      return "unavailable";
    case ErrorCode::OVERLOADED:
      return "overloaded";
    case ErrorCode::CONFLICT:
      return "conflict";
    case ErrorCode::UNAUTHORIZED:
      return "unauthorized";
    case ErrorCode::STORE_FAILED:
      return "store failed";
    case ErrorCode::WRONG_OWNER:
      return "wrong owner";
  }
  return "unknown";
}

}  // namespace shoal

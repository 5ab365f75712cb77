// Conversion between the wire's error codes and the public shoal::ErrorCode.
#pragma once

#include "shoal/error.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal {

// The two enums list the same codes in the same order (checked below).
inline ErrorCode toPublicCode(wire::ErrorCode code) {
  return static_cast<ErrorCode>(static_cast<int>(code));
}
inline wire::ErrorCode toWireCode(ErrorCode code) {
  return static_cast<wire::ErrorCode>(static_cast<int>(code));
}
static_assert(static_cast<int>(wire::ErrorCode::WRONG_OWNER) == static_cast<int>(ErrorCode::WRONG_OWNER));
static_assert(static_cast<int>(wire::ErrorCode::UNAUTHORIZED) == static_cast<int>(ErrorCode::UNAUTHORIZED));
static_assert(static_cast<int>(wire::ErrorCode::STORE_FAILED) == static_cast<int>(ErrorCode::STORE_FAILED));

}  // namespace shoal

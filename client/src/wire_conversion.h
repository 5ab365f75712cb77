// Conversions between the client's Operation / Outcome and the wire schema, and from a failed
// call's exception to a shoal::Error a caller can act on.
#pragma once

#include <kj/exception.h>

#include <string>

#include "operation.h"
#include "shoal/error.h"
#include "shoal/proto/shoal.capnp.h"

namespace shoal::client {

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s);
std::string stringOf(capnp::Data::Reader d);

// Fills one wire operation from `op` (map, key, request id, trace id, the operation's union).
void fillOp(wire::MapOp::Builder out, const Operation& op);
// A per-operation result: its outcome, or the member's failure as an Error.
Result<Outcome> outcomeOf(wire::OpResult::Reader r);
// A whole call's failure: "shoal:<code>: message" maps back to its code; a disconnect is
// UNAVAILABLE, KJ's OVERLOADED is OVERLOADED, anything else INTERNAL.
Error errorOfCall(const kj::Exception& e, const std::string& address);
shoal::EntryEventType publicType(wire::EventType t);

}  // namespace shoal::client

// Operation / Outcome <-> wire, and call failures -> shoal::Error; see wire_conversion.h.
#include "wire_conversion.h"

#include <cstring>

#include "shoal/wire_error_code.h"

namespace shoal::client {
namespace {

void fillWrite(wire::Write::Builder w, const Operation& op) {
  w.setValue(bytesOf(op.value));
  w.setTtlMs(op.ttlMs);
  w.setMaxIdleMs(op.maxIdleMs);
}

}  // namespace

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string stringOf(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

void fillOp(wire::MapOp::Builder out, const Operation& op) {
  out.setMap(op.map);
  out.setKey(bytesOf(op.key));
  out.setRequestId(op.requestId);
  if (!op.traceId.empty()) out.setTraceId(op.traceId);
  switch (op.kind) {
    case OpKind::GET:
      out.setGet();
      break;
    case OpKind::GET_ENTRY:
      out.setGetEntry();
      break;
    case OpKind::CONTAINS_KEY:
      out.setContainsKey();
      break;
    case OpKind::PUT:
      fillWrite(out.initPut(), op);
      break;
    case OpKind::SET:
      fillWrite(out.initSet(), op);
      break;
    case OpKind::PUT_IF_ABSENT:
      fillWrite(out.initPutIfAbsent(), op);
      break;
    case OpKind::REPLACE:
      fillWrite(out.initReplace(), op);
      break;
    case OpKind::REPLACE_IF_VALUE: {
      auto c = out.initReplaceIfValue();
      c.setExpected(bytesOf(op.expected));
      fillWrite(c.initWrite(), op);
      break;
    }
    case OpKind::REPLACE_IF_VERSION: {
      auto c = out.initReplaceIfVersion();
      c.setExpectedVersion(op.version);
      fillWrite(c.initWrite(), op);
      break;
    }
    case OpKind::REMOVE:
      out.setRemove();
      break;
    case OpKind::DELETE:
      out.setDelete();
      break;
    case OpKind::REMOVE_IF_VALUE:
      out.setRemoveIfValue(bytesOf(op.expected));
      break;
    case OpKind::REMOVE_IF_VERSION:
      out.setRemoveIfVersion(op.version);
      break;
    case OpKind::SIZE:
      out.setSize();
      break;
    case OpKind::CLEAR:
      out.setClear();
      break;
    case OpKind::SET_TTL:
      out.setSetTtl(op.ttlMs);
      break;
    case OpKind::PUBLISH: {
      auto p = out.initPublish();
      p.setKey(bytesOf(op.messageKey));
      p.setValue(bytesOf(op.value));
      auto headers = p.initHeaders(op.headers.size());
      for (size_t i = 0; i < op.headers.size(); ++i) {
        headers[i].setName(op.headers[i].first);
        headers[i].setValue(bytesOf(op.headers[i].second));
      }
      break;
    }
  }
}

Result<Outcome> outcomeOf(wire::OpResult::Reader r) {
  Outcome o;
  switch (r.which()) {
    case wire::OpResult::VALUE:
      o.kind = Outcome::VALUE;
      o.value = stringOf(r.getValue());
      break;
    case wire::OpResult::ABSENT:
      o.kind = Outcome::ABSENT;
      break;
    case wire::OpResult::FLAG:
      o.kind = Outcome::FLAG;
      o.flag = r.getFlag();
      break;
    case wire::OpResult::COUNT:
      o.kind = Outcome::COUNT;
      o.count = r.getCount();
      break;
    case wire::OpResult::DONE:
      o.kind = Outcome::DONE;
      break;
    case wire::OpResult::ENTRY: {
      auto e = r.getEntry();
      o.kind = Outcome::ENTRY;
      o.entry.key = stringOf(e.getKey());
      o.entry.value = stringOf(e.getValue());
      o.entry.version = e.getVersion();
      o.entry.creationTimeMs = e.getCreationTimeMs();
      o.entry.updateTimeMs = e.getUpdateTimeMs();
      o.entry.lastAccessTimeMs = e.getLastAccessTimeMs();
      o.entry.expirationTimeMs = e.getExpirationTimeMs();
      o.entry.ttlMs = e.getTtlMs();
      o.entry.maxIdleMs = e.getMaxIdleMs();
      o.entry.hits = e.getHits();
      break;
    }
    case wire::OpResult::FAILURE:
      return Error(toPublicCode(r.getFailure().getCode()), r.getFailure().getMessage().cStr());
  }
  return o;
}

// A call-level failure from the member: "shoal:<code>: message" maps back to its code.
Error errorOfCall(const kj::Exception& e, const std::string& address) {
  std::string text = e.getDescription().cStr();
  static const std::pair<const char*, ErrorCode> CODES[] = {
      {"shoal:too-large: ", ErrorCode::TOO_LARGE},
      {"shoal:invalid-argument: ", ErrorCode::INVALID_ARGUMENT},
      {"shoal:overloaded: ", ErrorCode::OVERLOADED},
      {"shoal:unavailable: ", ErrorCode::UNAVAILABLE},
      {"shoal:store-failed: ", ErrorCode::STORE_FAILED},
      {"shoal:wrong-owner: ", ErrorCode::WRONG_OWNER},
  };
  for (auto& [prefix, code] : CODES) {
    auto at = text.find(prefix);
    if (at != std::string::npos) return Error(code, text.substr(at + strlen(prefix)));
  }
  if (e.getType() == kj::Exception::Type::DISCONNECTED) {
    return Error(ErrorCode::UNAVAILABLE, "connection to " + address + " lost: " + text);
  }
  if (e.getType() == kj::Exception::Type::OVERLOADED) {
    return Error(ErrorCode::OVERLOADED, "member " + address + " is overloaded: " + text);
  }
  return Error(ErrorCode::INTERNAL, "member " + address + " failed the call: " + text);
}

shoal::EntryEventType publicType(wire::EventType t) {
  return static_cast<shoal::EntryEventType>(static_cast<int>(t));
}

}  // namespace shoal::client

// A history of register operations (read / write / compare-and-set) on string keys, as observed
// by the clients of a cluster fault test, and the thread-safe Recorder that builds it. The
// checkers in linearizability.h and lost_writes.h judge a History; nothing here knows Shoal.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace shoal::history {

// A register value; std::nullopt is "absent" (never written, or deleted).
using Value = std::optional<std::string>;

using Clock = std::chrono::steady_clock;
using OpId = uint64_t;

enum class OpKind { READ, WRITE, CAS };

// What a client asked for.
struct Op {
  OpKind kind = OpKind::READ;
  Value expected;  // CAS only: the value the register must hold for the swap
  Value value;     // WRITE and CAS: the value stored (nullopt stores "absent", i.e. a delete)

  static Op read() { return Op{OpKind::READ, std::nullopt, std::nullopt}; }
  static Op write(Value value) { return Op{OpKind::WRITE, std::nullopt, std::move(value)}; }
  static Op cas(Value expected, Value value) {
    return Op{OpKind::CAS, std::move(expected), std::move(value)};
  }
};

enum class Status {
  OK,       // the operation took effect (a read returned `Outcome::value`; a CAS returned `swapped`)
  FAIL,     // the operation definitely did not take effect (an error that guarantees it)
  UNKNOWN,  // timeout, connection lost, member killed: it may or may not have taken effect
};

// What the client saw.
struct Outcome {
  Status status = Status::UNKNOWN;
  Value value;           // READ with status OK: the value read
  bool swapped = false;  // CAS with status OK: true if the swap happened, false if the value differed
  std::string detail;    // free text for failure messages, e.g. the error ("timeout after 2 s")

  static Outcome ok() { return Outcome{Status::OK, std::nullopt, false, {}}; }
  static Outcome readOk(Value value) { return Outcome{Status::OK, std::move(value), false, {}}; }
  // A CAS that returned. `swapped == false` is checked as "the register did not hold `expected`";
  // record it as fail() instead to only say "it did not take effect".
  static Outcome casOk(bool swapped) { return Outcome{Status::OK, std::nullopt, swapped, {}}; }
  static Outcome fail(std::string detail = {}) {
    return Outcome{Status::FAIL, std::nullopt, false, std::move(detail)};
  }
  static Outcome unknown(std::string detail = {}) {
    return Outcome{Status::UNKNOWN, std::nullopt, false, std::move(detail)};
  }
};

// "Completed at +infinity": an operation whose outcome is unknown, or that never completed.
inline constexpr uint64_t NEVER = std::numeric_limits<uint64_t>::max();

// One operation: its invocation, its completion and what the client saw. `invokeSeq` and
// `completeSeq` are positions in the single sequence of events the recorder saw (taken under one
// lock), so they are the real-time order the checkers use; the timestamps are for people.
// Several operations may be pending at once on the same process (e.g. after a timeout).
struct Operation {
  OpId id = 0;
  int process = 0;
  std::string key;
  Op op;
  Outcome outcome;  // status UNKNOWN if the operation never completed
  uint64_t invokeSeq = 0;
  uint64_t completeSeq = NEVER;  // NEVER if it never completed
  Clock::time_point invokedAt;
  std::optional<Clock::time_point> completedAt;  // nullopt if it never completed

  // The checkers' completion point: NEVER (+infinity) when the outcome is UNKNOWN, because an
  // operation that timed out may still take effect later.
  uint64_t effectDeadline() const { return outcome.status == Status::UNKNOWN ? NEVER : completeSeq; }
  // True if the operation changed the register: an OK write, or an OK CAS that swapped.
  bool acknowledgedWrite() const;
  // True if it may or may not have changed the register: a write or CAS with unknown outcome.
  bool maybeWrite() const;
};

struct History {
  Clock::time_point startedAt;  // the origin of the timestamps printed by dump()
  std::vector<Operation> ops;   // indexed by OpId
};

// One line per operation, e.g. `#17 p3 k="user:1" write "v17" -> ok [+1.204 ms .. +1.530 ms]`.
std::string describeOperation(const Operation& op, Clock::time_point origin);
// Describes `value` as a quoted string, or `absent`.
std::string describeValue(const Value& value);
// One line per event (invocation or completion) in real-time order. If there are more than
// `maxLines` events, keeps the first and last maxLines/2 and says how many were left out.
std::string dumpHistory(const History& history, size_t maxLines = 200);
// The given operations (e.g. a checker's "relevant ops"), at most `maxLines` of them.
std::string dumpOperations(const std::vector<Operation>& ops, Clock::time_point origin, size_t maxLines = 40);

// Thread-safe: every client thread calls invoke() just before sending a request and complete()
// as soon as it has the answer (or has given up on it), so the recorded interval contains the
// real one.
class Recorder {
 public:
  Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  OpId invoke(int process, std::string key, Op op);
  // Throws std::logic_error if `id` is unknown or already completed.
  void complete(OpId id, Outcome outcome);

  // A copy of everything recorded so far; operations not yet completed count as UNKNOWN.
  History history() const;
  std::string dump(size_t maxLines = 200) const { return dumpHistory(history(), maxLines); }

 private:
  mutable std::mutex mutex_;
  History history_;
  uint64_t nextSeq_ = 0;
};

}  // namespace shoal::history

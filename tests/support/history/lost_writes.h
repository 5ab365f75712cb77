// The lost-write check: after the faults have healed, each key is read once more; the value found
// must be one an acknowledged write can have left behind.
//
// Definition. For one key, call a write or CAS "acknowledged" if it returned OK (a CAS: with
// swapped=true), and "possibly applied" if it is acknowledged or its outcome is UNKNOWN (or it never
// completed). Let T be the latest invocation of an acknowledged write on the key. A write that
// completed before T cannot be the last one to have taken effect: the acknowledged write invoked at
// T took effect after it. So the final value F is consistent iff
//   - some possibly-applied write or CAS on the key stored F and did not complete before T
//     (unknown outcomes never complete), or
//   - the key has no acknowledged write and F is the initial value.
// Everything else is reported: a value older than the last acknowledged write, a value never
// written (or only by FAIL operations), and an initial value (e.g. absent) despite an acknowledged
// write. The definition is exact when every write on a key stores a distinct value — give each
// write a unique value (e.g. "<process>-<counter>"); with repeated values a lost write may go
// unnoticed, never the other way round.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "history/history.h"

namespace shoal::history {

struct LostWrite {
  std::string key;
  Value finalValue;
  std::string explanation;
  // The acknowledged write invoked last, and the writes that could have left `finalValue`.
  std::vector<Operation> relevantOps;
};

struct LostWriteReport {
  std::vector<LostWrite> problems;  // in key order
  size_t keysChecked = 0;
  Clock::time_point origin;  // for printing the operations' timestamps

  bool ok() const { return problems.empty(); }
  std::string describe(size_t maxOpsShown = 30) const;
};

// `finalValues` holds the value read per key after the faults healed (nullopt = absent). Every
// key with an acknowledged write in `history` must be in it (a missing one is reported), and keys
// only in `finalValues` are checked against `initialValue`.
LostWriteReport checkNoLostWrites(const History& history, const std::map<std::string, Value>& finalValues,
                                  const Value& initialValue = std::nullopt);

}  // namespace shoal::history

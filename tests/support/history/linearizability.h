// Per-key linearizability of a register history (read / write / compare-and-set).
//
// Each key is an independent register, so the history is split by key and each key is checked on
// its own. For one key the checker searches for a total order of the operations that (1) respects
// real time — if A completed before B was invoked, A comes first — and (2) is a legal sequential
// register run from the initial value. The search is Wing & Gong's with Lowe's just-in-time
// refinement and memoisation of (set of operations linearized, register value), as in Knossos and
// Porcupine.
//
// How outcomes are read:
//   OK       the operation took effect between its invocation and its completion; a read returned
//            the register's value; a CAS with swapped=true found `expected` and stored `value`; a
//            CAS with swapped=false found a value other than `expected` and changed nothing.
//   FAIL     the operation did not take effect: it is left out.
//   UNKNOWN  (or never completed) a write or CAS may take effect at any point after its invocation
//            — even after every other operation — or never; an unknown read is left out.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "history/history.h"

namespace shoal::history {

struct LinearizabilityOptions {
  // The register's value before the history, for every key not in `initialValueByKey`.
  Value initialValue = std::nullopt;
  std::map<std::string, Value> initialValueByKey;
  // Search bound per key: after this many distinct (linearized set, value) states the key is
  // reported as TOO_COMPLEX instead of searching on. Each state costs about ops/8 + 48 bytes.
  uint64_t maxStatesPerKey = 1'000'000;
};

enum class Verdict { LINEARIZABLE, NOT_LINEARIZABLE, TOO_COMPLEX };

const char* verdictName(Verdict verdict);

struct KeyVerdict {
  std::string key;
  Verdict verdict = Verdict::LINEARIZABLE;
  // NOT_LINEARIZABLE: which operation could not take effect in time and why. TOO_COMPLEX: the bound.
  std::string explanation;
  // The operation that could not be linearized, the operations concurrent with it and the last
  // state-changing operations before it; in invocation order.
  std::vector<Operation> relevantOps;
  uint64_t statesExplored = 0;
};

struct LinearizabilityReport {
  // NOT_LINEARIZABLE if any key is; else TOO_COMPLEX if any key is; else LINEARIZABLE.
  Verdict verdict = Verdict::LINEARIZABLE;
  // Every key not shown LINEARIZABLE: NOT_LINEARIZABLE keys first, each group in key order.
  std::vector<KeyVerdict> problems;
  size_t keysChecked = 0;
  uint64_t statesExplored = 0;  // summed over keys
  Clock::time_point origin;     // for printing the operations' timestamps

  bool ok() const { return verdict == Verdict::LINEARIZABLE; }
  // A failure message: the verdict, the first problem key's explanation and its relevant ops.
  std::string describe(size_t maxOpsShown = 30) const;
};

LinearizabilityReport checkLinearizable(const History& history, const LinearizabilityOptions& options = {});

// Checks the operations of one key (all must have that key).
KeyVerdict checkKeyLinearizable(const std::vector<Operation>& ops, const Value& initialValue,
                                uint64_t maxStates = LinearizabilityOptions{}.maxStatesPerKey);

}  // namespace shoal::history

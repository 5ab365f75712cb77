// The per-key linearizability search. See linearizability.h for what it decides.
//
// The search (Lowe's just-in-time linearization, as in Porcupine): the operations' invocations
// ("calls") and completions ("returns") sit in one list in real-time order. Scanning from the
// front, a call may be linearized if the register allows it in the current value; it is then
// lifted out of the list (with its return) and the scan restarts. Reaching a return means that
// operation was not linearized in time: undo the last choice and try the next call after it.
// The list empties (or only returns at +infinity, of unknown operations, are left) = success.
// A (linearized set, value) pair already seen cannot lead anywhere new, so it is skipped.
#include "history/linearizability.h"

#include <algorithm>
#include <unordered_set>

namespace shoal::history {

const char* verdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::LINEARIZABLE:
      return "LINEARIZABLE";
    case Verdict::NOT_LINEARIZABLE:
      return "NOT_LINEARIZABLE";
    case Verdict::TOO_COMPLEX:
      return "TOO_COMPLEX";
  }
  return "?";
}

namespace {

using ValueId = uint32_t;

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// An operation as the search sees it: values replaced by small ids.
struct SearchOp {
  const Operation* source;
  OpKind kind;
  bool casNotSwapped;  // a CAS that returned "not swapped": the value differed from `expected`
  bool unknown;        // a write or CAS that may or may not have taken effect
  ValueId expected;    // CAS
  ValueId stored;      // WRITE, CAS
  ValueId read;        // READ
  uint64_t zobrist;    // this op's contribution to the linearized set's hash
  bool readOnly() const { return kind == OpKind::READ || casNotSwapped; }
};

// The register's sequential specification: the value after `op` if it can happen in `state`.
bool step(const SearchOp& op, ValueId state, ValueId& next) {
  switch (op.kind) {
    case OpKind::READ:
      next = state;
      return state == op.read;
    case OpKind::WRITE:
      next = op.stored;
      return true;
    case OpKind::CAS:
      if (op.casNotSwapped) {
        next = state;
        return state != op.expected;
      }
      next = op.stored;
      return state == op.expected;
  }
  return false;
}
bool possible(const SearchOp& op, ValueId state) {
  ValueId ignored;
  return step(op, state, ignored);
}

// A search state: the operations linearized, the register's value, and — right after an unknown
// operation — the value before it (see KeySearch), else NO_VALUE.
struct CacheEntry {
  std::vector<uint64_t> linearized;
  ValueId state;
  ValueId beforeUnknown;
  uint64_t hash;
  bool operator==(const CacheEntry& o) const {
    return state == o.state && beforeUnknown == o.beforeUnknown && linearized == o.linearized;
  }
};
struct CacheEntryHash {
  size_t operator()(const CacheEntry& e) const { return e.hash; }
};

// FAIL operations and unknown reads never took effect or say nothing: the search leaves them out.
bool searchable(const Operation& op) {
  if (op.outcome.status == Status::FAIL) return false;
  return op.op.kind != OpKind::READ || op.outcome.status == Status::OK;
}

// Among unknown operations, "spares" may matter only to a CAS that returned "not swapped". A
// value is *needed* if an operation that must take effect requires the register to hold it: a
// read returned it, a swapped CAS expected it, or an unknown CAS that stores a needed value
// expects it. A spare stores a value that is neither needed nor expected by a not-swapped CAS, so
// all it can do is move the register away from a not-swapped CAS's expected value, and any spare
// does that as well as any other. So the search keeps spares out of its list, gives all their
// values one id (UNOBSERVED), and when a not-swapped CAS finds its expected value it tries one
// spare (see usableSpare()) instead of each.
std::vector<bool> spareOps(const std::vector<const Operation*>& ops) {
  std::unordered_set<Value> needed, expectedByNotSwapped;
  for (const Operation* o : ops) {
    if (o->op.kind == OpKind::READ) needed.insert(o->outcome.value);
    if (o->acknowledgedWrite() && o->op.kind == OpKind::CAS) needed.insert(o->op.expected);
    if (o->op.kind == OpKind::CAS && o->outcome.status == Status::OK && !o->outcome.swapped) {
      expectedByNotSwapped.insert(o->op.expected);
    }
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const Operation* o : ops) {
      if (o->maybeWrite() && o->op.kind == OpKind::CAS && needed.count(o->op.value)) {
        grew |= needed.insert(o->op.expected).second;
      }
    }
  }
  std::vector<bool> spare(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    spare[i] = ops[i]->maybeWrite() && !needed.count(ops[i]->op.value) &&
               !expectedByNotSwapped.count(ops[i]->op.value);
  }
  return spare;
}

// Unknown operations are linearized lazily. Take any linearization and an unknown operation U in
// it, and the operation O right after U. If O could also happen without U, then U can be moved
// after O (O is read-only), or dropped (O overwrote U's effect, or U changed nothing) — U may
// take effect at any time after its invocation, or never. Repeating this, every linearizable
// history has a linearization in which each unknown operation comes right before an operation
// that is impossible without it. The search only builds those: after an unknown operation, the
// next one must be impossible in the value before it. Otherwise a write that timed out would
// double the states from its invocation to the end of the history.
class KeySearch {
 public:
  KeySearch(const std::vector<const Operation*>& ops, const Value& initialValue) {
    const std::vector<bool> spare = spareOps(ops);
    values_.push_back(std::nullopt);  // UNOBSERVED's slot, never looked up
    initial_ = intern(initialValue);
    for (size_t i = 0; i < ops.size(); ++i) {
      const Operation& o = *ops[i];
      SearchOp s{&o,
                 o.op.kind,
                 o.op.kind == OpKind::CAS && o.outcome.status == Status::OK && !o.outcome.swapped,
                 o.maybeWrite(),
                 0,
                 0,
                 0,
                 mix64(i + 1)};
      if (o.op.kind == OpKind::CAS) s.expected = intern(o.op.expected);
      if (o.op.kind != OpKind::READ) s.stored = spare[i] ? UNOBSERVED : intern(o.op.value);
      if (o.op.kind == OpKind::READ) s.read = intern(o.outcome.value);
      (spare[i] ? spares_ : listed_).push_back(i);
      ops_.push_back(s);
    }
    std::sort(spares_.begin(), spares_.end(),
              [this](size_t a, size_t b) { return ops_[a].source->invokeSeq < ops_[b].source->invokeSeq; });
    buildList();
  }

  // Runs the search; returns LINEARIZABLE, NOT_LINEARIZABLE (see culprit()) or TOO_COMPLEX.
  Verdict run(uint64_t maxStates) {
    linearized_.assign((ops_.size() + 63) / 64, 0);
    state_ = initial_;
    entry_ = next_[HEAD()];
    while (true) {
      if (entry_ == TAIL()) return Verdict::LINEARIZABLE;
      const size_t opIndex = entryOp_[entry_];
      const SearchOp& op = ops_[opIndex];
      if (isCall_[entry_]) {
        ValueId after;
        size_t spare = NONE;
        bool takesEffect = step(op, state_, after) && worthLinearizing(op, after);
        if (!takesEffect && op.casNotSwapped && state_ == op.expected) {
          spare = usableSpare();
          takesEffect = spare != NONE;
          after = UNOBSERVED;
        }
        if (takesEffect) {
          const ValueId beforeUnknown = op.unknown ? state_ : NO_VALUE;
          toggle(opIndex);
          if (spare != NONE) toggle(spare);
          const uint64_t hash = setHash_ ^ mix64(after) ^ mix64(~beforeUnknown);
          if (seen_.insert(CacheEntry{linearized_, after, beforeUnknown, hash}).second) {
            if (++statesExplored_ > maxStates) return Verdict::TOO_COMPLEX;
            choices_.push_back({entry_, state_, beforeUnknown_, spare});
            state_ = after;
            beforeUnknown_ = beforeUnknown;
            lift(entry_);
            entry_ = next_[HEAD()];
            continue;
          }
          toggle(opIndex);
          if (spare != NONE) toggle(spare);
          // A read-only operation that may take effect now, but leads only to explored states:
          // taking effect later cannot do better (see backtrack()), so neither can this state.
          if (op.readOnly() && spare == NONE) {
            if (!backtrack()) return Verdict::NOT_LINEARIZABLE;
            continue;
          }
        }
        entry_ = next_[entry_];
        continue;
      }
      // A return: every return still listed from here on is at +infinity if this one is, so
      // all operations that had to take effect have.
      if (op.source->effectDeadline() == NEVER) return Verdict::LINEARIZABLE;
      noteBlocked(opIndex, state_);
      if (!backtrack()) return Verdict::NOT_LINEARIZABLE;
    }
  }

  uint64_t statesExplored() const { return statesExplored_; }
  // The operation whose completion no linearization got past, the furthest in real time.
  const Operation* culprit() const { return culprit_ == NONE ? nullptr : ops_[culprit_].source; }
  // The register's values found when the culprit had to take effect, described.
  std::vector<std::string> culpritStates() const {
    std::vector<std::string> out;
    for (ValueId id : culpritStates_) {
      out.push_back(id == UNOBSERVED ? "a value nothing observed" : describeValue(values_[id]));
    }
    return out;
  }

 private:
  static constexpr size_t NONE = static_cast<size_t>(-1);
  static constexpr ValueId NO_VALUE = static_cast<ValueId>(-1);
  static constexpr ValueId UNOBSERVED = 0;  // the value a spare leaves

  struct Choice {
    size_t callEntry;
    ValueId stateBefore;
    ValueId beforeUnknownBefore;
    size_t spare;  // the spare linearized just before, or NONE
  };

  size_t HEAD() const { return 2 * listed_.size(); }
  size_t TAIL() const { return 2 * listed_.size() + 1; }

  ValueId intern(const Value& v) {
    auto [it, inserted] = valueIds_.emplace(v, static_cast<ValueId>(values_.size()));
    if (inserted) values_.push_back(v);
    return it->second;
  }

  void toggle(size_t opIndex) {
    linearized_[opIndex / 64] ^= uint64_t{1} << (opIndex % 64);
    setHash_ ^= ops_[opIndex].zobrist;
  }

  // The lazy rule for unknown operations (see above), for `op` taking the value to `after`.
  bool worthLinearizing(const SearchOp& op, ValueId after) const {
    // Right after an unknown operation, only what was impossible before it.
    if (beforeUnknown_ != NO_VALUE && possible(op, beforeUnknown_)) return false;
    if (!op.unknown) return true;
    if (after == state_) return false;
    // An unknown operation only if something that may take effect now needs it. Unknown writes
    // are possible in any value, so they never need another unknown operation.
    for (size_t e = next_[HEAD()]; isCall_[e]; e = next_[e]) {
      const SearchOp& next = ops_[entryOp_[e]];
      if (&next == &op || (next.unknown && next.kind == OpKind::WRITE)) continue;
      if (possible(next, after) && !possible(next, state_)) return true;
    }
    return false;
  }

  bool isLinearized(size_t opIndex) const { return (linearized_[opIndex / 64] >> (opIndex % 64)) & 1; }

  // A spare that may take effect now (invoked before the earliest pending completion) in the
  // current value: a spare CAS if one fits (it is the pickier one, so using it leaves the most
  // options), else a spare write; among equals the first invoked. Right after an unknown
  // operation only a CAS, which was impossible before it (the lazy rule).
  size_t usableSpare() const {
    size_t firstReturn = entry_;
    while (isCall_[firstReturn]) firstReturn = next_[firstReturn];
    const uint64_t now = firstReturn == TAIL() ? NEVER : ops_[entryOp_[firstReturn]].source->effectDeadline();
    size_t write = NONE;
    for (size_t s : spares_) {
      const SearchOp& op = ops_[s];
      if (op.source->invokeSeq >= now) break;
      if (isLinearized(s)) continue;
      if (op.kind == OpKind::CAS && op.expected == state_) return s;
      if (op.kind == OpKind::WRITE && write == NONE && beforeUnknown_ == NO_VALUE) write = s;
    }
    return write;
  }

  // Undoes the latest choices up to and including the latest state-changing one, and resumes the
  // scan after it; false if there is none left. A read-only operation (a read, a CAS that did not
  // swap) is only linearized when it may take effect, and then never skipped instead: it does not
  // change the value, so any linearization that places it later can place it here.
  bool backtrack() {
    while (!choices_.empty()) {
      const Choice last = choices_.back();
      choices_.pop_back();
      const size_t undone = entryOp_[last.callEntry];
      toggle(undone);
      if (last.spare != NONE) toggle(last.spare);
      state_ = last.stateBefore;
      beforeUnknown_ = last.beforeUnknownBefore;
      unlift(last.callEntry);
      entry_ = next_[last.callEntry];
      if (!ops_[undone].readOnly() || last.spare != NONE) return true;
    }
    return false;
  }

  // Entries 0..2n-1 are the listed operations' calls and returns in real-time order, linked between
  // HEAD and TAIL.
  void buildList() {
    const size_t n = listed_.size();
    struct Event {
      uint64_t time;
      bool isCall;
      size_t op;
    };
    std::vector<Event> events;
    events.reserve(2 * n);
    for (size_t i : listed_) {
      events.push_back({ops_[i].source->invokeSeq, true, i});
      events.push_back({ops_[i].source->effectDeadline(), false, i});
    }
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      return a.isCall && !b.isCall;  // only returns at +infinity share a time
    });
    entryOp_.resize(2 * n);
    isCall_.resize(2 * n + 2);  // HEAD and TAIL count as returns: scans for calls stop there
    match_.resize(2 * n);
    prev_.resize(2 * n + 2);
    next_.resize(2 * n + 2);
    std::vector<size_t> callOf(ops_.size());
    for (size_t e = 0; e < 2 * n; ++e) {
      entryOp_[e] = events[e].op;
      isCall_[e] = events[e].isCall;
      if (events[e].isCall) {
        callOf[events[e].op] = e;
      } else {
        match_[callOf[events[e].op]] = e;
      }
    }
    size_t previous = HEAD();
    for (size_t e = 0; e < 2 * n; ++e) {
      next_[previous] = e;
      prev_[e] = previous;
      previous = e;
    }
    next_[previous] = TAIL();
    prev_[TAIL()] = previous;
  }

  // Dancing links: lift() takes an operation's call and return out of the list, unlift() puts
  // them back; unlifts come in the reverse order of lifts.
  void lift(size_t call) {
    next_[prev_[call]] = next_[call];
    prev_[next_[call]] = prev_[call];
    const size_t ret = match_[call];
    next_[prev_[ret]] = next_[ret];
    prev_[next_[ret]] = prev_[ret];
  }
  void unlift(size_t call) {
    const size_t ret = match_[call];
    next_[prev_[ret]] = ret;
    prev_[next_[ret]] = ret;
    next_[prev_[call]] = call;
    prev_[next_[call]] = call;
  }

  void noteBlocked(size_t opIndex, ValueId state) {
    const uint64_t deadline = ops_[opIndex].source->effectDeadline();
    if (culprit_ == NONE || deadline > ops_[culprit_].source->effectDeadline()) {
      culprit_ = opIndex;
      culpritStates_.assign(1, state);
    } else if (opIndex == culprit_ && culpritStates_.size() < 4 &&
               std::find(culpritStates_.begin(), culpritStates_.end(), state) == culpritStates_.end()) {
      culpritStates_.push_back(state);
    }
  }

  // The operations, the values they mention, and the list.
  std::vector<SearchOp> ops_;
  std::vector<size_t> listed_;  // ops in the list
  std::vector<size_t> spares_;  // spares, by invocation
  std::map<Value, ValueId> valueIds_;
  std::vector<Value> values_;
  ValueId initial_ = 0;
  std::vector<size_t> entryOp_, match_, prev_, next_;
  std::vector<bool> isCall_;

  // The search's position: the linearized set (a bitset and its hash), the register's value, the
  // value before the last operation if it was unknown, the list entry being looked at, the
  // choices made, and every state explored.
  std::vector<uint64_t> linearized_;
  uint64_t setHash_ = 0;
  ValueId state_ = 0;
  ValueId beforeUnknown_ = NO_VALUE;
  size_t entry_ = 0;
  std::vector<Choice> choices_;
  std::unordered_set<CacheEntry, CacheEntryHash> seen_;
  uint64_t statesExplored_ = 0;

  size_t culprit_ = NONE;
  std::vector<ValueId> culpritStates_;
};

bool anyWriteStores(const std::vector<Operation>& ops, const Value& v) {
  for (const auto& op : ops) {
    if (op.op.kind != OpKind::READ && op.outcome.status != Status::FAIL && op.op.value == v) return true;
  }
  return false;
}

// The culprit, the kept operations overlapping it, and the last few acknowledged writes that
// completed before it was invoked.
std::vector<Operation> relevantOps(const std::vector<const Operation*>& kept, const Operation& culprit) {
  std::vector<const Operation*> out;
  std::vector<const Operation*> earlierWrites;
  for (const Operation* op : kept) {
    const bool overlaps =
        op->invokeSeq < culprit.effectDeadline() && op->effectDeadline() > culprit.invokeSeq;
    if (overlaps || op == &culprit)
      out.push_back(op);
    else if (op->effectDeadline() < culprit.invokeSeq && op->acknowledgedWrite())
      earlierWrites.push_back(op);
  }
  std::sort(earlierWrites.begin(), earlierWrites.end(),
            [](const Operation* a, const Operation* b) { return a->completeSeq > b->completeSeq; });
  if (earlierWrites.size() > 3) earlierWrites.resize(3);
  out.insert(out.end(), earlierWrites.begin(), earlierWrites.end());
  std::sort(out.begin(), out.end(),
            [](const Operation* a, const Operation* b) { return a->invokeSeq < b->invokeSeq; });
  std::vector<Operation> copies;
  for (const Operation* op : out) copies.push_back(*op);
  return copies;
}

}  // namespace

KeyVerdict checkKeyLinearizable(const std::vector<Operation>& ops, const Value& initialValue,
                                uint64_t maxStates) {
  KeyVerdict result;
  if (!ops.empty()) result.key = ops.front().key;
  std::vector<const Operation*> kept;
  for (const auto& op : ops)
    if (searchable(op)) kept.push_back(&op);
  KeySearch search(kept, initialValue);
  result.verdict = search.run(maxStates);
  result.statesExplored = search.statesExplored();
  const std::string size = std::to_string(ops.size()) + " operations on this key, " +
                           std::to_string(kept.size()) + " searched, " +
                           std::to_string(result.statesExplored) + " states explored";
  if (result.verdict == Verdict::TOO_COMPLEX) {
    result.explanation =
        "gave up after maxStatesPerKey=" + std::to_string(maxStates) + " states (" + size + ")";
  } else if (result.verdict == Verdict::NOT_LINEARIZABLE && search.culprit() != nullptr) {
    const Operation& culprit = *search.culprit();
    std::string held;
    for (const std::string& v : search.culpritStates()) held += (held.empty() ? "" : ", ") + v;
    result.explanation = "#" + std::to_string(culprit.id) +
                         " cannot be linearized: no order of the operations before its completion lets it "
                         "take effect in time; the register held " +
                         held + " when it had to";
    const Value& needed = culprit.op.kind == OpKind::READ ? culprit.outcome.value : culprit.op.expected;
    const bool needsValue =
        culprit.op.kind == OpKind::READ || (culprit.op.kind == OpKind::CAS && culprit.outcome.swapped);
    if (needsValue && needed != initialValue && !anyWriteStores(ops, needed)) {
      result.explanation += "; nothing on this key ever wrote " + describeValue(needed);
    }
    result.explanation += " (" + size + ")";
    result.relevantOps = relevantOps(kept, culprit);
  }
  return result;
}

LinearizabilityReport checkLinearizable(const History& history, const LinearizabilityOptions& options) {
  std::map<std::string, std::vector<Operation>> byKey;
  for (const auto& op : history.ops) byKey[op.key].push_back(op);
  LinearizabilityReport report;
  report.origin = history.startedAt;
  std::vector<KeyVerdict> tooComplex;
  for (const auto& [key, ops] : byKey) {
    auto initial = options.initialValueByKey.find(key);
    KeyVerdict verdict = checkKeyLinearizable(
        ops, initial == options.initialValueByKey.end() ? options.initialValue : initial->second,
        options.maxStatesPerKey);
    ++report.keysChecked;
    report.statesExplored += verdict.statesExplored;
    if (verdict.verdict == Verdict::NOT_LINEARIZABLE)
      report.problems.push_back(std::move(verdict));
    else if (verdict.verdict == Verdict::TOO_COMPLEX)
      tooComplex.push_back(std::move(verdict));
  }
  if (!report.problems.empty())
    report.verdict = Verdict::NOT_LINEARIZABLE;
  else if (!tooComplex.empty())
    report.verdict = Verdict::TOO_COMPLEX;
  for (auto& v : tooComplex) report.problems.push_back(std::move(v));
  return report;
}

std::string LinearizabilityReport::describe(size_t maxOpsShown) const {
  std::string out = std::string("linearizability: ") + verdictName(verdict) + " (" +
                    std::to_string(keysChecked) + " keys, " + std::to_string(statesExplored) +
                    " states explored)";
  if (problems.empty()) return out + "\n";
  out += "; keys not shown linearizable:";
  for (size_t i = 0; i < problems.size() && i < 10; ++i) {
    out += " " + describeValue(problems[i].key) + " (" + verdictName(problems[i].verdict) + ")";
  }
  if (problems.size() > 10) out += " and " + std::to_string(problems.size() - 10) + " more";
  const KeyVerdict& first = problems.front();
  out += "\nkey " + describeValue(first.key) + ": " + first.explanation + "\n";
  if (!first.relevantOps.empty()) {
    out +=
        "relevant operations (invocation order):\n" + dumpOperations(first.relevantOps, origin, maxOpsShown);
  }
  return out;
}

}  // namespace shoal::history

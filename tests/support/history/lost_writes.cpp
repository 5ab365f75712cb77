// The lost-write check. See lost_writes.h for the definition.
#include "history/lost_writes.h"

#include <algorithm>
#include <set>

namespace shoal::history {

namespace {

bool possiblyApplied(const Operation& op) {
  return op.acknowledgedWrite() || op.maybeWrite();
}

std::optional<LostWrite> checkKey(const std::string& key, const std::vector<const Operation*>& ops,
                                  const Value& finalValue, const Value& initialValue) {
  const Operation* lastAcknowledged = nullptr;  // the acknowledged write invoked last
  for (const Operation* op : ops) {
    if (op->acknowledgedWrite() && (!lastAcknowledged || op->invokeSeq > lastAcknowledged->invokeSeq)) {
      lastAcknowledged = op;
    }
  }
  const uint64_t cutoff = lastAcknowledged ? lastAcknowledged->invokeSeq : 0;
  std::vector<Operation> candidates;  // possibly-applied writes that may be the last to take effect
  const Operation* staleWriter = nullptr;
  bool anyWriterOfFinal = false;
  for (const Operation* op : ops) {
    if (!possiblyApplied(*op)) continue;
    const bool current = op->completeSeq >= cutoff || op->maybeWrite();
    if (current) candidates.push_back(*op);
    if (op->op.value != finalValue) continue;
    anyWriterOfFinal = true;
    if (current) return std::nullopt;
    staleWriter = op;
  }
  if (!lastAcknowledged && finalValue == initialValue) return std::nullopt;

  LostWrite lost{key, finalValue, {}, {}};
  const std::string found = "final value " + describeValue(finalValue);
  if (staleWriter) {
    lost.explanation = found + " was stored by #" + std::to_string(staleWriter->id) +
                       ", which completed before acknowledged write #" +
                       std::to_string(lastAcknowledged->id) +
                       " was invoked: a later acknowledged write was lost";
    lost.relevantOps.push_back(*staleWriter);
  } else if (anyWriterOfFinal || finalValue != initialValue) {
    lost.explanation = found + " was never stored by a write that may have taken effect";
  } else {
    lost.explanation = found + " is the initial value, but acknowledged write #" +
                       std::to_string(lastAcknowledged->id) + " stored " +
                       describeValue(lastAcknowledged->op.value) + ": it was lost";
  }
  lost.relevantOps.insert(lost.relevantOps.end(), candidates.begin(), candidates.end());
  std::sort(lost.relevantOps.begin(), lost.relevantOps.end(),
            [](const Operation& a, const Operation& b) { return a.invokeSeq < b.invokeSeq; });
  return lost;
}

}  // namespace

LostWriteReport checkNoLostWrites(const History& history, const std::map<std::string, Value>& finalValues,
                                  const Value& initialValue) {
  std::map<std::string, std::vector<const Operation*>> byKey;
  for (const auto& op : history.ops) byKey[op.key].push_back(&op);
  for (const auto& [key, value] : finalValues) byKey[key];  // keys only read at the end
  LostWriteReport report;
  report.origin = history.startedAt;
  for (const auto& [key, ops] : byKey) {
    auto final = finalValues.find(key);
    if (final == finalValues.end()) {
      auto acked =
          std::find_if(ops.begin(), ops.end(), [](const Operation* op) { return op->acknowledgedWrite(); });
      if (acked != ops.end()) {
        report.problems.push_back(
            {key, std::nullopt, "no final value was given for a key with acknowledged writes", {**acked}});
      }
      continue;
    }
    ++report.keysChecked;
    if (auto lost = checkKey(key, ops, final->second, initialValue))
      report.problems.push_back(std::move(*lost));
  }
  return report;
}

std::string LostWriteReport::describe(size_t maxOpsShown) const {
  std::string out = "lost writes: " + std::to_string(problems.size()) + " of " + std::to_string(keysChecked) +
                    " keys inconsistent";
  if (problems.empty()) return out + "\n";
  out += ":";
  for (size_t i = 0; i < problems.size() && i < 10; ++i) out += " " + describeValue(problems[i].key);
  if (problems.size() > 10) out += " and " + std::to_string(problems.size() - 10) + " more";
  const LostWrite& first = problems.front();
  out += "\nkey " + describeValue(first.key) + ": " + first.explanation + "\n";
  if (!first.relevantOps.empty()) {
    out += "writes that could have been the last (invocation order):\n" +
           dumpOperations(first.relevantOps, origin, maxOpsShown);
  }
  return out;
}

}  // namespace shoal::history

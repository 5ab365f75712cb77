// The history recorder and the text form of histories used in failure messages.
#include "history/history.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace shoal::history {

bool Operation::acknowledgedWrite() const {
  if (outcome.status != Status::OK) return false;
  return op.kind == OpKind::WRITE || (op.kind == OpKind::CAS && outcome.swapped);
}

bool Operation::maybeWrite() const {
  return outcome.status == Status::UNKNOWN && op.kind != OpKind::READ;
}

std::string describeValue(const Value& value) {
  if (!value) return "absent";
  std::string out = "\"";
  for (char c : *value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

namespace {

std::string describeOp(const Op& op) {
  switch (op.kind) {
    case OpKind::READ:
      return "read";
    case OpKind::WRITE:
      return "write " + describeValue(op.value);
    case OpKind::CAS:
      return "cas " + describeValue(op.expected) + " -> " + describeValue(op.value);
  }
  return "?";
}

std::string describeOutcome(const Operation& op) {
  std::string out;
  switch (op.outcome.status) {
    case Status::OK:
      if (op.op.kind == OpKind::READ)
        out = "ok " + describeValue(op.outcome.value);
      else if (op.op.kind == OpKind::CAS)
        out = op.outcome.swapped ? "ok swapped" : "ok not-swapped";
      else
        out = "ok";
      break;
    case Status::FAIL:
      out = "fail";
      break;
    case Status::UNKNOWN:
      out = op.completedAt ? "unknown" : "pending";
      break;
  }
  if (!op.outcome.detail.empty()) out += " (" + op.outcome.detail + ")";
  return out;
}

std::string offset(Clock::time_point t, Clock::time_point origin) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+%.3f ms", std::chrono::duration<double, std::milli>(t - origin).count());
  return buf;
}

std::string head(const Operation& op) {
  return "#" + std::to_string(op.id) + " p" + std::to_string(op.process) + " k=" + describeValue(op.key) +
         " " + describeOp(op.op);
}

std::string withOmission(const std::vector<std::string>& lines, size_t maxLines, const char* what) {
  std::string out;
  if (lines.size() <= maxLines) {
    for (const auto& line : lines) out += line + "\n";
    return out;
  }
  size_t front = maxLines / 2;
  size_t back = maxLines - front;
  for (size_t i = 0; i < front; ++i) out += lines[i] + "\n";
  out += "... " + std::to_string(lines.size() - front - back) + " " + what + " left out ...\n";
  for (size_t i = lines.size() - back; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

}  // namespace

std::string describeOperation(const Operation& op, Clock::time_point origin) {
  std::string out = head(op) + " -> " + describeOutcome(op) + " [" + offset(op.invokedAt, origin) + " .. ";
  out += op.completedAt ? offset(*op.completedAt, origin) : std::string("never");
  return out + "]";
}

std::string dumpHistory(const History& history, size_t maxLines) {
  struct Event {
    uint64_t seq;
    const Operation* op;
    bool completion;
  };
  std::vector<Event> events;
  events.reserve(history.ops.size() * 2);
  for (const auto& op : history.ops) {
    events.push_back({op.invokeSeq, &op, false});
    if (op.completedAt) events.push_back({op.completeSeq, &op, true});
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.seq < b.seq; });
  std::vector<std::string> lines;
  lines.reserve(events.size());
  for (const auto& e : events) {
    const Operation& op = *e.op;
    if (e.completion) {
      lines.push_back("[" + offset(*op.completedAt, history.startedAt) + "] " + head(op) + " => " +
                      describeOutcome(op));
    } else {
      lines.push_back("[" + offset(op.invokedAt, history.startedAt) + "] " + head(op) + " invoked");
    }
  }
  return withOmission(lines, maxLines, "events");
}

std::string dumpOperations(const std::vector<Operation>& ops, Clock::time_point origin, size_t maxLines) {
  std::vector<std::string> lines;
  lines.reserve(ops.size());
  for (const auto& op : ops) lines.push_back("  " + describeOperation(op, origin));
  return withOmission(lines, maxLines, "operations");
}

Recorder::Recorder() {
  history_.startedAt = Clock::now();
}

OpId Recorder::invoke(int process, std::string key, Op op) {
  std::lock_guard lock(mutex_);
  Operation operation;
  operation.id = history_.ops.size();
  operation.process = process;
  operation.key = std::move(key);
  operation.op = std::move(op);
  operation.invokeSeq = nextSeq_++;
  operation.invokedAt = Clock::now();
  history_.ops.push_back(std::move(operation));
  return history_.ops.back().id;
}

void Recorder::complete(OpId id, Outcome outcome) {
  std::lock_guard lock(mutex_);
  if (id >= history_.ops.size())
    throw std::logic_error("history: complete() of unknown op #" + std::to_string(id));
  Operation& op = history_.ops[id];
  if (op.completedAt) throw std::logic_error("history: op #" + std::to_string(id) + " completed twice");
  op.outcome = std::move(outcome);
  op.completeSeq = nextSeq_++;
  op.completedAt = Clock::now();
}

History Recorder::history() const {
  std::lock_guard lock(mutex_);
  return history_;
}

}  // namespace shoal::history

// A simulated linearizable register store, for the checkers' randomised tests: per key, a few
// processes invoke reads, writes and CASes that take effect atomically at a random moment between
// their invocation and completion — so every history it records is linearizable. Some operations
// time out (UNKNOWN) and then take effect later or never; some fail before taking effect. Every
// write and CAS stores a distinct value.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "history/history.h"

namespace shoal::history::test {

inline uint64_t testSeed(const char* testName) {
  const char* fromEnv = std::getenv("SHOAL_TEST_SEED");
  const uint64_t seed = fromEnv ? std::strtoull(fromEnv, nullptr, 10) : std::random_device{}();
  std::printf("%s: seed %llu (rerun with SHOAL_TEST_SEED=%llu)\n", testName,
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

struct SimulationOptions {
  int keys = 20;
  int processesPerKey = 8;
  int opsPerKey = 2000;
  double unknownRate = 0.01;  // share of operations that time out (then apply later or never)
  double failRate = 0.02;     // share of operations that fail without taking effect
  double readShare = 0.5;     // the rest is split evenly between writes and CASes
};

struct SimulatedRun {
  History history;
  std::map<std::string, Value> finalValues;  // each register after every operation settled
};

inline SimulatedRun simulateRegisters(std::mt19937_64& rng, const SimulationOptions& options) {
  struct Pending {
    OpId id;
    Op op;
    bool applied = false;
    Outcome outcome;
    bool casFalseAsFail = false;  // a CAS that finds another value completes as fail()
  };
  struct Register {
    std::string name;
    Value value;
    std::vector<Value> written{std::nullopt};
    std::vector<std::optional<Pending>> processes;
    std::vector<Op> timedOut;  // UNKNOWN operations that have not taken effect yet
    int invoked = 0;
    bool busy() const {
      for (const auto& p : processes)
        if (p) return true;
      return false;
    }
  };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto apply = [](Register& reg, const Op& op, Outcome& outcome) {
    switch (op.kind) {
      case OpKind::READ:
        outcome = Outcome::readOk(reg.value);
        break;
      case OpKind::WRITE:
        reg.value = op.value;
        outcome = Outcome::ok();
        break;
      case OpKind::CAS:
        outcome = Outcome::casOk(reg.value == op.expected);
        if (outcome.swapped) reg.value = op.value;
        break;
    }
  };

  Recorder recorder;
  std::vector<Register> registers(options.keys);
  std::vector<size_t> active;
  for (int k = 0; k < options.keys; ++k) {
    registers[k].name = "key-" + std::to_string(k);
    registers[k].processes.resize(options.processesPerKey);
    active.push_back(k);
  }
  while (!active.empty()) {
    const size_t slot = pick(active.size());
    Register& reg = registers[active[slot]];
    const int process = static_cast<int>(pick(reg.processes.size()));
    auto& pending = reg.processes[process];
    if (!reg.timedOut.empty() && chance(0.01)) {  // a timed-out operation lands late
      const size_t i = pick(reg.timedOut.size());
      Outcome ignored;
      apply(reg, reg.timedOut[i], ignored);
      reg.timedOut.erase(reg.timedOut.begin() + i);
    } else if (!pending && reg.invoked < options.opsPerKey) {
      ++reg.invoked;
      Op op;
      const double r = std::uniform_real_distribution<double>(0, 1)(rng);
      const Value fresh = reg.name + "/p" + std::to_string(process) + "/" + std::to_string(reg.invoked);
      if (r < options.readShare) {
        op = Op::read();
      } else if (r < options.readShare + (1 - options.readShare) / 2) {
        op = Op::write(fresh);
      } else {
        op = Op::cas(chance(0.6) ? reg.value : reg.written[pick(reg.written.size())], fresh);
      }
      if (op.kind != OpKind::READ) reg.written.push_back(fresh);
      const OpId id = recorder.invoke(process + 100 * static_cast<int>(active[slot]), reg.name, op);
      pending = Pending{id, std::move(op), false, {}, chance(0.5)};
    } else if (pending && chance(options.unknownRate)) {
      if (!pending->applied) reg.timedOut.push_back(pending->op);
      recorder.complete(pending->id, Outcome::unknown("timeout"));
      pending.reset();
    } else if (pending && !pending->applied && chance(options.failRate)) {
      recorder.complete(pending->id, Outcome::fail("rejected"));
      pending.reset();
    } else if (pending && !pending->applied) {
      apply(reg, pending->op, pending->outcome);
      pending->applied = true;
    } else if (pending) {
      const bool casFalse = pending->op.kind == OpKind::CAS && !pending->outcome.swapped;
      recorder.complete(pending->id, casFalse && pending->casFalseAsFail ? Outcome::fail("cas: value differs")
                                                                         : pending->outcome);
      pending.reset();
    }
    if (reg.invoked == options.opsPerKey && !reg.busy()) {
      for (const Op& op : reg.timedOut) {
        Outcome ignored;
        if (chance(0.5)) apply(reg, op, ignored);
      }
      reg.timedOut.clear();
      active.erase(active.begin() + slot);
    }
  }
  SimulatedRun run{recorder.history(), {}};
  for (const auto& reg : registers) run.finalValues[reg.name] = reg.value;
  return run;
}

}  // namespace shoal::history::test

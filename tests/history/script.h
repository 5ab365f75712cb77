// Hand-written histories for the checkers' tests: the events happen in the order the test calls
// them, so a test reads like a timeline.
#pragma once

#include <string>

#include "history/history.h"

namespace shoal::history::test {

class Script {
 public:
  OpId invoke(int process, Op op, const std::string& key = "k") {
    return recorder_.invoke(process, key, std::move(op));
  }
  void complete(OpId id, Outcome outcome) { recorder_.complete(id, std::move(outcome)); }

  // Whole operations, invoked and completed at once: they overlap only what is pending.
  OpId write(int process, Value value, const std::string& key = "k") {
    return done(invoke(process, Op::write(std::move(value)), key), Outcome::ok());
  }
  OpId read(int process, Value seen, const std::string& key = "k") {
    return done(invoke(process, Op::read(), key), Outcome::readOk(std::move(seen)));
  }
  OpId cas(int process, Value expected, Value value, bool swapped, const std::string& key = "k") {
    return done(invoke(process, Op::cas(std::move(expected), std::move(value)), key),
                Outcome::casOk(swapped));
  }

  History history() const { return recorder_.history(); }

 private:
  OpId done(OpId id, Outcome outcome) {
    complete(id, std::move(outcome));
    return id;
  }
  Recorder recorder_;
};

}  // namespace shoal::history::test

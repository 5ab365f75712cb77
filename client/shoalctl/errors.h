// What shoalctl tells the user when an operation fails: the exit code for a shoal::Error and a
// message on stderr that says what to do next.
#pragma once

#include <ostream>

#include "command_line.h"
#include "shoal/error.h"

namespace shoal::ctl {

// EXIT_UNAVAILABLE for retriable errors (unavailable, timeout, overloaded), else EXIT_SERVER_ERROR.
int exitCodeFor(ErrorCode code);

// Prints the failure of `line`'s command and advice to `err`; returns the exit code.
int reportError(const Error& error, const CommandLine& line, std::ostream& err);

}  // namespace shoal::ctl

// shoalctl's commands against a connected client. Each returns shoalctl's exit code for its
// outcome (e.g. EXIT_ABSENT) and lets shoal::Error propagate to main, which reports it.
#pragma once

#include <signal.h>

#include "command_line.h"
#include "output.h"
#include "shoal/client/client.h"

namespace shoal::ctl {

// Every command but watch and subscribe.
int runCommand(const CommandLine& line, Client& client, Output& out);

// The signals that end `watch` and `subscribe` (SIGINT, SIGTERM, and SIGUSR1, which they send
// themselves after --count events). Blocked in the calling thread; call before the client starts
// its threads so they inherit the mask and only sigwait() in the main thread receives them.
sigset_t blockStopSignals();

// Prints entry events of line.map until a stop signal or line.count events; closes the client.
int runWatch(const CommandLine& line, Client& client, Output& out, const sigset_t& stopSignals);

}  // namespace shoal::ctl

// shoalctl's topic commands: publish, topics (request/response) and subscribe (a stream, ended
// by a signal, --count or the member cutting it off).
#pragma once

#include <signal.h>

#include <optional>

#include "command_line.h"
#include "output.h"
#include "shoal/client/client.h"

namespace shoal::ctl {

// The exit code of `line.command` if it is publish or topics, else nullopt.
std::optional<int> runTopicCommand(const CommandLine& line, Client& client, Output& out);

// Prints messages of line.topic until a stop signal (see blockStopSignals in commands.h), --count
// messages (EXIT_OK), or the member cutting the subscription off (EXIT_CUT_OFF); closes the client.
int runSubscribe(const CommandLine& line, Client& client, Output& out, const sigset_t& stopSignals);

}  // namespace shoal::ctl

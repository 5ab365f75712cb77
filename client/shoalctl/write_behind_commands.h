// shoalctl's write-behind commands (flush, dead-letters, replay) against a connected client.
#pragma once

#include <optional>

#include "command_line.h"
#include "output.h"
#include "shoal/client/client.h"

namespace shoal::ctl {

// The exit code of `line.command` if it is a write-behind command, else nullopt.
std::optional<int> runWriteBehindCommand(const CommandLine& line, Client& client, Output& out);

}  // namespace shoal::ctl

// shoald's configuration: defaults, then the TOML config file, then environment variables
// (SHOAL_NAME, SHOAL_LISTEN, ...), then flags — each later source overrides the earlier.
#pragma once

#include "shoal/node/options.h"

namespace shoal::shoald {

// Fills `options`. Returns -1 to go on, or an exit code: 0 after --help/--version, 2 for an
// invalid option (the message naming it is printed to stderr).
int loadOptions(int argc, char** argv, NodeOptions* options);

}  // namespace shoal::shoald

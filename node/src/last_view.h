// The size of the last cluster view this member was part of, kept in its data directory
// (`LAST_VIEW`), so that after a restart partitions wait for as many members — also on a member
// that holds no copy any more (it left gracefully, handing everything off): started first, it
// must not assign every partition to itself, empty, while the member holding the data is on its
// way. Written when the member count changes; advisory (a missing file means no wait).
#pragma once

#include <cstdint>
#include <string>

namespace shoal::node {

uint32_t readLastViewMembers(const std::string& dataDir);
// Atomic (temporary file, rename); false on an I/O error (logged by the caller).
bool writeLastViewMembers(const std::string& dataDir, uint32_t members);

}  // namespace shoal::node

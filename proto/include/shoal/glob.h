// Redis's glob matching (stringmatchlen), shared by the RESP gateway (KEYS, SCAN MATCH,
// PSUBSCRIBE) and by pattern subscriptions of the client library and the embedding API, so a
// pattern means the same thing everywhere. Plain C++, no allocation.
#pragma once

#include <string_view>

namespace shoal {

// Whether `text` matches `pattern`: `*` (any run, also empty), `?` (one character), `[abc]`,
// `[^a]`, `[a-z]` (an unclosed class runs to the pattern's end, as in Redis) and `\` escapes.
// `nocase` compares ASCII letters case-insensitively. O(pattern x text) for every pattern.
bool globMatch(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace shoal

// The one glob matcher (see shoal/glob.h); Redis-compatible.
#include "shoal/glob.h"

#include <cctype>
#include <utility>

namespace shoal {
namespace {

// Matches one pattern element at p[pi] ('?', a [class], an escaped or plain character) against c;
// sets *width to the element's length in the pattern. Never called on '*'.
bool matchOne(std::string_view p, size_t pi, char c, bool nocase, size_t* width) {
  auto lower = [nocase](char x) { return nocase ? char(tolower(x)) : x; };
  if (p[pi] == '?') {
    *width = 1;
    return true;
  }
  if (p[pi] == '\\' && pi + 1 < p.size()) {
    *width = 2;
    return lower(p[pi + 1]) == lower(c);
  }
  if (p[pi] != '[') {
    *width = 1;
    return lower(p[pi]) == lower(c);
  }
  size_t i = pi + 1;
  bool negate = i < p.size() && p[i] == '^';
  if (negate) ++i;
  bool match = false;
  while (i < p.size() && p[i] != ']') {
    if (p[i] == '\\' && i + 1 < p.size()) {
      ++i;
      match |= lower(p[i]) == lower(c);
    } else if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      char a = lower(p[i]), b = lower(p[i + 2]), x = lower(c);
      if (a > b) std::swap(a, b);
      match |= x >= a && x <= b;
      i += 2;
    } else {
      match |= lower(p[i]) == lower(c);
    }
    ++i;
  }
  *width = (i < p.size() ? i + 1 : i) - pi;  // an unclosed class runs to the end, as in Redis
  return negate ? !match : match;
}

}  // namespace

// Iterative with one backtrack point (the last '*'): O(pattern x text) whatever the pattern, so
// a hostile KEYS or SCAN MATCH pattern cannot stall the shard thread the way recursion on every
// '*' could (Redis fixed the same problem, CVE-2022-36021).
bool globMatch(std::string_view p, std::string_view s, bool nocase) {
  size_t pi = 0, si = 0;
  size_t starP = std::string_view::npos, starS = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      while (pi < p.size() && p[pi] == '*') ++pi;
      if (pi == p.size()) return true;
      starP = pi;
      starS = si;
      continue;
    }
    size_t width = 0;
    if (pi < p.size() && matchOne(p, pi, s[si], nocase, &width)) {
      pi += width;
      ++si;
      continue;
    }
    if (starP == std::string_view::npos) return false;
    pi = starP;  // let the last '*' swallow one more character and try again
    si = ++starS;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace shoal

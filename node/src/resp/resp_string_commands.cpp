// String and key commands (GET, SET and friends, expiry, counters, KEYS, SCAN) on one Shoal map.
#include <charconv>
#include <cmath>
#include <cstdio>

#include "resp_commands.h"

namespace shoal::node::resp {
namespace {

constexpr const char* NOT_INTEGER = "ERR value is not an integer or out of range";
constexpr const char* SYNTAX = "ERR syntax error";

bool parseInt(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (tolower(a[i]) != tolower(b[i])) return false;
  }
  return true;
}

// Redis's human-friendly long double formatting (INCRBYFLOAT replies and stored values).
std::string formatLongDouble(long double v) {
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%.17Lf", v);
  std::string s(buf, n);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

}  // namespace

bool Commands::checkKey(std::string_view key, ReplyWriter& out) {
  if (key.size() <= maps_.limits().maxKeyBytes) return true;
  out.error("ERR key of " + std::to_string(key.size()) + " bytes exceeds limits.max-key-bytes (" +
            std::to_string(maps_.limits().maxKeyBytes) + ")");
  return false;
}

bool Commands::checkValue(size_t size, ReplyWriter& out) {
  if (size <= maps_.limits().maxValueBytes) return true;
  out.error("ERR value of " + std::to_string(size) + " bytes exceeds limits.max-value-bytes (" +
            std::to_string(maps_.limits().maxValueBytes) + ")");
  return false;
}

int64_t Commands::remainingTtlMs(std::string_view key) {
  auto view = records().getEntry(partitionOf(key), key);
  if (!view || view->meta.expirationTimeMs == 0) return 0;
  return std::max<int64_t>(1, view->meta.expirationTimeMs - clock_.nowMs());
}

void Commands::writeValue(std::string_view key, std::string_view value, int64_t ttlMs) {
  records().write(partitionOf(key), key, WriteSpec{value, ttlMs, 0}, WriteMode::ALWAYS, nullptr);
}

void Commands::get(const Args& a, Session&, ReplyWriter& out) {
  if (!checkKey(a[1], out)) return;
  std::string value;
  if (records().get(partitionOf(a[1]), a[1], &value)) return out.bulk(value);
  out.null();
}

void Commands::set(const Args& a, Session&, ReplyWriter& out) {
  auto key = a[1], value = a[2];
  if (!checkKey(key, out) || !checkValue(value.size(), out)) return;
  bool nx = false, xx = false, get = false, keepTtl = false;
  int64_t ttlMs = 0;
  bool hasExpire = false;
  for (size_t i = 3; i < a.size(); ++i) {
    auto opt = a[i];
    bool hasNext = i + 1 < a.size();
    if (equalsIgnoreCase(opt, "nx") && !xx) {
      nx = true;
    } else if (equalsIgnoreCase(opt, "xx") && !nx) {
      xx = true;
    } else if (equalsIgnoreCase(opt, "get")) {
      get = true;
    } else if (equalsIgnoreCase(opt, "keepttl") && !hasExpire) {
      keepTtl = true;
    } else if ((equalsIgnoreCase(opt, "ex") || equalsIgnoreCase(opt, "px") || equalsIgnoreCase(opt, "exat") ||
                equalsIgnoreCase(opt, "pxat")) &&
               !keepTtl && !hasExpire && hasNext) {
      int64_t n = 0;
      if (!parseInt(a[++i], &n)) return out.error(NOT_INTEGER);
      bool seconds = equalsIgnoreCase(opt, "ex") || equalsIgnoreCase(opt, "exat");
      if (n <= 0 || (seconds && n > INT64_MAX / 1000))
        return out.error("ERR invalid expire time in 'set' command");
      int64_t ms = seconds ? n * 1000 : n;
      bool absolute = equalsIgnoreCase(opt, "exat") || equalsIgnoreCase(opt, "pxat");
      ttlMs = absolute ? ms - clock_.nowMs() : ms;
      hasExpire = true;
    } else {
      return out.error(SYNTAX);
    }
  }
  auto p = partitionOf(key);
  auto& map = records();
  std::string previous;
  bool exists = map.get(p, key, &previous);
  if ((nx && exists) || (xx && !exists)) {
    return get && exists ? out.bulk(previous) : out.null();
  }
  if (hasExpire && ttlMs <= 0) {
    map.remove(p, key, nullptr);  // an absolute time in the past: the key is gone at once
  } else {
    int64_t ttl = hasExpire ? ttlMs : keepTtl && exists ? remainingTtlMs(key) : 0;
    map.write(p, key, WriteSpec{value, ttl, 0}, WriteMode::ALWAYS, nullptr);
  }
  if (get) return exists ? out.bulk(previous) : out.null();
  out.ok();
}

void Commands::setnx(const Args& a, Session&, ReplyWriter& out) {
  if (!checkKey(a[1], out) || !checkValue(a[2].size(), out)) return;
  auto r = records().write(partitionOf(a[1]), a[1], WriteSpec{a[2], 0, 0}, WriteMode::IF_ABSENT, nullptr);
  out.integer(r.applied ? 1 : 0);
}

void Commands::setex(const Args& a, Session&, ReplyWriter& out) {
  int64_t seconds = 0;
  if (!parseInt(a[2], &seconds)) return out.error(NOT_INTEGER);
  if (seconds <= 0 || seconds > INT64_MAX / 1000)
    return out.error("ERR invalid expire time in 'setex' command");
  if (!checkKey(a[1], out) || !checkValue(a[3].size(), out)) return;
  writeValue(a[1], a[3], seconds * 1000);
  out.ok();
}

void Commands::psetex(const Args& a, Session&, ReplyWriter& out) {
  int64_t ms = 0;
  if (!parseInt(a[2], &ms)) return out.error(NOT_INTEGER);
  if (ms <= 0) return out.error("ERR invalid expire time in 'psetex' command");
  if (!checkKey(a[1], out) || !checkValue(a[3].size(), out)) return;
  writeValue(a[1], a[3], ms);
  out.ok();
}

void Commands::getset(const Args& a, Session&, ReplyWriter& out) {
  if (!checkKey(a[1], out) || !checkValue(a[2].size(), out)) return;
  std::string previous;
  auto r = records().write(partitionOf(a[1]), a[1], WriteSpec{a[2], 0, 0}, WriteMode::ALWAYS, &previous);
  r.hadPrevious ? out.bulk(previous) : out.null();
}

void Commands::getdel(const Args& a, Session&, ReplyWriter& out) {
  if (!checkKey(a[1], out)) return;
  std::string previous;
  if (records().remove(partitionOf(a[1]), a[1], &previous)) return out.bulk(previous);
  out.null();
}

void Commands::getex(const Args& a, Session&, ReplyWriter& out) {
  auto key = a[1];
  if (!checkKey(key, out)) return;
  int64_t ttlMs = -1;  // -1: leave the TTL alone
  bool persist = false;
  for (size_t i = 2; i < a.size(); ++i) {
    auto opt = a[i];
    if ((equalsIgnoreCase(opt, "ex") || equalsIgnoreCase(opt, "px") || equalsIgnoreCase(opt, "exat") ||
         equalsIgnoreCase(opt, "pxat")) &&
        i + 1 < a.size() && ttlMs == -1 && !persist) {
      int64_t n = 0;
      if (!parseInt(a[++i], &n)) return out.error(NOT_INTEGER);
      bool seconds = equalsIgnoreCase(opt, "ex") || equalsIgnoreCase(opt, "exat");
      if (n <= 0 || (seconds && n > INT64_MAX / 1000))
        return out.error("ERR invalid expire time in 'getex' command");
      int64_t ms = seconds ? n * 1000 : n;
      bool absolute = equalsIgnoreCase(opt, "exat") || equalsIgnoreCase(opt, "pxat");
      ttlMs = absolute ? std::max<int64_t>(0, ms - clock_.nowMs()) : ms;
    } else if (equalsIgnoreCase(opt, "persist") && ttlMs == -1 && !persist) {
      persist = true;
    } else {
      return out.error(SYNTAX);
    }
  }
  auto p = partitionOf(key);
  std::string value;
  if (!records().get(p, key, &value)) return out.null();
  if (ttlMs == 0) {
    records().remove(p, key, nullptr);
  } else if (ttlMs > 0) {
    records().setTtl(p, key, ttlMs);
  } else if (persist) {
    records().setTtl(p, key, 0);
  }
  out.bulk(value);
}

void Commands::mget(const Args& a, Session&, ReplyWriter& out) {
  out.arrayHeader(a.size() - 1);
  std::string value;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i].size() <= maps_.limits().maxKeyBytes && records().get(partitionOf(a[i]), a[i], &value)) {
      out.bulk(value);
    } else {
      out.null();
    }
  }
}

void Commands::mset(const Args& a, Session&, ReplyWriter& out) {
  if (a.size() % 2 == 0) return out.error("ERR wrong number of arguments for 'mset' command");
  for (size_t i = 1; i < a.size(); i += 2) {
    if (!checkKey(a[i], out) || !checkValue(a[i + 1].size(), out)) return;
  }
  for (size_t i = 1; i < a.size(); i += 2) writeValue(a[i], a[i + 1], 0);
  out.ok();
}

void Commands::msetnx(const Args& a, Session&, ReplyWriter& out) {
  if (a.size() % 2 == 0) return out.error("ERR wrong number of arguments for 'msetnx' command");
  for (size_t i = 1; i < a.size(); i += 2) {
    if (!checkKey(a[i], out) || !checkValue(a[i + 1].size(), out)) return;
  }
  // Atomic on one member: every key runs on this shard thread, nothing interleaves.
  for (size_t i = 1; i < a.size(); i += 2) {
    if (records().containsKey(partitionOf(a[i]), a[i])) return out.integer(0);
  }
  for (size_t i = 1; i < a.size(); i += 2) writeValue(a[i], a[i + 1], 0);
  out.integer(1);
}

void Commands::del(const Args& a, Session&, ReplyWriter& out) {
  int64_t n = 0;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i].size() <= maps_.limits().maxKeyBytes) n += records().remove(partitionOf(a[i]), a[i], nullptr);
  }
  out.integer(n);
}

void Commands::exists(const Args& a, Session&, ReplyWriter& out) {
  int64_t n = 0;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i].size() <= maps_.limits().maxKeyBytes) n += records().containsKey(partitionOf(a[i]), a[i]);
  }
  out.integer(n);
}

void Commands::type(const Args& a, Session&, ReplyWriter& out) {
  bool present = a[1].size() <= maps_.limits().maxKeyBytes && records().containsKey(partitionOf(a[1]), a[1]);
  out.simple(present ? "string" : "none");
}

void Commands::expireGeneric(const Args& a, ReplyWriter& out, int64_t unitMs, bool absolute) {
  auto key = a[1];
  int64_t n = 0;
  if (!parseInt(a[2], &n)) return out.error(NOT_INTEGER);
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < a.size(); ++i) {
    if (equalsIgnoreCase(a[i], "nx"))
      nx = true;
    else if (equalsIgnoreCase(a[i], "xx"))
      xx = true;
    else if (equalsIgnoreCase(a[i], "gt"))
      gt = true;
    else if (equalsIgnoreCase(a[i], "lt"))
      lt = true;
    else
      return out.error("ERR Unsupported option " + std::string(a[i]));
  }
  if (nx && (xx || gt || lt))
    return out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  if (gt && lt) return out.error("ERR GT and LT options at the same time are not compatible");
  if (unitMs == 1000 && (n > INT64_MAX / 1000 || n < INT64_MIN / 1000)) {
    return out.error(std::string("ERR invalid expire time in '") + (absolute ? "expireat" : "expire") +
                     "' command");
  }
  int64_t now = clock_.nowMs();
  int64_t when = absolute ? n * unitMs : now + n * unitMs;
  auto p = partitionOf(key);
  auto view = records().getEntry(p, key);
  if (!view) return out.integer(0);
  int64_t current = view->meta.expirationTimeMs;  // 0: no TTL (treated as infinite for GT/LT)
  if ((nx && current != 0) || (xx && current == 0) || (gt && (current == 0 || when <= current)) ||
      (lt && current != 0 && when >= current)) {
    return out.integer(0);
  }
  if (when <= now) {
    records().remove(p, key, nullptr);
  } else {
    records().setTtl(p, key, when - now);
  }
  out.integer(1);
}

void Commands::expire(const Args& a, Session&, ReplyWriter& out) {
  expireGeneric(a, out, 1000, false);
}
void Commands::pexpire(const Args& a, Session&, ReplyWriter& out) {
  expireGeneric(a, out, 1, false);
}
void Commands::expireat(const Args& a, Session&, ReplyWriter& out) {
  expireGeneric(a, out, 1000, true);
}
void Commands::pexpireat(const Args& a, Session&, ReplyWriter& out) {
  expireGeneric(a, out, 1, true);
}

void Commands::ttlGeneric(std::string_view key, bool millis, ReplyWriter& out) {
  auto view = records().getEntry(partitionOf(key), key);
  if (!view) return out.integer(-2);
  if (view->meta.expirationTimeMs == 0) return out.integer(-1);
  int64_t left = std::max<int64_t>(0, view->meta.expirationTimeMs - clock_.nowMs());
  out.integer(millis ? left : (left + 500) / 1000);
}

void Commands::ttl(const Args& a, Session&, ReplyWriter& out) {
  ttlGeneric(a[1], false, out);
}
void Commands::pttl(const Args& a, Session&, ReplyWriter& out) {
  ttlGeneric(a[1], true, out);
}

void Commands::persist(const Args& a, Session&, ReplyWriter& out) {
  auto p = partitionOf(a[1]);
  auto view = records().getEntry(p, a[1]);
  if (!view || view->meta.expirationTimeMs == 0) return out.integer(0);
  records().setTtl(p, a[1], 0);
  out.integer(1);
}

void Commands::incrGeneric(std::string_view key, int64_t delta, ReplyWriter& out) {
  if (!checkKey(key, out)) return;
  auto p = partitionOf(key);
  std::string current;
  int64_t value = 0;
  bool exists = records().get(p, key, &current);
  if (exists && !parseInt(current, &value)) return out.error(NOT_INTEGER);
  if ((delta > 0 && value > INT64_MAX - delta) || (delta < 0 && value < INT64_MIN - delta)) {
    return out.error("ERR increment or decrement would overflow");
  }
  value += delta;
  writeValue(key, std::to_string(value), exists ? remainingTtlMs(key) : 0);
  out.integer(value);
}

void Commands::incr(const Args& a, Session&, ReplyWriter& out) {
  incrGeneric(a[1], 1, out);
}
void Commands::decr(const Args& a, Session&, ReplyWriter& out) {
  incrGeneric(a[1], -1, out);
}

void Commands::incrby(const Args& a, Session&, ReplyWriter& out) {
  int64_t delta = 0;
  if (!parseInt(a[2], &delta)) return out.error(NOT_INTEGER);
  incrGeneric(a[1], delta, out);
}

void Commands::decrby(const Args& a, Session&, ReplyWriter& out) {
  int64_t delta = 0;
  if (!parseInt(a[2], &delta)) return out.error(NOT_INTEGER);
  if (delta == INT64_MIN) return out.error("ERR decrement would overflow");
  incrGeneric(a[1], -delta, out);
}

void Commands::incrbyfloat(const Args& a, Session&, ReplyWriter& out) {
  auto key = a[1];
  if (!checkKey(key, out)) return;
  auto parse = [](std::string_view s, long double* v) {
    if (s.empty() || s.size() > 5000 || isspace(static_cast<unsigned char>(s[0]))) return false;
    std::string copy(s);
    char* end = nullptr;
    *v = strtold(copy.c_str(), &end);
    return end == copy.c_str() + copy.size() && !std::isnan(*v);
  };
  long double incr = 0, value = 0;
  if (!parse(a[2], &incr)) return out.error("ERR value is not a valid float");
  auto p = partitionOf(key);
  std::string current;
  bool exists = records().get(p, key, &current);
  if (exists && !parse(current, &value)) return out.error("ERR value is not a valid float");
  value += incr;
  if (std::isnan(value) || std::isinf(value)) return out.error("ERR increment would produce NaN or Infinity");
  auto text = formatLongDouble(value);
  writeValue(key, text, exists ? remainingTtlMs(key) : 0);
  out.bulk(text);
}

void Commands::append(const Args& a, Session&, ReplyWriter& out) {
  auto key = a[1];
  if (!checkKey(key, out)) return;
  auto p = partitionOf(key);
  std::string current;
  bool exists = records().get(p, key, &current);
  if (!checkValue(current.size() + a[2].size(), out)) return;
  current.append(a[2]);
  writeValue(key, current, exists ? remainingTtlMs(key) : 0);
  out.integer(int64_t(current.size()));
}

void Commands::strlen(const Args& a, Session&, ReplyWriter& out) {
  std::string value;
  bool present = a[1].size() <= maps_.limits().maxKeyBytes && records().get(partitionOf(a[1]), a[1], &value);
  out.integer(present ? int64_t(value.size()) : 0);
}

void Commands::keys(const Args& a, Session&, ReplyWriter& out) {
  std::vector<std::string> matched;
  std::vector<MapRecords::ScanItem> page;
  uint64_t cursor = 0;
  // This member's partitions (in a cluster the gateway asks every member and joins the lists).
  const uint64_t partitionCount = maps_.partitioner().partitionCount();
  // Partition by partition (partition id in the cursor's top 16 bits), skipping those owned
  // elsewhere.
  uint64_t p = 0;
  while (p < partitionCount) {
    if (!maps_.owns(static_cast<PartitionId>(p))) {
      ++p;
      continue;
    }
    // From an owned partition on, until the scan reaches one owned elsewhere (or the end).
    cursor = p << 48;
    do {
      page.clear();
      cursor = maps_.scanOwned(&records(), cursor, 10'000, false, &page);
      for (auto& item : page) {
        if (globMatch(a[1], item.key)) matched.push_back(std::move(item.key));
      }
    } while (cursor != 0 && maps_.owns(static_cast<PartitionId>(cursor >> 48)));
    if (cursor == 0) break;
    p = cursor >> 48;
  }
  out.arrayHeader(matched.size());
  for (auto& k : matched) out.bulk(k);
}

void Commands::scan(const Args& a, Session&, ReplyWriter& out) {
  uint64_t cursor = 0;
  auto c = a[1];
  auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), cursor);
  if (ec != std::errc() || end != c.data() + c.size()) return out.error("ERR invalid cursor");
  std::string_view pattern;
  int64_t count = 10;
  for (size_t i = 2; i < a.size(); ++i) {
    if (equalsIgnoreCase(a[i], "match") && i + 1 < a.size()) {
      pattern = a[++i];
    } else if (equalsIgnoreCase(a[i], "count") && i + 1 < a.size()) {
      if (!parseInt(a[++i], &count)) return out.error(NOT_INTEGER);
      if (count < 1) return out.error(SYNTAX);
    } else if (equalsIgnoreCase(a[i], "type") && i + 1 < a.size()) {
      if (!equalsIgnoreCase(a[++i], "string")) {  // only strings live here
        out.arrayHeader(2);
        out.bulk("0");
        out.arrayHeader(0);
        return;
      }
    } else {
      return out.error(SYNTAX);
    }
  }
  std::vector<MapRecords::ScanItem> page;
  auto limit = static_cast<uint32_t>(std::min<int64_t>(count, maps_.limits().maxScanLimit));
  if ((cursor >> 48) >= maps_.partitioner().partitionCount()) return out.error("ERR invalid cursor");
  auto next = maps_.scanOwned(&records(), cursor, limit, false, &page);
  size_t kept = 0;
  for (size_t i = 0; i < page.size(); ++i) {
    if (!pattern.empty() && !globMatch(pattern, page[i].key)) continue;
    if (kept != i) page[kept].key = std::move(page[i].key);
    ++kept;
  }
  out.arrayHeader(2);
  out.bulk(std::to_string(next));
  out.arrayHeader(kept);
  for (size_t i = 0; i < kept; ++i) out.bulk(page[i].key);
}

}  // namespace shoal::node::resp

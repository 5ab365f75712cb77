#!/usr/bin/env bash
# compare-redis.sh: Shoal against Redis on this machine, in one run, as ratios.
#
#   1. Throughput: redis-benchmark (50 clients, no pipelining, 100-byte values, -r keyspace) vs.
#      shoal-bench (50 closed-loop async callers, 100-byte values, 1:1 GET:SET, same keyspace and
#      request count), ROUNDS times alternating, median reported. Target: shoal >= 1.0x the mean
#      of Redis's SET and GET rates. For context, also redis-benchmark with ONE connection and
#      CALLERS requests pipelined (-c 1 -P CALLERS): the shape of shoal's traffic, whose client
#      coalesces its callers' concurrent operations into one call per round trip.
#   2. Memory: KEYS entries of 16-byte keys ("key:%012d", redis-benchmark's names) and 100-byte
#      values loaded into a fresh redis-server (redis-cli --pipe) and a fresh shoald (shoal-bench
#      --load); Redis used_memory delta per key vs. the member's own map byte count per entry
#      (client->maps()), plus both processes' RSS deltas for honesty. Target: shoal <= 1.0x Redis.
#
#   3. RESP: redis-benchmark against redis-server and shoald --resp, without and with -P 16.
#   4. RESP, 3 members: the same redis-benchmark against one member of a 3-member cluster with
#      backup-count 1 (it forwards the keys it does not own; every write waits for its backup),
#      against redis-server and one shoald in the same rounds.
# Environment: BUILD_DIR (default build, relative to the repository root), REQUESTS (default
# 200000), KEYSPACE (100000), CALLERS (50), VALUE_SIZE (100), KEYS (1000000), ROUNDS (3),
# SEED (shoal-bench key chooser seed; default random, always printed), NICE (run every process
# under `nice -n NICE`, e.g. -10 on a machine busy with other work; default: unchanged),
# SECTIONS (which sections to run, default "1 2 3 4").
# Needs redis-server, redis-benchmark, redis-cli (Debian redis-server / redis-tools) and jq.
# Every process it starts is stopped on exit, including on Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REQUESTS="${REQUESTS:-200000}"
KEYSPACE="${KEYSPACE:-100000}"
CALLERS="${CALLERS:-50}"
VALUE_SIZE="${VALUE_SIZE:-100}"
KEYS="${KEYS:-1000000}"
ROUNDS="${ROUNDS:-3}"
SEED="${SEED:-}"
NICE="${NICE:-}"
SECTIONS="${SECTIONS:-1 2 3 4}"
section() { [[ " $SECTIONS " == *" $1 "* ]]; }
RUN=()
[[ -n "$NICE" ]] && RUN=(nice -n "$NICE")

SHOALD="$BUILD_DIR/node/shoald"
SHOAL_BENCH="$BUILD_DIR/bench/shoal-bench"

die() { echo "compare-redis: $*" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli jq awk; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools jq)"
done
[[ -x "$SHOALD" ]] || die "$SHOALD not built (ninja -C $BUILD_DIR shoald shoal-bench)"
[[ -x "$SHOAL_BENCH" ]] || die "$SHOAL_BENCH not built (ninja -C $BUILD_DIR shoald shoal-bench)"

WORK="$(mktemp -d /tmp/shoal-compare.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on now (the server started on it fails loudly if that changes).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free loopback port found"
}

# Stops one process this script started and forgets it, so cleanup never signals a reused pid.
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() pid
  for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Starts redis-server on a free port; sets REDIS_PID and REDIS_PORT.
start_redis() {
  REDIS_PORT="$(free_port)"
  "${RUN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    >"$WORK/redis-$REDIS_PORT.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 1 100); do
    [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && return
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -3 "$WORK/redis-$REDIS_PORT.log")"
    sleep 0.05
  done
  die "redis-server did not answer on port $REDIS_PORT"
}

stop_redis() { stop_pid "$REDIS_PID"; }

# Starts shoald on a free port (extra arguments go to shoald); sets SHOALD_PID, SHOALD_ADDR and,
# with --resp, SHOALD_RESP_PORT.
start_shoald() {
  local port log
  port="$(free_port)"
  log="$WORK/shoald-$port.log"
  "${RUN[@]}" "$SHOALD" --listen "127.0.0.1:$port" --log-level warn "$@" >"$log" 2>&1 &
  SHOALD_PID=$!
  PIDS+=("$SHOALD_PID")
  for _ in $(seq 1 100); do
    if grep -q "ready on" "$log"; then
      SHOALD_ADDR="$(sed -n 's/.* ready on \([^ ]*\).*/\1/p' "$log" | head -1)"
      SHOALD_RESP_PORT="$(sed -n 's/.* resp [^ ]*:\([0-9]*\).*/\1/p' "$log" | head -1)"
      return
    fi
    kill -0 "$SHOALD_PID" 2>/dev/null || die "shoald exited: $(tail -3 "$log")"
    sleep 0.05
  done
  die "shoald did not report ready on port $port"
}

stop_shoald() { stop_pid "$SHOALD_PID"; }

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
resp_rps() {  # port requests pipeline -> mean of SET and GET ops/s
  "${RUN[@]}" redis-benchmark -h 127.0.0.1 -p "$1" -t set,get -c "$CALLERS" -n "$2" -d "$VALUE_SIZE" \
    -r "$KEYSPACE" -P "$3" -q --csv | awk -F'","' '/^"(SET|GET)"/ {s += $2; n++} END {if (n == 2) print s / 2}'
}
fmt() { awk -v v="$1" 'BEGIN {printf "%.0f", v}'; }

SEED_ARGS=()
[[ -n "$SEED" ]] && SEED_ARGS=(--seed "$SEED")

echo "compare-redis: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), nice ${NICE:-0}, redis $(redis-server --version | awk '{print $3}' | sed s/v=//), shoal build $BUILD_DIR"
echo "throughput: $CALLERS callers/clients, $VALUE_SIZE-byte values, keyspace $KEYSPACE, $REQUESTS requests per test, $ROUNDS rounds"

# ---------------------------------------------------------------------------------------------
# 1. Throughput
if section 1; then
start_redis
start_shoald
: >"$WORK/redis-set" ; : >"$WORK/redis-get" ; : >"$WORK/redis-avg" ; : >"$WORK/shoal" ; : >"$WORK/ratio"
: >"$WORK/redis-pipe" ; : >"$WORK/ratio-pipe"
printf "%-6s %11s %11s %11s %11s %7s | %13s %7s | %s\n" round "redis SET/s" "redis GET/s" "redis avg/s" "shoal op/s" ratio \
  "redis -P avg/s" ratio "shoal p50/p99/p999 us"
for round in $(seq 1 "$ROUNDS"); do
  csv="$("${RUN[@]}" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t set,get -c "$CALLERS" -n "$REQUESTS" -d "$VALUE_SIZE" \
    -r "$KEYSPACE" -q --csv)"
  set_rps="$(echo "$csv" | awk -F'","' '/^"SET"/ {print $2}')"
  get_rps="$(echo "$csv" | awk -F'","' '/^"GET"/ {print $2}')"
  [[ -n "$set_rps" && -n "$get_rps" ]] || die "could not read redis-benchmark output: $csv"
  avg_rps="$(awk -v s="$set_rps" -v g="$get_rps" 'BEGIN {print (s + g) / 2}')"
  csv="$("${RUN[@]}" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t set,get -c 1 -P "$CALLERS" -n "$REQUESTS" \
    -d "$VALUE_SIZE" -r "$KEYSPACE" -q --csv)"
  pipe_rps="$(echo "$csv" | awk -F'","' '/^"(SET|GET)"/ {s += $2; n++} END {if (n == 2) print s / 2}')"
  [[ -n "$pipe_rps" ]] || die "could not read redis-benchmark -P output: $csv"

  # --warmup fills the whole keyspace first, so every shoal GET is a hit (Redis's GET test finds
  # only the keys its SET test wrote, about 86% at 2x keyspace requests): shoal does no less work.
  json="$("${RUN[@]}" "$SHOAL_BENCH" --servers "$SHOALD_ADDR" --callers "$CALLERS" --value-size "$VALUE_SIZE" --ratio 1:1 \
    --keyspace "$KEYSPACE" --requests "$REQUESTS" --warmup --json "${SEED_ARGS[@]}" 2>/dev/null)" ||
    die "shoal-bench failed: $json"
  run="$(echo "$json" | jq -c '.phases[] | select(.name == "run")')"
  [[ "$(echo "$run" | jq '.errors')" == 0 ]] || die "shoal-bench saw errors: $(echo "$run" | jq -r '.firstError')"
  shoal_rps="$(echo "$run" | jq '.opsPerSec')"
  lat="$(echo "$run" | jq -r '.latencyUs | "\(.p50|floor)/\(.p99|floor)/\(.p999|floor)"')"
  seed="$(echo "$json" | jq -r '.seed')"
  r="$(ratio "$shoal_rps" "$avg_rps")"
  rp="$(ratio "$shoal_rps" "$pipe_rps")"
  printf "%-6s %11s %11s %11s %11s %7s | %13s %7s | %s\n" "$round" "$(fmt "$set_rps")" "$(fmt "$get_rps")" \
    "$(fmt "$avg_rps")" "$(fmt "$shoal_rps")" "$r" "$(fmt "$pipe_rps")" "$rp" "$lat  (seed $seed)"
  echo "$set_rps" >>"$WORK/redis-set"; echo "$get_rps" >>"$WORK/redis-get"; echo "$avg_rps" >>"$WORK/redis-avg"
  echo "$shoal_rps" >>"$WORK/shoal"; echo "$r" >>"$WORK/ratio"
  echo "$pipe_rps" >>"$WORK/redis-pipe"; echo "$rp" >>"$WORK/ratio-pipe"
done
printf "%-6s %11s %11s %11s %11s %7s | %13s %7s |\n" median "$(fmt "$(median <"$WORK/redis-set")")" \
  "$(fmt "$(median <"$WORK/redis-get")")" "$(fmt "$(median <"$WORK/redis-avg")")" "$(fmt "$(median <"$WORK/shoal")")" \
  "$(median <"$WORK/ratio")" "$(fmt "$(median <"$WORK/redis-pipe")")" "$(median <"$WORK/ratio-pipe")"
echo "throughput ratio shoal / redis-benchmark -c $CALLERS (median of per-round ratios): $(median <"$WORK/ratio")x  (target >= 1.0)"
echo "context: shoal / redis-benchmark -c 1 -P $CALLERS (same batched shape): $(median <"$WORK/ratio-pipe")x"
stop_shoald
stop_redis
fi

# ---------------------------------------------------------------------------------------------
# 2. Memory
if section 2; then
echo
echo "memory: $KEYS entries, 16-byte keys, $VALUE_SIZE-byte values, fresh processes"
start_redis
redis_used_before="$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2+0}')"
redis_rss_before="$(rss_kb "$REDIS_PID")"
awk -v n="$KEYS" -v size="$VALUE_SIZE" 'BEGIN {
  v = sprintf("%*s", size, ""); gsub(/ /, "x", v)
  for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%s\r\n", i, size, v
}' | "${RUN[@]}" redis-cli -p "$REDIS_PORT" --pipe >"$WORK/redis-pipe.log"
grep -q "errors: 0" "$WORK/redis-pipe.log" || die "redis-cli --pipe: $(tail -2 "$WORK/redis-pipe.log")"
redis_keys="$(redis-cli -p "$REDIS_PORT" dbsize)"
redis_used_after="$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2+0}')"
redis_rss_after="$(rss_kb "$REDIS_PID")"
stop_redis
redis_bpe="$(awk -v a="$redis_used_after" -v b="$redis_used_before" -v n="$redis_keys" 'BEGIN {printf "%.1f", (a - b) / n}')"
redis_rss_bpe="$(awk -v a="$redis_rss_after" -v b="$redis_rss_before" -v n="$redis_keys" 'BEGIN {printf "%.1f", (a - b) * 1024 / n}')"

start_shoald
shoal_rss_before="$(rss_kb "$SHOALD_PID")"
json="$("${RUN[@]}" "$SHOAL_BENCH" --servers "$SHOALD_ADDR" --map mem --load "$KEYS" --key-size 16 --value-size "$VALUE_SIZE" \
  --callers 1000 --report-maps --json 2>/dev/null)" || die "shoal-bench --load failed: $json"
shoal_rss_after="$(rss_kb "$SHOALD_PID")"
stop_shoald
shoal_entries="$(echo "$json" | jq '.maps[] | select(.name == "mem") | .entries')"
shoal_bytes="$(echo "$json" | jq '.maps[] | select(.name == "mem") | .bytes')"
load_rps="$(echo "$json" | jq '.phases[] | select(.name == "load") | .opsPerSec')"
[[ "$shoal_entries" == "$KEYS" ]] || die "shoal map holds $shoal_entries entries, expected $KEYS"
shoal_bpe="$(awk -v b="$shoal_bytes" -v n="$shoal_entries" 'BEGIN {printf "%.1f", b / n}')"
shoal_rss_bpe="$(awk -v a="$shoal_rss_after" -v b="$shoal_rss_before" -v n="$shoal_entries" 'BEGIN {printf "%.1f", (a - b) * 1024 / n}')"

printf "%-44s %14s %14s\n" "" "bytes/entry" "entries"
printf "%-44s %14s %14s\n" "redis used_memory delta" "$redis_bpe" "$redis_keys"
printf "%-44s %14s %14s\n" "shoal map bytes (member's count, maps())" "$shoal_bpe" "$shoal_entries"
printf "%-44s %14s\n" "redis RSS delta" "$redis_rss_bpe"
printf "%-44s %14s\n" "shoald RSS delta" "$shoal_rss_bpe"
echo "memory ratio shoal map bytes / redis used_memory: $(ratio "$shoal_bpe" "$redis_bpe")x  (target <= 1.0)"
echo "memory ratio shoald RSS / redis RSS (deltas):      $(ratio "$shoal_rss_bpe" "$redis_rss_bpe")x"
echo "(shoal loaded at $(fmt "$load_rps") SET/s with 1000 callers)"
fi

# ---------------------------------------------------------------------------------------------
# 3. RESP gateway: redis-benchmark against redis-server and against shoald --resp, the same
# workload, without pipelining and with -P 16. Targets: >= 1.0x both.
if section 3; then
echo
echo "RESP: redis-benchmark -t set,get -c $CALLERS -n $REQUESTS -d $VALUE_SIZE -r $KEYSPACE, $ROUNDS rounds, against each server"
start_redis
start_shoald --resp 127.0.0.1:0
[[ -n "$SHOALD_RESP_PORT" ]] || die "shoald did not report its RESP port"
: >"$WORK/resp1" ; : >"$WORK/resp16"
printf "%-6s %14s %14s %7s | %14s %14s %7s\n" round "redis avg/s" "shoal avg/s" ratio "redis -P16/s" "shoal -P16/s" ratio
for round in $(seq 1 "$ROUNDS"); do
  r1="$(resp_rps "$REDIS_PORT" "$REQUESTS" 1)"; s1="$(resp_rps "$SHOALD_RESP_PORT" "$REQUESTS" 1)"
  r16="$(resp_rps "$REDIS_PORT" $((REQUESTS * 5)) 16)"; s16="$(resp_rps "$SHOALD_RESP_PORT" $((REQUESTS * 5)) 16)"
  [[ -n "$r1" && -n "$s1" && -n "$r16" && -n "$s16" ]] || die "could not read redis-benchmark output"
  printf "%-6s %14s %14s %7s | %14s %14s %7s\n" "$round" "$(fmt "$r1")" "$(fmt "$s1")" "$(ratio "$s1" "$r1")" \
    "$(fmt "$r16")" "$(fmt "$s16")" "$(ratio "$s16" "$r16")"
  ratio "$s1" "$r1" >>"$WORK/resp1"; echo >>"$WORK/resp1"
  ratio "$s16" "$r16" >>"$WORK/resp16"; echo >>"$WORK/resp16"
done
stop_shoald
stop_redis
echo "RESP ratio shoald / redis-server, no pipelining (median): $(grep . "$WORK/resp1" | median)x  (target >= 1.0)"
echo "RESP ratio shoald / redis-server, -P 16 (median):         $(grep . "$WORK/resp16" | median)x  (target >= 1.0)"
fi

# ---------------------------------------------------------------------------------------------
# 4. RESP gateway, 3 members with backup-count 1: redis-benchmark against ONE member of the
# cluster (it serves the keys it owns and forwards the rest to their owners; every write is
# applied on a backup before its reply), redis-server and a single shoald in the same rounds.
if section 4; then
CTL="$BUILD_DIR/client/shoalctl"
[[ -x "$CTL" ]] || die "$CTL not built (ninja -C $BUILD_DIR shoalctl)"
echo
echo "RESP, 3 members (backup-count 1): redis-benchmark -t set,get -c $CALLERS -n $REQUESTS -d $VALUE_SIZE -r $KEYSPACE through one member, $ROUNDS rounds"
start_redis
start_shoald --resp 127.0.0.1:0
single_pid="$SHOALD_PID" single_resp="$SHOALD_RESP_PORT"
start_shoald --name m1 --resp 127.0.0.1:0 --backup-count 1
first_addr="$SHOALD_ADDR" first_resp="$SHOALD_RESP_PORT"
start_shoald --name m2 --seeds "$first_addr" --backup-count 1
start_shoald --name m3 --seeds "$first_addr" --backup-count 1
settled=""
for _ in $(seq 1 300); do
  doc="$("$CTL" --servers "$first_addr" --json cluster 2>/dev/null || true)"
  if [[ -n "$doc" && "$(jq '.members | length' <<<"$doc")" == 3 && "$(jq '.migrating' <<<"$doc")" == 0 ]]; then
    settled=yes
    break
  fi
  sleep 0.1
done
[[ -n "$settled" ]] || die "the 3-member cluster did not settle"
: >"$WORK/c1" ; : >"$WORK/c16"; : >"$WORK/cs1"; : >"$WORK/cs16"
printf "%-6s %12s %12s %12s %7s %7s | %12s %12s %12s %7s %7s\n" round "redis/s" "1 member/s" "3 members/s" "/redis" "/1 mbr" \
  "redis -P16" "1 mbr -P16" "3 mbr -P16" "/redis" "/1 mbr"
for round in $(seq 1 "$ROUNDS"); do
  r1="$(resp_rps "$REDIS_PORT" "$REQUESTS" 1)"; o1="$(resp_rps "$single_resp" "$REQUESTS" 1)"
  c1="$(resp_rps "$first_resp" "$REQUESTS" 1)"
  r16="$(resp_rps "$REDIS_PORT" $((REQUESTS * 5)) 16)"; o16="$(resp_rps "$single_resp" $((REQUESTS * 5)) 16)"
  c16="$(resp_rps "$first_resp" $((REQUESTS * 5)) 16)"
  [[ -n "$r1" && -n "$o1" && -n "$c1" && -n "$r16" && -n "$o16" && -n "$c16" ]] || die "could not read redis-benchmark output"
  printf "%-6s %12s %12s %12s %7s %7s | %12s %12s %12s %7s %7s\n" "$round" "$(fmt "$r1")" "$(fmt "$o1")" "$(fmt "$c1")" \
    "$(ratio "$c1" "$r1")" "$(ratio "$c1" "$o1")" "$(fmt "$r16")" "$(fmt "$o16")" "$(fmt "$c16")" \
    "$(ratio "$c16" "$r16")" "$(ratio "$c16" "$o16")"
  { ratio "$c1" "$r1"; echo; } >>"$WORK/c1"; { ratio "$c16" "$r16"; echo; } >>"$WORK/c16"
  { ratio "$c1" "$o1"; echo; } >>"$WORK/cs1"; { ratio "$c16" "$o16"; echo; } >>"$WORK/cs16"
done
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
echo "RESP 3 members / redis-server (median): no pipelining $(median <"$WORK/c1")x, -P 16 $(median <"$WORK/c16")x"
echo "RESP 3 members / 1 member (median):     no pipelining $(median <"$WORK/cs1")x, -P 16 $(median <"$WORK/cs16")x"
fi

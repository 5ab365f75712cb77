#!/usr/bin/env bash
# cluster-bench.sh: what a grid of real shoald processes on this machine costs and survives.
#
#   1. Throughput: shoal-bench (CALLERS callers, 1:1 GET:SET, 100-byte values) against ONE member
#      and against THREE members with backup-count 1 (every write applied on a backup before its
#      acknowledgement), ROUNDS times alternating; medians and their ratio. Target: >= 0.7x.
#   2. Failover: shoal-bench writes and reads through all three members while one member that is
#      not the client's first contact is killed with SIGKILL; the slowest operation (its wait spans
#      the unavailability: detection, promotion of the backup, the client's retry) is the window.
#      FAILOVERS rounds; median and worst. Target: <= 2 s.
#   3. Migration: ENTRIES entries of VALUE_SIZE bytes in two members, then a third joins while
#      shoal-bench keeps a foreground load; time until the table settles (no replica filling), the
#      data the newcomer received per second, and the foreground p99 / max latency meanwhile.
#   4. Whole-cluster restart: three members with data directories (write-through) hold ENTRIES
#      entries; all are killed with SIGKILL and started again; time from the first start until
#      the table is assigned and settled (restore, wait for the last view's members, first
#      assignment from the newest copies, refill of the backups), and the entries found afterwards.
# Environment: BUILD_DIR (default build), CALLERS (50), ROUNDS (3), SECONDS_PER_RUN (5),
# FAILOVERS (3), ENTRIES (200000), VALUE_SIZE (1000), SECTIONS ("1 2 3 4": which parts to run).
# Needs jq. Stops every process it starts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
CALLERS="${CALLERS:-50}"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
FAILOVERS="${FAILOVERS:-3}"
ENTRIES="${ENTRIES:-200000}"
VALUE_SIZE="${VALUE_SIZE:-1000}"
SECTIONS="${SECTIONS:-1 2 3 4}"
wanted() { [[ " $SECTIONS " == *" $1 "* ]]; }
SHOALD="$BUILD_DIR/node/shoald"
BENCH="$BUILD_DIR/bench/shoal-bench"
CTL="$BUILD_DIR/client/shoalctl"
for tool in jq awk; do command -v "$tool" >/dev/null || { echo "cluster-bench: $tool not found" >&2; exit 1; }; done
for bin in "$SHOALD" "$BENCH" "$CTL"; do [[ -x "$bin" ]] || { echo "cluster-bench: $bin not built" >&2; exit 1; }; done

WORK="$(mktemp -d /tmp/shoal-cluster-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME [SEED_ADDRESS [SHOALD_ARGS...]]: starts a member on a kernel-picked port; sets
# ADDRESS and PID.
start() {
  local name="$1" seed="${2:-}" log="$WORK/$1.log"
  shift $(( $# < 2 ? $# : 2 ))
  local args=(--name "$name" --listen 127.0.0.1:0 --log-level warn "$@")
  [[ -n "$seed" ]] && args+=(--seeds "$seed")
  "$SHOALD" "${args[@]}" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do
    ADDRESS="$(sed -n 's/^shoald .* ready on \([^ ]*\).*/\1/p' "$log")"
    [[ -n "$ADDRESS" ]] && return 0
    sleep 0.1
  done
  echo "cluster-bench: member $name did not start:" >&2
  cat "$log" >&2
  exit 1
}
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
# settled SERVER MEMBERS: waits until SERVER reports MEMBERS members and no replica filling.
settled() {
  for _ in $(seq 600); do
    local doc
    doc="$("$CTL" --servers "$1" --json cluster 2>/dev/null || true)"
    if [[ -n "$doc" && "$(jq '.members | length' <<<"$doc")" == "$2" && "$(jq '.migrating' <<<"$doc")" == 0 &&
          "$(jq '.tableEpoch' <<<"$doc")" != 0 ]]; then
      return 0
    fi
    sleep 0.1
  done
  echo "cluster-bench: the cluster did not settle at $2 members" >&2
  exit 1
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
bench() {  # bench SERVERS [extra shoal-bench flags...]: prints the run's JSON phase
  local servers="$1"
  shift
  "$BENCH" --servers "$servers" --callers "$CALLERS" --json "$@" 2>/dev/null | jq -c '.phases[-1]'
}

if wanted 1; then
echo "== 1. throughput: 3 members (backup-count 1) vs 1 member, $CALLERS callers, ${SECONDS_PER_RUN}s runs"
one=() three=()
for round in $(seq "$ROUNDS"); do
  start solo
  r="$(bench "$ADDRESS" --duration "${SECONDS_PER_RUN}s")"
  one+=("$(jq '.opsPerSec' <<<"$r")")
  stop_all
  start m1
  first="$ADDRESS"
  start m2 "$first"
  second="$ADDRESS"
  start m3 "$first"
  settled "$first" 3
  r="$(bench "$first,$second,$ADDRESS" --duration "${SECONDS_PER_RUN}s")"
  three+=("$(jq '.opsPerSec' <<<"$r")")
  stop_all
  printf 'round %d: 1 member %.0f ops/s, 3 members %.0f ops/s\n' "$round" "${one[-1]}" "${three[-1]}"
done
m1="$(printf '%s\n' "${one[@]}" | median)"
m3="$(printf '%s\n' "${three[@]}" | median)"
awk -v a="$m3" -v b="$m1" 'BEGIN { printf "median: 1 member %.0f ops/s, 3 members %.0f ops/s -> %.2fx (target >= 0.7x)\n", b, a, a / b }'

fi

if wanted 2; then
echo "== 2. failover: kill -9 of a member under load, $FAILOVERS rounds"
windows=()
for round in $(seq "$FAILOVERS"); do
  start m1
  first="$ADDRESS"
  start m2 "$first"
  second="$ADDRESS"
  start m3 "$first"
  victim="$PID"
  settled "$first" 3
  bench "$first,$second,$ADDRESS" --duration 6s --timeout 20000 >"$WORK/failover.json" &
  bench_pid=$!
  sleep 2
  kill -9 "$victim"
  wait "$bench_pid"
  r="$(cat "$WORK/failover.json")"
  window="$(jq '.latencyUs.max / 1000' <<<"$r")"
  windows+=("$window")
  printf 'round %d: slowest operation %.0f ms, %s errors, p99 %.1f ms over the run\n' "$round" "$window" \
    "$(jq '.errors' <<<"$r")" "$(jq '.latencyUs.p99 / 1000' <<<"$r")"
  stop_all
done
printf 'unavailability window: median %.0f ms, worst %.0f ms (target <= 2000 ms)\n' \
  "$(printf '%s\n' "${windows[@]}" | median)" "$(printf '%s\n' "${windows[@]}" | sort -g | tail -1)"

fi

if wanted 3; then
echo "== 3. migration: $ENTRIES entries of $VALUE_SIZE bytes, a third member joins under load"
start m1
first="$ADDRESS"
start m2 "$first"
second="$ADDRESS"
settled "$first" 2
"$BENCH" --servers "$first,$second" --map moved --value-size "$VALUE_SIZE" --load "$ENTRIES" >/dev/null 2>&1
bytes="$("$CTL" --servers "$first" --json maps | jq '[.maps[] | select(.name == "moved") | .bytes] | add')"
bench "$first,$second" --duration 20s --timeout 20000 >"$WORK/migration.json" &
bench_pid=$!
sleep 2
started=$(date +%s.%N)
start m3 "$first"
settled "$first" 3
ended=$(date +%s.%N)
received="$("$CTL" --servers "$first" --json cluster | jq '[.members[] | select(.name == "m3") | .partitions + .backups] | add')"
wait "$bench_pid"
r="$(cat "$WORK/migration.json")"
# With two members and backup-count 1 each holds every partition (as primary or backup), so the
# first member's bytes are one full copy and one partition replica is bytes / 271.
awk -v b="$bytes" -v n="$received" -v s="$started" -v e="$ended" -v p99="$(jq '.latencyUs.p99 / 1000' <<<"$r")" \
  -v max="$(jq '.latencyUs.max / 1000' <<<"$r")" -v errors="$(jq '.errors' <<<"$r")" 'BEGIN {
    per = b / 271; moved = per * n; t = e - s;
    printf "settled %.1f s after the join; the newcomer received %d partition replicas (~%.0f MB) -> %.1f MB/s\n", t, n, moved / 1e6, moved / 1e6 / t
    printf "foreground load meanwhile: p99 %.1f ms, max %.0f ms, %d errors\n", p99, max, errors
  }'
stop_all
fi

if wanted 4; then
echo "== 4. whole-cluster restart: 3 members with data directories, $ENTRIES entries of $VALUE_SIZE bytes, kill -9 of all"
start m1 "" --data-dir "$WORK/d1"
first="$ADDRESS"
start m2 "$first" --data-dir "$WORK/d2"
start m3 "$first" --data-dir "$WORK/d3"
settled "$first" 3
"$BENCH" --servers "$first" --map kept --value-size "$VALUE_SIZE" --load "$ENTRIES" >/dev/null 2>&1
before="$("$CTL" --servers "$first" size kept)"
stop_all
started=$(date +%s.%N)
start m1 "" --data-dir "$WORK/d1"
first="$ADDRESS"
start m2 "$first" --data-dir "$WORK/d2"
start m3 "$first" --data-dir "$WORK/d3"
settled "$first" 3
ended=$(date +%s.%N)
after="$("$CTL" --servers "$first" size kept)"
awk -v s="$started" -v e="$ended" -v b="$before" -v a="$after" 'BEGIN {
    printf "settled %.2f s after the first start (all three started at once); entries %d before, %d after\n", e - s, b, a
  }'
stop_all
fi

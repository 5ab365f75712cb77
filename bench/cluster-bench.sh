#!/usr/bin/env bash
# cluster-bench.sh: throughput of 3 members (backup-count 1: every write is applied on its primary
# and acknowledged after its backup applied it too) against 1 member, in one run, as a ratio.
# Target (issue #3): 3 members >= 0.7x of 1 member.
#
# Each round: one member alone, then a fresh 3-member cluster (joined through the first, waited on
# until the partition table is settled), each loaded by shoal-bench (CALLERS closed-loop async
# callers on one client, 100-byte values, 1:1 GET:SET, keyspace prefilled with --warmup). Against
# the cluster it runs twice: with smart routing (the default: each keyed op goes straight to its
# primary) and with --no-smart-routing (everything through one member, which forwards). ROUNDS
# rounds, medians reported.
# Environment: BUILD_DIR (default build-sc-release), REQUESTS (200000), KEYSPACE (100000),
# CALLERS (50), VALUE_SIZE (100), ROUNDS (3). Needs jq. Every process it starts is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build-sc-release}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REQUESTS="${REQUESTS:-200000}"
KEYSPACE="${KEYSPACE:-100000}"
CALLERS="${CALLERS:-50}"
VALUE_SIZE="${VALUE_SIZE:-100}"
ROUNDS="${ROUNDS:-3}"

SHOALD="$BUILD_DIR/node/shoald"
SHOAL_BENCH="$BUILD_DIR/bench/shoal-bench"
SHOALCTL="$BUILD_DIR/client/shoalctl"

die() { echo "cluster-bench: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
for bin in "$SHOALD" "$SHOAL_BENCH" "$SHOALCTL"; do
  [[ -x "$bin" ]] || die "$bin not built (ninja -C $BUILD_DIR shoald shoal-bench shoalctl)"
done

WORK="$(mktemp -d /tmp/shoal-cluster-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts shoald on a kernel-picked port (extra arguments go to shoald); appends its address to ADDRS.
start_shoald() {
  local log="$WORK/shoald-$RANDOM$RANDOM.log"
  "$SHOALD" --listen 127.0.0.1:0 --log-level warn "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 200); do
    if grep -q "ready on" "$log"; then
      ADDRS+=("$(sed -n 's/.* ready on \([^ ]*\).*/\1/p' "$log" | head -1)")
      return
    fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "shoald exited: $(tail -3 "$log")"
    sleep 0.05
  done
  die "shoald did not report ready"
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  ADDRS=()
}

wait_settled() {
  local n="$1" json
  for _ in $(seq 1 400); do
    json="$("$SHOALCTL" --servers "${ADDRS[0]}" --json cluster 2>/dev/null || true)"
    if [[ -n "$json" && "$(echo "$json" | jq '.members | length')" == "$n" &&
      "$(echo "$json" | jq '.migrating')" == 0 && "$(echo "$json" | jq '.tableEpoch')" != 0 ]]; then
      return
    fi
    sleep 0.05
  done
  die "cluster did not settle at $n members"
}

# Runs shoal-bench against the members in ADDRS (extra arguments go to shoal-bench); prints
# "ops/s p50/p99".
bench() {
  local servers json run
  servers="$(IFS=,; echo "${ADDRS[*]}")"
  json="$("$SHOAL_BENCH" --servers "$servers" --callers "$CALLERS" --value-size "$VALUE_SIZE" --ratio 1:1 \
    --keyspace "$KEYSPACE" --requests "$REQUESTS" --warmup --json "$@" 2>/dev/null)" || die "shoal-bench failed: $json"
  run="$(echo "$json" | jq -c '.phases[] | select(.name == "run")')"
  [[ "$(echo "$run" | jq '.errors')" == 0 ]] || die "shoal-bench saw errors: $(echo "$run" | jq -r '.firstError')"
  echo "$(echo "$run" | jq '.opsPerSec | floor') $(echo "$run" | jq -r '.latencyUs | "\(.p50|floor)/\(.p99|floor)"')"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }

echo "cluster-bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), build $BUILD_DIR"
echo "$CALLERS callers on one client, $VALUE_SIZE-byte values, 1:1 GET:SET, keyspace $KEYSPACE, $REQUESTS requests, $ROUNDS rounds"
printf "%-6s %18s %18s %8s %18s %8s\n" round "1 member ops/s" "3 smart ops/s" ratio "3 forwarded ops/s" ratio
ONE=() SMART=() FWD=() ADDRS=()
for round in $(seq 1 "$ROUNDS"); do
  start_shoald
  read -r one one_lat < <(bench --map "one$round")
  stop_all

  start_shoald --backup-count 1
  start_shoald --backup-count 1 --seeds "${ADDRS[0]}"
  start_shoald --backup-count 1 --seeds "${ADDRS[0]}"
  wait_settled 3
  read -r smart smart_lat < <(bench --map "smart$round")
  read -r fwd fwd_lat < <(bench --map "fwd$round" --no-smart-routing)
  stop_all

  ONE+=("$one") SMART+=("$smart") FWD+=("$fwd")
  printf "%-6s %18s %18s %8s %18s %8s   p50/p99 us: %s | %s | %s\n" "$round" "$one" "$smart" \
    "$(ratio "$smart" "$one")x" "$fwd" "$(ratio "$fwd" "$one")x" "$one_lat" "$smart_lat" "$fwd_lat"
done
m1="$(printf "%s\n" "${ONE[@]}" | median)"
ms="$(printf "%s\n" "${SMART[@]}" | median)"
mf="$(printf "%s\n" "${FWD[@]}" | median)"
printf "%-6s %18s %18s %8s %18s %8s\n" median "$m1" "$ms" "$(ratio "$ms" "$m1")x" "$mf" "$(ratio "$mf" "$m1")x"

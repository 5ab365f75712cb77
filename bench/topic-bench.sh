#!/usr/bin/env bash
# topic-bench.sh: Shoal topics against Redis PUBLISH/SUBSCRIBE on this machine, in one run.
#
# shoal-pubsub-bench drives both the same way (one publisher with a window of unacknowledged
# publishes, N subscribers each receiving every message; every payload carries its send time):
#   1. Throughput: MESSAGES messages of SIZE bytes, as fast as acknowledged, with 1 and with 10
#      subscribers; deliveries per second (all subscribers) and the ratio Shoal / Redis.
#      Target: >= 1.0x.
#   2. Latency at a fixed rate: RATE messages/s (default 10000) for RATE_SECONDS, 1 subscriber;
#      end-to-end p50 / p99 / max. Target: Shoal p99 <= 1 ms.
# ROUNDS rounds alternating, medians reported. Environment: BUILD_DIR (default build), MESSAGES
# (200000), SIZE (100), WINDOW (1000), RATE (10000), RATE_SECONDS (5), ROUNDS (3).
# Needs redis-server, redis-cli and jq. Stops every process it starts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
MESSAGES="${MESSAGES:-200000}"
SIZE="${SIZE:-100}"
WINDOW="${WINDOW:-1000}"
RATE="${RATE:-10000}"
RATE_SECONDS="${RATE_SECONDS:-5}"
ROUNDS="${ROUNDS:-3}"
SHOALD="$BUILD_DIR/node/shoald"
BENCH="$BUILD_DIR/bench/shoal-pubsub-bench"

die() { echo "topic-bench: $*" >&2; exit 1; }
for tool in redis-server redis-cli jq awk; do command -v "$tool" >/dev/null || die "$tool not found"; done
for bin in "$SHOALD" "$BENCH"; do [[ -x "$bin" ]] || die "$bin not built"; done

WORK="$(mktemp -d /tmp/shoal-topic-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  die "no free loopback port found"
}

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
  sleep 0.05
done
SHOALD_LOG="$WORK/shoald.log"
"$SHOALD" --listen "127.0.0.1:0" --log-level warn >"$SHOALD_LOG" 2>&1 &
PIDS+=($!)
SHOALD_ADDR=""
for _ in $(seq 1 100); do
  SHOALD_ADDR="$(sed -n 's/.* ready on \([^ ]*\).*/\1/p' "$SHOALD_LOG" | head -1)"
  [[ -n "$SHOALD_ADDR" ]] && break
  sleep 0.05
done
[[ -n "$SHOALD_ADDR" ]] || die "shoald did not start: $(tail -3 "$SHOALD_LOG")"

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
fmt() { awk -v v="$1" 'BEGIN {printf "%.0f", v}'; }

# run TARGET CHANNEL ARGS...: one bench run; prints its JSON line.
run() {
  local target="$1" channel="$2"; shift 2
  local address="127.0.0.1:$REDIS_PORT"
  [[ "$target" == shoal ]] && address="$SHOALD_ADDR"
  "$BENCH" --target "$target" --address "$address" --channel "$channel" --size "$SIZE" "$@"
}

echo "topic-bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), redis $(redis-server --version | awk '{print $3}' | sed s/v=//), $SIZE-byte messages, $ROUNDS rounds"
for subs in 1 10; do
  : >"$WORK/shoal-$subs" ; : >"$WORK/redis-$subs"
  for round in $(seq "$ROUNDS"); do
    for target in redis shoal; do
      line="$(run "$target" "tp-$subs-$round" --subscribers "$subs" --messages "$MESSAGES" --window "$WINDOW")"
      echo "  $line"
      echo "$line" | jq -r .deliveries_per_s >>"$WORK/$target-$subs"
    done
  done
  s="$(median <"$WORK/shoal-$subs")"; r="$(median <"$WORK/redis-$subs")"
  echo "throughput, $subs subscriber(s): shoal $(fmt "$s") deliveries/s, redis $(fmt "$r") deliveries/s, ratio $(ratio "$s" "$r")x (target >= 1.0x)"
done

count=$((RATE * RATE_SECONDS))
: >"$WORK/p99-shoal" ; : >"$WORK/p99-redis" ; : >"$WORK/p50-shoal" ; : >"$WORK/p50-redis"
for round in $(seq "$ROUNDS"); do
  for target in redis shoal; do
    line="$(run "$target" "rate-$round" --subscribers 1 --messages "$count" --rate "$RATE" --window "$WINDOW")"
    echo "  $line"
    echo "$line" | jq -r .p99_us >>"$WORK/p99-$target"
    echo "$line" | jq -r .p50_us >>"$WORK/p50-$target"
  done
done
echo "latency at $RATE msg/s, 1 subscriber: shoal p50 $(median <"$WORK/p50-shoal") us p99 $(median <"$WORK/p99-shoal") us; redis p50 $(median <"$WORK/p50-redis") us p99 $(median <"$WORK/p99-redis") us (target: shoal p99 <= 1000 us)"

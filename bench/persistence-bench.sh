#!/usr/bin/env bash
# persistence-bench.sh: what persistence costs, in one run, as ratios.
#   1. SET throughput of shoal-bench --load (CALLERS concurrent callers, 16-byte keys, 100-byte
#      values) against an in-memory member, a write-through member (RocksDB, fsync per group
#      commit) and a write-behind member (acknowledged once in the queue's RocksDB WAL, not fsynced:
#      `write-behind-sync = false`, the default; WB_SYNC=true sets it, fsyncing; stored later in
#      batches). Targets: write-through >= 0.5x, write-behind >= 0.9x in-memory. For write-behind
#      also: how long `shoalctl flush` then takes to store the backlog.
#   2. Restart time of the write-through member holding KEYS entries (the member's own "restored
#      N entries in T ms" line, plus time to "ready"). Target: <= 3 s for 1M entries.
#   3. Bytes on disk per entry (du of the data directory after the restart).
# Environment: BUILD_DIR (default build), KEYS (1000000), CALLERS (1000), VALUE_SIZE (100),
#   WB_SYNC (unset: the member's default, false; true or false: written into its config).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
KEYS="${KEYS:-1000000}"
CALLERS="${CALLERS:-1000}"
VALUE_SIZE="${VALUE_SIZE:-100}"
WB_SYNC="${WB_SYNC:-}"
SHOALD="$BUILD_DIR/node/shoald"
SHOALCTL="$BUILD_DIR/client/shoalctl"
BENCH="$BUILD_DIR/bench/shoal-bench"
WORK="$(mktemp -d /tmp/shoal-persist-bench-XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

start() {  # log-file args... -> sets PID, ADDR, READY_MS
  local log="$1"; shift
  local t0; t0=$(date +%s%N)
  "$SHOALD" --listen 127.0.0.1:0 --log-level info "$@" >"$log.out" 2>"$log" &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 1 600); do
    if grep -q "ready on" "$log.out"; then
      ADDR="$(sed -n 's/.* ready on \([^ ]*\).*/\1/p' "$log.out")"
      READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
      return
    fi
    sleep 0.05
  done
  echo "shoald did not start: $(tail -3 "$log")" >&2; exit 1
}
load() {  # -> ops/s
  "$BENCH" --servers "$ADDR" --map p --load "$KEYS" --key-size 16 --value-size "$VALUE_SIZE" --callers "$CALLERS" \
    --json 2>/dev/null | jq '.phases[] | select(.name == "load") | .opsPerSec'
}

echo "persistence-bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $KEYS entries, $CALLERS callers, $VALUE_SIZE-byte values, write-behind-sync ${WB_SYNC:-default}"
start "$WORK/mem.log"
mem_rps="$(load)"; kill "$PID"; wait "$PID" 2>/dev/null || true
start "$WORK/wt.log" --data-dir "$WORK/data"
wt_rps="$(load)"; kill -9 "$PID"; wait "$PID" 2>/dev/null || true
printf '[map-defaults]\npersistence = "write-behind"\n' >"$WORK/wb.toml"  # write-delay 1s, batches of 100
if [[ -n "$WB_SYNC" ]]; then printf 'write-behind-sync = %s\n' "$WB_SYNC" >>"$WORK/wb.toml"; fi
start "$WORK/wb.log" --data-dir "$WORK/wb-data" --config "$WORK/wb.toml"
wb_rps="$(load)"
t0=$(date +%s%N)
"$SHOALCTL" --servers "$ADDR" --timeout 10m flush p >/dev/null
wb_flush_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill "$PID"; wait "$PID" 2>/dev/null || true
start "$WORK/restart.log" --data-dir "$WORK/data"
restored="$(sed -n 's/.*restored \([0-9]*\) entries .* in \([0-9]*\) ms/\1 \2/p' "$WORK/restart.log")"
kill "$PID"; wait "$PID" 2>/dev/null || true
disk="$(du -sb "$WORK/data" | cut -f1)"
printf "in-memory SET/s:        %12.0f\n" "$mem_rps"
printf "write-through SET/s:    %12.0f\n" "$wt_rps"
awk -v a="$wt_rps" -v b="$mem_rps" 'BEGIN {printf "ratio write-through / in-memory: %.2fx  (target >= 0.5)\n", a / b}'
printf "write-behind SET/s:     %12.0f\n" "$wb_rps"
awk -v a="$wb_rps" -v b="$mem_rps" 'BEGIN {printf "ratio write-behind / in-memory: %.2fx  (target >= 0.9)\n", a / b}'
echo "write-behind backlog stored by 'shoalctl flush' in $wb_flush_ms ms after the load"

echo "restart after kill -9: restored ${restored% *} entries in ${restored#* } ms; ready after $READY_MS ms  (target <= 3000)"
awk -v d="$disk" -v n="$KEYS" 'BEGIN {printf "bytes on disk per entry: %.1f  (%d bytes for %d entries, WAL included)\n", d / n, d, n}'

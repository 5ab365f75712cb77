#!/usr/bin/env bash
# Runs an example client against a fresh shoald on a free loopback port:
#   run_with_shoald.sh SHOALD EXAMPLE [ARGS...]   (the member's address is appended to ARGS)
# Exits with the example's exit code; the member is stopped either way.
set -euo pipefail
shoald=$1
shift
work=$(mktemp -d)
"$shoald" --name example-member --listen 127.0.0.1:0 --log-level warn >"$work/out" 2>"$work/log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  grep -q ' ready on ' "$work/out" && break
  kill -0 "$pid" 2>/dev/null || { echo "shoald exited early:"; cat "$work/log"; exit 1; }
  sleep 0.05
done
address=$(sed -n 's/.* ready on //p' "$work/out")
[[ -n "$address" ]] || { echo "shoald did not become ready:"; cat "$work/log"; exit 1; }
"$@" "$address"

#!/usr/bin/env bash
# Quick start, command 1: set everything up, build, and run one Shoal member in the foreground
# on 127.0.0.1:5701 with its data in data/shoal-1 (Ctrl-C leaves gracefully). Extra arguments go to shoald, e.g.
# `scripts/run-member.sh --listen 0.0.0.0:5701 --name a`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
# Data lives in RocksDB under data/ (write-through), so a restarted member comes back with it.
exec "$BUILD_DIR/node/shoald" --name "${SHOAL_NAME:-shoal-1}" --data-dir "${SHOAL_DATA_DIR:-data/shoal-1}" "$@"

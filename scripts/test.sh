#!/usr/bin/env bash
# Quick start, command 2: set everything up, build, and run the whole test suite (unit,
# integration against real shoald processes, examples, install). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
# Two jobs on this two-core machine; each test cleans up its own processes and ports.
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j "$(nproc)"

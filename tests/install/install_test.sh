#!/usr/bin/env bash
# Installs a built Shoal into a temporary prefix and uses it the way a user would:
#   1. the binaries are in bin/ and run (shoald always; shoalctl / shoal-bench when built);
#   2. a CMake project with find_package(Shoal) links shoal::client and shoal::node;
#   3. a client is compiled with `pkg-config --cflags --libs shoal`;
#   4. both client consumers talk to the installed shoald, the node consumer runs alone.
#
#   install_test.sh BUILD_DIR CONSUMER_DIR [CMAKE] [CXX]
set -euo pipefail

build=$(cd "$1" && pwd)
consumer=$(cd "$2" && pwd)
cmake=${3:-cmake}
cxx=${4:-c++}
work=$(mktemp -d /tmp/shoal-install-test-XXXXXX)
prefix=$work/prefix
shoald_pid=
cleanup() {
  if [[ -n "$shoald_pid" ]]; then
    kill "$shoald_pid" 2>/dev/null || true
    wait "$shoald_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "install"; }

step "binaries in bin/"
[[ -x "$prefix/bin/shoald" ]] || fail "bin/shoald is not installed"
"$prefix/bin/shoald" --version | grep -q . || fail "installed shoald --version printed nothing"
for tool in shoalctl shoal-bench; do
  built=$(find "$build" -maxdepth 3 -type f -name "$tool" -perm -u+x | head -n1)
  if [[ -z "$built" ]]; then
    echo "SKIP: $tool is not built in $build, so not checked"
  elif [[ -x "$prefix/bin/$tool" ]]; then
    "$prefix/bin/$tool" --help >/dev/null || fail "installed $tool --help failed"
    echo "ok: bin/$tool"
  else
    fail "$tool is built ($built) but not installed in bin/"
  fi
done

step "headers, CMake package and pkg-config file"
for header in shoal/client/client.h shoal/node/node.h shoal/error.h shoal/types.h \
              shoal/proto/shoal.capnp.h shoal/proto/shoal.capnp shoal/partition/partitioner.h; do
  [[ -f "$prefix/include/$header" ]] || fail "include/$header is not installed"
done
config=$(find "$prefix" -name ShoalConfig.cmake | head -n1)
[[ -n "$config" ]] || fail "ShoalConfig.cmake is not installed"
pcfile=$(find "$prefix" -name shoal.pc | head -n1)
[[ -n "$pcfile" ]] || fail "shoal.pc is not installed"

step "start the installed shoald"
"$prefix/bin/shoald" --name install-test --listen 127.0.0.1:0 --log-level warn \
  >"$work/shoald.out" 2>"$work/shoald.log" &
shoald_pid=$!
for _ in $(seq 1 200); do
  grep -q ' ready on ' "$work/shoald.out" && break
  kill -0 "$shoald_pid" 2>/dev/null || { cat "$work/shoald.log"; fail "installed shoald exited"; }
  sleep 0.05
done
address=$(sed -n 's/.* ready on //p' "$work/shoald.out")
[[ -n "$address" ]] || { cat "$work/shoald.log"; fail "installed shoald did not become ready"; }

step "find_package(Shoal) consumer"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
"$cmake" -S "$consumer" -B "$work/consumer-build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" >"$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log"; fail "configuring the find_package consumer"; }
"$cmake" --build "$work/consumer-build" >"$work/consumer-build.log" 2>&1 ||
  { cat "$work/consumer-build.log"; fail "building the find_package consumer"; }
"$work/consumer-build/client_consumer" "$address" || fail "client_consumer (find_package) failed"
"$work/consumer-build/node_consumer" || fail "node_consumer (find_package) failed"

step "pkg-config consumer"
export PKG_CONFIG_PATH=$(dirname "$pcfile")
pkg-config --exists shoal || fail "pkg-config does not find shoal in $PKG_CONFIG_PATH"
# The .pc must follow the files to the --prefix given at install time, not the configure-time one.
pc_includedir=$(pkg-config --variable=includedir shoal)
[[ -d "$pc_includedir" && $(cd "$pc_includedir" && pwd -P) == $(cd "$prefix/include" && pwd -P) ]] ||
  fail "shoal.pc is not relocatable: includedir=$pc_includedir, expected $prefix/include"
flags=$(pkg-config --cflags --libs shoal)
echo "pkg-config --cflags --libs shoal: $flags"
# shellcheck disable=SC2086  # the flags are meant to split into words
"$cxx" -std=c++20 "$consumer/client_main.cpp" -o "$work/pc_client_consumer" $flags \
  >"$work/pc-build.log" 2>&1 || { cat "$work/pc-build.log"; fail "building with pkg-config flags"; }
"$work/pc_client_consumer" "$address" || fail "client_consumer (pkg-config) failed"

echo "install test: ok"

#!/usr/bin/env bash
# test_neon.sh -- the AArch64 NEON kernels (lib/ops/ops_neon.c) on an x86-64 machine: cross-compiles
# libvwn and its C tests with Debian's aarch64-linux-gnu-gcc (-Wall -Wextra -Werror) and runs them
# under qemu-aarch64 user emulation (cmake/aarch64-linux-gnu.cmake sets ctest's emulator).
#   build-aarch64          plain ARMv8-A build: every ctest test (test_ops compares each NEON kernel
#                          with the scalar reference; the others run the whole library on NEON)
#   build-aarch64-dotprod  -march=armv8.2-a+dotprod (the SDOT path of the Q8_0 matmul): test_ops
# Fails unless test_ops reports "level neon tested: ok" in both. Needs gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user-static and libutf8proc-dev:arm64 (Debian multiarch); installs the
# missing ones with apt when run as root (scripts/setup.sh installs them too).
#   VWN_SKIP_APT=1 scripts/test_neon.sh   never run apt
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
[ -e /usr/lib/aarch64-linux-gnu/pkgconfig/libutf8proc.pc ] || need+=(libutf8proc-dev:arm64)
if [ ${#need[@]} -gt 0 ]; then
  if [ "${VWN_SKIP_APT:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "test_neon: missing ${need[*]} (install as root: scripts/setup.sh)" >&2
    exit 1
  fi
  echo "test_neon: installing ${need[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

OPTS=(-G Ninja -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release
      -DVWN_USE_MIMALLOC=OFF -DVWN_USE_OPENMP=OFF -DVWN_BUILD_CLI=OFF -DVWN_WERROR=ON)
fail=0

# runs a command with its output kept in a log, shown only if it fails
quiet() {
  local log; log=$(mktemp)
  if "$@" >"$log" 2>&1; then rm -f "$log"; else cat "$log" >&2; rm -f "$log"; return 1; fi
}

# $1 build dir: test_ops through ctest (so under the toolchain's emulator), its output kept in a
# log; non-zero if it failed. (Under qemu it takes 100-260 s, depending on the host; each test's
# limit is the TIMEOUT property of tests/CMakeLists.txt, 600 s.)
run_test_ops() {
  ctest --test-dir "$1" -R '^test_ops$' -V >"$1/test_ops.log" 2>&1 || {
    cat "$1/test_ops.log" >&2; return 1; }
}
# $1 build dir, $2 label; the output of test_ops must name the NEON level as tested and ok
check_neon_line() {
  if grep -q 'level neon *tested: ok$' "$1/test_ops.log"; then
    echo "test_neon: $2: $(grep -o 'level neon.*' "$1/test_ops.log");" \
         "$(grep -o 'test_ops: [0-9]* passed.*' "$1/test_ops.log")"
  else
    echo "test_neon: $2: test_ops did not report 'level neon tested: ok':" >&2
    cat "$1/test_ops.log" >&2
    fail=1
  fi
}

# ---- plain ARMv8-A: the library, every C test under qemu ----
quiet cmake -S . -B build-aarch64 "${OPTS[@]}" -DCMAKE_C_FLAGS=
quiet cmake --build build-aarch64 -j2
# ---- ARMv8.2-A + dotprod: test_ops for the SDOT path of the Q8_0 kernels ----
quiet cmake -S . -B build-aarch64-dotprod "${OPTS[@]}" -DCMAKE_C_FLAGS=-march=armv8.2-a+dotprod
quiet cmake --build build-aarch64-dotprod -j2 --target test_ops

ctest --test-dir build-aarch64 -j2 --output-on-failure -E '^test_ops$' || fail=1
# the two test_ops runs side by side (one process each: the two cores)
run_test_ops build-aarch64 & plain=$!
run_test_ops build-aarch64-dotprod & dotprod=$!
wait "$plain" || fail=1
wait "$dotprod" || fail=1
check_neon_line build-aarch64 "armv8-a"
check_neon_line build-aarch64-dotprod "armv8.2-a+dotprod"

if [ "$fail" != 0 ]; then echo "test_neon: FAILED"; exit 1; fi
echo "test_neon: ok"

#!/usr/bin/env bash
# test_neon.sh -- the AArch64 NEON kernels (lib/ops/ops_neon.c) on an x86-64 machine: cross-compiles
# libvwn and its C tests with Debian's aarch64-linux-gnu-gcc (-Wall -Wextra -Werror) and runs them
# under qemu-aarch64 user emulation (cmake/aarch64-linux-gnu.cmake sets ctest's emulator).
#   build-aarch64          plain ARMv8-A build: every ctest test (test_ops compares each NEON kernel
#                          with the scalar reference; the others run the whole library on NEON)
#   build-aarch64-dotprod  -march=armv8.2-a+dotprod (the SDOT path of the Q8_0 matmul): test_ops's
#                          NEON part
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

# $1 build dir, $2 regex of test_ops parts, $3 log: those parts through ctest (so under the
# toolchain's emulator), their output kept in the log; non-zero if one failed. (Under qemu the
# scalar and NEON parts take 100-130 s each on this project's VM; each test's limit is the TIMEOUT
# property of tests/CMakeLists.txt, 600 s.)
run_test_ops() {
  ctest --test-dir "$1" -R "$2" -V >"$3" 2>&1 || { cat "$3" >&2; return 1; }
}
# $1 log, $2 label; the output of test_ops must name the NEON level as tested and ok
check_neon_line() {
  if grep -q 'level neon *tested: ok$' "$1"; then
    echo "test_neon: $2: $(grep -o 'level neon.*' "$1");" \
         "$(grep -o 'test_ops: [0-9]* passed.*' "$1" | tail -1)"
  else
    echo "test_neon: $2: test_ops did not report 'level neon tested: ok':" >&2
    cat "$1" >&2
    fail=1
  fi
}

# ---- plain ARMv8-A: the library, every C test under qemu ----
quiet cmake -S . -B build-aarch64 "${OPTS[@]}" -DCMAKE_C_FLAGS=
quiet cmake --build build-aarch64 -j2
# ---- ARMv8.2-A + dotprod: test_ops for the SDOT path of the Q8_0 kernels ----
quiet cmake -S . -B build-aarch64-dotprod "${OPTS[@]}" -DCMAKE_C_FLAGS=-march=armv8.2-a+dotprod
quiet cmake --build build-aarch64-dotprod -j2 --target test_ops

ctest --test-dir build-aarch64 -j2 --output-on-failure -E '^test_ops_' || fail=1
# test_ops in three runs side by side (the two cores): the plain build's scalar part (and the
# common one), its NEON part, and the dotprod build's NEON part (its scalar part is the plain one's)
run_test_ops build-aarch64 '^test_ops_(common|scalar)$' build-aarch64/test_ops_scalar.log & scalar=$!
run_test_ops build-aarch64 '^test_ops_neon$' build-aarch64/test_ops.log & plain=$!
run_test_ops build-aarch64-dotprod '^test_ops_neon$' build-aarch64-dotprod/test_ops.log & dotprod=$!
wait "$scalar" || fail=1
wait "$plain" || fail=1
wait "$dotprod" || fail=1
check_neon_line build-aarch64/test_ops.log "armv8-a"
check_neon_line build-aarch64-dotprod/test_ops.log "armv8.2-a+dotprod"

if [ "$fail" != 0 ]; then echo "test_neon: FAILED"; exit 1; fi
echo "test_neon: ok"

#!/usr/bin/env bash
# sanitize.sh -- build everything with AddressSanitizer + UndefinedBehaviorSanitizer (clang) and run
# the whole ctest suite under them. libc malloc instead of mimalloc, so ASan sees every allocation
# of the library; leak checking on; any report fails the run.
#
#   scripts/sanitize.sh                 (build dir: $VWN_ASAN_BUILD, default build-asan)
#   VWN_CTEST_ARGS="-R test_state" scripts/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${VWN_ASAN_BUILD:-build-asan}"

# -O1, as the ASan documentation suggests: the kernels' inlined tiles, instrumented, take minutes
# to compile at -O2 (lib/ops/ops_avx512.c: 7 min at -O2, 3-4.5 at -O1 on this project's 2-core VM;
# lib/ops/attn_avx512.c ~2 at -O1, in parallel; on the twenty-third session's Intel host 6.5 min
# at -O1, 4.5 without UBSan's pointer-overflow checks, which the kernel files now leave out:
# CMakeLists.txt)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" -DVWN_SANITIZE=ON -DVWN_USE_MIMALLOC=OFF >/dev/null
# only what ctest runs: the C tests and the static library they link (the shared library, the CLI and
# the examples would compile every kernel a second time under the sanitizers)
mapfile -t tests < <(for f in tests/test_*.c; do basename "$f" .c; done)
nice cmake --build "$BUILD" --target "${tests[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# shellcheck disable=SC2086
nice ctest --test-dir "$BUILD" --output-on-failure -j2 ${VWN_CTEST_ARGS:-}

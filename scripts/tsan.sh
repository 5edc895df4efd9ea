#!/usr/bin/env bash
# tsan.sh -- the thread stress test (tests/test_stress.c: one model, 8 threads, each with its own
# context doing random prefill/decode/truncate/recreate/save/restore/generate, every logits vector
# checked against single-threaded references) under ThreadSanitizer.
#
# The build has no OpenMP (libomp is not TSan-instrumented and gives false reports; each context
# then computes on its calling thread) and libc malloc (mimalloc is not instrumented either).
# VWN_WERROR is off: without OpenMP some thread helpers are unused (warnings, not errors, here).
#
#   scripts/tsan.sh              (build dir: $VWN_TSAN_BUILD, default build-tsan)
#   VWN_STRESS_OPS=1000 VWN_STRESS_SEEDS="1 2 3" scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${VWN_TSAN_BUILD:-build-tsan}"

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVWN_TSAN=ON -DVWN_USE_OPENMP=OFF -DVWN_USE_MIMALLOC=OFF \
  -DVWN_WERROR=OFF -DVWN_BUILD_CLI=OFF >/dev/null
nice cmake --build "$BUILD" --target test_stress test_state

export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4}"
export VWN_STRESS_OPS="${VWN_STRESS_OPS:-200}"
for seed in ${VWN_STRESS_SEEDS:-1 2}; do
  VWN_STRESS_SEED=$seed nice "$BUILD/bin/test_stress"
done
# the state tests are single-threaded, but run them too: TSan also checks the thread-local errors
nice "$BUILD/bin/test_state" | tail -1

#!/usr/bin/env bash
# test.sh -- every test of the project, as CI runs it (after scripts/setup.sh):
#   C tests (ctest), Python tests (pytest: tools, loader, forward pass vs the reference, tokenizers,
#   CLI, trainer), a gcc -Werror build, the NEON kernels cross-built for AArch64 and run under qemu,
#   ASan+UBSan, TSan, valgrind, short fuzzing runs, and the bindings (C/C++ consumers, Python --
#   with tests/independent, the library against a second reference of the spec --, Rust, Go).
#   VWN_QUICK=1 scripts/test.sh   skips the sanitizer, valgrind and fuzz suites
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export VWN_LIB=$ROOT/build/lib/libvwn.so VWN_BIN=$ROOT/build/bin/vwn
PY=$ROOT/.venv/bin/python

passed=0; failed=0; failed_names=()
suite() {  # suite NAME COMMAND...
  local name=$1; shift
  echo; echo "===== $name ====="
  local t0=$SECONDS
  if "$@"; then passed=$((passed+1)); echo "----- $name: ok ($((SECONDS-t0)) s)"
  else failed=$((failed+1)); failed_names+=("$name"); echo "----- $name: FAILED ($((SECONDS-t0)) s)"; fi
}

cmake --build build >/dev/null || { echo "build failed"; exit 1; }

suite "ctest (C unit tests)" ctest --test-dir build --output-on-failure -j2
# pytest's files on two workers (pytest-xdist; a file's module fixtures stay in one worker)
# (serially where pytest-xdist is missing: a venv made before it was in tools/requirements.txt)
PYTEST_J=""
$PY -c "import xdist" 2>/dev/null && PYTEST_J="-n ${VWN_TEST_JOBS:-2} --dist loadfile"
suite "pytest (tools, loader, forward, tokenizers, CLI, trainer)" $PY -m pytest -q $PYTEST_J tests --ignore=tests/independent
suite "gcc -Wall -Wextra -Werror build + ctest" bash -c '
  cmake -S . -B build-gcc -G Ninja -DCMAKE_C_COMPILER=gcc >/dev/null &&
  cmake --build build-gcc >/dev/null && ctest --test-dir build-gcc -j2 2>&1 | tail -3'
[ -x scripts/test_neon.sh ] && suite "AArch64 NEON: cross-built, ctest under qemu-aarch64" scripts/test_neon.sh
if [ "${VWN_QUICK:-0}" != 1 ]; then
  [ -x scripts/sanitize.sh ] && suite "ASan + UBSan (whole ctest suite)" scripts/sanitize.sh
  [ -x scripts/tsan.sh ] && suite "TSan (8 threads x 8 contexts stress)" scripts/tsan.sh
  [ -x scripts/valgrind.sh ] && suite "valgrind memcheck (examples, CLI)" scripts/valgrind.sh
  [ -x scripts/fuzz_ci.sh ] && suite "libFuzzer (short runs + regressions)" scripts/fuzz_ci.sh
fi
# the binding's tests, and the library against the second, independent reference of the spec
# (tests/independent, written against the binding's API)
[ -d bindings/python ] && suite "Python binding (pip install + pytest) + independent spec reference" bash -c "
  $PY -m pip install -q --disable-pip-version-check ./bindings/python &&
  cd /tmp && $PY -m pytest -q $PYTEST_J $ROOT/bindings/python/tests $ROOT/tests/independent"
[ -x scripts/test_bindings.sh ] && suite "C/C++ consumers, Rust and Go bindings" scripts/test_bindings.sh

echo
echo "===== summary ====="
[ ${#failed_names[@]} -gt 0 ] && printf 'failed suite: %s\n' "${failed_names[@]}"
echo "test suites: $passed passed, $failed failed"
[ "$failed" = 0 ]

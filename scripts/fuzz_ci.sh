#!/usr/bin/env bash
# fuzz_ci.sh -- every libFuzzer target for a short, bounded time (CI), after replaying the committed
# regression inputs. Builds the targets (clang, -DVWN_FUZZ=ON) and the seed corpora if missing.
#
#   scripts/fuzz_ci.sh                  (20 s per target; $VWN_FUZZ_SECONDS to change)
#   VWN_FUZZ_BUILD=build-fuzz VWN_FUZZ_SECONDS=300 scripts/fuzz_ci.sh
# Exit status 1 if any target crashed, leaked, timed out or broke an invariant; the reproducer is
# in $VWN_FUZZ_BUILD/artifacts/TARGET/.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export VWN_FUZZ_BUILD="${VWN_FUZZ_BUILD:-$ROOT/build-fuzz}"
SECS="${VWN_FUZZ_SECONDS:-20}"

mkdir -p "$VWN_FUZZ_BUILD"
cmake -S . -B "$VWN_FUZZ_BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DVWN_FUZZ=ON -DVWN_BUILD_TESTS=OFF -DVWN_BUILD_CLI=OFF >"$VWN_FUZZ_BUILD/configure.log" 2>&1 ||
  { cat "$VWN_FUZZ_BUILD/configure.log" >&2; exit 1; }
nice cmake --build "$VWN_FUZZ_BUILD" --target fuzz_gguf fuzz_tokenizer fuzz_state >/dev/null || exit 1
[ -d "$VWN_FUZZ_BUILD/corpus/seeds" ] || tests/fuzz/make_corpus.sh "$VWN_FUZZ_BUILD/corpus" || exit 1

status=0
for t in fuzz_gguf fuzz_tokenizer fuzz_state; do
  # the regression inputs first, each run once
  regs=("tests/fuzz/regressions/$t"/*)
  files=()
  for f in "${regs[@]}"; do [ -f "$f" ] && [[ "$(basename "$f")" != README* ]] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    VWN_FUZZ_MODELS="$VWN_FUZZ_BUILD/corpus/models" "$VWN_FUZZ_BUILD/bin/$t" "${files[@]}" >/dev/null 2>&1 ||
      { echo "$t: a regression input fails" >&2; status=1; }
  fi
  tests/fuzz/run.sh "$t" "$SECS" || status=1
done
exit $status

#!/usr/bin/env bash
# valgrind.sh -- valgrind memcheck (--leak-check=full --error-exitcode=1) over the example programs
# (examples/info, generate, speculative) and the vwn command (info, tokenize, run plain and
# speculative, logits, perplexity) on a small random model. libc malloc (mimalloc hides the heap
# from valgrind). The only suppressions (scripts/valgrind.supp) are libomp's own thread-pool blocks.
#
#   scripts/valgrind.sh          (build dir: $VWN_VALGRIND_BUILD, default build-valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD="${VWN_VALGRIND_BUILD:-build-valgrind}"
PY="${VWN_PYTHON:-$ROOT/.venv/bin/python}"

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVWN_USE_MIMALLOC=OFF \
  -DVWN_BUILD_TESTS=OFF >/dev/null
nice cmake --build "$BUILD"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
MODEL="$TMP/model.gguf"
"$PY" tools/random_checkpoint.py tests/configs/m1n4_dynamic_wide_untied_gn_mha_mtp2.json "$TMP/ck" --seed 1 >/dev/null
"$PY" tools/convert.py "$TMP/ck" "$MODEL" --type q8_0 >/dev/null 2>&1
printf 'The quick brown fox jumps over the lazy dog.\nIt was the best of times.\n' >"$TMP/text.txt"

export OMP_NUM_THREADS=1
VG=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --track-origins=yes
    --suppressions="$ROOT/scripts/valgrind.supp")
runs=0
run() {  # run NAME EXPECTED_EXIT COMMAND... : under valgrind; output kept in $TMP, shown on failure
  local name=$1 want=$2
  shift 2
  echo "== $name"
  local rc=0
  "${VG[@]}" "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    cat "$TMP/err.txt" >&2
    echo "valgrind.sh: '$*' exited with $rc (expected $want; 99 = valgrind found errors)" >&2
    exit 1
  fi
  runs=$((runs + 1))
}
B="$BUILD/bin"
[ -x "$B/info" ] && run "examples/info" 0 "$B/info" "$MODEL"
[ -x "$B/generate" ] && run "examples/generate" 0 "$B/generate" "$MODEL" "Hello" 12
[ -x "$B/speculative" ] && run "examples/speculative" 0 "$B/speculative" "$MODEL" "Hello" 12 2
if [ -x "$B/vwn" ]; then
  run "vwn info --tensors --meta --verify" 0 "$B/vwn" info "$MODEL" --tensors --meta --verify
  run "vwn info --no-mmap" 0 "$B/vwn" info "$MODEL" --no-mmap
  run "vwn tokenize" 0 "$B/vwn" tokenize "$MODEL" --prompt "héllo wörld <|endoftext|>" --parse-special
  run "vwn run (sampled)" 0 "$B/vwn" run "$MODEL" --prompt "Once upon" -n 12 -t 1 --seed 3
  run "vwn run --spec 2 --greedy" 0 "$B/vwn" run "$MODEL" --prompt "Once upon" -n 12 -t 1 --greedy --spec 2
  run "vwn run --spec auto" 0 "$B/vwn" run "$MODEL" --prompt "Once upon" -n 12 -t 1 --spec auto --stop "x"
  run "vwn logits --all --mtp" 0 "$B/vwn" logits "$MODEL" --prompt "abc" --all --mtp -t 1 -o "$TMP/l.npy"
  run "vwn perplexity" 0 "$B/vwn" perplexity "$MODEL" --file "$TMP/text.txt" --ctx 32 --stride 16 -t 1
  run "vwn info (missing file)" 1 "$B/vwn" info "$TMP/missing.gguf"
  run "vwn info (not a model)" 1 "$B/vwn" info "$TMP/text.txt"
fi
echo "valgrind: $runs programs clean (no errors, no leaks)"

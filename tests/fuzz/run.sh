#!/usr/bin/env bash
# run.sh -- run one fuzz target for a while, niced, and summarise.
#
#   tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]
#
# TARGET is fuzz_gguf, fuzz_tokenizer or fuzz_state, built in $VWN_FUZZ_BUILD (default
# build-fuzz; see tests/fuzz/CMakeLists.txt). The working corpus is $VWN_FUZZ_BUILD/corpus/work/TARGET
# (kept between runs); the seeds of tests/fuzz/make_corpus.sh (made if missing) and the committed
# regression inputs tests/fuzz/regressions/TARGET are read as extra corpus folders. Crashes land in
# $VWN_FUZZ_BUILD/artifacts/TARGET/; copy a reproducer into tests/fuzz/regressions/TARGET/ once the
# bug is fixed, so tests/test_fuzz_replay.c replays it forever. The libFuzzer log is in
# $VWN_FUZZ_BUILD/fuzz-logs/TARGET.log; the last line printed is the summary (executions, time,
# cov, ft, crashes). Exit status: 0 clean, 1 a crash/leak/timeout was found, 2 usage or setup error.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${VWN_FUZZ_BUILD:-$ROOT/build-fuzz}"
TARGET="${1:-}"
SECONDS_="${2:-}"
shift 2 2>/dev/null || true
case "$TARGET" in
  fuzz_gguf) MAXLEN=131072 ;;
  fuzz_tokenizer) MAXLEN=4096 ;;
  fuzz_state) MAXLEN=65536 ;;
  *) echo "usage: $0 fuzz_gguf|fuzz_tokenizer|fuzz_state SECONDS [libFuzzer flags]" >&2; exit 2 ;;
esac
[[ "$SECONDS_" =~ ^[0-9]+$ ]] || { echo "usage: $0 TARGET SECONDS" >&2; exit 2; }
BIN="$BUILD/bin/$TARGET"
[ -x "$BIN" ] || { echo "run.sh: $BIN is not built (cmake -DVWN_FUZZ=ON, see tests/fuzz/CMakeLists.txt)" >&2; exit 2; }
[ -d "$BUILD/corpus/seeds/$TARGET" ] || "$ROOT/tests/fuzz/make_corpus.sh" "$BUILD/corpus" >&2 || exit 2

WORK="$BUILD/corpus/work/$TARGET"
ART="$BUILD/artifacts/$TARGET"
LOGS="$BUILD/fuzz-logs"
mkdir -p "$WORK" "$ART" "$LOGS"
LOG="$LOGS/$TARGET.log"

export VWN_FUZZ_MODELS="${VWN_FUZZ_MODELS:-$BUILD/corpus/models}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

nice -n 19 "$BIN" "$WORK" "$BUILD/corpus/seeds/$TARGET" "$ROOT/tests/fuzz/regressions/$TARGET" \
  -max_total_time="$SECONDS_" -max_len="$MAXLEN" -timeout=20 -rss_limit_mb=2048 \
  -artifact_prefix="$ART/" -print_final_stats=1 "$@" >"$LOG" 2>&1
rc=$?

# summary: the last status line of libFuzzer and its final stats
last=$(grep -E '^#[0-9]+' "$LOG" | tail -1)
execs=$(grep -E '^stat::number_of_executed_units' "$LOG" | awk '{print $2}')
secs=$(grep -E '^Done [0-9]+ runs in' "$LOG" | awk '{print $5}')
crashes=$(ls "$ART" 2>/dev/null | grep -cE '^(crash|leak|timeout|oom|slow-unit)-' || true)
cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
echo "$TARGET: ${execs:-?} executions in ${secs:-?} s, cov ${cov:-?}, ft ${ft:-?}, corpus $(ls "$WORK" | wc -l) files, $crashes crash/leak/timeout artifacts in $ART"
if [ $rc -ne 0 ]; then
  echo "$TARGET: libFuzzer exited with $rc; see $LOG" >&2
  grep -E 'ERROR|invariant|SUMMARY' "$LOG" | head -5 >&2
  exit 1
fi
exit 0

#!/usr/bin/env bash
# bench_watch.sh -- sample decode speed across the machine's bandwidth states.
#   scripts/bench_watch.sh OUT_DIR [MINUTES] [THREADS]
# This machine's memory bandwidth flips between states from minute to minute (docs/performance.md),
# so one `vwn bench` run lands in whichever state it meets. This runs short interleaved
# `vwn bench` rounds of the three benchmark shapes, one weight type after another, until MINUTES
# (default 30) have passed, each into OUT_DIR/rNNN_TYPE.txt; every round is bracketed by two
# bandwidth measurements. scripts/bench_states.py OUT_DIR then sorts the repetitions by state.
# The models come from tools/bench_models.py in $VWN_BENCH_MODELS (default /tmp/vwn-bench; make
# them first, e.g. with scripts/bench_all.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/bench_watch.sh OUT_DIR [MINUTES] [THREADS]}
MIN=${2:-30}
T=${3:-2}
M=${VWN_BENCH_MODELS:-/tmp/vwn-bench}
mkdir -p "$OUT"
# mapped afresh, in 2 MiB pages (docs/performance.md, "Huge pages for the weights")
.venv/bin/python scripts/drop_page_cache.py "$M"/llama110m_m*.gguf
end=$(( $(date +%s) + MIN * 60 ))
i=0
while [ "$(date +%s)" -lt "$end" ]; do
  for ty in f32 bf16 q8_0 q4_0; do
    [ "$(date +%s)" -lt "$end" ] || break
    i=$((i + 1))
    f=$(printf '%s/r%03d_%s.txt' "$OUT" "$i" "$ty")
    { echo "### round $i $ty $(date -u +%H:%M:%S)"
      build/bin/vwn bench "$M/llama110m_m1n1.$ty.gguf" "$M/llama110m_m2n8.$ty.gguf" "$M/llama110m_m8n64.$ty.gguf" \
        -t "$T" -p 64 -n 128 -r 3 --json; } > "$f" 2>&1
  done
done
echo "$i rounds in $OUT"

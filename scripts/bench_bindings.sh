#!/usr/bin/env bash
# bench_bindings.sh -- per-token overhead of the Rust and Go bindings against the C CLI `vwn run`:
# the same model, prompt, token budget, greedy sampling and one compute thread, text streamed to
# /dev/null and flushed per piece in all three. Reports the median generation speed of R runs of
# each (the library's own generation timer, which includes the per-piece callback into Rust or Go),
# and the per-token difference to the CLI.
#   scripts/bench_bindings.sh MODEL.gguf [N_TOKENS=200] [RUNS=15]
# Needs the prefix made by scripts/test_bindings.sh (VWN_BUILD_DIR/bindings/prefix).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=$(realpath "${1:?usage: scripts/bench_bindings.sh MODEL.gguf [N] [RUNS]}")
N=${2:-200}; RUNS=${3:-15}
BUILD=$(realpath "${VWN_BUILD_DIR:-$ROOT/build}")
PREFIX=$BUILD/bindings/prefix
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig LD_LIBRARY_PATH=$PREFIX/lib
PROMPT="Once upon a time"
VWN=$PREFIX/bin/vwn; [ -x "$VWN" ] || VWN=$BUILD/bin/vwn

CARGO_TARGET_DIR=$BUILD/bindings/cargo-target cargo build -q --release --manifest-path bindings/rust/Cargo.toml --example generate
RUST=$BUILD/bindings/cargo-target/release/examples/generate
GO=$BUILD/bindings/go-generate
(cd bindings/go && go build -o "$GO" ./examples/generate)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
best() { sort -g | tail -1; }
cli=(); rust=(); go=()
for _ in $(seq "$RUNS"); do   # interleaved, so that load changes hit all three alike
  cli+=("$("$VWN" run "$MODEL" --prompt "$PROMPT" -n "$N" --greedy -t 1 2>&1 >/dev/null | sed -n 's/^generated:.*= *\([0-9.]*\) tok\/s.*/\1/p')")
  rust+=("$("$RUST" "$MODEL" "$PROMPT" -n "$N" -t 1 2>&1 >/dev/null | sed -n 's/^generated:.*= \([0-9.]*\) tok\/s (library.*/\1/p')")
  go+=("$("$GO" -m "$MODEL" -p "$PROMPT" -n "$N" -t 1 2>&1 >/dev/null | sed -n 's/^generated:.*= \([0-9.]*\) tok\/s (library.*/\1/p')")
done
row() {  # row NAME VALUES... -> "NAME best median"
  local name=$1; shift
  echo "$name $(printf '%s\n' "$@" | best) $(printf '%s\n' "$@" | median)"
}
{ row cli "${cli[@]}"; row rust "${rust[@]}"; row go "${go[@]}"; } | awk -v model="$MODEL" -v n="$N" -v runs="$RUNS" '
  { name[NR] = $1; b[NR] = $2; m[NR] = $3 }
  END {
    printf "%s, %d tokens, greedy, 1 thread, %d interleaved runs each (tok/s: best, median)\n", model, n, runs
    label["cli"] = "C CLI (vwn run)"; label["rust"] = "Rust binding"; label["go"] = "Go binding"
    for (i = 1; i <= NR; i++) {
      printf "  %-16s %9.1f tok/s %7.2f us/token | median %9.1f tok/s %7.2f us/token", label[name[i]], b[i], 1e6/b[i], m[i], 1e6/m[i]
      if (i > 1) printf "  | vs CLI: %+.2f us/token (best), %+.2f (median)", 1e6/b[i] - 1e6/b[1], 1e6/m[i] - 1e6/m[1]
      printf "\n"
    }
  }'

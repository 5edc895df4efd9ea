#!/usr/bin/env bash
# test_bindings.sh -- the Rust and Go bindings and the C/C++ consumers, as CI runs them:
#   1. installs libvwn (from the build in $VWN_BUILD_DIR, default build/) into
#      <build>/bindings/prefix, so pkg-config finds it through PKG_CONFIG_PATH and programs find
#      libvwn.so through LD_LIBRARY_PATH;
#   2. makes a small test model (tests/configs, random weights, bytes tokenizer) and the reference
#      outputs of the C command line tool on it (logits .npy, `vwn run --greedy`, `vwn tokenize`);
#   3. runs `cargo test` in bindings/rust (CARGO_TARGET_DIR under the build dir) and
#      `go test -race ./...` in bindings/go, both with VWN_TEST_MODEL and VWN_TEST_REF set;
#   4. runs scripts/test_consumers.sh on the model.
# A missing cargo or go toolchain skips that suite with a note. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$(realpath "${VWN_BUILD_DIR:-$ROOT/build}")
PY=${VWN_PYTHON:-$ROOT/.venv/bin/python}
OUT=$BUILD/bindings
PREFIX=$OUT/prefix
REF=$OUT/ref
CONFIG=tests/configs/m2n3_dynamic_fact_untied_nogn_gqa1_mtp2.json   # D=16, 2 MTP modules
mkdir -p "$OUT"

passed=0; failed=0; skipped=0; failed_names=()
suite() {  # suite NAME COMMAND...
  local name=$1; shift
  echo; echo "=== $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed+1)); echo "--- $name: ok ($((SECONDS-t0)) s)"
  else failed=$((failed+1)); failed_names+=("$name"); echo "--- $name: FAILED ($((SECONDS-t0)) s)"; fi
}

# ---- 1. libvwn, installed -------------------------------------------------------------------
if [ ! -f "$BUILD/build.ninja" ] && [ ! -f "$BUILD/Makefile" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null || exit 1
fi
cmake --build "$BUILD" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; echo "test_bindings: build failed"; exit 1; }
rm -rf "$PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
VWN=$PREFIX/bin/vwn
[ -x "$VWN" ] || VWN=$BUILD/bin/vwn
echo "libvwn $(pkg-config --modversion vwn) installed in $PREFIX"

# ---- 2. test model and the CLI's reference outputs -------------------------------------------
MODEL=$OUT/model.gguf
rm -rf "$OUT/ckpt" "$REF"
mkdir -p "$REF"
"$PY" tools/random_checkpoint.py "$CONFIG" "$OUT/ckpt" --seed 1 >"$OUT/model.log" 2>&1 &&
  "$PY" tools/convert.py "$OUT/ckpt" "$MODEL" >>"$OUT/model.log" 2>&1 ||
  { cat "$OUT/model.log"; echo "test_bindings: cannot make the test model"; exit 1; }
printf 'The quick brown fox jumps over the lazy dog.' >"$REF/prompt.txt"
echo 48 >"$REF/n_predict.txt"
echo "3,1,4,1,5,9,2,6,53,58,97,100,255,0,32" >"$REF/logits_tokens.txt"
{ "$VWN" logits "$MODEL" --tokens "$(cat "$REF/logits_tokens.txt")" --all -o "$REF/logits.npy" &&
  "$VWN" run "$MODEL" --file "$REF/prompt.txt" -n "$(cat "$REF/n_predict.txt")" --greedy >"$REF/run_greedy.txt" &&
  "$VWN" tokenize "$MODEL" --file "$REF/prompt.txt" --ids-only >"$REF/tokenize.txt"
} 2>"$OUT/ref.log" || { cat "$OUT/ref.log"; echo "test_bindings: the CLI failed to write the references"; exit 1; }
export VWN_TEST_MODEL=$MODEL VWN_TEST_REF=$REF
echo "test model $MODEL, references in $REF"

# ---- 3. Rust and Go ---------------------------------------------------------------------------
if command -v cargo >/dev/null; then
  suite "Rust: cargo test (bindings/rust)" env CARGO_TARGET_DIR="$OUT/cargo-target" \
    cargo test --manifest-path bindings/rust/Cargo.toml --workspace
else
  skipped=$((skipped+1)); echo "SKIPPED Rust bindings: cargo not found"
fi
if command -v go >/dev/null; then
  suite "Go: go test -race ./... (bindings/go)" bash -c 'cd bindings/go && go vet ./... && go test -race -count=1 ./...'
else
  skipped=$((skipped+1)); echo "SKIPPED Go bindings: go not found"
fi

# ---- 4. C and C++ consumers of the installed library -------------------------------------------
suite "C/C++ consumers (cmake install, find_package, pkg-config)" \
  env VWN_BUILD_DIR="$BUILD" scripts/test_consumers.sh "$MODEL"

echo
[ ${#failed_names[@]} -gt 0 ] && printf 'failed: %s\n' "${failed_names[@]}"
echo "bindings: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

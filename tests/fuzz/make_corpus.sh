#!/usr/bin/env bash
# make_corpus.sh -- seed corpora for the fuzz targets (tests/fuzz/*.c).
#
#   tests/fuzz/make_corpus.sh [OUT_DIR]        (default: build-fuzz/corpus)
#
# Writes
#   OUT_DIR/seeds/fuzz_gguf/       converter outputs of tiny configurations: every tensor type
#                                  (f32, f16, bf16, q8_0, q4_0), wide/factorized, static/dynamic GHC,
#                                  MTP 0-2, and the three tokenizer kinds (bytes, gpt2, llama)
#   OUT_DIR/models/                the gpt2 and llama models again, for fuzz_tokenizer
#                                  ($VWN_FUZZ_MODELS), plus the repository's trained gpt2
#                                  tokenizer (runs/tokenizer.json) when present
#   OUT_DIR/seeds/fuzz_tokenizer/  text samples (shared data, adversarial strings), each with
#                                  every tokenizer-selecting first byte
#   OUT_DIR/seeds/fuzz_state/      valid saved states of fuzz_state's model (written by the
#                                  fuzz_state binary itself: VWN_FUZZ_WRITE_SEEDS)
# Needs the venv python (numpy, safetensors, tokenizers) and a built fuzz_state
# ($VWN_FUZZ_BUILD, default build-fuzz).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${VWN_FUZZ_BUILD:-$ROOT/build-fuzz}"
OUT="${1:-$BUILD/corpus}"
PY="${VWN_PYTHON:-$ROOT/.venv/bin/python}"
SHARED="${VWN_SHARED:-$ROOT/../shared}"
[ -d "$SHARED" ] || SHARED=/work/shared
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

mkdir -p "$OUT/seeds/fuzz_gguf" "$OUT/seeds/fuzz_tokenizer" "$OUT/seeds/fuzz_state" "$OUT/models"

# ---- models ---------------------------------------------------------------------------------
# name  vocab  D  L  m  n  heads kv hd ff mtp dynamic embedding tied gn  types  tokenizer
configs=(
  "tiny_dyn_fact   256 8  1 1 2 2 1 4 16 1 true  factorized false true  f32,f16,bf16 bytes"
  "tiny_static_wide 256 8 1 2 2 2 2 4 16 0 false wide       false false f32 bytes"
  "tiny_tied_mtp2  256 8  2 2 4 2 2 4 16 2 true  factorized true  true  f32 bytes"
  "q8_m2n4         256 32 1 2 4 2 1 16 32 1 true factorized false true  q8_0,q4_0 bytes"
  "llama_tok512    512 8  1 1 2 2 1 4 16 1 true  factorized false false f32 llama"
  "gpt2_small      300 8  1 1 1 2 2 4 16 0 false wide       false false f32 gpt2"
)

# a small trained byte-level BPE vocabulary (300 tokens) for the gpt2 model
"$PY" - "$TMP/gpt2tok" "$SHARED" <<'EOF'
import os, sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
out, shared = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
text = ""
for name in ("tinyshakespeare.txt", "austen.txt"):
    p = os.path.join(shared, "data", name)
    if os.path.exists(p):
        text += open(p, encoding="utf-8", errors="replace").read()[:100000]
if not text:
    text = "the quick brown fox jumps over the lazy dog. " * 200
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator([text], trainer)
tok.save(os.path.join(out, "tokenizer.json"))
print(tok.get_vocab_size())
EOF
GPT2_V=$("$PY" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['model']['vocab']))" "$TMP/gpt2tok/tokenizer.json")

for line in "${configs[@]}"; do
  read -r name V D L m n H KV HD F K DYN EMB TIED GN TYPES TOK <<<"$line"
  [ "$TOK" = gpt2 ] && V=$GPT2_V
  tokarg=()
  case "$TOK" in
    llama) if [ -f "$SHARED/models/tok512.bin" ]; then tokarg=(--tokenizer "$SHARED/models/tok512.bin"); else continue; fi ;;
    gpt2) tokarg=(--tokenizer "$TMP/gpt2tok/tokenizer.json") ;;
  esac
  cat >"$TMP/$name.json" <<EOF
{"vocab_size": $V, "hidden_size": $D, "num_layers": $L, "ghc_m": $m, "ghc_n": $n, "num_heads": $H,
 "num_kv_heads": $KV, "head_dim": $HD, "ffn_hidden_size": $F, "mtp_depth": $K, "ghc_dynamic": $DYN,
 "embedding": "$EMB", "tie_word_embeddings": $TIED, "output_group_norm": $GN, "max_seq_len": 64,
 "tokenizer": "$TOK"}
EOF
  "$PY" "$ROOT/tools/random_checkpoint.py" "$TMP/$name.json" "$TMP/ck_$name" --seed 1 >/dev/null
  for ty in ${TYPES//,/ }; do
    "$PY" "$ROOT/tools/convert.py" "$TMP/ck_$name" "$OUT/seeds/fuzz_gguf/${name}_$ty.gguf" --type "$ty" \
      "${tokarg[@]}" >/dev/null 2>&1
  done
  [ "$TOK" != bytes ] && cp "$OUT/seeds/fuzz_gguf/${name}_f32.gguf" "$OUT/models/$name.gguf"
done

# the repository's trained tokenizer (4096 pieces), if there is one
if [ -f "$ROOT/runs/tokenizer.json" ]; then
  V=$("$PY" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['model']['vocab']))" "$ROOT/runs/tokenizer.json")
  cat >"$TMP/trained.json" <<EOF
{"vocab_size": $V, "hidden_size": 8, "num_layers": 1, "ghc_m": 1, "ghc_n": 1, "num_heads": 2,
 "ffn_hidden_size": 8, "ghc_dynamic": false, "embedding": "wide", "output_group_norm": false, "tokenizer": "gpt2"}
EOF
  "$PY" "$ROOT/tools/random_checkpoint.py" "$TMP/trained.json" "$TMP/ck_trained" --seed 1 >/dev/null
  "$PY" "$ROOT/tools/convert.py" "$TMP/ck_trained" "$OUT/models/gpt2_trained.gguf" \
    --tokenizer "$ROOT/runs/tokenizer.json" >/dev/null 2>&1 || true
fi

# ---- texts for the tokenizer ----------------------------------------------------------------
"$PY" - "$OUT/seeds/fuzz_tokenizer" "$SHARED" <<'EOF'
import os, sys
out, shared = sys.argv[1], sys.argv[2]
texts = [b"", b"hello world", b"Hello, World! It's 2024.", b"the cat's hat", b"   leading and trailing   ",
         b"<|endoftext|>", b"a<|endoftext|>b<user>c", b"<s>abc</s>", b"<tool>x<tool>", b"\xe2\x96\x81abc",
         b"caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80",
         b"\xff\xfe\x80\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", b"\t\n\r\x0b\x0c \xc2\xa0\xe3\x80\x80",
         b"1234567890 3.14 -7e10", b"abcabcabc bbb ccc", b"\x00\x01\x02"]
for name in ("tinyshakespeare.txt", "austen.txt", "war_and_peace.txt"):
    p = os.path.join(shared, "data", name)
    if os.path.exists(p):
        data = open(p, "rb").read()
        for off in (0, len(data) // 3, len(data) // 2):
            texts.append(data[off:off + 300])
n = 0
for t in texts:
    for first in (0, 1, 2, 3, 4, 5, 0x10 | 1, 0x20 | 2, 0x30 | 1, 0x50 | 2):
        open(os.path.join(out, "t%04d" % n), "wb").write(bytes([first]) + t)
        n += 1
EOF

# ---- saved states ---------------------------------------------------------------------------
if [ -x "$BUILD/bin/fuzz_state" ]; then
  VWN_FUZZ_WRITE_SEEDS="$OUT/seeds/fuzz_state" "$BUILD/bin/fuzz_state" >/dev/null 2>&1
else
  echo "make_corpus: $BUILD/bin/fuzz_state is not built; no state seeds" >&2
fi

for d in fuzz_gguf fuzz_tokenizer fuzz_state; do
  echo "$d: $(ls "$OUT/seeds/$d" | wc -l) seeds, $(du -sh "$OUT/seeds/$d" | cut -f1)"
done
echo "models: $(ls "$OUT/models" | tr '\n' ' ')"

#!/usr/bin/env bash
# bench_all.sh -- the measurements behind docs/performance.md, in one run.
#   scripts/bench_all.sh OUT_DIR [THREADS]
# Makes the Llama-110M-shaped benchmark models (tools/bench_models.py) under $VWN_BENCH_MODELS
# (default /tmp/vwn-bench), then runs `vwn bench` on each weight type with the three shapes
# interleaved (ratios against the n=m=1 model), the same on the AVX2 kernels, the weight types
# against each other with an f32 and an fp16 KV cache, thread scaling, a 1,800-token prompt,
# speculative decoding on the demo model, and `vwn perplexity` of the demo model as F32, BF16,
# Q8_0 and Q4_0 (and with an fp16 KV cache) on held-out text.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/bench_all.sh OUT_DIR [THREADS]}
T=${2:-2}
M=${VWN_BENCH_MODELS:-/tmp/vwn-bench}
VWN=build/bin/vwn
mkdir -p "$OUT" "$M"
.venv/bin/python tools/bench_models.py "$M" --types f32,bf16,q8_0,q4_0 >/dev/null
.venv/bin/python tools/bench_models.py "$M" --configs m2n8 --types q8_0,f32 --agree >/dev/null
# drop the models from the page cache, so that every run maps them in 2 MiB pages whatever put
# them there before (a write or a copy leaves 4 KiB folios; docs/performance.md, "Huge pages")
.venv/bin/python scripts/drop_page_cache.py "$M"/*.gguf

for ty in f32 bf16 q8_0 q4_0; do
  echo "== decode/prefill, $ty, $T threads"
  $VWN bench "$M/llama110m_m1n1.$ty.gguf" "$M/llama110m_m2n8.$ty.gguf" "$M/llama110m_m8n64.$ty.gguf" \
    -t "$T" -p 256 -n 64 -r 5 --json | tee "$OUT/bench_$ty.txt"
done

echo "== the three shapes on the AVX2 kernels (VWN_SIMD=avx2; skipped where the CPU has no AVX2)"
if "$VWN" bench --simd avx2 models/demo.gguf -p 2 -n 1 -r 1 >/dev/null 2>&1; then
  for ty in f32 q8_0; do
    VWN_SIMD=avx2 $VWN bench "$M/llama110m_m1n1.$ty.gguf" "$M/llama110m_m2n8.$ty.gguf" "$M/llama110m_m8n64.$ty.gguf" \
      -t "$T" -p 128 -n 32 -r 3 --json | tee "$OUT/avx2_$ty.txt"
  done
fi

echo "== weight types against each other (m1n1 and m2n8: F32 vs Q8_0 vs BF16 vs Q4_0, interleaved)"
for sh in m1n1 m2n8; do
  $VWN bench "$M/llama110m_$sh.f32.gguf" "$M/llama110m_$sh.q8_0.gguf" "$M/llama110m_$sh.bf16.gguf" "$M/llama110m_$sh.q4_0.gguf" \
    -t "$T" -p 256 -n 64 -r 5 --json | tee "$OUT/types_$sh.txt"
done

echo "== weight types against each other with an fp16 KV cache (--kv-type f16)"
for sh in m1n1 m2n8; do
  $VWN bench "$M/llama110m_$sh.f32.gguf" "$M/llama110m_$sh.q8_0.gguf" "$M/llama110m_$sh.bf16.gguf" "$M/llama110m_$sh.q4_0.gguf" \
    -t "$T" -p 256 -n 64 -r 5 --kv-type f16 --json | tee "$OUT/types_${sh}_kvf16.txt"
done

echo "== KV cache types (f32, f16, q8_0) at a 2,000-token context (m1n1 Q8_0)"
VWN=$VWN docs/bench/run-af/kvab.sh 1 "$M/llama110m_m1n1.q8_0.gguf" 2000 32 > "$OUT/kv_types_p2000.txt" 2>&1
.venv/bin/python docs/bench/run-af/kvsum.py "$OUT/kv_types_p2000.txt"

echo "== thread scaling (q8_0 and f32, 1 vs $T threads)"
for ty in f32 q8_0; do
  for t in 1 "$T"; do
    $VWN bench "$M/llama110m_m2n8.$ty.gguf" -t "$t" -p 256 -n 32 -r 3 --json | tail -1 > "$OUT/scaling_${ty}_t$t.json"
    echo "$ty t=$t: $(cat "$OUT/scaling_${ty}_t$t.json")"
  done
done

echo "== a long prompt (1,800 tokens): prefill with attention over the cache, decoding at that position"
for kv in f32 f16; do
  $VWN bench "$M/llama110m_m1n1.f32.gguf" "$M/llama110m_m1n1.q4_0.gguf" -t "$T" -p 1800 -n 32 -r 3 --kv-type "$kv" --json \
    | tee "$OUT/long_prompt_kv$kv.txt" | tail -1
done

echo "== speculative decoding on the demo model"
$VWN bench models/demo.gguf -t 1 -p 64 -n 128 -r 3 --spec 2 --json | tee "$OUT/spec_demo.txt"
$VWN bench models/demo.gguf -t 1 -p 64 -n 128 -r 3 --spec 1 --json | tail -1 > "$OUT/spec_demo_d1.json"

echo "== speculative decoding at its ceiling (every draft accepted) on a model far larger than the caches"
for ty in q8_0 f32; do
  for k in 1 2; do
    $VWN bench "$M/llama110m_m2n8_agree.$ty.gguf" -t "$T" -p 16 -n 128 -r 5 --spec "$k" --json | tee "$OUT/spec_agree_${ty}_k$k.txt" | tail -1
  done
done

echo "== perplexity of the demo model: F32 vs BF16 vs Q8_0 vs Q4_0 (held-out text)"
if [ -d runs/long/vwn ] || [ -n "${VWN_DEMO_CKPT:-}" ]; then
  CK=${VWN_DEMO_CKPT:-runs/long/vwn}
  tail -c 190000 ../shared/data/austen.txt > "$OUT/heldout.txt"
  for ty in f32 bf16 q8_0 q4_0; do
    .venv/bin/python tools/convert.py "$CK" "$M/demo.$ty.gguf" --type "$ty" >/dev/null 2>&1
    $VWN perplexity "$M/demo.$ty.gguf" --file "$OUT/heldout.txt" --json | tail -1 > "$OUT/ppl_$ty.json"
    echo "$ty: $(cat "$OUT/ppl_$ty.json")"
  done
  .venv/bin/python tools/convert.py "$CK" "$M/demo.q4_0_pure.gguf" --type q4_0 --pure >/dev/null 2>&1
  $VWN perplexity "$M/demo.q4_0_pure.gguf" --file "$OUT/heldout.txt" --json | tail -1 > "$OUT/ppl_q4_0_pure.json"
  echo "q4_0 --pure: $(cat "$OUT/ppl_q4_0_pure.json")"
  for ty in f32 q8_0; do
    for kv in f16 q8_0; do
      $VWN perplexity "$M/demo.$ty.gguf" --file "$OUT/heldout.txt" --kv-type $kv --json | tail -1 > "$OUT/ppl_${ty}_kv$kv.json"
      echo "$ty, $kv KV cache: $(cat "$OUT/ppl_${ty}_kv$kv.json")"
    done
  done
fi

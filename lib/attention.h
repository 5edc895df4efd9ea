/* attention.h -- RoPE and causal multi-head attention with GQA over a KV cache (spec §3). */
#ifndef VWN_ATTENTION_H
#define VWN_ATTENTION_H

#include "ops/ops.h"
#include "vwn.h"
#include <stdint.h>
#include <string.h>

/* Fills cos/sin tables [n_pos][hd/2] for the rotate-half convention: angle p * theta^(-2i/hd). */
void vwn_rope_table(float *cos_t, float *sin_t, int32_t n_pos, int32_t head_dim, float theta);

/* Rotates n_heads heads of width hd in place at position pos: pairs (i, i + hd/2). */
void vwn_rope_apply(float *v, int32_t n_heads, int32_t hd, const float *cos_p, const float *sin_p);

/* The KV cache of one layer (or MTP module) holds n_ctx positions as [Hkv][n_ctx][hd]: each KV
 * head's keys (values) are contiguous, so attention reads them as one linear stream (with the
 * heads interleaved per position, [n_ctx][Hkv*hd], every key was a separate 256-byte piece at a
 * stride of Hkv*hd floats, and decode attention ran at 13 GB/s against 28 for a linear read).
 * A row of hd values is fp32, fp16 or Q8_0 blocks (context param kv_type; Q8_0: hd / 32 blocks of
 * 34 bytes, hd % 32 == 0), row_bytes each (vwn_kv_row_bytes). The row of KV head kvh at position pos: */
static inline void *vwn_kv_row(void *cache, size_t row_bytes, int32_t n_ctx, int32_t kvh, int32_t pos) {
    return (char *)cache + ((size_t)kvh * (size_t)n_ctx + (size_t)pos) * row_bytes;
}

/* Bytes of one cache row of hd values of kv_type (F32: 4 hd, F16: 2 hd, Q8_0: 34 hd / 32). */
static inline size_t vwn_kv_row_bytes(int32_t kv_type, int32_t hd) {
    if (kv_type == VWN_TYPE_Q8_0) return (size_t)hd / VWN_QK8_0 * sizeof(vwn_block_q8_0);
    return (size_t)hd * (kv_type == VWN_TYPE_F16 ? sizeof(uint16_t) : sizeof(float));
}

/* Stores one row of hd floats into a cache row of kv_type (fp32: a copy; fp16: rounded to nearest
 * even; Q8_0: quantized per 32 values as the Q8_0 activations are, ops.h quantize_q8_0). */
static inline void vwn_kv_store(const vwn_ops *ops, int32_t kv_type, void *dst, const float *src, int32_t hd) {
    if (kv_type == VWN_TYPE_F16) ops->to_f16((uint16_t *)dst, src, hd);
    else if (kv_type == VWN_TYPE_Q8_0) ops->quantize_q8_0(src, (vwn_block_q8_0 *)dst, hd);
    else memcpy(dst, src, (size_t)hd * sizeof(float));
}

/* Tokens whose queries attention runs together over each piece of keys and values (see attention.c). */
#define VWN_ATT_BLOCK 8
/* Positions per block of the softmax: each block's weights and weighted values are taken alone
 * and the blocks folded in order (attention.c), so decoding splits a long context over threads by
 * blocks of positions as well as by KV heads. */
#define VWN_ATT_POS_BLOCK 512

/* Floats of scratch vwn_attention needs for a cache of n_ctx positions on up to n_threads threads. */
size_t vwn_attention_scratch_floats(int32_t n_head, int32_t hd, int32_t n_ctx, int n_threads);

/* Causal attention for T queries at positions p0..p0+T-1. q: [T][Hq*hd]; the caches (rows of
 * kv_type, F32, F16 or Q8_0) hold keys and values of positions 0..p0+T-1 (layout above); out: [T][Hq*hd].
 * scratch: vwn_attention_scratch_floats(n_head, hd, n_ctx, n_threads) floats. It runs on up to
 * n_threads threads when its work (multiply-adds of the scores, T x positions x Hq x hd) exceeds
 * split (below); the results are the same bits either way. */
void vwn_attention(const vwn_ops *ops, const float *q, int32_t kv_type, const void *k_cache, const void *v_cache,
                   int32_t p0, int32_t T, int32_t n_head, int32_t n_head_kv, int32_t hd,
                   float *out, float *scratch, int32_t n_ctx, int n_threads, int64_t split);

/* The work from which attention takes several threads. When the KV cache is in the last-level cache
 * (a model whose weights fit there), a fork and join costs more than the second thread saves below
 * ~64 K multiply-adds (the demo model: 7-10% slower decoding when split from 24 K). When every
 * token's weights stream the cache out of it (weights larger than the LLC), the keys come from
 * memory and a second thread pays from far less (the 110M model: tokens 0-5% faster at prompts
 * 2-72 when split from 8 K; docs/performance.md, "Sixteenth session"). The context picks one from
 * the model's weight bytes per token against vwn_llc_bytes(). */
#define VWN_ATT_SPLIT_CACHE 65536
#define VWN_ATT_SPLIT_MEMORY 8192

#endif

/* attention.h -- RoPE and causal multi-head attention with GQA over a KV cache (spec §3). */
#ifndef VWN_ATTENTION_H
#define VWN_ATTENTION_H

#include "ops/ops.h"
#include <stdint.h>

/* Fills cos/sin tables [n_pos][hd/2] for the rotate-half convention: angle p * theta^(-2i/hd). */
void vwn_rope_table(float *cos_t, float *sin_t, int32_t n_pos, int32_t head_dim, float theta);

/* Rotates n_heads heads of width hd in place at position pos: pairs (i, i + hd/2). */
void vwn_rope_apply(float *v, int32_t n_heads, int32_t hd, const float *cos_p, const float *sin_p);

/* Causal attention for T queries at positions p0..p0+T-1. q: [T][Hq*hd]; the caches hold keys and
 * values of positions 0..p0+T-1 ([pos][Hkv*hd]); out: [T][Hq*hd]. scores: per thread n_ctx floats. */
void vwn_attention(const vwn_ops *ops, const float *q, const float *k_cache, const float *v_cache,
                   int32_t p0, int32_t T, int32_t n_head, int32_t n_head_kv, int32_t hd,
                   float *out, float *scores, int32_t n_ctx, int n_threads);

#endif

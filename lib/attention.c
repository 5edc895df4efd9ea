/* attention.c -- rotary position embedding and causal attention over the KV cache (spec §3). */
#include "attention.h"

#include <math.h>
#include <string.h>
#ifdef VWN_OPENMP
#include <omp.h>
#endif

void vwn_rope_table(float *cos_t, float *sin_t, int32_t n_pos, int32_t head_dim, float theta) {
    const int32_t half = head_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        /* computed in double so long contexts keep their accuracy */
        const double inv_freq = pow((double)theta, -2.0 * i / head_dim);
        for (int32_t p = 0; p < n_pos; p++) {
            const double a = p * inv_freq;
            cos_t[(size_t)p * half + i] = (float)cos(a);
            sin_t[(size_t)p * half + i] = (float)sin(a);
        }
    }
}

void vwn_rope_apply(float *v, int32_t n_heads, int32_t hd, const float *cos_p, const float *sin_p) {
    const int32_t half = hd / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * hd;
        for (int32_t i = 0; i < half; i++) {
            const float a = x[i], b = x[i + half];
            x[i] = a * cos_p[i] - b * sin_p[i];
            x[i + half] = a * sin_p[i] + b * cos_p[i];
        }
    }
}

/* One work item: token t and KV head kvh -- the `group` query heads that share the KV head run
 * back to back, so its keys and values are read from memory once and then from cache. sc: this
 * thread's n_ctx scores. */
static void attend(const vwn_ops *ops, const float *q, bool half, size_t esize, const void *k_cache,
                   const void *v_cache, int32_t p0, int32_t t, int32_t kvh, int32_t n_head, int32_t group,
                   int32_t hd, float *out, float *sc, int32_t n_ctx) {
    const float inv_sqrt_hd = 1.0f / sqrtf((float)hd);
    const int32_t n_keys = p0 + t + 1; /* causal: positions 0..p0+t */
    const void *K = (const char *)k_cache + (size_t)kvh * n_ctx * hd * esize;
    const void *V = (const char *)v_cache + (size_t)kvh * n_ctx * hd * esize;
    for (int32_t h = kvh * group; h < (kvh + 1) * group; h++) {
        const float *qh = q + (size_t)t * n_head * hd + (size_t)h * hd;
        float *oh = out + (size_t)t * n_head * hd + (size_t)h * hd;
        if (half) ops->attn_scores_f16(sc, qh, K, hd, n_keys, hd, inv_sqrt_hd);
        else ops->attn_scores(sc, qh, K, hd, n_keys, hd, inv_sqrt_hd);
        const float sum = ops->softmax_exp(sc, n_keys);
        ops->scale(sc, 1.0f / sum, n_keys);
        if (half) ops->attn_values_f16(oh, sc, V, hd, n_keys, hd);
        else ops->attn_values(oh, sc, V, hd, n_keys, hd);
    }
}

void vwn_attention(const vwn_ops *ops, const float *q, int32_t kv_type, const void *k_cache, const void *v_cache,
                   int32_t p0, int32_t T, int32_t n_head, int32_t n_head_kv, int32_t hd,
                   float *out, float *scores, int32_t n_ctx, int n_threads) {
    const int32_t group = n_head / n_head_kv;
    const bool half = kv_type == VWN_TYPE_F16;
    const size_t esize = vwn_kv_esize(kv_type);
    /* one work item = one token and one KV head */
    const int64_t n_items = (int64_t)T * n_head_kv;
    const int64_t work = n_items * (int64_t)(p0 + T) * hd * group;
    if (n_threads <= 1 || n_items <= 1 || work <= 65536) {
        /* no OpenMP construct (a serialized region costs ~1 µs and cache misses in libomp) */
        for (int64_t it = 0; it < n_items; it++)
            attend(ops, q, half, esize, k_cache, v_cache, p0, (int32_t)(it / n_head_kv), (int32_t)(it % n_head_kv),
                   n_head, group, hd, out, scores, n_ctx);
        return;
    }
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
#endif
    for (int64_t it = 0; it < n_items; it++) {
#ifdef VWN_OPENMP
        float *sc = scores + (size_t)omp_get_thread_num() * n_ctx;
#else
        float *sc = scores;
#endif
        attend(ops, q, half, esize, k_cache, v_cache, p0, (int32_t)(it / n_head_kv), (int32_t)(it % n_head_kv),
               n_head, group, hd, out, sc, n_ctx);
    }
}

/* attention.c -- rotary position embedding and causal attention over the KV cache (spec §3). */
#include "attention.h"

#include <math.h>
#include <stdatomic.h>
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

/* Queries of consecutive tokens share their keys and values (causal: token t sees positions
 * 0..p0+t), and so do the `group` query heads of one KV head (GQA). A work item is a block of up
 * to VWN_ATT_BLOCK tokens and one KV head; its query rows (head, token) go in chunks of up to
 * VWN_ATT_BLOCK, and within a chunk the keys and values are taken in pieces of about 16 KiB, every
 * row of the chunk running over a piece while it is in L1 -- so each piece comes from L2/L3 (or
 * memory) once per chunk instead of once per row: in prefill a chunk is one head's block of
 * tokens, in decoding up to VWN_ATT_BLOCK heads of a GQA group. Every score is computed alone,
 * and every output is one chain over the keys in order (attn_values with accumulate continues it
 * exactly), so the results are the bits of running each row over all its keys at once (a lone
 * row -- decoding without GQA -- takes them in one piece). */

/* Keys per piece: ~16 KiB of keys (or values) of one head, at least 16. */
static int32_t piece_keys(int32_t hd, size_t esize) {
    const int32_t k = (int32_t)(16384 / ((size_t)hd * esize));
    return k < 16 ? 16 : k;
}

/* One work item: tokens t0..t0+nt-1 and KV head kvh, for the `group` query heads that share it.
 * Query row r is head kvh * group + r / nt and token t0 + r % nt. sc: this thread's
 * VWN_ATT_BLOCK rows of n_ctx scores, one per row of a chunk. */
static void attend(const vwn_ops *ops, const float *q, bool half, size_t esize, const void *k_cache,
                   const void *v_cache, int32_t p0, int32_t t0, int32_t nt, int32_t kvh, int32_t n_head,
                   int32_t group, int32_t hd, float *out, float *sc, int32_t n_ctx) {
    const float inv_sqrt_hd = 1.0f / sqrtf((float)hd);
    const int32_t last = p0 + t0 + nt;      /* keys of the block's last token */
    const char *K = (const char *)k_cache + (size_t)kvh * n_ctx * hd * esize;
    const char *V = (const char *)v_cache + (size_t)kvh * n_ctx * hd * esize;
    const size_t row = (size_t)hd * esize;
    const int32_t rows = group * nt;
    for (int32_t r0 = 0; r0 < rows; r0 += VWN_ATT_BLOCK) {
        const int32_t nr = rows - r0 < VWN_ATT_BLOCK ? rows - r0 : VWN_ATT_BLOCK;
        const int32_t piece = nr == 1 ? last : piece_keys(hd, esize);
#define ROW_HEAD(r) (kvh * group + (r0 + (r)) / nt)
#define ROW_TOKEN(r) (t0 + (r0 + (r)) % nt)
        /* scores, piece by piece */
        for (int32_t j0 = 0; j0 < last; j0 += piece) {
            const int32_t j1 = last - j0 < piece ? last : j0 + piece;
            for (int32_t i = 0; i < nr; i++) {
                const int32_t n_keys = p0 + ROW_TOKEN(i) + 1, n = (n_keys < j1 ? n_keys : j1) - j0;
                if (n <= 0) continue;
                const float *qh = q + ((size_t)ROW_TOKEN(i) * n_head + ROW_HEAD(i)) * hd;
                float *s = sc + (size_t)i * n_ctx + j0;
                if (half) ops->attn_scores_f16(s, qh, (const uint16_t *)(K + j0 * row), hd, n, hd, inv_sqrt_hd);
                else ops->attn_scores(s, qh, (const float *)(K + j0 * row), hd, n, hd, inv_sqrt_hd);
            }
        }
        for (int32_t i = 0; i < nr; i++) {
            const int32_t n_keys = p0 + ROW_TOKEN(i) + 1;
            float *s = sc + (size_t)i * n_ctx;
            const float sum = ops->softmax_exp(s, n_keys);
            ops->scale(s, 1.0f / sum, n_keys);
        }
        /* values, piece by piece, each row's output continued from the last piece */
        for (int32_t j0 = 0; j0 < last; j0 += piece) {
            const int32_t j1 = last - j0 < piece ? last : j0 + piece;
            for (int32_t i = 0; i < nr; i++) {
                const int32_t n_keys = p0 + ROW_TOKEN(i) + 1, n = (n_keys < j1 ? n_keys : j1) - j0;
                if (n <= 0) continue;
                float *oh = out + ((size_t)ROW_TOKEN(i) * n_head + ROW_HEAD(i)) * hd;
                const float *s = sc + (size_t)i * n_ctx + j0;
                if (half) ops->attn_values_f16(oh, s, (const uint16_t *)(V + j0 * row), hd, n, hd, j0 > 0);
                else ops->attn_values(oh, s, (const float *)(V + j0 * row), hd, n, hd, j0 > 0);
            }
        }
#undef ROW_HEAD
#undef ROW_TOKEN
    }
}

/* Work item `it`: the block of tokens it / n_head_kv and the KV head it % n_head_kv. */
static void attend_item(const vwn_ops *ops, const float *q, bool half, size_t esize, const void *k_cache,
                        const void *v_cache, int32_t p0, int32_t T, int64_t it, int32_t n_head, int32_t n_head_kv,
                        int32_t hd, float *out, float *sc, int32_t n_ctx) {
    const int32_t b = (int32_t)(it / n_head_kv), t0 = b * VWN_ATT_BLOCK;
    const int32_t nt = T - t0 < VWN_ATT_BLOCK ? T - t0 : VWN_ATT_BLOCK;
    attend(ops, q, half, esize, k_cache, v_cache, p0, t0, nt, (int32_t)(it % n_head_kv), n_head, n_head / n_head_kv,
           hd, out, sc, n_ctx);
}

void vwn_attention(const vwn_ops *ops, const float *q, int32_t kv_type, const void *k_cache, const void *v_cache,
                   int32_t p0, int32_t T, int32_t n_head, int32_t n_head_kv, int32_t hd,
                   float *out, float *scores, int32_t n_ctx, int n_threads, int64_t split) {
    const int32_t group = n_head / n_head_kv;
    const bool half = kv_type == VWN_TYPE_F16;
    const size_t esize = vwn_kv_esize(kv_type);
    /* one work item = one block of tokens and one KV head */
    const int32_t blocks = (T + VWN_ATT_BLOCK - 1) / VWN_ATT_BLOCK;
    const int64_t n_items = (int64_t)blocks * n_head_kv;
    const int64_t work = (int64_t)T * n_head_kv * (int64_t)(p0 + T) * hd * group;
#ifdef VWN_OPENMP
    if (n_threads > 1 && n_items > 1 && work > split) {
        /* Decoding (one block): each thread a contiguous run of KV heads, whose keys and values
         * are one stretch of the cache. Prefill: blocks of later tokens attend to more keys, so
         * the items are claimed one at a time from an atomic counter. (OpenMP's schedule(dynamic,
         * 1) did the same, but its dispatch cost several µs a call on this machine: decode attention
         * over 128 cached positions took 14-17 µs on 2 threads against 8 with this loop, and a
         * 256-token Q8_0 prefill 8-15% longer; docs/performance.md, "Attention's thread loop".) */
        _Atomic int64_t next = 0;
#pragma omp parallel num_threads(n_threads)
        {
            const int i = omp_get_thread_num(), nt = omp_get_num_threads();
            float *sc = scores + (size_t)i * VWN_ATT_BLOCK * n_ctx;
            if (blocks == 1) {
                for (int64_t it = n_items * i / nt; it < n_items * (i + 1) / nt; it++)
                    attend_item(ops, q, half, esize, k_cache, v_cache, p0, T, it, n_head, n_head_kv, hd, out, sc, n_ctx);
            } else {
                for (int64_t it; (it = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < n_items;)
                    attend_item(ops, q, half, esize, k_cache, v_cache, p0, T, it, n_head, n_head_kv, hd, out, sc, n_ctx);
            }
        }
        return;
    }
#else
    (void)n_threads, (void)work, (void)split;
#endif
    /* one thread: no OpenMP construct (a serialized region costs ~1 µs and cache misses in libomp) */
    for (int64_t it = 0; it < n_items; it++)
        attend_item(ops, q, half, esize, k_cache, v_cache, p0, T, it, n_head, n_head_kv, hd, out, scores, n_ctx);
}

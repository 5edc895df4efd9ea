/* attn_avx512.c -- the AVX-512 attention kernels (ops.h: attn_scores, attn_values, their fp16-cache
 * forms and the rows kernels), reached only through the tables of ops_avx512.c, which ops.c hands
 * out once it found the CPU features; compiled with the same AVX-512 flags. One row's score is a
 * dot in two FMA chains summed by a fixed tree (hsum_tree); the rows kernels take a tile of rows
 * through the same chains and tree, so every result has the one-row bits. */
#include "ops/ops.h"
#include "vwn.h"

#include <immintrin.h>
#include <stdbool.h>

#define VL 16 /* floats per vector */
#define INLINE static inline __attribute__((always_inline))

#include "ops/avx512_loads.h"

/* The vwn_avx512_attn_* functions below are declared in ops_avx512.c, whose tables hold them. */

/* Keys and values are fp32, fp16 (kv_type F16) or Q8_0 blocks (kv_type Q8_0): `type` is F32, F16
 * or Q8_0, the loads widen or dequantize exactly (load_w), so every kernel gives over fp16 or Q8_0
 * rows the bits it gives over the same rows in fp32. Tables of tiles are indexed by kv_index. */
INLINE size_t kv_row_bytes(int type, int64_t ld) {
    if (type == VWN_TYPE_Q8_0) return (size_t)ld / 32 * sizeof(vwn_block_q8_0);
    return (size_t)ld * (type == VWN_TYPE_F32 ? sizeof(float) : sizeof(uint16_t));
}
static int kv_index(int32_t kv_type) { return kv_type == VWN_TYPE_F16 ? 1 : kv_type == VWN_TYPE_Q8_0 ? 2 : 0; }
static const int kv_types[3] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_Q8_0};

/* The horizontal sum of a score, in one fixed tree -- a_i = v_i + v_(i+8), b_i = a_i + a_(i+4),
 * c_i = b_i + b_(i+2), c_0 + c_1 -- written out, so that the 16-key transposing sum of
 * scores_rows (below) takes the same pairs and a score has the same bits on both paths. */
INLINE float hsum_tree(__m512 v) {
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

/* The dot of q and key k over n lanes: ceil(n / 16) vectors (the last one masked if n is not a
 * multiple of 16), in pairs on two chains, an odd last one on the first; then the tree. The
 * chains depend on the vector count only, so the row tiles below, whose loops the compiler
 * unrolls for each count, repeat them exactly. */
INLINE __m512 dot_kv_lanes(const float *q, int type, const void *k, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const int64_t nv = (n + VL - 1) / VL;
    int64_t v = 0;
    for (; v + 2 <= nv; v += 2) {
        const int64_t i = v * VL;
        const __mmask16 m1 = n - i - VL >= VL ? (__mmask16)0xffff : tail_mask(n - i - VL);
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load_w(type, k, i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, q + i + VL), load_w_tail(type, k, i + VL, m1), acc1);
    }
    if (v < nv) {
        const int64_t i = v * VL;
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load_w_tail(type, k, i, m), acc0);
    }
    return _mm512_add_ps(acc0, acc1);
}
INLINE float dot_kv(const float *q, int type, const void *k, int64_t n) { return hsum_tree(dot_kv_lanes(q, type, k, n)); }

/* One row's scores (attn_scores, attn_scores_f16) are the rows kernel's, below, with a tile of one
 * row: 16 keys summed at once by the tree rather than a horizontal sum per key, the same bits. */

/* Up to 128 output lanes in registers over all keys, so each value row is read once, whole, in
 * key order (two 32-lane passes over a 64-wide head read every row twice, half at a time). Each
 * output is the same fma chain over the keys as before, in the same order. Columns c0.. of V. */
INLINE void values_block(int nv, int type, float *out, const float *p, const void *V, int64_t c0,
                         int64_t ldv, int64_t n_kv, int64_t width, bool accumulate) {
    const size_t vrow = kv_row_bytes(type, ldv);
    __m512 acc[8];
    __mmask16 m[8];
    for (int v = 0; v < nv; v++) {
        m[v] = width - v * VL >= VL ? (__mmask16)0xffff : tail_mask(width - v * VL);
        acc[v] = accumulate ? _mm512_maskz_loadu_ps(m[v], out + v * VL) : _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < n_kv; j++) {
        const __m512 pj = _mm512_set1_ps(p[j]);
        const void *row = (const char *)V + (size_t)j * vrow;
        for (int v = 0; v < nv; v++)
            acc[v] = _mm512_fmadd_ps(pj, load_w_tail(type, row, c0 + v * VL, m[v]), acc[v]);
    }
    for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(out + v * VL, m[v], acc[v]);
}

INLINE void values_kv(int type, float *out, const float *p, const void *V, int64_t ldv, int64_t n_kv,
                      int64_t head_dim, bool accumulate) {
    for (int64_t i = 0; i < head_dim; i += 8 * VL) {
        const int64_t width = head_dim - i < 8 * VL ? head_dim - i : 8 * VL;
        switch ((width + VL - 1) / VL) {
        case 1: values_block(1, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        case 2: values_block(2, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        case 3: values_block(3, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        case 4: values_block(4, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        case 5: values_block(5, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        case 6: values_block(6, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        case 7: values_block(7, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        default: values_block(8, type, out + i, p, V, i, ldv, n_kv, width, accumulate); break;
        }
    }
}

void vwn_avx512_attn_values(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv,
                               int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_F32, out, p, V, ldv, n_kv, head_dim, accumulate);
}

void vwn_avx512_attn_values_f16(float *out, const float *p, const uint16_t *V, int64_t ldv, int64_t n_kv,
                                   int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_F16, out, p, V, ldv, n_kv, head_dim, accumulate);
}

void vwn_avx512_attn_values_q8_0(float *out, const float *p, const vwn_block_q8_0 *V, int64_t ldv, int64_t n_kv,
                                 int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_Q8_0, out, p, V, ldv, n_kv, head_dim, accumulate);
}

/* ---- attention over several query rows at once (ops.h: attn_scores_rows, attn_values_rows) ---- */

/* Query rows that share their keys (a prefill's block of tokens, a GQA group's heads) take them
 * together: each key's vectors are loaded once for R rows, whose queries stay in registers, and the
 * 16 scores of 16 keys are summed by a transposing tree with hsum_tree's pairs. A score is the
 * same chains and the same tree as dot_kv: the bits of attn_scores. Measured (one thread, head
 * 64): a standalone prototype, 8 rows over 256-1,900 keys in cache, 1.7-1.8x the row-at-a-time
 * rate (values 1.9-2.1x); in a 2,048-token prefill 0.49x the time (values 0.53-0.56x). */
#define ROWS_MAX_NV 8 /* queries up to 8 vectors (head_dim 128) in registers; longer: row at a time */

/* The 16 lanes of two keys' dots as [A_i + A_(i+8) | B_i + B_(i+8)], i < 8 (step a of the tree) */
INLINE __m512 tree_a(__m512 A, __m512 B) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(A, B, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(A, B, _MM_SHUFFLE(3, 2, 3, 2)));
}
/* two of those as four keys' step b, a 128-bit lane each */
INLINE __m512 tree_b(__m512 AB, __m512 CD) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(AB, CD, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(AB, CD, _MM_SHUFFLE(3, 1, 3, 1)));
}
/* step c: two keys' pairs in each 128-bit lane */
INLINE __m512 tree_c(__m512 P, __m512 Q) {
    return _mm512_add_ps(_mm512_shuffle_ps(P, Q, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(P, Q, _MM_SHUFFLE(3, 2, 3, 2)));
}
/* step d: the 16 sums, key k in lane 4 (k % 4) + k / 4 (undone by the permute in scores_tile) */
INLINE __m512 tree_d(__m512 P, __m512 Q) {
    return _mm512_add_ps(_mm512_shuffle_ps(P, Q, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(P, Q, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The dots of rt query rows (nv vectors each, the last one masked by mlast) with key k, as
 * dot_kv before its sum: out[r] = acc0 + acc1. */
INLINE void key_dots(int rt, int nv, int type, const __m512 q[][ROWS_MAX_NV], const void *k, __mmask16 mlast,
                     __m512 out[]) {
    __m512 a0[4], a1[4];
    for (int r = 0; r < rt; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    int v = 0;
    for (; v + 2 <= nv; v += 2) {
        const __m512 k0 = load_w(type, k, v * VL);
        const __m512 k1 = load_w_tail(type, k, (v + 1) * VL, v + 2 == nv ? mlast : (__mmask16)0xffff);
        for (int r = 0; r < rt; r++) {
            a0[r] = _mm512_fmadd_ps(q[r][v], k0, a0[r]);
            a1[r] = _mm512_fmadd_ps(q[r][v + 1], k1, a1[r]);
        }
    }
    if (v < nv) {
        const __m512 k0 = load_w_tail(type, k, v * VL, mlast);
        for (int r = 0; r < rt; r++) a0[r] = _mm512_fmadd_ps(q[r][v], k0, a0[r]);
    }
    for (int r = 0; r < rt; r++) out[r] = _mm512_add_ps(a0[r], a1[r]);
}

/* Keys 0 .. 2^lg - 1 at K (krow bytes apart) for rt rows, reduced by the tree's first lg steps:
 * two halves, each reduced by lg - 1 steps, joined by step lg. (Four functions, not one recursive
 * one: a recursive function is not inlined, and its loops would not see rt and nv as constants.) */
#define KEYS_ARGS int rt, int nv, int type, const __m512 q[][ROWS_MAX_NV], const char *K, size_t krow, __mmask16 mlast
#define KEYS_PASS rt, nv, type, q
INLINE void keys_2(KEYS_ARGS, __m512 out[]) {
    __m512 x[4], y[4];
    key_dots(KEYS_PASS, K, mlast, x);
    key_dots(KEYS_PASS, K + krow, mlast, y);
    for (int r = 0; r < rt; r++) out[r] = tree_a(x[r], y[r]);
}
INLINE void keys_4(KEYS_ARGS, __m512 out[]) {
    __m512 x[4], y[4];
    keys_2(KEYS_PASS, K, krow, mlast, x);
    keys_2(KEYS_PASS, K + 2 * krow, krow, mlast, y);
    for (int r = 0; r < rt; r++) out[r] = tree_b(x[r], y[r]);
}
INLINE void keys_8(KEYS_ARGS, __m512 out[]) {
    __m512 x[4], y[4];
    keys_4(KEYS_PASS, K, krow, mlast, x);
    keys_4(KEYS_PASS, K + 4 * krow, krow, mlast, y);
    for (int r = 0; r < rt; r++) out[r] = tree_c(x[r], y[r]);
}
INLINE void keys_16(KEYS_ARGS, __m512 out[]) {
    __m512 x[4], y[4];
    keys_8(KEYS_PASS, K, krow, mlast, x);
    keys_8(KEYS_PASS, K + 8 * krow, krow, mlast, y);
    for (int r = 0; r < rt; r++) out[r] = tree_d(x[r], y[r]);
}
#undef KEYS_ARGS
#undef KEYS_PASS

/* rt rows (out[r], q[r]) over n_kv keys: 16 at a time through the tree, the rest one by one. */
INLINE void scores_tile(int rt, int nv, int type, float *const *out, const float *const *q, const void *K,
                        int64_t ldk, int64_t n_kv, int64_t hd, float scale) {
    const size_t krow = kv_row_bytes(type, ldk);
    const __mmask16 mlast = hd % VL ? tail_mask(hd % VL) : (__mmask16)0xffff;
    __m512 qr[4][ROWS_MAX_NV];
    for (int r = 0; r < rt; r++)
        for (int v = 0; v < nv; v++) qr[r][v] = _mm512_maskz_loadu_ps(v + 1 < nv ? (__mmask16)0xffff : mlast, q[r] + v * VL);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512 sv = _mm512_set1_ps(scale);
    int64_t j = 0;
    for (; j + 16 <= n_kv; j += 16) {
        __m512 s[4];
        keys_16(rt, nv, type, qr, (const char *)K + (size_t)j * krow, krow, mlast, s);
        for (int r = 0; r < rt; r++) _mm512_storeu_ps(out[r] + j, _mm512_mul_ps(sv, _mm512_permutexvar_ps(order, s[r])));
    }
    for (; j < n_kv; j++)
        for (int r = 0; r < rt; r++) out[r][j] = scale * dot_kv(q[r], type, (const char *)K + (size_t)j * krow, hd);
}

/* A row of a head wider than the tiles' registers hold (more than 8 vectors): its query read from
 * L1 for every key (dot_kv_lanes), 16 keys summed by the same tree. */
static void scores_wide(int type, float *out, const float *q, const void *K, int64_t ldk, int64_t n_kv, int64_t hd,
                        float scale) {
    const size_t krow = kv_row_bytes(type, ldk);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    int64_t j = 0;
    for (; j + 16 <= n_kv; j += 16) {
        const char *k = (const char *)K + (size_t)j * krow;
        __m512 d[16];
        for (int i = 0; i < 16; i++) d[i] = dot_kv_lanes(q, type, k + (size_t)i * krow, hd);
        for (int i = 0; i < 8; i++) d[i] = tree_a(d[2 * i], d[2 * i + 1]);
        for (int i = 0; i < 4; i++) d[i] = tree_b(d[2 * i], d[2 * i + 1]);
        for (int i = 0; i < 2; i++) d[i] = tree_c(d[2 * i], d[2 * i + 1]);
        _mm512_storeu_ps(out + j, _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_permutexvar_ps(order, tree_d(d[0], d[1]))));
    }
    for (; j < n_kv; j++) out[j] = scale * dot_kv(q, type, (const char *)K + (size_t)j * krow, hd);
}

/* One function per tile shape and cache type: each small enough for the compiler to keep its
 * queries and sums in registers (inlined into one function, the 32 shapes were compiled as loops
 * over arrays on the stack, slower than a row at a time). */
typedef void (*scores_tile_fn)(float *const *out, const float *const *q, const void *K, int64_t ldk, int64_t n_kv,
                               int64_t hd, float scale);
#define SCORES_TILE(rt, nv, type, name)                                                                          \
    static __attribute__((noinline)) void name(float *const *out, const float *const *q, const void *K, int64_t ldk, \
                                               int64_t n_kv, int64_t hd, float scale) {                          \
        scores_tile(rt, nv, type, out, q, K, ldk, n_kv, hd, scale);                                              \
    }
#define SCORES_TILES(nv)                                                   \
    SCORES_TILE(4, nv, VWN_TYPE_F32, scores_f32_4x##nv)                    \
    SCORES_TILE(4, nv, VWN_TYPE_F16, scores_f16_4x##nv)                    \
    SCORES_TILE(2, nv, VWN_TYPE_F32, scores_f32_2x##nv)                    \
    SCORES_TILE(2, nv, VWN_TYPE_F16, scores_f16_2x##nv)
SCORES_TILES(1)
SCORES_TILES(2)
SCORES_TILES(3)
SCORES_TILES(4)
#define SCORES_TILE1(nv)                                    \
    SCORES_TILE(1, nv, VWN_TYPE_F32, scores_f32_1x##nv)     \
    SCORES_TILE(1, nv, VWN_TYPE_F16, scores_f16_1x##nv)
SCORES_TILE1(1)
SCORES_TILE1(2)
SCORES_TILE1(3)
SCORES_TILE1(4)
SCORES_TILE1(5)
SCORES_TILE1(6)
SCORES_TILE1(7)
SCORES_TILE1(8)
#undef SCORES_TILE1
SCORES_TILE(2, 5, VWN_TYPE_F32, scores_f32_2x5)
SCORES_TILE(2, 5, VWN_TYPE_F16, scores_f16_2x5)
SCORES_TILE(2, 6, VWN_TYPE_F32, scores_f32_2x6)
SCORES_TILE(2, 6, VWN_TYPE_F16, scores_f16_2x6)
SCORES_TILE(2, 7, VWN_TYPE_F32, scores_f32_2x7)
SCORES_TILE(2, 7, VWN_TYPE_F16, scores_f16_2x7)
SCORES_TILE(2, 8, VWN_TYPE_F32, scores_f32_2x8)
SCORES_TILE(2, 8, VWN_TYPE_F16, scores_f16_2x8)
/* Q8_0 rows are whole 32-value blocks (an even vector count); tiles for heads of 32, 64 and 128
 * only, 2 rows at most: each dequantizing load is several instructions, and the unrolled 16-key
 * trees of more tiles doubled this file's compile time under ASan (the CI's longest step). Other
 * widths take scores_wide, rows beyond the tiles a tile of one: the same bits. */
SCORES_TILE(2, 2, VWN_TYPE_Q8_0, scores_q8_2x2)
SCORES_TILE(2, 4, VWN_TYPE_Q8_0, scores_q8_2x4)
SCORES_TILE(1, 2, VWN_TYPE_Q8_0, scores_q8_1x2)
SCORES_TILE(1, 4, VWN_TYPE_Q8_0, scores_q8_1x4)
SCORES_TILE(1, 8, VWN_TYPE_Q8_0, scores_q8_1x8)
#undef SCORES_TILES
#undef SCORES_TILE

/* [kv_index][nv - 1]: the tiles of 4 rows (NULL past 4 vectors) and of 2, and of 1; NULL where a
 * cache type has no such width (Q8_0: odd vector counts) */
static const scores_tile_fn scores_4rows[3][ROWS_MAX_NV] = {
    {scores_f32_4x1, scores_f32_4x2, scores_f32_4x3, scores_f32_4x4, NULL, NULL, NULL, NULL},
    {scores_f16_4x1, scores_f16_4x2, scores_f16_4x3, scores_f16_4x4, NULL, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
static const scores_tile_fn scores_2rows[3][ROWS_MAX_NV] = {
    {scores_f32_2x1, scores_f32_2x2, scores_f32_2x3, scores_f32_2x4, scores_f32_2x5, scores_f32_2x6, scores_f32_2x7,
     scores_f32_2x8},
    {scores_f16_2x1, scores_f16_2x2, scores_f16_2x3, scores_f16_2x4, scores_f16_2x5, scores_f16_2x6, scores_f16_2x7,
     scores_f16_2x8},
    {NULL, scores_q8_2x2, NULL, scores_q8_2x4, NULL, NULL, NULL, NULL}};

static const scores_tile_fn scores_1row[3][ROWS_MAX_NV] = {
    {scores_f32_1x1, scores_f32_1x2, scores_f32_1x3, scores_f32_1x4, scores_f32_1x5, scores_f32_1x6, scores_f32_1x7,
     scores_f32_1x8},
    {scores_f16_1x1, scores_f16_1x2, scores_f16_1x3, scores_f16_1x4, scores_f16_1x5, scores_f16_1x6, scores_f16_1x7,
     scores_f16_1x8},
    {NULL, scores_q8_1x2, NULL, scores_q8_1x4, NULL, NULL, NULL, scores_q8_1x8}};

/* Rows in tiles of 4 (queries up to 4 vectors), 2 (up to 8), then 1; every row of a head wider
 * than 8 vectors by scores_wide. */
void vwn_avx512_attn_scores_rows(float *const *out, const float *const *q, int32_t nr, int32_t kv_type,
                                    const void *K, int64_t ldk, int64_t n_kv, int64_t head_dim, float scale) {
    const int ti = kv_index(kv_type), type = kv_types[ti];
    const int64_t nv = (head_dim + VL - 1) / VL;
    int32_t r = 0;
    if (nv <= ROWS_MAX_NV) {
        const scores_tile_fn t4 = scores_4rows[ti][nv - 1], t2 = scores_2rows[ti][nv - 1], t1 = scores_1row[ti][nv - 1];
        if (t4)
            for (; r + 4 <= nr; r += 4) t4(out + r, q + r, K, ldk, n_kv, head_dim, scale);
        if (t2)
            for (; r + 2 <= nr; r += 2) t2(out + r, q + r, K, ldk, n_kv, head_dim, scale);
        if (t1)
            for (; r < nr; r++) t1(out + r, q + r, K, ldk, n_kv, head_dim, scale);
    }
    for (; r < nr; r++) scores_wide(type, out[r], q[r], K, ldk, n_kv, head_dim, scale);
}

/* One row: a tile of one (measured, one thread, keys in L2, head 32-128: 0.34-0.55x the time of a
 * horizontal sum per key, 56-97 GB/s against 24-40). */
void vwn_avx512_attn_scores(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv,
                               int64_t head_dim, float scale) {
    vwn_avx512_attn_scores_rows(&out, &q, 1, VWN_TYPE_F32, K, ldk, n_kv, head_dim, scale);
}

void vwn_avx512_attn_scores_f16(float *out, const float *q, const uint16_t *K, int64_t ldk, int64_t n_kv,
                                   int64_t head_dim, float scale) {
    vwn_avx512_attn_scores_rows(&out, &q, 1, VWN_TYPE_F16, K, ldk, n_kv, head_dim, scale);
}

void vwn_avx512_attn_scores_q8_0(float *out, const float *q, const vwn_block_q8_0 *K, int64_t ldk, int64_t n_kv,
                                 int64_t head_dim, float scale) {
    vwn_avx512_attn_scores_rows(&out, &q, 1, VWN_TYPE_Q8_0, K, ldk, n_kv, head_dim, scale);
}

/* rt rows' weighted values over columns c0 .. c0 + width of V (nv vectors), each value vector
 * loaded once for the rt rows; every output the same chain over the keys as values_block's. */
INLINE void values_tile(int rt, int nv, int type, float *const *out, const float *const *p, const void *V, int64_t c0,
                        int64_t ldv, int64_t n_kv, int64_t width, bool accumulate) {
    const size_t vrow = kv_row_bytes(type, ldv);
    __m512 acc[4][8];
    __mmask16 m[8];
    for (int v = 0; v < nv; v++) m[v] = width - v * VL >= VL ? (__mmask16)0xffff : tail_mask(width - v * VL);
    for (int r = 0; r < rt; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(m[v], out[r] + c0 + v * VL) : _mm512_setzero_ps();
    for (int64_t j = 0; j < n_kv; j++) {
        const void *row = (const char *)V + (size_t)j * vrow;
        __m512 w[8];
        for (int v = 0; v < nv; v++) w[v] = load_w_tail(type, row, c0 + v * VL, m[v]);
        for (int r = 0; r < rt; r++) {
            const __m512 pj = _mm512_set1_ps(p[r][j]);
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(pj, w[v], acc[r][v]);
        }
    }
    for (int r = 0; r < rt; r++)
        for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(out[r] + c0 + v * VL, m[v], acc[r][v]);
}

typedef void (*values_tile_fn)(float *const *out, const float *const *p, const void *V, int64_t c0, int64_t ldv,
                               int64_t n_kv, int64_t width, bool accumulate);
#define VALUES_TILE(rt, nv, type, name)                                                                          \
    static __attribute__((noinline)) void name(float *const *out, const float *const *p, const void *V, int64_t c0, \
                                               int64_t ldv, int64_t n_kv, int64_t width, bool accumulate) {      \
        values_tile(rt, nv, type, out, p, V, c0, ldv, n_kv, width, accumulate);                                  \
    }
#define VALUES_TILES(nv)                                                   \
    VALUES_TILE(4, nv, VWN_TYPE_F32, values_f32_4x##nv)                    \
    VALUES_TILE(4, nv, VWN_TYPE_F16, values_f16_4x##nv)                    \
    VALUES_TILE(2, nv, VWN_TYPE_F32, values_f32_2x##nv)                    \
    VALUES_TILE(2, nv, VWN_TYPE_F16, values_f16_2x##nv)
VALUES_TILES(1)
VALUES_TILES(2)
VALUES_TILES(3)
VALUES_TILES(4)
VALUES_TILE(2, 5, VWN_TYPE_F32, values_f32_2x5)
VALUES_TILE(2, 5, VWN_TYPE_F16, values_f16_2x5)
VALUES_TILE(2, 6, VWN_TYPE_F32, values_f32_2x6)
VALUES_TILE(2, 6, VWN_TYPE_F16, values_f16_2x6)
VALUES_TILE(2, 7, VWN_TYPE_F32, values_f32_2x7)
VALUES_TILE(2, 7, VWN_TYPE_F16, values_f16_2x7)
VALUES_TILE(2, 8, VWN_TYPE_F32, values_f32_2x8)
VALUES_TILE(2, 8, VWN_TYPE_F16, values_f16_2x8)
VALUES_TILE(2, 2, VWN_TYPE_Q8_0, values_q8_2x2)
VALUES_TILE(2, 4, VWN_TYPE_Q8_0, values_q8_2x4)
VALUES_TILE(2, 6, VWN_TYPE_Q8_0, values_q8_2x6)
VALUES_TILE(2, 8, VWN_TYPE_Q8_0, values_q8_2x8)
#undef VALUES_TILES
#undef VALUES_TILE

static const values_tile_fn values_4rows[3][8] = {
    {values_f32_4x1, values_f32_4x2, values_f32_4x3, values_f32_4x4, NULL, NULL, NULL, NULL},
    {values_f16_4x1, values_f16_4x2, values_f16_4x3, values_f16_4x4, NULL, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
static const values_tile_fn values_2rows[3][8] = {
    {values_f32_2x1, values_f32_2x2, values_f32_2x3, values_f32_2x4, values_f32_2x5, values_f32_2x6, values_f32_2x7,
     values_f32_2x8},
    {values_f16_2x1, values_f16_2x2, values_f16_2x3, values_f16_2x4, values_f16_2x5, values_f16_2x6, values_f16_2x7,
     values_f16_2x8},
    {NULL, values_q8_2x2, NULL, values_q8_2x4, NULL, values_q8_2x6, NULL, values_q8_2x8}};

/* Columns in blocks of 128 lanes (as values_kv); rows in tiles of 4 (blocks up to 4 vectors) or
 * 2 (up to 8); a last odd row alone (values_kv: the same chains). */
void vwn_avx512_attn_values_rows(float *const *out, const float *const *p, int32_t nr, int32_t kv_type,
                                    const void *V, int64_t ldv, int64_t n_kv, int64_t head_dim, bool accumulate) {
    const int ti = kv_index(kv_type), type = kv_types[ti];
    int32_t r0 = 0;
    for (int64_t i = 0; i < head_dim; i += 8 * VL) {
        const int64_t width = head_dim - i < 8 * VL ? head_dim - i : 8 * VL, nv = (width + VL - 1) / VL;
        const values_tile_fn t4 = values_4rows[ti][nv - 1], t2 = values_2rows[ti][nv - 1];
        int32_t r = 0;
        if (t4)
            for (; r + 4 <= nr; r += 4) t4(out + r, p + r, V, i, ldv, n_kv, width, accumulate);
        for (; r + 2 <= nr; r += 2) t2(out + r, p + r, V, i, ldv, n_kv, width, accumulate); /* every width has one */
        r0 = r;
    }
    for (int32_t r = r0; r < nr; r++) values_kv(type, out[r], p[r], V, ldv, n_kv, head_dim, accumulate);
}


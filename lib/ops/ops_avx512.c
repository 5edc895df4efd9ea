/* ops_avx512.c -- the AVX-512 kernels (x86-64: F/BW/VL/DQ, plus VNNI for Q8_0 where present).
 * Compiled with AVX-512 flags, so nothing here may run unless ops.c found the features: all of
 * this file's code stays in this file, reached only through the two tables at the bottom.
 *   vwn_ops_avx512       for AVX-512 F/BW/VL/DQ CPUs; Q8_0 weights use the AVX2 kernel (no VNNI).
 *   vwn_ops_avx512_vnni  adds the VNNI Q8_0 kernel (vpdpbusd).
 * BF16 weights are widened to fp32 by a shift and use FMA, like F16 (vcvtph2ps): AVX512-BF16's
 * vdpbf16ps would round the activations to bf16 (8 bits of mantissa), a relative error ~2^-9 per
 * product, far outside the accuracy the other levels keep, so it is not used.
 *
 * Matmul structure as in ops_avx2.c: one 16-lane fp32 accumulator per (row, token) dot, stepping
 * 16 columns (Q8_0: two 32-value blocks) at a time, summed across lanes at the end in a fixed order,
 * so results do not depend on T, the row range or the thread split.
 *  - T <= 8 (F32: T <= 4; decode, draft verification): one weight row at a time for all T tokens,
 *    so the weights are read once, as one linear stream. On Zen 4 this reaches the single-thread
 *    read bandwidth, while tiles of several interleaved rows (as in ops_avx2.c) measured 1.5-2.5x
 *    slower: short interleaved row streams defeat the hardware prefetcher (software prefetch did
 *    not recover it).
 *  - larger T: a GEMM blocked over tokens (TB), rows (RB) and columns (KC) with RT x TT register
 *    tiles (partial sums between column blocks are the accumulators themselves).
 * Column tails use masked loads (they never touch memory past the row).
 *
 * Q8_0 with VNNI: vpdpbusd multiplies unsigned by signed bytes, so one side is offset by 128
 * (xor 0x80) and the excess is subtracted; the int32 sums of w * x are exact either way. The GEMM
 * offsets x and subtracts 128 * sum(w), computed once per weight block and shared by the tile's
 * tokens; the small-T path offsets w and subtracts 128 * sum(x). */
#include "ops/ops.h"
#include "vwn.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define VL 16       /* floats per vector */
#define KC 512      /* columns per cache block (multiple of 64)  */
#define TB 48       /* tokens per block                          */
#define RB 8        /* rows per block                            */
#define RT 4        /* float GEMM tile: rows                     */
#define TT 6        /*                  tokens                   */
#define MAX_RS RT   /* most rows of a float tile                 */
#define SMALL_T 8   /* T up to this: one row at a time           */
#define SMALL_T_F32 4 /*            (F32 weights: up to this)     */
#define MAX_TS SMALL_T /* most tokens of a float tile             */
#define QRT 4       /* Q8_0 GEMM tile: rows                      */
#define QTT 3       /*                 tokens                    */

#define INLINE static inline __attribute__((always_inline))

/* From ops_avx2.c (plain AVX2 code, fine on every AVX-512 CPU). */
void vwn_avx2_matmul_q8_0(const vwn_mat *W, const void *xq, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1);
void vwn_avx2_quantize_q8_0(const float *x, vwn_block_q8_0 *out, int64_t n);

/* ---- loads ------------------------------------------------------------------------------------ */

INLINE __m512 widen_w(int type, __m256i h) {
    if (type == VWN_TYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16 */
}

INLINE __m512 load_w(int type, const void *row, int64_t c) {
    if (type == VWN_TYPE_F32) return _mm512_loadu_ps((const float *)row + c);
    return widen_w(type, _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
}

/* The first n < 16 elements at column c, the rest zero. */
INLINE __m512 load_w_tail(int type, const void *row, int64_t c, __mmask16 m) {
    if (type == VWN_TYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    return widen_w(type, _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
}

INLINE __mmask16 tail_mask(int64_t n) {
    return (__mmask16)((1u << n) - 1u);
}

/* ---- float weights (F32, F16, BF16) ------------------------------------------------------------ */

/* rt rows x tt tokens over columns [c0, c1) (c1 - c0 a multiple of 16 unless c1 == cols).
 * part: the tile's accumulators between column blocks (row i token j at part[i * TB + j]);
 * first: start from zero, last: reduce into Y. */
INLINE void tile_float(int type, int rt, int tt, const char *w, size_t wstride, const float *x,
                       int64_t ldx, int64_t c0, int64_t c1, __m512 *part, bool first, bool last,
                       float *y, int64_t ldy) {
    __m512 acc[MAX_RS][MAX_TS];
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) acc[i][j] = first ? _mm512_setzero_ps() : part[i * TB + j];
    int64_t c = c0;
    for (; c + VL <= c1; c += VL) {
        __m512 wv[MAX_RS];
        for (int i = 0; i < rt; i++) wv[i] = load_w(type, w + i * wstride, c);
        for (int j = 0; j < tt; j++) {
            __m512 xv = _mm512_loadu_ps(x + j * ldx + c);
            for (int i = 0; i < rt; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (c < c1) {
        const __mmask16 m = tail_mask(c1 - c);
        __m512 wv[MAX_RS];
        for (int i = 0; i < rt; i++) wv[i] = load_w_tail(type, w + i * wstride, c, m);
        for (int j = 0; j < tt; j++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + j * ldx + c);
            for (int i = 0; i < rt; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            if (last) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
            else part[i * TB + j] = acc[i][j];
        }
}

/* Small T (decode and draft verification, memory-bound): one row at a time, whole, for all T
 * tokens -- each weight is loaded (and widened) once, and the weights are read as one linear
 * stream, which the hardware prefetcher follows at full bandwidth (several interleaved row streams
 * measured 1.5-2x slower on Zen 4). Same accumulation per (row, token) as the GEMM below. */
INLINE void small_float(int type, int tt, const vwn_mat *W, const float *X, int64_t ldx, float *Y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    int64_t r = r0;
    for (; r < r1; r++)
        tile_float(type, 1, tt, base + r * W->row_bytes, 0, X, ldx, 0, W->cols, NULL, true, true,
                   Y + r, ldy);
}

INLINE void matmul_float(int type, const vwn_mat *W, const float *X, int64_t ldx, int64_t T,
                         float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t cols = W->cols;

    /* F32 from T = 5 on: the GEMM's 4-row tiles load fewer x vectors per FMA, and at that T
     * the float kernels are compute-bound (measured: T = 8 was 13% faster in the GEMM). */
    switch (type == VWN_TYPE_F32 && T > SMALL_T_F32 ? 0 : T) {
    case 1: small_float(type, 1, W, X, ldx, Y, ldy, r0, r1); return;
    case 2: small_float(type, 2, W, X, ldx, Y, ldy, r0, r1); return;
    case 3: small_float(type, 3, W, X, ldx, Y, ldy, r0, r1); return;
    case 4: small_float(type, 4, W, X, ldx, Y, ldy, r0, r1); return;
    case 5: small_float(type, 5, W, X, ldx, Y, ldy, r0, r1); return;
    case 6: small_float(type, 6, W, X, ldx, Y, ldy, r0, r1); return;
    case 7: small_float(type, 7, W, X, ldx, Y, ldy, r0, r1); return;
    case 8: small_float(type, 8, W, X, ldx, Y, ldy, r0, r1); return;
    default: break;
    }

    __m512 part[RB * TB];
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        const int64_t tb = T - t0 < TB ? T - t0 : TB;
        const float *xb = X + t0 * ldx;
        float *yb = Y + t0 * ldy;
        for (int64_t rb0 = r0; rb0 < r1; rb0 += RB) {
            const int64_t rb1 = rb0 + RB < r1 ? rb0 + RB : r1;
            for (int64_t c0 = 0; c0 < cols; c0 += KC) {
                const int64_t c1 = c0 + KC < cols ? c0 + KC : cols;
                const bool first = c0 == 0, last = c1 == cols;
                for (int64_t r = rb0; r < rb1;) {
                    const int rt = rb1 - r >= RT ? RT : 1;
                    const char *w = base + r * rs;
                    __m512 *pr = part + (r - rb0) * TB;
                    int64_t t = 0;
                    if (rt == RT) {
                        for (; t + TT <= tb; t += TT)
                            tile_float(type, RT, TT, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                        for (; t < tb; t++)
                            tile_float(type, RT, 1, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                    } else {
                        for (; t + TT <= tb; t += TT)
                            tile_float(type, 1, TT, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                        for (; t < tb; t++)
                            tile_float(type, 1, 1, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                    }
                    r += rt;
                }
            }
        }
    }
}

static void matmul_f32(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                       int64_t ldy, int64_t r0, int64_t r1) {
    matmul_float(VWN_TYPE_F32, W, X, ldx, T, Y, ldy, r0, r1);
}
static void matmul_f16(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                       int64_t ldy, int64_t r0, int64_t r1) {
    matmul_float(VWN_TYPE_F16, W, X, ldx, T, Y, ldy, r0, r1);
}
static void matmul_bf16(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    matmul_float(VWN_TYPE_BF16, W, X, ldx, T, Y, ldy, r0, r1);
}

/* ---- Q8_0 weights with VNNI ------------------------------------------------------------------- */

/* Blocks k and k+1 (if two) as one vector: quants in bytes 0..31 and 32..63 (zero if absent),
 * their fp32 scales in lanes 0..7 and 8..15 of *d. */
INLINE __m512i load_pair(const vwn_block_q8_0 *b, bool two, __m512 *d) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)b[0].qs);
    __m256i hi = two ? _mm256_loadu_si256((const __m256i *)b[1].qs) : _mm256_setzero_si256();
    uint32_t dd = (uint32_t)b[0].d | (two ? (uint32_t)b[1].d << 16 : 0u);
    __m128 df = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dd));
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    *d = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(df));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* One step of a Q8_0 GEMM tile: the block pair at k (or the single block, if !two). */
INLINE void q8_step(int rt, int tt, const char *w, size_t wstride, const vwn_block_q8_0 *x,
                    int64_t ldxq, int64_t k, bool two, __m512 acc[QRT][QTT]) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    __m512i wq[QRT], ncorr[QRT];
    __m512 dw[QRT];
    for (int i = 0; i < rt; i++) {
        wq[i] = load_pair((const vwn_block_q8_0 *)(w + i * wstride) + k, two, &dw[i]);
        ncorr[i] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), k80, wq[i]));
    }
    for (int j = 0; j < tt; j++) {
        __m512 dx;
        __m512i xu = _mm512_xor_si512(load_pair(x + j * ldxq + k, two, &dx), k80);
        for (int i = 0; i < rt; i++) {
            __m512 s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(ncorr[i], xu, wq[i]));
            acc[i][j] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw[i], dx), acc[i][j]);
        }
    }
}

/* rt rows x tt tokens over blocks [k0, k1) (k0 even; k1 - k0 even unless k1 is the row end). */
INLINE void tile_q8(int rt, int tt, const char *w, size_t wstride, const vwn_block_q8_0 *x,
                    int64_t ldxq, int64_t k0, int64_t k1, __m512 *part, bool first, bool last,
                    float *y, int64_t ldy) {
    __m512 acc[QRT][QTT];
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) acc[i][j] = first ? _mm512_setzero_ps() : part[i * TB + j];
    int64_t k = k0;
    for (; k + 2 <= k1; k += 2) q8_step(rt, tt, w, wstride, x, ldxq, k, true, acc);
    if (k < k1) q8_step(rt, tt, w, wstride, x, ldxq, k, false, acc);
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            if (last) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
            else part[i * TB + j] = acc[i][j];
        }
}

/* The fp16 scales of the block pair at b (both present) as fp32: d0 in lanes 0..7, d1 in 8..15.
 * Two word broadcasts and a blend: vpermw from one load measured 2x slower on Zen 4, and the
 * scalar way (as load_pair) costs a little more. */
INLINE __m512 pair_scales(const vwn_block_q8_0 *b) {
    return _mm512_cvtph_ps(_mm256_mask_blend_epi16(0xff00, _mm256_set1_epi16((short)b[0].d),
                                                   _mm256_set1_epi16((short)b[1].d)));
}

INLINE __m512i pair_quants(const vwn_block_q8_0 *b) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)b[0].qs);
    __m256i hi = _mm256_loadu_si256((const __m256i *)b[1].qs);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Small T: one Q8_0 row (nb blocks at w) for tt tokens, read once as a linear stream (see
 * small_float). Same sums as q8_step, with the offset on the other side: the weights are made
 * unsigned (w ^ 0x80 = w + 128) and the excess 128 * sum(x) -- which depends only on the
 * activations -- is subtracted; the int32 sum of w * x is the same exact value. This version
 * computes the activation side as it goes; small_q8 normally prepares it once (row_q8_prepared)
 * and uses this one only for rows too long for its stack buffer. */
INLINE void row_q8(int tt, const vwn_block_q8_0 *w, const vwn_block_q8_0 *x, int64_t ldxq,
                   int64_t nb, float *y, int64_t ldy) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    __m512 acc[SMALL_T];
    for (int j = 0; j < tt; j++) acc[j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 2 <= nb; k += 2) {
        const __m512i wu = _mm512_xor_si512(pair_quants(w + k), k80);
        const __m512 dw = pair_scales(w + k);
        for (int j = 0; j < tt; j++) {
            const vwn_block_q8_0 *xb = x + j * ldxq + k;
            const __m512i xv = pair_quants(xb);
            const __m512i excess = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k80, xv);
            const __m512i sum =
                _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, xv), excess);
            const __m512 d = _mm512_mul_ps(dw, pair_scales(xb));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), d, acc[j]);
        }
    }
    if (k < nb) { /* odd block count: the last block alone, as in q8_step */
        __m512 dw, dx;
        const __m512i wu = _mm512_xor_si512(load_pair(w + k, false, &dw), k80);
        for (int j = 0; j < tt; j++) {
            const __m512i xv = load_pair(x + j * ldxq + k, false, &dx);
            const __m512i excess = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k80, xv);
            const __m512i sum =
                _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, xv), excess);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, dx), acc[j]);
        }
    }
    for (int j = 0; j < tt; j++) y[j * ldy] = _mm512_reduce_add_ps(acc[j]);
}

/* The activation side of a small-T Q8_0 step, prepared once per call and shared by all rows: the
 * quants of a block pair as one vector, minus 128 times their sums (the accumulator's start), and
 * the two fp32 scales (lanes 0..7, 8..15). An odd last block is a pair with a zero second half. */
typedef struct {
    __m512i q, ncorr;
    __m512 d;
} q8_prep;

#define PREP_MAX 256 /* block pairs x tokens prepared on the stack (48 KiB); more: unprepared path */

/* As row_q8, with the activations prepared in xp (pair p of token j at xp[j * pairs + p]; this
 * token-major order measured faster than pair-major for T = 2). */
INLINE void row_q8_prepared(int tt, const vwn_block_q8_0 *w, const q8_prep *xp, int64_t nb,
                            float *y, int64_t ldy) {
    const int64_t pairs = (nb + 1) / 2;
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    __m512 acc[SMALL_T];
    for (int j = 0; j < tt; j++) acc[j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 2 <= nb; k += 2, xp++) {
        const __m512i wu = _mm512_xor_si512(pair_quants(w + k), k80);
        const __m512 dw = pair_scales(w + k);
        for (int j = 0; j < tt; j++) {
            const q8_prep *e = &xp[j * pairs];
            const __m512i sum = _mm512_dpbusd_epi32(e->ncorr, wu, e->q);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, e->d), acc[j]);
        }
    }
    if (k < nb) {
        __m512 dw;
        const __m512i wu = _mm512_xor_si512(load_pair(w + k, false, &dw), k80);
        for (int j = 0; j < tt; j++) {
            const q8_prep *e = &xp[j * pairs];
            const __m512i sum = _mm512_dpbusd_epi32(e->ncorr, wu, e->q);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, e->d), acc[j]);
        }
    }
    for (int j = 0; j < tt; j++) y[j * ldy] = _mm512_reduce_add_ps(acc[j]);
}

INLINE void small_q8(int tt, const vwn_mat *W, const vwn_block_q8_0 *xq, float *Y, int64_t ldy,
                     int64_t r0, int64_t r1) {
    const int64_t nb = W->cols / VWN_QK8_0, pairs = (nb + 1) / 2;
    const char *base = W->data;
    if (pairs * tt > PREP_MAX) {
        for (int64_t r = r0; r < r1; r++)
            row_q8(tt, (const vwn_block_q8_0 *)(base + r * W->row_bytes), xq, nb, nb, Y + r, ldy);
        return;
    }
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    q8_prep xp[PREP_MAX];
    for (int64_t p = 0; p < pairs; p++)
        for (int j = 0; j < tt; j++) {
            q8_prep *e = &xp[j * pairs + p];
            e->q = load_pair(xq + j * nb + 2 * p, 2 * p + 1 < nb, &e->d);
            e->ncorr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), k80, e->q));
        }
    for (int64_t r = r0; r < r1; r++)
        row_q8_prepared(tt, (const vwn_block_q8_0 *)(base + r * W->row_bytes), xp, nb, Y + r, ldy);
}

static void matmul_q8_0_vnni(const vwn_mat *W, const void *xqv, int64_t T, float *Y, int64_t ldy,
                             int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t nb = W->cols / VWN_QK8_0;
    const vwn_block_q8_0 *xq = xqv;

    switch (T) {
    case 1: small_q8(1, W, xq, Y, ldy, r0, r1); return;
    case 2: small_q8(2, W, xq, Y, ldy, r0, r1); return;
    case 3: small_q8(3, W, xq, Y, ldy, r0, r1); return;
    case 4: small_q8(4, W, xq, Y, ldy, r0, r1); return;
    case 5: small_q8(5, W, xq, Y, ldy, r0, r1); return;
    case 6: small_q8(6, W, xq, Y, ldy, r0, r1); return;
    case 7: small_q8(7, W, xq, Y, ldy, r0, r1); return;
    case 8: small_q8(8, W, xq, Y, ldy, r0, r1); return;
    default: break;
    }

    const int64_t kcb = KC / VWN_QK8_0;
    __m512 part[RB * TB];
    for (int64_t t0 = 0; t0 < T; t0 += TB) {
        const int64_t tb = T - t0 < TB ? T - t0 : TB;
        const vwn_block_q8_0 *xb = xq + t0 * nb;
        float *yb = Y + t0 * ldy;
        for (int64_t rb0 = r0; rb0 < r1; rb0 += RB) {
            const int64_t rb1 = rb0 + RB < r1 ? rb0 + RB : r1;
            for (int64_t k0 = 0; k0 < nb; k0 += kcb) {
                const int64_t k1 = k0 + kcb < nb ? k0 + kcb : nb;
                const bool first = k0 == 0, last = k1 == nb;
                for (int64_t r = rb0; r < rb1;) {
                    const int rt = rb1 - r >= QRT ? QRT : 1;
                    const char *w = base + r * rs;
                    __m512 *pr = part + (r - rb0) * TB;
                    int64_t t = 0;
                    if (rt == QRT) {
                        for (; t + QTT <= tb; t += QTT)
                            tile_q8(QRT, QTT, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy);
                        for (; t < tb; t++)
                            tile_q8(QRT, 1, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy);
                    } else {
                        for (; t + QTT <= tb; t += QTT)
                            tile_q8(1, QTT, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy);
                        for (; t < tb; t++)
                            tile_q8(1, 1, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy);
                    }
                    r += rt;
                }
            }
        }
    }
}

static void matmul_avx512(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T,
                          float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    switch (W->type) {
    case VWN_TYPE_F32: matmul_f32(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_F16: matmul_f16(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_BF16: matmul_bf16(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q8_0: vwn_avx2_matmul_q8_0(W, xq, T, Y, ldy, r0, r1); break;
    default: break;
    }
}

static void matmul_avx512_vnni(const vwn_mat *W, const float *X, int64_t ldx, const void *xq,
                               int64_t T, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    if (W->type == VWN_TYPE_Q8_0) matmul_q8_0_vnni(W, xq, T, Y, ldy, r0, r1);
    else matmul_avx512(W, X, ldx, xq, T, Y, ldy, r0, r1);
}

/* ---- vector helpers (masked tails) ------------------------------------------------------------- */

static float dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + VL), _mm512_loadu_ps(b + i + VL), acc1);
    }
    for (; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float sum_sq_avx512(const float *x, int64_t n) {
    return dot_avx512(x, x, n);
}

static void axpy_avx512(float *y, float a, const float *x, int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static void scale_avx512(float *y, float a, int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void rmsnorm_avx512(float *out, const float *x, const float *gain, int64_t n, float eps) {
    const float inv = 1.0f / sqrtf(sum_sq_avx512(x, n) / (float)n + eps);
    const __m512 iv = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), iv);
        if (gain) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, gain + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* exp(x): as exp_avx2 in ops_avx2.c (Cephes polynomial, about 1 ulp). */
static inline __m512 exp_avx512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.7228f), lo = _mm512_set1_ps(-87.3365f);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i ni = _mm512_cvtps_epi32(n);
    __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
    p = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    p = _mm512_mask_mov_ps(p, over, _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(p, under, _mm512_setzero_ps());
}

static void silu_mul_avx512(float *out, const float *gate, const float *up, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
    }
}

static void attn_scores_avx512(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv,
                               int64_t head_dim, float scale) {
    for (int64_t j = 0; j < n_kv; j++) out[j] = scale * dot_avx512(q, K + j * ldk, head_dim);
}

static void attn_values_avx512(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv,
                               int64_t head_dim) {
    for (int64_t i = 0; i < head_dim; i += 2 * VL) { /* 32 output lanes in registers over all keys */
        const __mmask16 m0 = head_dim - i >= VL ? (__mmask16)0xffff : tail_mask(head_dim - i);
        const __mmask16 m1 = head_dim - i >= 2 * VL ? (__mmask16)0xffff
                           : head_dim - i > VL ? tail_mask(head_dim - i - VL) : (__mmask16)0;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (int64_t j = 0; j < n_kv; j++) {
            __m512 pj = _mm512_set1_ps(p[j]);
            a0 = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m0, V + j * ldv + i), a0);
            a1 = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m1, V + j * ldv + i + VL), a1);
        }
        _mm512_mask_storeu_ps(out + i, m0, a0);
        _mm512_mask_storeu_ps(out + i + VL, m1, a1);
    }
}

/* ---- mix: 4 outputs x nv vectors of accumulators, B rows broadcast-multiplied (ops.h) ---------- */

INLINE void mix_block(int nv, float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai,
                      const float *B, int64_t ldb, int64_t no, int64_t n_in, __mmask16 last,
                      bool accumulate) {
    __m512 acc[4][6];
    for (int o = 0; o < 4; o++)
        for (int v = 0; v < nv; v++) {
            const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
            acc[o][v] = (accumulate && o < no) ? _mm512_maskz_loadu_ps(m, out + o * ldo + v * VL)
                                              : _mm512_setzero_ps();
        }
    for (int64_t i = 0; i < n_in; i++) {
        __m512 b[6];
        for (int v = 0; v < nv; v++)
            b[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xffff, B + i * ldb + v * VL);
        for (int o = 0; o < 4; o++) {
            if (o >= no) break;
            const __m512 a = _mm512_set1_ps(A[o * ao + i * ai]);
            for (int v = 0; v < nv; v++) acc[o][v] = _mm512_fmadd_ps(a, b[v], acc[o][v]);
        }
    }
    for (int o = 0; o < no; o++)
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(out + o * ldo + v * VL, v == nv - 1 ? last : (__mmask16)0xffff, acc[o][v]);
}

static void mix_avx512(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai, const float *B,
                       int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols, bool accumulate) {
    for (int64_t c0 = 0; c0 < n_cols; c0 += 6 * VL) {
        const int64_t nc = n_cols - c0 < 6 * VL ? n_cols - c0 : 6 * VL;
        const int nv = (int)((nc + VL - 1) / VL);
        const __mmask16 last = tail_mask(nc - (int64_t)(nv - 1) * VL);
        for (int64_t o0 = 0; o0 < n_out; o0 += 4) {
            const int64_t no = n_out - o0 < 4 ? n_out - o0 : 4;
            float *y = out + o0 * ldo + c0;
            const float *a = A + o0 * ao;
            const float *b = B + c0;
            switch (nv) {
            case 1: mix_block(1, y, ldo, a, ao, ai, b, ldb, no, n_in, last, accumulate); break;
            case 2: mix_block(2, y, ldo, a, ao, ai, b, ldb, no, n_in, last, accumulate); break;
            case 3: mix_block(3, y, ldo, a, ao, ai, b, ldb, no, n_in, last, accumulate); break;
            case 4: mix_block(4, y, ldo, a, ao, ai, b, ldb, no, n_in, last, accumulate); break;
            case 5: mix_block(5, y, ldo, a, ao, ai, b, ldb, no, n_in, last, accumulate); break;
            default: mix_block(6, y, ldo, a, ao, ai, b, ldb, no, n_in, last, accumulate); break;
            }
        }
    }
}

#define AVX512_TABLE(ident, matmul_fn)                 \
    const vwn_ops ident = {                            \
        .name = "avx512",                              \
        .level = VWN_SIMD_AVX512,                      \
        .matmul = matmul_fn,                           \
        .quantize_q8_0 = vwn_avx2_quantize_q8_0,       \
        .dot = dot_avx512,                             \
        .axpy = axpy_avx512,                           \
        .scale = scale_avx512,                         \
        .sum_sq = sum_sq_avx512,                       \
        .rmsnorm = rmsnorm_avx512,                     \
        .silu_mul = silu_mul_avx512,                   \
        .attn_scores = attn_scores_avx512,             \
        .attn_values = attn_values_avx512,             \
        .mix = mix_avx512,                             \
    }

AVX512_TABLE(vwn_ops_avx512, matmul_avx512);
AVX512_TABLE(vwn_ops_avx512_vnni, matmul_avx512_vnni);

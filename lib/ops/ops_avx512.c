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
 * so results do not depend on T, the row range or the thread split. T = 1 streams RD rows at once;
 * T > 1 is a GEMM blocked over tokens (TB), rows (RB) and columns (KC) with RT x TT register tiles.
 * Column tails use masked loads (they never touch memory past the row).
 *
 * Q8_0 with VNNI: vpdpbusd multiplies unsigned by signed bytes. x is made unsigned as x + 128
 * (xor 0x80) and the excess 128 * sum(w) -- computed once per weight block with another vpdpbusd --
 * is subtracted by starting the accumulation from its negation. Sums stay exact int32. */
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
#ifndef SMALL_RT1
#define SMALL_RT1 8
#endif
#define SMALL_RT1_ /* small-T float tiles: rows for T = 1        */
#define SMALL_RT2 8 /*                      rows for T = 2        */
#ifndef PF_ROWS
#define PF_ROWS 8
#endif
#define PF_ROWS_   /* small-T float: prefetch distance in rows  */
#define MAX_RS 8    /* most rows of a float tile                 */
#define MAX_TS 8    /* most tokens of a float tile               */
#define QRT 4       /* Q8_0 GEMM tile: rows                      */
#define QTT 3       /*                 tokens                    */
#define QRD 4       /* Q8_0 decode tile: rows                    */
#define QMAX_R (QRT > QRD ? QRT : QRD)

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
 * first: start from zero, last: reduce into Y. n_pf: rows after the tile to prefetch as it goes,
 * one cache line per row per step (small T: the tile streams its rows from memory once, and
 * many interleaved short row streams defeat the hardware prefetcher). */
INLINE void tile_float(int type, int rt, int tt, const char *w, size_t wstride, const float *x,
                       int64_t ldx, int64_t c0, int64_t c1, __m512 *part, bool first, bool last,
                       float *y, int64_t ldy, int n_pf) {
    const int64_t esz = type == VWN_TYPE_F32 ? 4 : 2;
    __m512 acc[MAX_RS][MAX_TS];
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) acc[i][j] = first ? _mm512_setzero_ps() : part[i * TB + j];
    int64_t c = c0;
    for (; c + VL <= c1; c += VL) {
        __m512 wv[MAX_RS];
        for (int i = 0; i < n_pf; i++)
            _mm_prefetch(w + (PF_ROWS + i) * wstride + c * esz, _MM_HINT_T0);
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

/* Small T (decode and draft verification, memory-bound): tiles of rt rows x all T tokens over the
 * whole row, so each weight is loaded (and widened) once for all tokens; rows after the tile are
 * prefetched PF_ROWS ahead. Same accumulation per (row, token) as the GEMM below. */
INLINE void small_float(int type, int rt, int tt, const vwn_mat *W, const float *X, int64_t ldx,
                        float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t cols = W->cols;
    int64_t r = r0;
    for (; r + rt <= r1; r += rt) {
        const int64_t left = W->rows - (r + PF_ROWS);
        const int n_pf = left < 0 ? 0 : left < rt ? (int)left : rt;
        tile_float(type, rt, tt, base + r * rs, rs, X, ldx, 0, cols, NULL, true, true, Y + r, ldy,
                   n_pf);
    }
    for (; r < r1; r++)
        tile_float(type, 1, tt, base + r * rs, rs, X, ldx, 0, cols, NULL, true, true, Y + r, ldy, 0);
}

INLINE void matmul_float(int type, const vwn_mat *W, const float *X, int64_t ldx, int64_t T,
                         float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t cols = W->cols;

    switch (T) {
    case 1: small_float(type, SMALL_RT1, 1, W, X, ldx, Y, ldy, r0, r1); return;
    case 2: small_float(type, SMALL_RT2, 2, W, X, ldx, Y, ldy, r0, r1); return;
    case 3: small_float(type, 6, 3, W, X, ldx, Y, ldy, r0, r1); return;
    case 4: small_float(type, 4, 4, W, X, ldx, Y, ldy, r0, r1); return;
    case 5: small_float(type, 4, 5, W, X, ldx, Y, ldy, r0, r1); return;
    case 6: small_float(type, 4, 6, W, X, ldx, Y, ldy, r0, r1); return;
    case 7: small_float(type, 3, 7, W, X, ldx, Y, ldy, r0, r1); return;
    case 8: small_float(type, 3, 8, W, X, ldx, Y, ldy, r0, r1); return;
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
                                       first, last, yb + t * ldy + r, ldy, 0);
                        for (; t < tb; t++)
                            tile_float(type, RT, 1, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy, 0);
                    } else {
                        for (; t + TT <= tb; t += TT)
                            tile_float(type, 1, TT, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy, 0);
                        for (; t < tb; t++)
                            tile_float(type, 1, 1, w, rs, xb + t * ldx, ldx, c0, c1, pr + t,
                                       first, last, yb + t * ldy + r, ldy, 0);
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

/* One step of a Q8_0 tile: the block pair at k (or the single block, if !two). */
INLINE void q8_step(int rt, int tt, const char *w, size_t wstride, const vwn_block_q8_0 *x,
                    int64_t ldxq, int64_t k, bool two, __m512 acc[QMAX_R][QTT], int64_t n_pf) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    __m512i wq[QMAX_R], ncorr[QMAX_R];
    __m512 dw[QMAX_R];
    for (int i = 0; i < rt; i++)
        if (i < n_pf) {
            const char *p = (const char *)((const vwn_block_q8_0 *)(w + (rt + i) * wstride) + k);
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p + 64, _MM_HINT_T0);
        }
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

/* rt rows x tt tokens over blocks [k0, k1) (k0 even; k1 - k0 even unless k1 is the row end).
 * n_pf: rows after the tile to prefetch as it goes (decode: Q8_0 rows are short, and several
 * interleaved short streams defeat the hardware prefetcher). */
INLINE void tile_q8(int rt, int tt, const char *w, size_t wstride, const vwn_block_q8_0 *x,
                    int64_t ldxq, int64_t k0, int64_t k1, __m512 *part, bool first, bool last,
                    float *y, int64_t ldy, int64_t n_pf) {
    __m512 acc[QMAX_R][QTT];
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) acc[i][j] = first ? _mm512_setzero_ps() : part[i * TB + j];
    int64_t k = k0;
    for (; k + 2 <= k1; k += 2) q8_step(rt, tt, w, wstride, x, ldxq, k, true, acc, n_pf);
    if (k < k1) q8_step(rt, tt, w, wstride, x, ldxq, k, false, acc, n_pf);
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            if (last) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
            else part[i * TB + j] = acc[i][j];
        }
}

static void matmul_q8_0_vnni(const vwn_mat *W, const void *xqv, int64_t T, float *Y, int64_t ldy,
                             int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t nb = W->cols / VWN_QK8_0;
    const vwn_block_q8_0 *xq = xqv;

    if (T == 1) {
        int64_t r = r0;
        for (; r + QRD <= r1; r += QRD) {
            const int64_t n_pf = W->rows - (r + QRD) < QRD ? W->rows - (r + QRD) : QRD;
            tile_q8(QRD, 1, base + r * rs, rs, xq, nb, 0, nb, NULL, true, true, Y + r, ldy, n_pf);
        }
        for (; r < r1; r++)
            tile_q8(1, 1, base + r * rs, rs, xq, nb, 0, nb, NULL, true, true, Y + r, ldy, 0);
        return;
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
                                    yb + t * ldy + r, ldy, 0);
                        for (; t < tb; t++)
                            tile_q8(QRT, 1, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy, 0);
                    } else {
                        for (; t + QTT <= tb; t += QTT)
                            tile_q8(1, QTT, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy, 0);
                        for (; t < tb; t++)
                            tile_q8(1, 1, w, rs, xb + t * nb, nb, k0, k1, pr + t, first, last,
                                    yb + t * ldy + r, ldy, 0);
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
    }

AVX512_TABLE(vwn_ops_avx512, matmul_avx512);
AVX512_TABLE(vwn_ops_avx512_vnni, matmul_avx512_vnni);

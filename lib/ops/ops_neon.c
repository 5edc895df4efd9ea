/* ops_neon.c -- the AArch64 NEON kernels (NEON is part of every AArch64 CPU; the int8 dot product
 * instruction is used when the compiler targets it, i.e. -march=armv8.2-a+dotprod or later).
 *
 * Matmul structure as in ops_avx2.c: one 4-lane fp32 accumulator per (row, token) dot, stepping 4
 * columns (Q8_0, Q4_0: one 32-value block) at a time, summed across lanes at the end in a fixed
 * order, so results do not depend on T, the row range or the thread split. T = 1 streams RD rows
 * (quantized weights: QRD) at once; T > 1 is a GEMM blocked over tokens (TB), rows (RB) and
 * columns (KC) with RT x TT register tiles (32 vector registers: 4 x 6 accumulators). F16 weights
 * widen with fcvtl, BF16 with a shift; Q4_0 nibbles are split and made signed (minus 8) once per
 * weight block and then dotted like Q8_0 quants. */
#include "ops/ops.h"
#include "vwn.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define VL 4        /* floats per vector */
#define KC 512      /* columns per cache block (multiple of 32)  */
#define TB 48       /* tokens per block                          */
#define RB 8        /* rows per block                            */
#define RT 4        /* float GEMM tile: rows                     */
#define TT 6        /*                  tokens                   */
#define RD 8        /* float decode tile: rows                   */
#define QRT 4       /* Q8_0 GEMM tile: rows                      */
#define QTT 4       /*                 tokens                    */
#define QRD 4       /* Q8_0 decode tile: rows                    */

#define INLINE static inline __attribute__((always_inline))

/* ---- loads -------------------------------------------------------------------------------------- */

INLINE float fp16_scale(uint16_t d) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(d))), 0);
}

/* 4 values of a row from column c (a multiple of 4). A Q8_0 row (a KV cache's, ops.h) is blocks of
 * 32: 4 quants of block c / 32 widened to int32 and converted (exact), times the block's scale (the
 * product exact too: 8 x 11 significant bits), the bits of the row dequantized. */
INLINE float32x4_t load_w(int type, const void *row, int64_t c) {
    if (type == VWN_TYPE_F32) return vld1q_f32((const float *)row + c);
    if (type == VWN_TYPE_Q8_0) {
        const vwn_block_q8_0 *b = (const vwn_block_q8_0 *)row + c / VWN_QK8_0;
        int32_t q4;
        memcpy(&q4, b->qs + c % VWN_QK8_0, sizeof q4);
        const int16x8_t q = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(q4)));
        return vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), fp16_scale(b->d));
    }
    uint16x4_t h = vld1_u16((const uint16_t *)row + c);
    if (type == VWN_TYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); /* bf16 */
}

INLINE float32x4_t load_w_tail(int type, const void *row, int64_t c, int64_t n) {
    if (type == VWN_TYPE_F32) {
        float buf[VL] = {0};
        memcpy(buf, (const float *)row + c, (size_t)n * sizeof(float));
        return vld1q_f32(buf);
    }
    if (type == VWN_TYPE_Q8_0) { /* never reached by the attention kernels (head_dim % 32 == 0) */
        const vwn_block_q8_0 *b = (const vwn_block_q8_0 *)row + c / VWN_QK8_0;
        vwn_block_q8_0 buf = {.d = b->d};
        memcpy(buf.qs, b->qs + c % VWN_QK8_0, (size_t)n);
        return load_w(type, &buf, 0);
    }
    uint16_t buf[VL] = {0};
    memcpy(buf, (const uint16_t *)row + c, (size_t)n * sizeof(uint16_t));
    return load_w(type, buf, 0);
}

INLINE float32x4_t load_x_tail(const float *x, int64_t n) {
    float buf[VL] = {0};
    memcpy(buf, x, (size_t)n * sizeof(float));
    return vld1q_f32(buf);
}

/* ---- float weights (F32, F16, BF16) ------------------------------------------------------------ */

INLINE void tile_float(int type, int rt, int tt, const char *w, size_t wstride, const float *x,
                       int64_t ldx, int64_t c0, int64_t c1, float32x4_t *part, bool first,
                       bool last, float *y, int64_t ldy) {
    float32x4_t acc[RD][TT];
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) acc[i][j] = first ? vdupq_n_f32(0.0f) : part[i * TB + j];
    int64_t c = c0;
    for (; c + VL <= c1; c += VL) {
        float32x4_t wv[RD];
        for (int i = 0; i < rt; i++) wv[i] = load_w(type, w + i * wstride, c);
        for (int j = 0; j < tt; j++) {
            float32x4_t xv = vld1q_f32(x + j * ldx + c);
            for (int i = 0; i < rt; i++) acc[i][j] = vfmaq_f32(acc[i][j], wv[i], xv);
        }
    }
    if (c < c1) {
        float32x4_t wv[RD];
        for (int i = 0; i < rt; i++) wv[i] = load_w_tail(type, w + i * wstride, c, c1 - c);
        for (int j = 0; j < tt; j++) {
            float32x4_t xv = load_x_tail(x + j * ldx + c, c1 - c);
            for (int i = 0; i < rt; i++) acc[i][j] = vfmaq_f32(acc[i][j], wv[i], xv);
        }
    }
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            if (last) y[j * ldy + i] = vaddvq_f32(acc[i][j]);
            else part[i * TB + j] = acc[i][j];
        }
}

#define GEMM_VEC float32x4_t
#include "ops/gemm_blocked.h"
#undef GEMM_VEC

INLINE void matmul_float(int type, const vwn_mat *W, const float *X, int64_t ldx, int64_t T,
                         float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t cols = W->cols;

    if (T == 1) {
        int64_t r = r0;
        for (; r + RD <= r1; r += RD)
            tile_float(type, RD, 1, base + r * rs, rs, X, ldx, 0, cols, NULL, true, true, Y + r, ldy);
        for (; r < r1; r++)
            tile_float(type, 1, 1, base + r * rs, rs, X, ldx, 0, cols, NULL, true, true, Y + r, ldy);
        return;
    }

    gemm_float(type, W, X, ldx, T, Y, ldy, r0, r1);
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

/* ---- Q8_0 and Q4_0 weights ---------------------------------------------------------------------- */

/* int32 partial sums (4 lanes) of one block: 32 int8 products, exact. */
INLINE int32x4_t block_dot(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
    int16x8_t p1 = vmull_s8(vget_high_s8(w0), vget_high_s8(x0));
    int16x8_t p2 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    int16x8_t p3 = vmull_s8(vget_high_s8(w1), vget_high_s8(x1));
    int32x4_t s = vpaddlq_s16(p0);
    s = vpadalq_s16(s, p1);
    s = vpadalq_s16(s, p2);
    return vpadalq_s16(s, p3);
#endif
}

/* The quants of block k of a weight row as two signed vectors (values 0..15 and 16..31) and its
 * scale. Q4_0: the low nibbles hold the first 16 values, the high ones the rest; minus 8 they are
 * the signed values (-8..7), paid once per weight block and shared by the tile's tokens. */
INLINE void load_wblock(int type, const char *row, int64_t k, int8x16_t *w0, int8x16_t *w1,
                        float *d) {
    if (type == VWN_TYPE_Q8_0) {
        const vwn_block_q8_0 *b = (const vwn_block_q8_0 *)row + k;
        *w0 = vld1q_s8(b->qs);
        *w1 = vld1q_s8(b->qs + 16);
        *d = fp16_scale(b->d);
    } else {
        const vwn_block_q4_0 *b = (const vwn_block_q4_0 *)row + k;
        const uint8x16_t q = vld1q_u8(b->qs), eight = vdupq_n_u8(8);
        *w0 = vreinterpretq_s8_u8(vsubq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), eight));
        *w1 = vreinterpretq_s8_u8(vsubq_u8(vshrq_n_u8(q, 4), eight));
        *d = fp16_scale(b->d);
    }
}

/* rt rows x tt tokens of Q8_0 or Q4_0 weights over blocks [k0, k1), one block per step: each weight
 * block is loaded (and unpacked) once for the tile's tokens, each activation block once for its
 * rows. part, first, last: as tile_float. */
INLINE void tile_quant(int type, int rt, int tt, const char *w, size_t wstride,
                       const vwn_block_q8_0 *x, int64_t ldxq, int64_t k0, int64_t k1,
                       float32x4_t *part, bool first, bool last, float *y, int64_t ldy) {
    float32x4_t acc[QRT > QRD ? QRT : QRD][QTT];
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) acc[i][j] = first ? vdupq_n_f32(0.0f) : part[i * TB + j];
    for (int64_t k = k0; k < k1; k++) {
        int8x16_t w0[QRT > QRD ? QRT : QRD], w1[QRT > QRD ? QRT : QRD];
        float dw[QRT > QRD ? QRT : QRD];
        for (int i = 0; i < rt; i++) load_wblock(type, w + i * wstride, k, &w0[i], &w1[i], &dw[i]);
        for (int j = 0; j < tt; j++) {
            const vwn_block_q8_0 *bx = x + j * ldxq + k;
            int8x16_t x0 = vld1q_s8(bx->qs), x1 = vld1q_s8(bx->qs + 16);
            float dx = fp16_scale(bx->d);
            for (int i = 0; i < rt; i++) {
                float32x4_t s = vcvtq_f32_s32(block_dot(w0[i], w1[i], x0, x1));
                acc[i][j] = vfmaq_f32(acc[i][j], s, vdupq_n_f32(dw[i] * dx));
            }
        }
    }
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            if (last) y[j * ldy + i] = vaddvq_f32(acc[i][j]);
            else part[i * TB + j] = acc[i][j];
        }
}

INLINE void matmul_quant(int type, const vwn_mat *W, const void *xqv, int64_t T, float *Y,
                         int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t nb = W->cols / VWN_QK8_0;
    const vwn_block_q8_0 *xq = xqv;

    if (T == 1) {
        int64_t r = r0;
        for (; r + QRD <= r1; r += QRD)
            tile_quant(type, QRD, 1, base + r * rs, rs, xq, nb, 0, nb, NULL, true, true, Y + r,
                       ldy);
        for (; r < r1; r++)
            tile_quant(type, 1, 1, base + r * rs, rs, xq, nb, 0, nb, NULL, true, true, Y + r, ldy);
        return;
    }

    const int64_t kcb = KC / VWN_QK8_0;
    float32x4_t part[RB * TB];
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
                    float32x4_t *pr = part + (r - rb0) * TB;
                    int64_t t = 0;
                    if (rt == QRT) {
                        for (; t + QTT <= tb; t += QTT)
                            tile_quant(type, QRT, QTT, w, rs, xb + t * nb, nb, k0, k1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                        for (; t < tb; t++)
                            tile_quant(type, QRT, 1, w, rs, xb + t * nb, nb, k0, k1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                    } else {
                        for (; t + QTT <= tb; t += QTT)
                            tile_quant(type, 1, QTT, w, rs, xb + t * nb, nb, k0, k1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                        for (; t < tb; t++)
                            tile_quant(type, 1, 1, w, rs, xb + t * nb, nb, k0, k1, pr + t,
                                       first, last, yb + t * ldy + r, ldy);
                    }
                    r += rt;
                }
            }
        }
    }
}

static void matmul_q8_0(const vwn_mat *W, const void *xq, int64_t T, float *Y, int64_t ldy,
                        int64_t r0, int64_t r1) {
    matmul_quant(VWN_TYPE_Q8_0, W, xq, T, Y, ldy, r0, r1);
}
static void matmul_q4_0(const vwn_mat *W, const void *xq, int64_t T, float *Y, int64_t ldy,
                        int64_t r0, int64_t r1) {
    matmul_quant(VWN_TYPE_Q4_0, W, xq, T, Y, ldy, r0, r1);
}

static void matmul_neon(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T,
                        float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    switch (W->type) {
    case VWN_TYPE_F32: matmul_f32(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_F16: matmul_f16(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_BF16: matmul_bf16(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q8_0: matmul_q8_0(W, xq, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q4_0: matmul_q4_0(W, xq, T, Y, ldy, r0, r1); break;
    default: break;
    }
}

/* ---- Q8_0 quantization of activations (same bytes as the scalar level) ---------------------- */

static void quantize_q8_0_neon(const float *x, vwn_block_q8_0 *out, int64_t n) {
    for (int64_t b = 0; b < n / VWN_QK8_0; b++) {
        const float *xb = x + b * VWN_QK8_0;
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(xb + 4 * i);
            m = vmaxq_f32(m, vabsq_f32(v[i]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = vwn_fp32_to_fp16(d);
        int16x8_t h[4];
        for (int i = 0; i < 4; i++) {
            /* vcvtnq rounds to nearest even, like lrintf in the scalar level */
            int32x4_t a = vcvtnq_s32_f32(vmulq_n_f32(v[2 * i], id));
            int32x4_t c = vcvtnq_s32_f32(vmulq_n_f32(v[2 * i + 1], id));
            h[i] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(c));
        }
        int8x16_t q0 = vmaxq_s8(vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])), vdupq_n_s8(-127));
        int8x16_t q1 = vmaxq_s8(vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3])), vdupq_n_s8(-127));
        vst1q_s8(out[b].qs, q0);
        vst1q_s8(out[b].qs + 16, q1);
    }
}

/* ---- vector helpers ---------------------------------------------------------------------------- */

static float dot_neon(const float *a, const float *b, int64_t n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + VL), vld1q_f32(b + i + VL));
    }
    for (; i + VL <= n; i += VL) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    if (i < n) acc1 = vfmaq_f32(acc1, load_x_tail(a + i, n - i), load_x_tail(b + i, n - i));
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

static float sum_sq_neon(const float *x, int64_t n) {
    return dot_neon(x, x, n);
}

static void axpy_neon(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void scale_neon(float *y, float a, int64_t n) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++) y[i] *= a;
}

static void rmsnorm_neon(float *out, const float *x, const float *gain, int64_t n, float eps) {
    const float inv = 1.0f / sqrtf(sum_sq_neon(x, n) / (float)n + eps);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), inv);
        if (gain) v = vmulq_f32(v, vld1q_f32(gain + i));
        vst1q_f32(out + i, v);
    }
    for (; i < n; i++) out[i] = x[i] * inv * (gain ? gain[i] : 1.0f);
}

/* exp(x): as exp_avx2 in ops_avx2.c (Cephes polynomial, about 1 ulp). */
static inline float32x4_t exp_neon(float32x4_t x) {
    const float32x4_t hi = vdupq_n_f32(88.7228f), lo = vdupq_n_f32(-87.3365f);
    uint32x4_t over = vcgtq_f32(x, hi), under = vcltq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    p = vmulq_f32(vmulq_f32(p, s1), s2);
    p = vbslq_f32(over, vdupq_n_f32(INFINITY), p);
    return vbslq_f32(under, vdupq_n_f32(0.0f), p);
}

static void silu_mul_neon(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        float32x4_t g = vld1q_f32(gate + i);
        float32x4_t e = exp_neon(vnegq_f32(g));
        float32x4_t s = vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e));
        vst1q_f32(out + i, vmulq_f32(s, vld1q_f32(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ghc_coef (ops.h): tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)), 4 lanes at a time. */
static void ghc_coef_neon(float *c, const float *c0, const float *scale, int64_t n, float mult) {
    const float32x4_t one = vdupq_n_f32(1.0f), two = vdupq_n_f32(2.0f), cap = vdupq_n_f32(9.0f);
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        float32x4_t x = vmulq_n_f32(vld1q_f32(c + i), mult);
        float32x4_t a = vminq_f32(vabsq_f32(x), cap);
        float32x4_t t = vsubq_f32(one, vdivq_f32(two, vaddq_f32(exp_neon(vaddq_f32(a, a)), one)));
        t = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), vandq_u32(sign, vreinterpretq_u32_f32(x))));
        vst1q_f32(c + i, vfmaq_f32(vld1q_f32(c0 + i), vld1q_f32(scale + i), t));
    }
    for (; i < n; i++) {
        const float x = mult * c[i], a = fabsf(x);
        const float t = a > 9.0f ? 1.0f : 1.0f - 2.0f / (expf(2.0f * a) + 1.0f);
        c[i] = c0[i] + scale[i] * (x < 0 ? -t : t);
    }
}

/* softmax_exp (ops.h): the max and the sum in 4 lanes, the exp as silu_mul's; a scalar tail. */
static float softmax_exp_neon(float *x, int64_t n, float *max_out) {
    float32x4_t mx = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) mx = vmaxq_f32(mx, vld1q_f32(x + i));
    float m = vmaxvq_f32(mx);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (max_out) *max_out = m;
    const float32x4_t vmax = vdupq_n_f32(m);
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (i = 0; i + VL <= n; i += VL) {
        const float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(x + i), vmax));
        vst1q_f32(x + i, e);
        sum = vaddq_f32(sum, e);
    }
    float s = vaddvq_f32(sum);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

/* Keys and values are fp32, fp16 (kv_type F16) or Q8_0 blocks (kv_type Q8_0): `type` is F32, F16
 * or Q8_0, the loads widen or dequantize (load_w), exactly, so every type gives the fp32 bits. */

/* The bytes from one cache row to the next, ld counting values (Q8_0: a multiple of 32). */
INLINE size_t kv_row_bytes(int type, int64_t ld) {
    if (type == VWN_TYPE_Q8_0) return (size_t)(ld / VWN_QK8_0) * sizeof(vwn_block_q8_0);
    return (size_t)ld * (type == VWN_TYPE_F32 ? sizeof(float) : sizeof(uint16_t));
}

/* Value i of a cache row, widened or dequantized. */
INLINE float kv_value(int type, const void *row, int64_t i) {
    if (type == VWN_TYPE_F32) return ((const float *)row)[i];
    if (type == VWN_TYPE_F16) return vwn_fp16_to_fp32(((const uint16_t *)row)[i]);
    const vwn_block_q8_0 *b = (const vwn_block_q8_0 *)row + i / VWN_QK8_0;
    return fp16_scale(b->d) * (float)b->qs[i % VWN_QK8_0];
}

/* A score's lane sum in one fixed tree, (v0 + v1) + (v2 + v3), written out so that the 4-key
 * transposing sum of the row tiles below (vpaddq twice) takes the same pairs. */
INLINE float hsum_tree(float32x4_t v) { return vpadds_f32(vget_low_f32(vpaddq_f32(v, v))); }

INLINE float32x4_t load_x_any(const float *x, int64_t c, int64_t c1) {
    return c + VL <= c1 ? vld1q_f32(x + c) : load_x_tail(x + c, c1 - c);
}
INLINE float32x4_t load_w_any(int type, const void *row, int64_t c, int64_t c1) {
    return c + VL <= c1 ? load_w(type, row, c) : load_w_tail(type, row, c, c1 - c);
}

/* A key's dot with q over n lanes: ceil(n / 4) vectors (the last one zero-padded if n is not a
 * multiple of 4), in pairs on two chains, an odd last one on the first; then the tree. The chains
 * depend on the vector count only, so the row tiles below repeat them exactly. */
INLINE float32x4_t dot_kv_lanes(const float *q, int type, const void *k, int64_t n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    const int64_t nv = (n + VL - 1) / VL;
    int64_t v = 0;
    for (; v + 2 <= nv; v += 2) {
        const int64_t i = v * VL;
        acc0 = vfmaq_f32(acc0, vld1q_f32(q + i), load_w(type, k, i));
        acc1 = vfmaq_f32(acc1, load_x_any(q, i + VL, n), load_w_any(type, k, i + VL, n));
    }
    if (v < nv) acc0 = vfmaq_f32(acc0, load_x_any(q, v * VL, n), load_w_any(type, k, v * VL, n));
    return vaddq_f32(acc0, acc1);
}
INLINE float dot_kv(const float *q, int type, const void *k, int64_t n) { return hsum_tree(dot_kv_lanes(q, type, k, n)); }

static void attn_scores_rows_neon(float *const *out, const float *const *q, int32_t nr, int32_t kv_type, const void *K,
                                  int64_t ldk, int64_t n_kv, int64_t head_dim, float scale);

/* One row's scores are the rows kernel's (below) with a tile of one row: 4 keys summed at once by
 * the pairwise adds, the same bits as hsum_tree per key. */
static void attn_scores_neon(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv,
                             int64_t head_dim, float scale) {
    attn_scores_rows_neon(&out, &q, 1, VWN_TYPE_F32, K, ldk, n_kv, head_dim, scale);
}

static void attn_scores_f16_neon(float *out, const float *q, const uint16_t *K, int64_t ldk, int64_t n_kv,
                                 int64_t head_dim, float scale) {
    attn_scores_rows_neon(&out, &q, 1, VWN_TYPE_F16, K, ldk, n_kv, head_dim, scale);
}

static void attn_scores_q8_0_neon(float *out, const float *q, const vwn_block_q8_0 *K, int64_t ldk, int64_t n_kv,
                                  int64_t head_dim, float scale) {
    attn_scores_rows_neon(&out, &q, 1, VWN_TYPE_Q8_0, K, ldk, n_kv, head_dim, scale);
}

/* ---- attention over several query rows at once (ops.h: attn_scores_rows) --------------------------
 * As on x86 (ops_avx512.c): the queries of a tile stay in registers -- 2 rows of up to 8 vectors
 * (head_dim 32) or 1 of up to 16 (64) of the 32 -- each key's vectors are loaded once for the
 * tile, and 4 keys' scores are summed at once by two pairwise adds, the pairs of hsum_tree: the
 * bits of attn_scores. (Not measured on ARM hardware: the x86 tiles took 0.49x (AVX-512) and
 * 0.52x (AVX2) the time of a row at a time; docs/performance.md, "Twenty-first session".) A
 * single row (attn_scores) is a tile of one, a row of a head wider than 16 vectors scores_wide.
 * The values stay a row at a time. */
#define ROWS_MAX_NV 16

/* The dots of rt rows (nv query vectors each, the last one of `last` lanes) with key k, before
 * their sum. */
INLINE void key_dots(int rt, int nv, int type, const float32x4_t q[][ROWS_MAX_NV], const void *k, int64_t last,
                     float32x4_t out[]) {
    float32x4_t a0[2], a1[2];
    for (int r = 0; r < rt; r++) a0[r] = a1[r] = vdupq_n_f32(0.0f);
    int v = 0;
    for (; v + 2 <= nv; v += 2) {
        const float32x4_t k0 = load_w(type, k, v * VL);
        const float32x4_t k1 = v + 2 == nv && last < VL ? load_w_tail(type, k, (v + 1) * VL, last) : load_w(type, k, (v + 1) * VL);
        for (int r = 0; r < rt; r++) {
            a0[r] = vfmaq_f32(a0[r], q[r][v], k0);
            a1[r] = vfmaq_f32(a1[r], q[r][v + 1], k1);
        }
    }
    if (v < nv) {
        const float32x4_t k0 = last < VL ? load_w_tail(type, k, v * VL, last) : load_w(type, k, v * VL);
        for (int r = 0; r < rt; r++) a0[r] = vfmaq_f32(a0[r], q[r][v], k0);
    }
    for (int r = 0; r < rt; r++) out[r] = vaddq_f32(a0[r], a1[r]);
}

/* rt rows over n_kv keys: 4 at a time through the tree, the rest one by one. */
INLINE void scores_tile(int rt, int nv, int type, float *const *out, const float *const *q, const void *K,
                        int64_t ldk, int64_t n_kv, int64_t hd, float scale) {
    const size_t krow = kv_row_bytes(type, ldk);
    const int64_t last = hd - (int64_t)(nv - 1) * VL;
    float32x4_t qr[2][ROWS_MAX_NV];
    for (int r = 0; r < rt; r++)
        for (int v = 0; v < nv; v++) qr[r][v] = load_x_any(q[r], v * VL, hd);
    int64_t j = 0;
    for (; j + 4 <= n_kv; j += 4) {
        const char *k = (const char *)K + (size_t)j * krow;
        float32x4_t a[2], b[2], c[2], d[2];
        key_dots(rt, nv, type, qr, k, last, a);
        key_dots(rt, nv, type, qr, k + krow, last, b);
        key_dots(rt, nv, type, qr, k + 2 * krow, last, c);
        key_dots(rt, nv, type, qr, k + 3 * krow, last, d);
        for (int r = 0; r < rt; r++)
            vst1q_f32(out[r] + j, vmulq_n_f32(vpaddq_f32(vpaddq_f32(a[r], b[r]), vpaddq_f32(c[r], d[r])), scale));
    }
    for (; j < n_kv; j++)
        for (int r = 0; r < rt; r++) out[r][j] = scale * dot_kv(q[r], type, (const char *)K + (size_t)j * krow, hd);
}

/* One function per tile shape and cache type (inlined into one, x86's compiler kept the queries
 * on the stack). */
typedef void (*scores_tile_fn)(float *const *out, const float *const *q, const void *K, int64_t ldk, int64_t n_kv,
                               int64_t hd, float scale);
#define SCORES_TILE(rt, nv, type, name)                                                                          \
    static __attribute__((noinline)) void name(float *const *out, const float *const *q, const void *K, int64_t ldk, \
                                               int64_t n_kv, int64_t hd, float scale) {                          \
        scores_tile(rt, nv, type, out, q, K, ldk, n_kv, hd, scale);                                              \
    }
#define SCORES_TILES(rt, nv)                                  \
    SCORES_TILE(rt, nv, VWN_TYPE_F32, scores_f32_##rt##x##nv) \
    SCORES_TILE(rt, nv, VWN_TYPE_F16, scores_f16_##rt##x##nv)
/* Q8_0 rows are whole 32-value blocks: 8 or 16 vectors (heads of 32 and 64; wider: scores_wide) */
SCORES_TILE(2, 8, VWN_TYPE_Q8_0, scores_q8_2x8)
SCORES_TILE(1, 8, VWN_TYPE_Q8_0, scores_q8_1x8)
SCORES_TILE(1, 16, VWN_TYPE_Q8_0, scores_q8_1x16)
SCORES_TILES(2, 1)
SCORES_TILES(2, 2)
SCORES_TILES(2, 3)
SCORES_TILES(2, 4)
SCORES_TILES(2, 5)
SCORES_TILES(2, 6)
SCORES_TILES(2, 7)
SCORES_TILES(2, 8)
SCORES_TILES(1, 1)
SCORES_TILES(1, 2)
SCORES_TILES(1, 3)
SCORES_TILES(1, 4)
SCORES_TILES(1, 5)
SCORES_TILES(1, 6)
SCORES_TILES(1, 7)
SCORES_TILES(1, 8)
SCORES_TILES(1, 9)
SCORES_TILES(1, 10)
SCORES_TILES(1, 11)
SCORES_TILES(1, 12)
SCORES_TILES(1, 13)
SCORES_TILES(1, 14)
SCORES_TILES(1, 15)
SCORES_TILES(1, 16)
#undef SCORES_TILES
#undef SCORES_TILE

/* A row of a head wider than the tiles' registers hold (more than 16 vectors): its query read
 * from L1 for every key (dot_kv_lanes), 4 keys summed by the same pairwise adds. */
static void scores_wide(int type, float *out, const float *q, const void *K, int64_t ldk, int64_t n_kv, int64_t hd,
                        float scale) {
    const size_t krow = kv_row_bytes(type, ldk);
    int64_t j = 0;
    for (; j + 4 <= n_kv; j += 4) {
        const char *k = (const char *)K + (size_t)j * krow;
        const float32x4_t a = dot_kv_lanes(q, type, k, hd), b = dot_kv_lanes(q, type, k + krow, hd);
        const float32x4_t c = dot_kv_lanes(q, type, k + 2 * krow, hd), d = dot_kv_lanes(q, type, k + 3 * krow, hd);
        vst1q_f32(out + j, vmulq_n_f32(vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d)), scale));
    }
    for (; j < n_kv; j++) out[j] = scale * dot_kv(q, type, (const char *)K + (size_t)j * krow, hd);
}

/* [type: F32, F16, Q8_0][nv - 1]: 2-row tiles up to 8 vectors (NULL past them), 1-row tiles up to 16;
 * NULL where a type has no rows of that width (the rest go to scores_wide) */
static const scores_tile_fn scores_2rows[3][ROWS_MAX_NV] = {
    {scores_f32_2x1, scores_f32_2x2, scores_f32_2x3, scores_f32_2x4, scores_f32_2x5, scores_f32_2x6, scores_f32_2x7,
     scores_f32_2x8},
    {scores_f16_2x1, scores_f16_2x2, scores_f16_2x3, scores_f16_2x4, scores_f16_2x5, scores_f16_2x6, scores_f16_2x7,
     scores_f16_2x8},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, scores_q8_2x8}};
static const scores_tile_fn scores_1row[3][ROWS_MAX_NV] = {
    {scores_f32_1x1, scores_f32_1x2, scores_f32_1x3, scores_f32_1x4, scores_f32_1x5, scores_f32_1x6, scores_f32_1x7,
     scores_f32_1x8, scores_f32_1x9, scores_f32_1x10, scores_f32_1x11, scores_f32_1x12, scores_f32_1x13,
     scores_f32_1x14, scores_f32_1x15, scores_f32_1x16},
    {scores_f16_1x1, scores_f16_1x2, scores_f16_1x3, scores_f16_1x4, scores_f16_1x5, scores_f16_1x6, scores_f16_1x7,
     scores_f16_1x8, scores_f16_1x9, scores_f16_1x10, scores_f16_1x11, scores_f16_1x12, scores_f16_1x13,
     scores_f16_1x14, scores_f16_1x15, scores_f16_1x16},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, scores_q8_1x8, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     scores_q8_1x16}};

static void attn_scores_rows_neon(float *const *out, const float *const *q, int32_t nr, int32_t kv_type, const void *K,
                                  int64_t ldk, int64_t n_kv, int64_t head_dim, float scale) {
    const int t = kv_type == VWN_TYPE_F16 ? 1 : kv_type == VWN_TYPE_Q8_0 ? 2 : 0;
    const int type = t == 1 ? VWN_TYPE_F16 : t == 2 ? VWN_TYPE_Q8_0 : VWN_TYPE_F32;
    const int64_t nv = (head_dim + VL - 1) / VL;
    int32_t r = 0;
    if (nv <= ROWS_MAX_NV) {
        const scores_tile_fn t2 = scores_2rows[t][nv - 1], t1 = scores_1row[t][nv - 1];
        if (t2)
            for (; r + 2 <= nr; r += 2) t2(out + r, q + r, K, ldk, n_kv, head_dim, scale);
        if (t1)
            for (; r < nr; r++) t1(out + r, q + r, K, ldk, n_kv, head_dim, scale);
    }
    for (; r < nr; r++) scores_wide(type, out[r], q[r], K, ldk, n_kv, head_dim, scale);
}

INLINE void values_kv(int type, float *out, const float *p, const void *V, int64_t ldv, int64_t n_kv,
                      int64_t head_dim, bool accumulate) {
    const size_t vrow = kv_row_bytes(type, ldv);
    int64_t i = 0;
    for (; i + 4 * VL <= head_dim; i += 4 * VL) { /* 16 output lanes in registers over all keys */
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        if (accumulate) {
            a0 = vld1q_f32(out + i);
            a1 = vld1q_f32(out + i + 4);
            a2 = vld1q_f32(out + i + 8);
            a3 = vld1q_f32(out + i + 12);
        }
        for (int64_t j = 0; j < n_kv; j++) {
            const void *row = (const char *)V + (size_t)j * vrow;
            a0 = vfmaq_n_f32(a0, load_w(type, row, i), p[j]);
            a1 = vfmaq_n_f32(a1, load_w(type, row, i + 4), p[j]);
            a2 = vfmaq_n_f32(a2, load_w(type, row, i + 8), p[j]);
            a3 = vfmaq_n_f32(a3, load_w(type, row, i + 12), p[j]);
        }
        vst1q_f32(out + i, a0);
        vst1q_f32(out + i + 4, a1);
        vst1q_f32(out + i + 8, a2);
        vst1q_f32(out + i + 12, a3);
    }
    for (; i < head_dim; i++) {
        float s = accumulate ? out[i] : 0.0f;
        for (int64_t j = 0; j < n_kv; j++) s += p[j] * kv_value(type, (const char *)V + (size_t)j * vrow, i);
        out[i] = s;
    }
}

static void attn_values_neon(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv,
                             int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_F32, out, p, V, ldv, n_kv, head_dim, accumulate);
}

static void attn_values_f16_neon(float *out, const float *p, const uint16_t *V, int64_t ldv, int64_t n_kv,
                                 int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_F16, out, p, V, ldv, n_kv, head_dim, accumulate);
}

static void attn_values_q8_0_neon(float *out, const float *p, const vwn_block_q8_0 *V, int64_t ldv, int64_t n_kv,
                                  int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_Q8_0, out, p, V, ldv, n_kv, head_dim, accumulate);
}

static void to_f16_neon(uint16_t *out, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) out[i] = vwn_fp32_to_fp16(x[i]);
}

/* ---- mix: 4 outputs x nv vectors of 4 accumulators, B rows broadcast-multiplied (ops.h) --------
 * As ops_avx512.c's and ops_avx2.c's mix: every tile is compiled with its output count (1-4) and
 * vector count (1-6) fixed; 4 x 6 accumulators, six B vectors and the coefficient take 31 of the
 * 32 registers. The 1-3 columns past the last whole vector of a row are done one by one with fmaf,
 * the same single rounding as a vector lane, so every column is the same FMA chain over i as on
 * x86. (It replaced a generic C tile of 4 x 64 accumulators, which spilled on x86 and would here.) */
INLINE void mix_block4(int nv, int no, float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai,
                       const float *B, int64_t ldb, int64_t n_in, bool accumulate) {
    float32x4_t acc[4][6];
    for (int o = 0; o < no; o++)
        for (int v = 0; v < nv; v++) acc[o][v] = accumulate ? vld1q_f32(out + o * ldo + v * VL) : vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n_in; i++) {
        const float *bi = B + i * ldb;
        float32x4_t b[6];
        for (int v = 0; v < nv; v++) b[v] = vld1q_f32(bi + v * VL);
        for (int o = 0; o < no; o++) {
            const float32x4_t a = vdupq_n_f32(A[o * ao + i * ai]);
            for (int v = 0; v < nv; v++) acc[o][v] = vfmaq_f32(acc[o][v], a, b[v]);
        }
    }
    for (int o = 0; o < no; o++)
        for (int v = 0; v < nv; v++) vst1q_f32(out + o * ldo + v * VL, acc[o][v]);
}

#define MIX4_NV(no)                                                                                 \
    switch (nv) {                                                                                   \
    case 1: mix_block4(1, no, y, ldo, a, ao, ai, b, ldb, n_in, accumulate); break;                  \
    case 2: mix_block4(2, no, y, ldo, a, ao, ai, b, ldb, n_in, accumulate); break;                  \
    case 3: mix_block4(3, no, y, ldo, a, ao, ai, b, ldb, n_in, accumulate); break;                  \
    case 4: mix_block4(4, no, y, ldo, a, ao, ai, b, ldb, n_in, accumulate); break;                  \
    case 5: mix_block4(5, no, y, ldo, a, ao, ai, b, ldb, n_in, accumulate); break;                  \
    default: mix_block4(6, no, y, ldo, a, ao, ai, b, ldb, n_in, accumulate); break;                 \
    }

static void mix_neon(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai, const float *B,
                     int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols, bool accumulate) {
    const int64_t whole = n_cols / VL * VL;
    for (int64_t c0 = 0; c0 < whole; c0 += 6 * VL) {
        const int nv = (int)((whole - c0 < 6 * VL ? whole - c0 : 6 * VL) / VL);
        for (int64_t o0 = 0; o0 < n_out; o0 += 4) {
            const int no = n_out - o0 < 4 ? (int)(n_out - o0) : 4;
            float *y = out + o0 * ldo + c0;
            const float *a = A + o0 * ao;
            const float *b = B + c0;
            switch (no) {
            case 4: MIX4_NV(4) break;
            case 3: MIX4_NV(3) break;
            case 2: MIX4_NV(2) break;
            default: MIX4_NV(1) break;
            }
        }
    }
    for (int64_t o = 0; o < n_out; o++) /* the last 1-3 columns */
        for (int64_t c = whole; c < n_cols; c++) {
            float acc = accumulate ? out[o * ldo + c] : 0.0f;
            for (int64_t i = 0; i < n_in; i++) acc = fmaf(A[o * ao + i * ai], B[i * ldb + c], acc);
            out[o * ldo + c] = acc;
        }
}
#undef MIX4_NV

const vwn_ops vwn_ops_neon = {
    .name = "neon",
    .level = VWN_SIMD_NEON,
    .matmul = matmul_neon,
    .quantize_q8_0 = quantize_q8_0_neon,
    .dot = dot_neon,
    .axpy = axpy_neon,
    .scale = scale_neon,
    .sum_sq = sum_sq_neon,
    .rmsnorm = rmsnorm_neon,
    .silu_mul = silu_mul_neon,
    .attn_scores = attn_scores_neon,
    .attn_values = attn_values_neon,
    .attn_scores_f16 = attn_scores_f16_neon,
    .attn_values_f16 = attn_values_f16_neon,
    .attn_scores_q8_0 = attn_scores_q8_0_neon,
    .attn_values_q8_0 = attn_values_q8_0_neon,
    .attn_scores_rows = attn_scores_rows_neon,
    .to_f16 = to_f16_neon,
    .mix = mix_neon,
    .ghc_coef = ghc_coef_neon,
    .softmax_exp = softmax_exp_neon,
};

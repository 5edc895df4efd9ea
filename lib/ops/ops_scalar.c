/* ops_scalar.c -- the plain C kernels: the readable reference every SIMD level is tested against,
 * and the fallback on CPUs without one. Matmul dots accumulate in fp32; Q8_0 and Q4_0 weights are
 * dotted with Q8_0-quantized activations the way ggml does it (int32 block sums times both
 * scales). */
#include "ops/ops.h"
#include "vwn.h"

#include <math.h>

/* ---- Q8_0 activations ----------------------------------------------------------------------- */

/* Each block of 32: d = amax / 127 (stored as fp16), q = round_to_nearest_even(x / d). Rounding
 * uses the fp32 d (as ggml); SIMD levels must produce the same bytes. */
static void quantize_q8_0_scalar(const float *x, vwn_block_q8_0 *out, int64_t n) {
    for (int64_t b = 0; b < n / VWN_QK8_0; b++) {
        const float *xb = x + b * VWN_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < VWN_QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = vwn_fp32_to_fp16(d);
        for (int j = 0; j < VWN_QK8_0; j++) {
            long q = lrintf(xb[j] * id);
            if (q > 127) q = 127;
            if (q < -127) q = -127;
            out[b].qs[j] = (int8_t)q;
        }
    }
}

/* ---- one row . one activation vector, per weight type ------------------------------------- */

static float dot_f32(const float *w, const float *x, int64_t n) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += w[i] * x[i];
    return sum;
}

static float dot_f16(const uint16_t *w, const float *x, int64_t n) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += vwn_fp16_to_fp32(w[i]) * x[i];
    return sum;
}

static float dot_bf16(const uint16_t *w, const float *x, int64_t n) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += vwn_bf16_to_fp32(w[i]) * x[i];
    return sum;
}

static float dot_q8_0(const vwn_block_q8_0 *w, const vwn_block_q8_0 *x, int64_t n_blocks) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < VWN_QK8_0; j++) sumi += (int32_t)w[b].qs[j] * (int32_t)x[b].qs[j];
        float scale = vwn_fp16_to_fp32(w[b].d) * vwn_fp16_to_fp32(x[b].d); /* exact in fp32 */
        sum += (float)sumi * scale;
    }
    return sum;
}

/* Q4_0 weights: value j of a block is its nibble minus 8 (the first 16 in the low nibbles). */
static float dot_q4_0(const vwn_block_q4_0 *w, const vwn_block_q8_0 *x, int64_t n_blocks) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n_blocks; b++) {
        int32_t sumi = 0;
        for (int j = 0; j < VWN_QK4_0 / 2; j++) {
            sumi += ((int32_t)(w[b].qs[j] & 0x0F) - 8) * (int32_t)x[b].qs[j];
            sumi += ((int32_t)(w[b].qs[j] >> 4) - 8) * (int32_t)x[b].qs[j + VWN_QK4_0 / 2];
        }
        float scale = vwn_fp16_to_fp32(w[b].d) * vwn_fp16_to_fp32(x[b].d); /* exact in fp32 */
        sum += (float)sumi * scale;
    }
    return sum;
}

/* ---- matmul ---------------------------------------------------------------------------------- */

static void matmul_scalar(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T,
                          float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    int64_t n = W->cols;
    int64_t n_blocks = n / VWN_QK8_0;
    for (int64_t r = r0; r < r1; r++) {
        const void *row = (const char *)W->data + (size_t)r * W->row_bytes;
        for (int64_t t = 0; t < T; t++) {
            const float *x = X ? X + t * ldx : NULL;
            float y = 0.0f;
            switch (W->type) {
            case VWN_TYPE_F32: y = dot_f32(row, x, n); break;
            case VWN_TYPE_F16: y = dot_f16(row, x, n); break;
            case VWN_TYPE_BF16: y = dot_bf16(row, x, n); break;
            case VWN_TYPE_Q8_0:
                y = dot_q8_0(row, (const vwn_block_q8_0 *)xq + t * n_blocks, n_blocks);
                break;
            case VWN_TYPE_Q4_0:
                y = dot_q4_0(row, (const vwn_block_q8_0 *)xq + t * n_blocks, n_blocks);
                break;
            default: break;
            }
            Y[t * ldy + r] = y;
        }
    }
}

/* ---- vector helpers ------------------------------------------------------------------------- */

static float dot_scalar(const float *a, const float *b, int64_t n) {
    return dot_f32(a, b, n);
}

static void axpy_scalar(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_scalar(float *y, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] *= a;
}

static float sum_sq_scalar(const float *x, int64_t n) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += x[i] * x[i];
    return sum;
}

/* ---- fused helpers of the forward pass ------------------------------------------------------ */

static void rmsnorm_scalar(float *out, const float *x, const float *gain, int64_t n, float eps) {
    float ss = sum_sq_scalar(x, n);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * inv * (gain ? gain[i] : 1.0f);
}

static void silu_mul_scalar(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void attn_scores_scalar(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv,
                               int64_t head_dim, float scale) {
    for (int64_t j = 0; j < n_kv; j++) out[j] = scale * dot_f32(q, K + j * ldk, head_dim);
}

static void attn_values_scalar(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv,
                               int64_t head_dim, bool accumulate) {
    if (!accumulate)
        for (int64_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) axpy_scalar(out, p[j], V + j * ldv, head_dim);
}

static void attn_scores_f16_scalar(float *out, const float *q, const uint16_t *K, int64_t ldk, int64_t n_kv,
                                   int64_t head_dim, float scale) {
    for (int64_t j = 0; j < n_kv; j++) {
        const uint16_t *k = K + j * ldk;
        float sum = 0.0f;
        for (int64_t i = 0; i < head_dim; i++) sum += q[i] * vwn_fp16_to_fp32(k[i]);
        out[j] = scale * sum;
    }
}

static void attn_values_f16_scalar(float *out, const float *p, const uint16_t *V, int64_t ldv, int64_t n_kv,
                                   int64_t head_dim, bool accumulate) {
    if (!accumulate)
        for (int64_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++)
        for (int64_t i = 0; i < head_dim; i++) out[i] += p[j] * vwn_fp16_to_fp32(V[j * ldv + i]);
}

/* Over a Q8_0 cache row the fp32 kernels' loops run a block at a time, the block's scale widened
 * once: value i = d * qs[i % 32], exact in fp32, in the same order as over the row dequantized. */
static void attn_scores_q8_0_scalar(float *out, const float *q, const vwn_block_q8_0 *K, int64_t ldk, int64_t n_kv,
                                    int64_t head_dim, float scale) {
    for (int64_t j = 0; j < n_kv; j++) {
        const vwn_block_q8_0 *k = K + j * (ldk / VWN_QK8_0);
        float sum = 0.0f;
        for (int64_t b = 0; b < head_dim / VWN_QK8_0; b++) {
            const float d = vwn_fp16_to_fp32(k[b].d);
            for (int i = 0; i < VWN_QK8_0; i++) sum += q[b * VWN_QK8_0 + i] * (d * (float)k[b].qs[i]);
        }
        out[j] = scale * sum;
    }
}

static void attn_values_q8_0_scalar(float *out, const float *p, const vwn_block_q8_0 *V, int64_t ldv, int64_t n_kv,
                                    int64_t head_dim, bool accumulate) {
    if (!accumulate)
        for (int64_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        const vwn_block_q8_0 *v = V + j * (ldv / VWN_QK8_0);
        for (int64_t b = 0; b < head_dim / VWN_QK8_0; b++) {
            const float d = vwn_fp16_to_fp32(v[b].d);
            for (int i = 0; i < VWN_QK8_0; i++) out[b * VWN_QK8_0 + i] += p[j] * (d * (float)v[b].qs[i]);
        }
    }
}

static void to_f16_scalar(uint16_t *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = vwn_fp32_to_fp16(x[i]);
}

/* tanh through one expf (see ops.h): 1 - 2 / (e^{2|x|} + 1), with the sign of x. */
static void ghc_coef_scalar(float *c, const float *c0, const float *scale, int64_t n, float mult) {
    for (int64_t i = 0; i < n; i++) {
        const float x = mult * c[i], a = fabsf(x);
        const float t = a > 9.0f ? 1.0f : 1.0f - 2.0f / (expf(2.0f * a) + 1.0f);
        c[i] = c0[i] + scale[i] * (x < 0 ? -t : t);
    }
}

static float softmax_exp_scalar(float *x, int64_t n, float *max_out) {
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (max_out) *max_out = mx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    return (float)sum;
}

static void mix_scalar(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai, const float *B,
                       int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols, bool accumulate) {
    for (int64_t o = 0; o < n_out; o++) {
        float *y = out + o * ldo;
        if (!accumulate)
            for (int64_t c = 0; c < n_cols; c++) y[c] = 0.0f;
        for (int64_t i = 0; i < n_in; i++) {
            const float a = A[o * ao + i * ai];
            const float *b = B + i * ldb;
            for (int64_t c = 0; c < n_cols; c++) y[c] += a * b[c];
        }
    }
}

const vwn_ops vwn_ops_scalar = {
    .name = "scalar",
    .level = VWN_SIMD_SCALAR,
    .matmul = matmul_scalar,
    .quantize_q8_0 = quantize_q8_0_scalar,
    .dot = dot_scalar,
    .axpy = axpy_scalar,
    .scale = scale_scalar,
    .sum_sq = sum_sq_scalar,
    .rmsnorm = rmsnorm_scalar,
    .silu_mul = silu_mul_scalar,
    .attn_scores = attn_scores_scalar,
    .attn_values = attn_values_scalar,
    .attn_scores_f16 = attn_scores_f16_scalar,
    .attn_values_f16 = attn_values_f16_scalar,
    .attn_scores_q8_0 = attn_scores_q8_0_scalar,
    .attn_values_q8_0 = attn_values_q8_0_scalar,
    .to_f16 = to_f16_scalar,
    .mix = mix_scalar,
    .ghc_coef = ghc_coef_scalar,
    .softmax_exp = softmax_exp_scalar,
};

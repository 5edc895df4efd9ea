/* test_ops.c -- the numeric kernels (lib/ops): exact fp16/bf16 conversions, row sizes and
 * dequantization, Q8_0 quantization error, the scalar matmul against a double-precision reference,
 * every SIMD level this CPU supports against the scalar level (levels it cannot run are skipped and
 * named), and the threaded driver vwn_matmul_mt against a serial run (static and balanced splits).
 *
 * Tolerances. fp32 dots summed in different orders differ by rounding only: the error of a sum of n
 * products is at most ~n * 2^-24 * sum|w x| in the worst case and ~sqrt(n) * 2^-24 * sum|w x| in
 * practice, so two orders are compared with |a - b| <= 1e-5 * sqrt(n) * sum|w x| -- about 170x the
 * typical bound, yet far below any real kernel bug (a wrong or missing term moves the result by a
 * whole |w x|). Q8_0 and Q4_0 block sums are int32 and must be exact: with power-of-two scales and
 * small quants every partial sum is exactly representable, so any correct kernel gives the
 * identical float, which the test demands bit for bit. Attention (test_attention_split) is compared
 * across thread counts bit for bit and with a double-precision softmax within 1e-5. */
#define _POSIX_C_SOURCE 200809L
#include "vt.h"
#include "attention.h"
#include "ops/ops.h"
#include "vwn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float rnd_unit(void) { /* uniform in [-1, 1) */
    return (float)((double)rnd_u32() / 2147483648.0 - 1.0);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static const int levels[] = {VWN_SIMD_SCALAR, VWN_SIMD_AVX2, VWN_SIMD_AVX512, VWN_SIMD_NEON};
#define N_LEVELS (int)(sizeof levels / sizeof levels[0])

/* ---- conversions ---------------------------------------------------------------------------- */

static void test_fp16(void) {
    int bad_trip = 0, bad_value = 0, bad_tie = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = vwn_fp16_to_fp32((uint16_t)h);
        if (vwn_fp32_to_fp16(f) != h) bad_trip++;
        /* value check against the definition */
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp((double)m, -24) : ldexp(1024.0 + m, (int)e - 25);
        if (h & 0x8000) v = -v;
        if (e != 31 && (double)f != v) bad_value++;
        if (e == 31 && (m == 0 ? !isinf(f) : !isnan(f))) bad_value++;
        /* round to nearest even: the midpoint to the next magnitude (exact in fp32) goes to the
         * even neighbour, and one fp32 ulp either side goes to the nearer one */
        if ((h & 0x7fff) < 0x7c00) {
            uint16_t lo = (uint16_t)h, hi = (uint16_t)(h + 1);
            float fhi = (hi & 0x7fff) == 0x7c00 ? (h & 0x8000 ? -65536.0f : 65536.0f)
                                                : vwn_fp16_to_fp32(hi);
            float mid = (f + fhi) * 0.5f;            /* exact: 12 significant bits */
            uint16_t even = (lo & 1) ? hi : lo;
            if (vwn_fp32_to_fp16(mid) != even) bad_tie++;
            uint32_t mb = fbits(mid);
            if (vwn_fp32_to_fp16(bitsf(mb - 1)) != lo) bad_tie++;
            if (vwn_fp32_to_fp16(bitsf(mb + 1)) != hi) bad_tie++;
        }
    }
    CHECK_MSG(bad_trip == 0, "%d fp16 values do not round-trip", bad_trip);
    CHECK_MSG(bad_value == 0, "%d fp16 values decode wrong", bad_value);
    CHECK_MSG(bad_tie == 0, "%d fp16 roundings are not nearest-even", bad_tie);
    CHECK(vwn_fp32_to_fp16(65519.0f) == 0x7bff);
    CHECK(vwn_fp32_to_fp16(65520.0f) == 0x7c00);
    CHECK(vwn_fp32_to_fp16(-1e10f) == 0xfc00);
    CHECK(vwn_fp32_to_fp16(INFINITY) == 0x7c00);
    CHECK((vwn_fp32_to_fp16(NAN) & 0x7fff) > 0x7c00);
    CHECK(vwn_fp32_to_fp16(ldexpf(1.0f, -25)) == 0x0000);         /* tie -> even (0)   */
    CHECK(vwn_fp32_to_fp16(ldexpf(3.0f, -25)) == 0x0002);         /* tie -> even (2)   */
    CHECK(vwn_fp32_to_fp16(ldexpf(1.0f, -26)) == 0x0000);
    CHECK(vwn_fp32_to_fp16(1e-30f) == 0x0000);
    CHECK(vwn_fp32_to_fp16(-0.0f) == 0x8000);
    CHECK(vwn_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)) == 0x3c00);  /* tie -> even (1.0) */
}

static void test_bf16(void) {
    int bad_trip = 0, bad_tie = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = vwn_bf16_to_fp32((uint16_t)h);
        if (fbits(f) != h << 16) bad_trip++;
        if (vwn_fp32_to_bf16(f) != h) bad_trip++;
        if ((h & 0x7fff) < 0x7f80) {               /* finite: the tie and its neighbours */
            uint32_t mid = (h << 16) | 0x8000u;
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            if (vwn_fp32_to_bf16(bitsf(mid)) != even) bad_tie++;
            if (vwn_fp32_to_bf16(bitsf(mid - 1)) != h) bad_tie++;
            if (vwn_fp32_to_bf16(bitsf(mid + 1)) != (uint16_t)(h + 1)) bad_tie++;
        }
    }
    CHECK_MSG(bad_trip == 0, "%d bf16 values do not round-trip", bad_trip);
    CHECK_MSG(bad_tie == 0, "%d bf16 roundings are not nearest-even", bad_tie);
    CHECK((vwn_fp32_to_bf16(NAN) & 0x7fff) > 0x7f80);
    CHECK(vwn_fp32_to_bf16(bitsf(0x7f800001u)) != 0x7f80);      /* NaN never becomes Inf */
    CHECK(vwn_fp32_to_bf16(3.4e38f) == 0x7f80);                   /* rounds up to Inf */
}

static void test_rows(void) {
    CHECK(vwn_row_bytes(VWN_TYPE_F32, 7) == 28);
    CHECK(vwn_row_bytes(VWN_TYPE_F16, 7) == 14);
    CHECK(vwn_row_bytes(VWN_TYPE_BF16, 7) == 14);
    CHECK(vwn_row_bytes(VWN_TYPE_Q8_0, 64) == 68);
    CHECK(vwn_row_bytes(VWN_TYPE_Q8_0, 33) == 0);
    CHECK(vwn_row_bytes(VWN_TYPE_Q4_0, 64) == 36);
    CHECK(vwn_row_bytes(VWN_TYPE_Q4_0, 32) == 18);
    CHECK(vwn_row_bytes(VWN_TYPE_Q4_0, 33) == 0);
    CHECK(vwn_row_bytes(VWN_TYPE_Q4_0, 16) == 0);
    CHECK(vwn_row_bytes(VWN_TYPE_Q4_0, INT64_MAX) == 0);
    CHECK(vwn_row_bytes(VWN_TYPE_F32, 0) == 0);
    CHECK(vwn_row_bytes(VWN_TYPE_F32, -1) == 0);
    CHECK(vwn_row_bytes(99, 32) == 0);
    CHECK(vwn_row_bytes(VWN_TYPE_F32, INT64_MAX) == 0);

    float src[64], out[64];
    uint16_t h[64];
    for (int i = 0; i < 64; i++) src[i] = rnd_unit() * 3.0f;
    for (int i = 0; i < 64; i++) h[i] = vwn_fp32_to_fp16(src[i]);
    vwn_dequant_row(VWN_TYPE_F16, h, out, 64);
    int bad = 0;
    for (int i = 0; i < 64; i++) bad += out[i] != vwn_fp16_to_fp32(h[i]);
    for (int i = 0; i < 64; i++) h[i] = vwn_fp32_to_bf16(src[i]);
    vwn_dequant_row(VWN_TYPE_BF16, h, out, 64);
    for (int i = 0; i < 64; i++) bad += out[i] != vwn_bf16_to_fp32(h[i]);
    vwn_dequant_row(VWN_TYPE_F32, src, out, 64);
    for (int i = 0; i < 64; i++) bad += out[i] != src[i];
    vwn_block_q8_0 q[2];
    vwn_ops_get(VWN_SIMD_SCALAR)->quantize_q8_0(src, q, 64);
    vwn_dequant_row(VWN_TYPE_Q8_0, q, out, 64);
    for (int i = 0; i < 64; i++) bad += out[i] != vwn_fp16_to_fp32(q[i / 32].d) * q[i / 32].qs[i % 32];
    CHECK_MSG(bad == 0, "%d dequantized values wrong", bad);

    /* Q4_0 by hand, every nibble in both halves: value j = d (lo_j - 8), j + 16: d (hi_j - 8) */
    vwn_block_q4_0 q4[2];
    q4[0].d = vwn_fp32_to_fp16(-1.5f), q4[1].d = vwn_fp32_to_fp16(0.25f);
    for (int j = 0; j < 16; j++) {
        q4[0].qs[j] = (uint8_t)(j | (15 - j) << 4);
        q4[1].qs[j] = (uint8_t)((j * 7) % 16 | ((j * 5 + 3) % 16) << 4);
    }
    vwn_dequant_row(VWN_TYPE_Q4_0, q4, out, 64);
    bad = 0;
    for (int j = 0; j < 16; j++) {
        bad += out[j] != -1.5f * (float)(j - 8);
        bad += out[16 + j] != -1.5f * (float)(7 - j);
        bad += out[32 + j] != 0.25f * (float)((j * 7) % 16 - 8);
        bad += out[48 + j] != 0.25f * (float)((j * 5 + 3) % 16 - 8);
    }
    CHECK_MSG(bad == 0, "%d dequantized Q4_0 values wrong", bad);
}

/* ---- Q8_0 quantization ---------------------------------------------------------------------- */

static void test_quantize(const vwn_ops *ops, const vwn_ops *ref) {
    enum { N = 32 * 37 };
    static float x[N];
    static vwn_block_q8_0 q[N / 32], qref[N / 32];
    for (int i = 0; i < N; i++) x[i] = rnd_unit() * ldexpf(1.0f, (int)(rnd_u32() % 16) - 8);
    for (int i = 64; i < 96; i++) x[i] = 0.0f;                      /* an all-zero block   */
    x[100] = 1.0f, x[101] = -1.0f;                                  /* exact +-amax        */
    ops->quantize_q8_0(x, q, N);
    ref->quantize_q8_0(x, qref, N);
    int bad_bound = 0;
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        float d = amax / 127.0f, d16 = vwn_fp16_to_fp32(q[b].d);
        for (int j = 0; j < 32; j++) {
            /* rounding costs d/2; storing d as fp16 costs |q| * |d - d16| <= 127 |d - d16| */
            float err = fabsf(x[b * 32 + j] - d16 * q[b].qs[j]);
            if (err > 0.5f * d * 1.0001f + 127.0f * fabsf(d - d16) + 1e-30f) bad_bound++;
            if (q[b].qs[j] == -128) bad_bound++;
        }
    }
    CHECK_MSG(bad_bound == 0, "[%s] %d Q8_0 values outside the error bound", ops->name, bad_bound);
    CHECK_MSG(memcmp(q, qref, sizeof q) == 0, "[%s] Q8_0 bytes differ from scalar", ops->name);
    CHECK(q[2].d == 0);
}

/* ---- matmul ----------------------------------------------------------------------------------- */

typedef struct {
    int32_t type;
    int64_t rows, cols;
    void *data;
    size_t row_bytes;
    float *wf;   /* dequantized weights */
} test_mat;

/* Weights whose dots take Q8_0-quantized activations. */
static bool takes_q8(int32_t type) {
    return type == VWN_TYPE_Q8_0 || type == VWN_TYPE_Q4_0;
}

/* The xq a table's matmul takes without a prepared buffer: the Q8_0 blocks for Q8_0 and Q4_0
 * weights, NULL for float ones (ops.h: their xq is NULL or prepare_x's output). */
static const void *xq_for(int32_t type, const vwn_block_q8_0 *xq) {
    return takes_q8(type) ? (const void *)xq : NULL;
}

/* Random weights of a type; small_q8 (Q8_0, Q4_0): power-of-two scales and quants in [-8, 8]
 * (exact sums). */
static void make_mat(test_mat *m, int32_t type, int64_t rows, int64_t cols, bool small_q8) {
    m->type = type, m->rows = rows, m->cols = cols;
    m->row_bytes = vwn_row_bytes(type, cols);
    m->data = malloc(m->row_bytes * (size_t)rows + 64);
    m->wf = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++) {
        char *row = (char *)m->data + r * m->row_bytes;
        float *w = m->wf + r * cols;
        for (int64_t c = 0; c < cols; c++) w[c] = rnd_unit();
        if (type == VWN_TYPE_Q8_0) {
            vwn_block_q8_0 *b = (vwn_block_q8_0 *)row;
            for (int64_t k = 0; k < cols / 32; k++) {
                if (small_q8) {
                    b[k].d = vwn_fp32_to_fp16(ldexpf(1.0f, (int)(rnd_u32() % 3)));
                    for (int j = 0; j < 32; j++) b[k].qs[j] = (int8_t)((int)(rnd_u32() % 17) - 8);
                } else {
                    b[k].d = vwn_fp32_to_fp16(ldexpf(1.0f + rnd_unit() * 0.5f, -7));
                    for (int j = 0; j < 32; j++) b[k].qs[j] = (int8_t)((int)(rnd_u32() % 256) - 128);
                }
            }
        } else if (type == VWN_TYPE_Q4_0) {
            vwn_block_q4_0 *b = (vwn_block_q4_0 *)row;
            for (int64_t k = 0; k < cols / 32; k++) {
                b[k].d = small_q8 ? vwn_fp32_to_fp16(ldexpf(1.0f, (int)(rnd_u32() % 3)))
                                  : vwn_fp32_to_fp16(ldexpf(1.0f + rnd_unit() * 0.5f, -3));
                for (int j = 0; j < 16; j++) b[k].qs[j] = (uint8_t)(rnd_u32() % 256);
            }
        } else if (type == VWN_TYPE_F16 || type == VWN_TYPE_BF16) {
            uint16_t *h = (uint16_t *)row;
            for (int64_t c = 0; c < cols; c++)
                h[c] = type == VWN_TYPE_F16 ? vwn_fp32_to_fp16(w[c]) : vwn_fp32_to_bf16(w[c]);
        } else {
            memcpy(row, w, sizeof(float) * (size_t)cols);
        }
        vwn_dequant_row(type, row, w, cols);
    }
}

static void free_mat(test_mat *m) {
    free(m->data);
    free(m->wf);
}

static vwn_mat as_vwn(const test_mat *m) {
    vwn_mat w = {m->data, m->type, m->rows, m->cols, m->row_bytes, NULL};
    return w;
}

/* X: T x cols floats with row stride ldx; xq its Q8_0 quantization (by the scalar level). For
 * small_q8 the activations are made exactly representable with power-of-two scales. */
static void make_x(float *X, int64_t ldx, vwn_block_q8_0 *xq, int64_t T, int64_t cols, bool small_q8) {
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < ldx; c++) X[t * ldx + c] = c < cols ? rnd_unit() : NAN;
    if (cols % 32 != 0) return;
    int64_t nb = cols / 32;
    for (int64_t t = 0; t < T; t++) {
        if (small_q8) {
            for (int64_t k = 0; k < nb; k++) {
                vwn_block_q8_0 *b = xq + t * nb + k;
                b->d = vwn_fp32_to_fp16(ldexpf(1.0f, (int)(rnd_u32() % 3)));
                for (int j = 0; j < 32; j++) b->qs[j] = (int8_t)((int)(rnd_u32() % 17) - 8);
            }
        } else {
            vwn_ops_get(VWN_SIMD_SCALAR)->quantize_q8_0(X + t * ldx, xq + t * nb, cols);
        }
    }
}

/* sum_c |w x| of row r, token t: the scale of the rounding error (Q8_0: of the quantized values). */
static double abs_dot(const test_mat *m, const float *X, int64_t ldx, const vwn_block_q8_0 *xq,
                      int64_t t, int64_t r) {
    double s = 0;
    for (int64_t c = 0; c < m->cols; c++) {
        double x = takes_q8(m->type)
                       ? (double)vwn_fp16_to_fp32(xq[t * (m->cols / 32) + c / 32].d) *
                             xq[t * (m->cols / 32) + c / 32].qs[c % 32]
                       : X[t * ldx + c];
        s += fabs((double)m->wf[r * m->cols + c] * x);
    }
    return s;
}

static double exact_dot(const test_mat *m, const float *X, int64_t ldx, const vwn_block_q8_0 *xq,
                        int64_t t, int64_t r) {
    double s = 0;
    for (int64_t c = 0; c < m->cols; c++) {
        double x = takes_q8(m->type)
                       ? (double)vwn_fp16_to_fp32(xq[t * (m->cols / 32) + c / 32].d) *
                             xq[t * (m->cols / 32) + c / 32].qs[c % 32]
                       : X[t * ldx + c];
        s += (double)m->wf[r * m->cols + c] * x;
    }
    return s;
}

/* One matmul case: ops against scalar (or, for scalar, against double) on rows [r0, r1), with
 * sentinels around the output to catch writes outside the range. */
static void check_matmul(const vwn_ops *ops, int32_t type, int64_t rows, int64_t cols, int64_t T,
                         int64_t r0, int64_t r1, bool small_q8) {
    test_mat m;
    make_mat(&m, type, rows, cols, small_q8);
    vwn_mat w = as_vwn(&m);
    int64_t ldx = cols + 3, ldy = rows + 5;
    float *X = malloc(sizeof(float) * (size_t)(T * ldx));
    vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * (size_t)(T * (cols / 32) + 1));
    float *Y = malloc(sizeof(float) * (size_t)(T * ldy));
    float *Yref = malloc(sizeof(float) * (size_t)(T * ldy));
    make_x(X, ldx, xq, T, cols, small_q8);
    for (int64_t i = 0; i < T * ldy; i++) Y[i] = Yref[i] = -12345.0f;

    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    ops->matmul(&w, X, ldx, xq_for(type, xq), T, Y, ldy, r0, r1);
    ref->matmul(&w, X, ldx, xq_for(type, xq), T, Yref, ldy, r0, r1);

    /* the packed layout (ops.h): the same bits from every level, whether it reads it or not */
    int bad_packed = 0;
    if (vwn_packable(type, cols)) {
        char *packed = malloc(vwn_packed_bytes(type, rows, cols) + 64);
        float *Yp = malloc(sizeof(float) * (size_t)(T * ldy));
        for (int64_t i = 0; i < T * ldy; i++) Yp[i] = -12345.0f;
        vwn_pack_rows(type, m.data, packed + 3, rows, cols); /* unaligned on purpose */
        vwn_mat wp = w;
        wp.packed = packed + 3;
        ops->matmul(&wp, X, ldx, xq_for(type, xq), T, Yp, ldy, r0, r1);
        for (int64_t i = 0; i < T * ldy; i++) bad_packed += fbits(Yp[i]) != fbits(Y[i]);
        free(packed), free(Yp);
    }
    /* float weights with the activations prepared by the table (ops.h prepare_x, in two pieces as
     * two threads would): the same bits as without */
    int bad_prep = 0;
    const size_t prep = !takes_q8(type) && ops->prep_bytes ? ops->prep_bytes(T, cols) : 0;
    if (prep) {
        void *xp = malloc(prep);
        float *Yp = malloc(sizeof(float) * (size_t)(T * ldy));
        for (int64_t i = 0; i < T * ldy; i++) Yp[i] = -12345.0f;
        ops->prepare_x(X, ldx, T, cols, T / 3, T, xp);
        ops->prepare_x(X, ldx, T, cols, 0, T / 3, xp);
        ops->matmul(&w, X, ldx, xp, T, Yp, ldy, r0, r1);
        for (int64_t i = 0; i < T * ldy; i++) bad_prep += fbits(Yp[i]) != fbits(Y[i]);
        free(xp), free(Yp);
    }
    CHECK_MSG(bad_prep == 0, "[%s] matmul %s rows %lld cols %lld T %lld [%lld, %lld): %d results with prepared activations differ",
              ops->name, vwn_type_name(type), (long long)rows, (long long)cols, (long long)T, (long long)r0,
              (long long)r1, bad_prep);
    CHECK_MSG(bad_packed == 0, "[%s] matmul %s rows %lld cols %lld T %lld [%lld, %lld): %d results from packed rows differ",
              ops->name, vwn_type_name(type), (long long)rows, (long long)cols, (long long)T, (long long)r0,
              (long long)r1, bad_packed);

    int bad = 0, bad_outside = 0;
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t r = 0; r < ldy; r++) {
            float y = Y[t * ldy + r], yr = Yref[t * ldy + r];
            if (r < r0 || r >= r1) {
                bad_outside += y != -12345.0f;
                continue;
            }
            double tol = 1e-5 * sqrt((double)cols) * abs_dot(&m, X, ldx, xq, t, r) + 1e-30;
            double err;
            if (small_q8 && takes_q8(type)) {
                err = y == yr && (double)y == exact_dot(&m, X, ldx, xq, t, r) ? 0 : INFINITY;
            } else if (ops == ref) {
                err = fabs((double)y - exact_dot(&m, X, ldx, xq, t, r));
            } else {
                err = fabs((double)y - (double)yr);
            }
            if (!(err <= tol)) bad++;
            if (err / tol > worst) worst = err / tol;
        }
    }
    CHECK_MSG(bad == 0 && bad_outside == 0,
              "[%s] matmul %s rows %lld cols %lld T %lld [%lld, %lld)%s: %d wrong (worst err/tol %g), "
              "%d written outside", ops->name, vwn_type_name(type), (long long)rows, (long long)cols,
              (long long)T, (long long)r0, (long long)r1, small_q8 ? " exact" : "", bad, worst,
              bad_outside);
    free(X), free(xq), free(Y), free(Yref);
    free_mat(&m);
}

static void test_matmul(const vwn_ops *ops) {
    /* column tails 1..7 of the 8-lane (AVX2) kernels, and 1, 2, 3, 5, 6, 12, 14, 15 of the 16-lane ones */
    static const int64_t odd_cols[] = {1, 3, 6, 12, 17, 33, 50, 101, 1023, 1038};
    static const int64_t q8_cols[] = {32, 64, 96, 160, 192, 224, 544, 768, 4096};
    static const int64_t Ts[] = {1, 2, 3, 5, 8, 13};
    static const int32_t float_types[] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_BF16};
    for (int ti = 0; ti < 3; ti++)
        for (int ci = 0; ci < 10; ci++)
            for (int k = 0; k < 6; k++) {
                int64_t rows = 1 + 2 * (int64_t)(rnd_u32() % 20), T = Ts[k];
                check_matmul(ops, float_types[ti], rows, odd_cols[ci], T, 0, rows, false);
            }
    for (int ci = 0; ci < 9; ci++)
        for (int k = 0; k < 6; k++) {
            int64_t rows = 1 + 2 * (int64_t)(rnd_u32() % 20), T = Ts[k];
            int64_t cols = q8_cols[ci];
            if (cols == 4096 && T > 3) continue; /* keep the double reference cheap */
            check_matmul(ops, VWN_TYPE_Q8_0, rows, cols, T, 0, rows, false);
            check_matmul(ops, VWN_TYPE_Q8_0, rows, cols, T, 0, rows, true);
        }
    /* one token over float rows around and past the length from which they are read several at
     * a time (small_long_rows: F32 from 4097 columns, F16/BF16 from 5462): row counts that leave
     * 0-3 rows over, column tails of several lengths; then two and three tokens */
    for (int ti = 0; ti < 3; ti++) {
        check_matmul(ops, float_types[ti], 9, 4096, 1, 0, 9, false);
        check_matmul(ops, float_types[ti], 7, 4097, 1, 0, 7, false);
        check_matmul(ops, float_types[ti], 10, 4119, 1, 0, 10, false);
        check_matmul(ops, float_types[ti], 11, 5633, 1, 0, 11, false);
        check_matmul(ops, float_types[ti], 6, 6150, 1, 1, 6, false);
        check_matmul(ops, float_types[ti], 12, 6151, 1, 0, 12, false);
        /* two and three tokens (draft verification): past the two-token threshold (activations
         * and a row over 36 KiB) for every type at 4100 and 3001 columns, F32 only at 2600 */
        check_matmul(ops, float_types[ti], 7, 4100, 2, 0, 7, false);
        check_matmul(ops, float_types[ti], 10, 3001, 3, 0, 10, false);
        check_matmul(ops, float_types[ti], 5, 2600, 3, 0, 5, false);
        check_matmul(ops, float_types[ti], 9, 6147, 2, 2, 9, false);
    }
    /* long rows (129 blocks) for a batch of 5 and 8 tokens */
    check_matmul(ops, VWN_TYPE_Q8_0, 9, 4128, 5, 0, 9, false);
    check_matmul(ops, VWN_TYPE_Q8_0, 9, 4128, 8, 0, 9, true);
    /* rows too long for the SIMD kernels' prepared activations (over 128 groups of 8 blocks:
     * 1032 blocks), which take their unprepared path */
    check_matmul(ops, VWN_TYPE_Q8_0, 3, 33024, 1, 0, 3, false);
    check_matmul(ops, VWN_TYPE_Q8_0, 3, 33024, 2, 0, 3, true);
    /* Q4_0: row counts that are not multiples of 4 or 16 (the tiles), 1 to 129 blocks (partial
     * groups of 4 and 8 blocks: 1, 2, 3, 5, 6, 7 blocks in the last), T across the SIMD kernels'
     * token passes (up to 8 tokens each; with 129 blocks at most 7), exact sums and random ones */
    static const int64_t q4_cols[] = {32, 96, 160, 192, 224, 544, 4128, 256, 768};
    static const int64_t q4_T[] = {1, 3, 5, 8, 9, 17};
    static const int64_t q4_rows[] = {1, 3, 7, 13, 19, 37, 5};
    for (int ci = 0; ci < 9; ci++)
        for (int k = 0; k < 6; k++) {
            int64_t rows = q4_rows[(ci + k) % 7], cols = q4_cols[ci], T = q4_T[k];
            check_matmul(ops, VWN_TYPE_Q4_0, rows, cols, T, 0, rows, false);
            check_matmul(ops, VWN_TYPE_Q4_0, rows, cols, T, 0, rows, true);
        }
    /* rows too long for the prepared activations (1032 and 1025 blocks: a short last group) */
    check_matmul(ops, VWN_TYPE_Q4_0, 3, 33024, 1, 0, 3, false);
    check_matmul(ops, VWN_TYPE_Q4_0, 5, 33024, 3, 0, 5, true);
    check_matmul(ops, VWN_TYPE_Q4_0, 2, 32800, 9, 0, 2, true);
    /* sub-ranges of rows; and sizes past every blocking of the GEMMs (tokens > 48, rows > 12,
     * cols > 2 x 512 with an odd block count) */
    for (int ti = 0; ti < 5; ti++) {
        int32_t type = ti < 3 ? float_types[ti] : ti == 3 ? VWN_TYPE_Q8_0 : VWN_TYPE_Q4_0;
        check_matmul(ops, type, 45, 1056, 53, 0, 45, false);
        check_matmul(ops, type, 45, 1056, 53, 7, 38, false);
        if (!takes_q8(type)) check_matmul(ops, type, 29, 1057, 50, 0, 29, false);
        else check_matmul(ops, type, 29, 1056, 50, 0, 29, true);
        check_matmul(ops, type, 37, 96, 5, 3, 30, false);
        check_matmul(ops, type, 37, 96, 1, 17, 18, false);
        check_matmul(ops, type, 37, 96, 13, 9, 37, false);
        check_matmul(ops, type, 37, 96, 2, 5, 5, false);
        /* AVX-512 float panels (gemm_avx512.c): more rows than a row block (30 panels), a range
         * that starts and ends inside panels, columns past a 256-column block, token tiles of 9
         * (27: whole tiles; 31: a short last one) and tiles of 3 panels (1070 rows: a row block
         * ending in a tile of one panel) */
        if (!takes_q8(type)) {
            check_matmul(ops, type, 1100, 300, 27, 5, 1093, false);
            check_matmul(ops, type, 1100, 300, 31, 5, 1070, false);
        }
        /* whole octs: Q8_0 also packed; chunks of 6 and 7 tokens: one row at a time, then pairs */
        check_matmul(ops, type, 21, 1024, 13, 3, 20, false);
        /* ranges long enough for rows side by side from segments (tile_float.h, seg_rows: 64 KiB
         * a segment), with rows left over: every segment width the levels use (1-4 tokens), and
         * token groups (AVX2 4-16 tokens, AVX-512 5-32) with short last groups, and past them */
        static const int64_t seg_T[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 16, 17, 32, 33};
        for (int k = 0; k < 13; k++) {
            const int64_t t = seg_T[k];
            check_matmul(ops, type, 141, 1056, t, 3, 140, false);
            check_matmul(ops, type, 141, 1024, t, 3, 140, false); /* whole octs: Q8_0 packed too */
        }
        /* one and two tokens over packed Q8_0 rows four at a time from segments (ops_avx512.c
         * rows_seg_packed: 64 KiB a quarter, 1088-byte rows), with rows left over; three tokens
         * take the pairs from halves (the packed rows' results are held to the file layout's bit
         * for bit, which test_matmul_consistent holds to every T) */
        if (type == VWN_TYPE_Q8_0)
            for (int t = 1; t <= 3; t++) check_matmul(ops, type, 263, 1024, t, 3, 262, false);
        /* long rows (the activations and a row overflow L1), from segments */
        check_matmul(ops, type, 43, 8800, 1, 1, 42, false);
        check_matmul(ops, type, 43, 8800, 2, 0, 43, false);
        check_matmul(ops, type, 21, 1024, 2, 5, 21, true);
    }
}

/* Q4_0 at the extremes of the int sums: nibbles all 15 or all 0 (values 7 and -8) against
 * activations all +-127, the largest partial sums a kernel forms (SIMD levels add products in
 * 16-bit lanes). Unit scales: the results are exact integers, the same at every level. */
static void test_matmul_q4_extremes(const vwn_ops *ops) {
    enum { ROWS = 3, COLS = 288, NB = COLS / 32, T = 3 };
    static vwn_block_q4_0 w[ROWS][NB];
    static vwn_block_q8_0 xq[T][NB];
    static const int val[ROWS] = {7, -8, 0}; /* row 2: nibbles 15 and 0 alternating bytes */
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < NB; k++) {
            w[r][k].d = vwn_fp32_to_fp16(1.0f);
            for (int j = 0; j < 16; j++)
                w[r][k].qs[j] = r == 0 ? 0xFF : r == 1 ? 0x00 : (j % 2 ? 0xFF : 0x00);
        }
    for (int t = 0; t < T; t++)
        for (int k = 0; k < NB; k++) {
            xq[t][k].d = vwn_fp32_to_fp16(1.0f);
            for (int j = 0; j < 32; j++)
                xq[t][k].qs[j] = (int8_t)(t == 0 ? 127 : t == 1 ? -127 : (j % 2 ? 127 : -127));
        }
    vwn_mat m = {w, VWN_TYPE_Q4_0, ROWS, COLS, vwn_row_bytes(VWN_TYPE_Q4_0, COLS), NULL};
    float y[T][ROWS];
    ops->matmul(&m, NULL, COLS, xq, T, &y[0][0], ROWS, 0, ROWS);
    int bad = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < ROWS; r++) {
            double want = 0;
            for (int c = 0; c < COLS; c++) {
                const int j = c % 32 % 16; /* the byte holding value c of its block */
                const int wv = r < 2 ? val[r] : (j % 2 ? 7 : -8);
                const int xv = t == 0 ? 127 : t == 1 ? -127 : (c % 32 % 2 ? 127 : -127);
                want += wv * xv;
            }
            bad += (double)y[t][r] != want;
        }
    CHECK_MSG(bad == 0, "[%s] %d Q4_0 extreme sums wrong", ops->name, bad);
}

/* Each (row, token) result must not depend on which other rows and tokens share its call: the
 * forward pass relies on decode (T = 1) and prefill (T > 1) agreeing, whatever the thread split. */
static void test_matmul_consistent(const vwn_ops *ops) {
    static const int32_t types[] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_BF16, VWN_TYPE_Q8_0,
                                    VWN_TYPE_Q4_0};
    /* the second shape has long rows: a T-token batch of them may take another small-T path; the
     * third is one token past a small-T pass (T = 9: two passes, of 4 and 5 tokens); the first
     * runs the float GEMM rows first (its activations fit in L2), the fourth token blocks first
     * (260 x 1056 floats: over 1 MiB); the last four (float types only) end in a partial block of
     * either parity, as the SIMD float dots sum even and odd blocks in two chains: AVX-512's
     * 16-column blocks, even (block 62 of 1000 columns, and of 1003) and odd (63 of 1016 and of
     * 1013), and AVX2's 8-column blocks, odd (125 of 1003) and even (126 of 1013); the ninth in
     * the GEMM's second column block (1030 columns: KC = 1024 and 6); the last two have rows
     * long enough for one token to take several rows side by side (small_long_rows), ending in a
     * partial block of even (6147) and odd (5659) index for both block widths; the last two have
     * ranges long enough for rows from segments (tile_float.h, seg_rows: 64 KiB a segment) and, at
     * 4-32 tokens, token groups over column blocks (seg_groups: 256 and 1024 columns a block) --
     * 1100 columns end in a partial block of AVX2's and AVX-512's; 33 tokens take the GEMM; the
     * last has Q8_0 rows of whole quads over a range long enough for one and two tokens to take
     * rows from four and two segments (ops_avx2.c rows_seg_q8) */
    enum { NSHAPES = 14 };
    static const int64_t shapes[NSHAPES][3] = {{45, 1056, 53}, {13, 4128, 10}, {19, 544, 9}, {11, 1056, 260},
                                               {7, 1000, 53}, {5, 1016, 11}, {6, 1003, 13}, {4, 1013, 21},
                                               {5, 1030, 13}, {11, 6147, 5}, {9, 5659, 3}, {141, 1056, 24},
                                               {139, 1100, 33}, {263, 1024, 5}};
    for (int ci = 0; ci < 5 * NSHAPES; ci++) {
        const int si = ci / 5, ti = ci % 5;
        int64_t rows = shapes[si][0], cols = shapes[si][1], T = shapes[si][2];
        if (cols % 32 != 0 && (types[ti] == VWN_TYPE_Q8_0 || types[ti] == VWN_TYPE_Q4_0)) continue;
        test_mat m;
        make_mat(&m, types[ti], rows, cols, false);
        vwn_mat w = as_vwn(&m);
        float *X = malloc(sizeof(float) * (size_t)(T * cols));
        vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * (size_t)(T * cols / 32));
        float *Y = malloc(sizeof(float) * (size_t)(T * rows));
        float *Y1 = malloc(sizeof(float) * (size_t)(T * rows));
        make_x(X, cols, xq, T, cols, false);
        ops->matmul(&w, X, cols, xq_for(types[ti], xq), T, Y, rows, 0, rows);
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = 0; r < rows; r += 3) {
                int64_t r1 = r + 3 < rows ? r + 3 : rows;
                ops->matmul(&w, X + t * cols, cols, xq_for(types[ti], xq + t * cols / 32), 1, Y1 + t * rows, rows, r, r1);
            }
        CHECK_MSG(memcmp(Y, Y1, sizeof(float) * (size_t)(T * rows)) == 0,
                  "[%s] %s matmul of T=%lld differs from T=1 calls", ops->name,
                  vwn_type_name(types[ti]), (long long)T);
        /* one token over all the rows at once (the long-row passes take them several at a time) */
        for (int64_t t = 0; t < T; t++)
            ops->matmul(&w, X + t * cols, cols, xq_for(types[ti], xq + t * cols / 32), 1, Y1 + t * rows, rows, 0, rows);
        CHECK_MSG(memcmp(Y, Y1, sizeof(float) * (size_t)(T * rows)) == 0,
                  "[%s] %s matmul of T=%lld differs from T=1 calls over all rows", ops->name,
                  vwn_type_name(types[ti]), (long long)T);
        /* small batches (draft verification: T = 2..8 may take its own path) */
        static const int64_t small_T[] = {2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 32};
        for (int k = 0; k < 11; k++) {
            int64_t ts = small_T[k], n = T / ts * ts;
            for (int64_t t = 0; t < n; t += ts)
                ops->matmul(&w, X + t * cols, cols, xq_for(types[ti], xq + t * cols / 32), ts, Y1 + t * rows, rows, 0, rows);
            CHECK_MSG(memcmp(Y, Y1, sizeof(float) * (size_t)(n * rows)) == 0,
                      "[%s] %s matmul of T=%lld differs from T=%lld calls", ops->name,
                      vwn_type_name(types[ti]), (long long)T, (long long)ts);
        }
        free(X), free(xq), free(Y), free(Y1);
        free_mat(&m);
    }
}

/* The threaded driver against one serial matmul call, for every type, thread count and number of
 * tokens: the balanced split (matmul.c) in claims down to one chunk up to 4 tokens, down to 4
 * chunks above. */
static void test_matmul_mt(const vwn_ops *ops) {
    static const int32_t types[] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_BF16, VWN_TYPE_Q8_0,
                                    VWN_TYPE_Q4_0};
    static const int64_t Ts[] = {1, 2, 4, 7, 27};
    for (int ti = 0; ti < 5; ti++) {
        /* 300 x 512: 154K multiply-adds a token, above the threading cutoff; 300 rows end in a
         * partial chunk; 27 tokens: AVX-512 float activations prepared by both threads */
        const int64_t rows = 300, cols = 512, T_max = 27;
        test_mat m;
        make_mat(&m, types[ti], rows, cols, false);
        vwn_mat w = as_vwn(&m);
        float *X = malloc(sizeof(float) * (size_t)(T_max * cols));
        vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * (size_t)(T_max * cols / 32));
        make_x(X, cols, xq, T_max, cols, false);
        size_t scratch_size = vwn_matmul_scratch_size(ops, &w, T_max);
        CHECK(scratch_size == (takes_q8(types[ti]) ? (size_t)(T_max * cols / 32) * 34
                               : ops->prep_bytes ? ops->prep_bytes(T_max, cols) : 0));
        void *scratch = malloc(scratch_size + 1);
        float *Ys = malloc(sizeof(float) * (size_t)(T_max * rows));
        float *Y = malloc(sizeof(float) * (size_t)(T_max * rows));
        for (int k = 0; k < 5; k++) {
            const int64_t T = Ts[k];
            /* serial reference: quantize with this level, one matmul call over all rows */
            if (takes_q8(types[ti]))
                for (int64_t t = 0; t < T; t++) ops->quantize_q8_0(X + t * cols, xq + t * cols / 32, cols);
            ops->matmul(&w, X, cols, xq_for(types[ti], xq), T, Ys, rows, 0, rows);
            for (int n = 1; n <= 4; n++) {
                for (int64_t i = 0; i < T * rows; i++) Y[i] = NAN;
                vwn_matmul_mt(ops, &w, X, T, Y, scratch, n);
                CHECK_MSG(memcmp(Y, Ys, sizeof(float) * (size_t)(T * rows)) == 0,
                          "[%s] vwn_matmul_mt %s, T = %lld, with %d threads differs from serial", ops->name,
                          vwn_type_name(types[ti]), (long long)T, n);
            }
        }
        free(scratch), free(Ys), free(Y), free(X), free(xq);
        free_mat(&m);
    }
    /* several products of one input in one call (vwn_matmul_mt_many, all of one type): the same
     * as one serial matmul each */
    for (int ti = 0; ti < 5; ti++) {
        enum { COUNT = 3 };
        const int64_t cols = 256, T_max = 5, rows[COUNT] = {270, 33, 529};
        test_mat m[COUNT];
        vwn_mat w[COUNT];
        const vwn_mat *wp[COUNT];
        float *Y[COUNT], *Ys[COUNT];
        float *X = malloc(sizeof(float) * (size_t)(T_max * cols));
        vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * (size_t)(T_max * cols / 32));
        make_x(X, cols, xq, T_max, cols, false);
        for (int64_t t = 0; t < T_max; t++) ops->quantize_q8_0(X + t * cols, xq + t * cols / 32, cols);
        for (int i = 0; i < COUNT; i++) {
            make_mat(&m[i], types[ti], rows[i], cols, false);
            w[i] = as_vwn(&m[i]), wp[i] = &w[i];
            Y[i] = malloc(sizeof(float) * (size_t)(T_max * rows[i]));
            Ys[i] = malloc(sizeof(float) * (size_t)(T_max * rows[i]));
        }
        void *scratch = malloc(vwn_matmul_scratch_size(ops, &w[0], T_max) + 1);
        for (int64_t T = 1; T <= T_max; T += 2)
            for (int n = 2; n <= 3; n++) {
                for (int i = 0; i < COUNT; i++) {
                    ops->matmul(&w[i], X, cols, xq_for(types[ti], xq), T, Ys[i], rows[i], 0, rows[i]);
                    for (int64_t j = 0; j < T * rows[i]; j++) Y[i][j] = NAN;
                }
                vwn_matmul_mt_many(ops, wp, Y, COUNT, X, T, scratch, n);
                for (int i = 0; i < COUNT; i++)
                    CHECK_MSG(memcmp(Y[i], Ys[i], sizeof(float) * (size_t)(T * rows[i])) == 0,
                              "[%s] vwn_matmul_mt_many %s, T = %lld, %d threads: product %d differs from serial",
                              ops->name, vwn_type_name(types[ti]), (long long)T, n, i);
            }
        for (int i = 0; i < COUNT; i++) {
            free(Y[i]), free(Ys[i]);
            free_mat(&m[i]);
        }
        free(scratch), free(X), free(xq);
    }
}

/* The balanced split hands a slow thread's rows to the others. A probe kernel counts how often
 * each row is computed and by which thread; the calling thread (team thread 0, whose static share
 * is the first half of the rows) stalls in its first chunk until another thread has computed one
 * of its rows, i.e. stolen from its run. Every row must still be computed exactly once, with the
 * same bits. One token (claims down to one chunk), and 9 tokens: claims of at least 4 chunks, so
 * 512 rows -- the caller's first claim is 8 chunks, and 8 are left to steal half of. */
static struct {
    const vwn_ops *real;
    pthread_t caller;
    int64_t caller_share;               /* rows [0, caller_share): the caller's static run */
    _Atomic int computed[512];
    _Atomic int others_in_caller_share; /* rows of the caller's run computed by another thread */
    _Atomic int other_threads;          /* calls made by another thread */
} probe;

static void probe_matmul(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T, float *Y,
                         int64_t ldy, int64_t r0, int64_t r1) {
    const bool caller = pthread_equal(pthread_self(), probe.caller);
    if (!caller) atomic_fetch_add(&probe.other_threads, 1);
    for (int64_t r = r0; r < r1; r++) {
        atomic_fetch_add(&probe.computed[r], 1);
        if (!caller && r < probe.caller_share) atomic_fetch_add(&probe.others_in_caller_share, 1);
    }
    if (caller && r0 == 0) { /* the caller's first chunk: wait (up to 5 s) for a steal */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do clock_gettime(CLOCK_MONOTONIC, &now);
        while (atomic_load(&probe.others_in_caller_share) == 0 &&
               (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) * 1e-9 < 5.0);
    }
    probe.real->matmul(W, X, ldx, xq, T, Y, ldy, r0, r1);
}

static void test_matmul_steal(const vwn_ops *ops) {
    static const int64_t cases[2][2] = {{256, 1}, {512, 9}}; /* rows (16 or 32 chunks), tokens */
    for (int c = 0; c < 2; c++) {
        const int64_t rows = cases[c][0], T = cases[c][1], cols = 1024; /* >= 262K multiply-adds: threaded */
        test_mat m;
        make_mat(&m, VWN_TYPE_F32, rows, cols, false);
        vwn_mat w = as_vwn(&m);
        float *X = malloc(sizeof(float) * (size_t)(T * cols)), *Y = malloc(sizeof(float) * (size_t)(T * rows)),
              *Ys = malloc(sizeof(float) * (size_t)(T * rows));
        vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * (size_t)(T * cols / 32));
        make_x(X, cols, xq, T, cols, false);
        ops->matmul(&w, X, cols, NULL, T, Ys, rows, 0, rows);
        vwn_ops slow = *ops;
        slow.matmul = probe_matmul;
        probe.real = ops;
        probe.caller = pthread_self();
        probe.caller_share = rows / 2;
        for (int64_t r = 0; r < rows; r++) atomic_store(&probe.computed[r], 0);
        atomic_store(&probe.others_in_caller_share, 0);
        atomic_store(&probe.other_threads, 0);
        vwn_matmul_mt(&slow, &w, X, T, Y, NULL, 2);
        int wrong = 0;
        for (int64_t r = 0; r < rows; r++) wrong += atomic_load(&probe.computed[r]) != 1;
        CHECK_MSG(wrong == 0, "[%s] balanced split, %d tokens: %d rows not computed exactly once", ops->name, (int)T,
                  wrong);
        CHECK_MSG(memcmp(Y, Ys, sizeof(float) * (size_t)(T * rows)) == 0, "[%s] balanced split, %d tokens: differs from serial",
                  ops->name, (int)T);
        if (atomic_load(&probe.other_threads) == 0)
            printf("[%s] balanced split: one thread only (no OpenMP, or a team of one): steal not tested\n", ops->name);
        else
            CHECK_MSG(atomic_load(&probe.others_in_caller_share) > 0,
                      "[%s] balanced split, %d tokens: the stalled thread's rows were not taken by the other", ops->name,
                      (int)T);
        free(X), free(xq), free(Y), free(Ys);
        free_mat(&m);
    }
}

/* ---- vector helpers and fused kernels ------------------------------------------------------- */

static void test_vectors(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    static const int64_t ns[] = {1, 3, 7, 16, 17, 33, 64, 100, 1023};
    enum { MAX = 1023 };
    static float a[MAX], b[MAX], c[MAX], y1[MAX], y2[MAX], g[MAX];
    int bad = 0;
    for (int k = 0; k < 9; k++) {
        int64_t n = ns[k];
        double sab = 0, saa = 0;
        for (int64_t i = 0; i < n; i++) {
            a[i] = rnd_unit(), b[i] = rnd_unit(), c[i] = rnd_unit() * 8.0f, g[i] = rnd_unit() + 1.0f;
            sab += fabs((double)a[i] * b[i]), saa += (double)a[i] * a[i];
        }
        double tol = 1e-5 * sqrt((double)n);
        if (fabs(ops->dot(a, b, n) - ref->dot(a, b, n)) > tol * sab) bad++;
        if (fabs(ops->sum_sq(a, n) - ref->sum_sq(a, n)) > tol * saa) bad++;
        memcpy(y1, b, sizeof(float) * (size_t)n), memcpy(y2, b, sizeof(float) * (size_t)n);
        ops->axpy(y1, 0.37f, a, n), ref->axpy(y2, 0.37f, a, n);
        for (int64_t i = 0; i < n; i++) bad += fabsf(y1[i] - y2[i]) > 1e-6f * (fabsf(y2[i]) + 1.0f);
        ops->scale(y1, -1.7f, n), ref->scale(y2, -1.7f, n);
        for (int64_t i = 0; i < n; i++) bad += fabsf(y1[i] - y2[i]) > 1e-6f * (fabsf(y2[i]) + 1.0f);
        /* rmsnorm: relative error of the scale (a sum of squares) plus one rounding per element */
        ops->rmsnorm(y1, a, g, n, 1e-5f), ref->rmsnorm(y2, a, g, n, 1e-5f);
        for (int64_t i = 0; i < n; i++) bad += fabsf(y1[i] - y2[i]) > (float)tol * (fabsf(y2[i]) + 1e-6f);
        memcpy(y1, a, sizeof(float) * (size_t)n);
        ops->rmsnorm(y1, y1, NULL, n, 1e-5f), ref->rmsnorm(y2, a, NULL, n, 1e-5f);
        for (int64_t i = 0; i < n; i++) bad += fabsf(y1[i] - y2[i]) > (float)tol * (fabsf(y2[i]) + 1e-6f);
        /* silu_mul: a vector exp is good to a few ulp; 1e-6 relative is ~8 ulp */
        ops->silu_mul(y1, c, b, n), ref->silu_mul(y2, c, b, n);
        for (int64_t i = 0; i < n; i++) bad += fabsf(y1[i] - y2[i]) > 1e-6f * fabsf(y2[i]) + 1e-30f;
        /* softmax_exp: exp(x - max) to a few ulp, the sum to float rounding of n terms */
        for (int64_t i = 0; i < n; i++) y1[i] = y2[i] = c[i] * 4.0f; /* scores up to +-32 */
        float m1 = 0.0f, m2 = c[0] * 4.0f;
        for (int64_t i = 1; i < n; i++) m2 = c[i] * 4.0f > m2 ? c[i] * 4.0f : m2;
        const float s1 = ops->softmax_exp(y1, n, &m1), s2 = ref->softmax_exp(y2, n, NULL);
        bad += fabsf(s1 - s2) > 1e-6f * (float)n * s2;
        bad += fbits(m1) != fbits(m2); /* the max it reports is the exact max */
        for (int64_t i = 0; i < n; i++) bad += fabsf(y1[i] - y2[i]) > 1e-6f * fabsf(y2[i]) + 1e-30f;
    }
    /* attention: scores of 37 keys and the weighted sum of 37 values, head_dim 1..128 */
    for (int64_t hd = 1; hd <= 256; hd = hd * 2 + 1) {
        int64_t n_kv = 37, ld = hd + 5;
        float *K = malloc(sizeof(float) * (size_t)(n_kv * ld)), q[300], s1[37], s2[37], p[37];
        for (int64_t i = 0; i < n_kv * ld; i++) K[i] = rnd_unit();
        for (int64_t i = 0; i < hd; i++) q[i] = rnd_unit();
        for (int64_t j = 0; j < n_kv; j++) p[j] = fabsf(rnd_unit());
        ops->attn_scores(s1, q, K, ld, n_kv, hd, 0.125f);
        ref->attn_scores(s2, q, K, ld, n_kv, hd, 0.125f);
        for (int64_t j = 0; j < n_kv; j++) bad += fabsf(s1[j] - s2[j]) > 1e-5f * sqrtf((float)hd) * 0.125f * (float)hd;
        ops->attn_values(y1, p, K, ld, n_kv, hd, false);
        ref->attn_values(y2, p, K, ld, n_kv, hd, false);
        for (int64_t i = 0; i < hd; i++) bad += fabsf(y1[i] - y2[i]) > 1e-5f * sqrtf((float)n_kv) * (float)n_kv;
        free(K);
    }
    CHECK_MSG(bad == 0, "[%s] %d vector helper results differ from scalar", ops->name, bad);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static void test_dispatch(void) {
    CHECK(vwn_ops_get(VWN_SIMD_SCALAR) != NULL);
    CHECK(vwn_simd_supported(VWN_SIMD_SCALAR));
    CHECK(vwn_simd_supported(vwn_simd_best()));
    CHECK(vwn_ops_get(vwn_simd_best())->level == (int)vwn_simd_best());
    CHECK(strcmp(vwn_simd_name(VWN_SIMD_AVX512), "avx512") == 0);
    CHECK(strcmp(vwn_simd_name(VWN_SIMD_AUTO), "auto") == 0);
    CHECK(vwn_ops_get(42) == NULL);
    CHECK(!vwn_simd_supported((vwn_simd)42));

    setenv("VWN_SIMD", "scalar", 1);
    CHECK(vwn_ops_best() == vwn_ops_get(VWN_SIMD_SCALAR));
    setenv("VWN_SIMD", "no-such-level", 1);
    CHECK(vwn_ops_best() == vwn_ops_get(vwn_simd_best()));
    for (int i = 0; i < N_LEVELS; i++) {
        setenv("VWN_SIMD", vwn_simd_name((vwn_simd)levels[i]), 1);
        const vwn_ops *want = vwn_ops_get(levels[i]) ? vwn_ops_get(levels[i]) : vwn_ops_get(vwn_simd_best());
        CHECK(vwn_ops_best() == want);
    }
    unsetenv("VWN_SIMD");
    CHECK(vwn_ops_best() == vwn_ops_get(vwn_simd_best()));
    CHECK(vwn_ops_get(VWN_SIMD_AUTO) == vwn_ops_best());
}

/* mix against the scalar reference on odd sizes, both coefficient layouts, with and without
 * accumulation. Tolerance: fp32 rounding of n_in products, 1e-5 relative to sum |a b|. */
static void test_mix(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    /* every partial tile (1-3 outputs after whole tiles of 4), and the column chunks of each level:
     * 16 x 6 (AVX-512), 8 x 3 (AVX2), 4 x 6 (NEON), each full, one short and one over */
    const int64_t outs[] = {1, 2, 3, 4, 5, 6, 9, 72}, ins[] = {1, 2, 7, 64, 65};
    const int64_t cols[] = {1, 3, 4, 5, 8, 12, 15, 16, 17, 23, 24, 25, 47, 95, 96, 97, 200};
    int bad = 0, runs = 0, bad_twin = 0;
    const vwn_ops *twin = ops->level == VWN_SIMD_AVX512 ? vwn_ops_get(VWN_SIMD_AVX2) : NULL;
    for (size_t a = 0; a < sizeof outs / sizeof outs[0]; a++)
        for (size_t b = 0; b < sizeof ins / sizeof ins[0]; b++)
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
                for (int layout = 0; layout < 2; layout++)
                    for (int acc = 0; acc < 2; acc++) {
                        const int64_t no = outs[a], ni = ins[b], nc = cols[c], ldo = nc + 3, ldb = nc + 1;
                        const int64_t ao = layout ? 1 : ni + 2, ai = layout ? no + 1 : 1;
                        float *A = malloc(sizeof(float) * (size_t)(no * ao + ni * ai + 4));
                        float *B = malloc(sizeof(float) * (size_t)(ni * ldb));
                        float *y = malloc(sizeof(float) * (size_t)(no * ldo)), *z = malloc(sizeof(float) * (size_t)(no * ldo));
                        for (int64_t k = 0; k < no * ao + ni * ai + 4; k++) A[k] = rnd_unit();
                        for (int64_t k = 0; k < ni * ldb; k++) B[k] = rnd_unit();
                        for (int64_t k = 0; k < no * ldo; k++) y[k] = z[k] = rnd_unit();
                        /* the x86 levels run the same FMA chain per column: the same bits */
                        float *w = twin ? malloc(sizeof(float) * (size_t)(no * ldo)) : NULL;
                        if (w) memcpy(w, y, sizeof(float) * (size_t)(no * ldo));
                        ops->mix(y, ldo, A, ao, ai, B, ldb, no, ni, nc, acc);
                        ref->mix(z, ldo, A, ao, ai, B, ldb, no, ni, nc, acc);
                        if (w) {
                            twin->mix(w, ldo, A, ao, ai, B, ldb, no, ni, nc, acc);
                            if (memcmp(w, y, sizeof(float) * (size_t)(no * ldo)) != 0) bad_twin++;
                            free(w);
                        }
                        for (int64_t o = 0; o < no; o++)
                            for (int64_t k = 0; k < ldo; k++) {
                                const float want = z[o * ldo + k], got = y[o * ldo + k];
                                /* columns past nc must be left alone */
                                if (k >= nc ? got != want : fabsf(got - want) > 1e-5f * (float)(ni + 1) * 2.0f) bad++;
                            }
                        runs++;
                        free(A); free(B); free(y); free(z);
                    }
    CHECK_MSG(bad == 0, "%s mix: %d wrong values over %d shapes", ops->name, bad, runs);
    CHECK_MSG(bad_twin == 0, "%s mix: %d of %d shapes not bit-identical to avx2", ops->name, bad_twin, runs);
}

/* ghc_coef against the scalar reference on odd sizes, over inputs from 0 to past the tanh cap
 * (|x| > 9) and both signs, and exact values at 0 and far out. Tolerance: the two tanh are each a
 * few float ulps of 1 off (ops.h), so 1e-6 absolute on tanh, times |scale|. Past n nothing may be
 * written. */
static void test_ghc_coef(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    static const int64_t ns[] = {1, 3, 7, 12, 15, 16, 17, 31, 80, 81, 1023};
    enum { MAX = 1024 };
    static float c0[MAX], sc[MAX], y1[MAX], y2[MAX];
    int bad = 0;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const int64_t n = ns[k];
        const float mult = k % 2 ? 0.37f : 2.5f;
        for (int64_t i = 0; i < MAX; i++) {
            c0[i] = rnd_unit(), sc[i] = rnd_unit() * 3.0f;
            y1[i] = y2[i] = rnd_unit() * (float)(1 << (i % 5)); /* up to 16 / mult: past the cap */
        }
        ops->ghc_coef(y1, c0, sc, n, mult);
        ref->ghc_coef(y2, c0, sc, n, mult);
        for (int64_t i = 0; i < MAX; i++) {
            if (i >= n ? y1[i] != y2[i] : fabsf(y1[i] - y2[i]) > 1e-6f * (fabsf(sc[i]) + 1.0f)) bad++;
        }
    }
    /* against double tanh directly: the scalar one too */
    for (int64_t i = 0; i < 200; i++) {
        const float x = (float)(i - 100) * 0.11f;
        float c = x, zero = 0.0f, one = 1.0f;
        ops->ghc_coef(&c, &zero, &one, 1, 1.0f);
        if (fabs((double)c - tanh((double)x)) > 1e-6) bad++;
    }
    float c = 0.0f, half = 0.5f, one = 1.0f;
    ops->ghc_coef(&c, &half, &one, 1, 1.0f);
    if (c != 0.5f) bad++;
    CHECK_MSG(bad == 0, "%s ghc_coef: %d wrong values", ops->name, bad);
}

/* Runs every test of one table; returns true if none failed. */
/* ---- the fp16 KV cache (context param kv_type = F16) ------------------------------------------
 * to_f16 must round exactly as vwn_fp32_to_fp16 (nearest even; overflow to infinity; subnormals);
 * attn_scores_f16 / attn_values_f16 must give, bit for bit, what the same level's fp32 kernels give
 * on the rows widened to fp32 (the widening is exact and the fma order the same), and so differ
 * from the scalar level only by summation order (the tolerance of test_vectors). Odd head sizes,
 * strides and key counts exercise every tail. */
static void test_kv_f16(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    int bad = 0;
    /* conversion: random magnitudes from 2^-30 to 2^17 (subnormal fp16 to overflow), edge values */
    enum { NC = 1031 };
    static float x[NC];
    static uint16_t h[NC];
    for (int i = 0; i < NC; i++) x[i] = rnd_unit() * ldexpf(1.0f, (int)(rnd_u32() % 48) - 30);
    const float edges[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -1e30f, 5.9604645e-8f, 2.9802322e-8f,
                           2.9802326e-8f, 6.1035156e-5f, 1.0009766f, 1.0004883f, 1.0014648f, INFINITY, -INFINITY};
    for (int i = 0; i < (int)(sizeof edges / sizeof edges[0]); i++) x[i * 7] = edges[i];
    for (int n = 1; n <= NC; n = n * 3 + 2) {
        memset(h, 0xff, sizeof h);
        ops->to_f16(h, x, n);
        for (int i = 0; i < n; i++) bad += h[i] != vwn_fp32_to_fp16(x[i]);
        bad += n < NC && h[n] != 0xffff; /* writes nothing past n */
    }
    CHECK_MSG(bad == 0, "[%s] to_f16 differs from vwn_fp32_to_fp16 in %d places", ops->name, bad);

    for (int64_t hd = 1; hd <= 300; hd = hd * 2 + 3) {
        const int64_t n_kv = 41, ld = hd + 3;
        uint16_t *Kh = malloc(sizeof(uint16_t) * (size_t)(n_kv * ld));
        float *Kf = malloc(sizeof(float) * (size_t)(n_kv * ld)), q[400], p[41], s1[41], s2[41], s3[41];
        float y1[400], y2[400], y3[400];
        for (int64_t i = 0; i < n_kv * ld; i++) {
            Kh[i] = vwn_fp32_to_fp16(rnd_unit() * 3.0f);
            Kf[i] = vwn_fp16_to_fp32(Kh[i]);
        }
        for (int64_t i = 0; i < hd; i++) q[i] = rnd_unit();
        for (int64_t j = 0; j < n_kv; j++) p[j] = fabsf(rnd_unit());
        ops->attn_scores_f16(s1, q, Kh, ld, n_kv, hd, 0.125f);
        ops->attn_scores(s2, q, Kf, ld, n_kv, hd, 0.125f);
        ref->attn_scores_f16(s3, q, Kh, ld, n_kv, hd, 0.125f);
        for (int64_t j = 0; j < n_kv; j++) {
            bad += fbits(s1[j]) != fbits(s2[j]);
            bad += fabsf(s1[j] - s3[j]) > 1e-5f * sqrtf((float)hd) * 0.125f * 3.0f * (float)hd;
        }
        ops->attn_values_f16(y1, p, Kh, ld, n_kv, hd, false);
        ops->attn_values(y2, p, Kf, ld, n_kv, hd, false);
        ref->attn_values_f16(y3, p, Kh, ld, n_kv, hd, false);
        for (int64_t i = 0; i < hd; i++) {
            bad += fbits(y1[i]) != fbits(y2[i]);
            bad += fabsf(y1[i] - y3[i]) > 1e-5f * sqrtf((float)n_kv) * 3.0f * (float)n_kv;
        }
        /* a key's score does not depend on where it falls in the call (attention scores pieces
         * of keys from different starts in prefill and in decoding): keys 25..40 from key 25 on */
        {
            float t1[41], t2[41];
            ops->attn_scores(t1, q, Kf + 25 * ld, ld, 16, hd, 0.125f);
            ops->attn_scores_f16(t2, q, Kh + 25 * ld, ld, 16, hd, 0.125f);
            for (int64_t j = 0; j < 16; j++)
                bad += (fbits(t1[j]) != fbits(s2[25 + j])) + (fbits(t2[j]) != fbits(s1[25 + j]));
        }
        /* the keys in pieces with accumulate (as the attention's key blocks run them): the same
         * bits as one call, for both cache types and for the scalar reference too */
        const int64_t cuts[3] = {1, 17, 40};
        for (int ci = 0; ci < 3; ci++) {
            float z1[400], z2[400], z3[400];
            const int64_t a = cuts[ci];
            ops->attn_values_f16(z1, p, Kh, ld, a, hd, false);
            ops->attn_values_f16(z1, p + a, Kh + a * ld, ld, n_kv - a, hd, true);
            ops->attn_values(z2, p, Kf, ld, a, hd, false);
            ops->attn_values(z2, p + a, Kf + a * ld, ld, n_kv - a, hd, true);
            ref->attn_values_f16(z3, p, Kh, ld, a, hd, false);
            ref->attn_values_f16(z3, p + a, Kh + a * ld, ld, n_kv - a, hd, true);
            for (int64_t i = 0; i < hd; i++)
                bad += (fbits(z1[i]) != fbits(y1[i])) + (fbits(z2[i]) != fbits(y2[i])) +
                       (fbits(z3[i]) != fbits(y3[i]));
        }
        free(Kh), free(Kf);
    }
    CHECK_MSG(bad == 0, "[%s] %d fp16-cache attention results differ", ops->name, bad);
}

/* ---- the Q8_0 KV cache (context param kv_type = Q8_0) ------------------------------------------
 * attn_scores_q8_0 / attn_values_q8_0 and the rows kernels with kv_type Q8_0 must give, bit for bit,
 * what the same level's fp32 kernels give on the rows dequantized (d * qs is exact in fp32), and so
 * differ from the scalar level only by summation order. Head widths 32-256 (a Q8_0 row is whole
 * blocks), row strides past the head, key counts around the 4-, 8- and 16-key trees, 1-9 rows,
 * values continued in pieces. Blocks carry random fp16 scales (and a zero block) and quants over
 * the whole [-127, 127]. */
static void fill_q8_rows(vwn_block_q8_0 *b, float *f, int64_t n_vals) {
    for (int64_t i = 0; i < n_vals / VWN_QK8_0; i++) {
        b[i].d = i % 37 == 5 ? 0 : vwn_fp32_to_fp16(0.002f + 0.05f * fabsf(rnd_unit()));
        for (int j = 0; j < VWN_QK8_0; j++) b[i].qs[j] = (int8_t)((int)(rnd_u32() % 255) - 127);
    }
    vwn_dequant_row(VWN_TYPE_Q8_0, b, f, n_vals);
}

static void test_kv_q8_0(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    int bad = 0, bad_rows = 0;
    enum { NKV = 70, MAXW = 256, MAXR = 9 };
    const int64_t widths[] = {32, 64, 96, 128, 160, 256};
    static vwn_block_q8_0 Kq[NKV * (MAXW + 32) / 32], Vq[NKV * (MAXW + 32) / 32];
    static float Kf[NKV * (MAXW + 32)], Vf[NKV * (MAXW + 32)];
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        const int64_t hd = widths[w], ld = hd + (int64_t)(w % 2) * 32, n_kv = 41 + (int64_t)w;
        fill_q8_rows(Kq, Kf, NKV * ld);
        fill_q8_rows(Vq, Vf, NKV * ld);
        float q[MAXW], p[NKV], s1[NKV], s2[NKV], s3[NKV], y1[MAXW], y2[MAXW], y3[MAXW];
        for (int64_t i = 0; i < hd; i++) q[i] = rnd_unit();
        for (int64_t j = 0; j < NKV; j++) p[j] = fabsf(rnd_unit());
        ops->attn_scores_q8_0(s1, q, Kq, ld, n_kv, hd, 0.125f);
        ops->attn_scores(s2, q, Kf, ld, n_kv, hd, 0.125f);
        ref->attn_scores_q8_0(s3, q, Kq, ld, n_kv, hd, 0.125f);
        for (int64_t j = 0; j < n_kv; j++) {
            bad += fbits(s1[j]) != fbits(s2[j]);
            bad += fabsf(s1[j] - s3[j]) > 1e-5f * sqrtf((float)hd) * 0.125f * 6.4f * (float)hd;
        }
        /* a key's score alone and from another start: the same bits */
        for (int64_t j = 0; j < n_kv; j++) {
            float one;
            ops->attn_scores_q8_0(&one, q, Kq + j * (ld / 32), ld, 1, hd, 0.125f);
            bad += fbits(one) != fbits(s1[j]);
        }
        ops->attn_scores_q8_0(s2, q, Kq + 7 * (ld / 32), ld, n_kv - 7, hd, 0.125f);
        for (int64_t j = 7; j < n_kv; j++) bad += fbits(s2[j - 7]) != fbits(s1[j]);
        ops->attn_values_q8_0(y1, p, Vq, ld, n_kv, hd, false);
        ops->attn_values(y2, p, Vf, ld, n_kv, hd, false);
        ref->attn_values_q8_0(y3, p, Vq, ld, n_kv, hd, false);
        for (int64_t i = 0; i < hd; i++) {
            bad += fbits(y1[i]) != fbits(y2[i]);
            bad += fabsf(y1[i] - y3[i]) > 1e-5f * sqrtf((float)n_kv) * 6.4f * (float)n_kv;
        }
        const int64_t cuts[3] = {1, 17, 40};
        for (int ci = 0; ci < 3; ci++) {
            float z1[MAXW], z3[MAXW];
            const int64_t a = cuts[ci];
            ops->attn_values_q8_0(z1, p, Vq, ld, a, hd, false);
            ops->attn_values_q8_0(z1, p + a, Vq + a * (ld / 32), ld, n_kv - a, hd, true);
            ref->attn_values_q8_0(z3, p, Vq, ld, a, hd, false);
            ref->attn_values_q8_0(z3, p + a, Vq + a * (ld / 32), ld, n_kv - a, hd, true);
            for (int64_t i = 0; i < hd; i++) bad += (fbits(z1[i]) != fbits(y1[i])) + (fbits(z3[i]) != fbits(y3[i]));
        }
        /* the rows kernels over a Q8_0 cache: each row the bits of the one-row kernels */
        const int64_t keys[] = {1, 15, 16, 17, 33, 70};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            for (int32_t nr = 1; nr <= MAXR; nr++) {
                static float qr[MAXR][MAXW], pr[MAXR][NKV], a1[MAXR][NKV], b1[MAXR][MAXW], b2[MAXR][MAXW];
                float *so[MAXR], *yo[MAXR], a2[NKV];
                const float *qs[MAXR], *ps[MAXR];
                const int64_t nk = keys[k];
                for (int32_t r = 0; r < nr; r++) {
                    for (int64_t i = 0; i < hd; i++) qr[r][i] = rnd_unit(), b1[r][i] = b2[r][i] = rnd_unit();
                    for (int64_t j = 0; j < nk; j++) pr[r][j] = fabsf(rnd_unit());
                    so[r] = a1[r], yo[r] = b1[r], qs[r] = qr[r], ps[r] = pr[r];
                }
                const bool acc = (nr + (int)k) % 2 == 1;
                if (ops->attn_scores_rows) ops->attn_scores_rows(so, qs, nr, VWN_TYPE_Q8_0, Kq, ld, nk, hd, 0.125f);
                if (ops->attn_values_rows) ops->attn_values_rows(yo, ps, nr, VWN_TYPE_Q8_0, Vq, ld, nk, hd, acc);
                for (int32_t r = 0; r < nr; r++) {
                    ops->attn_scores_q8_0(a2, qr[r], Kq, ld, nk, hd, 0.125f);
                    ops->attn_values_q8_0(b2[r], pr[r], Vq, ld, nk, hd, acc);
                    if (ops->attn_scores_rows)
                        for (int64_t j = 0; j < nk; j++) bad_rows += fbits(a1[r][j]) != fbits(a2[j]);
                    if (ops->attn_values_rows)
                        for (int64_t i = 0; i < hd; i++) bad_rows += fbits(b1[r][i]) != fbits(b2[r][i]);
                }
            }
    }
    CHECK_MSG(bad == 0, "[%s] %d Q8_0-cache attention results differ", ops->name, bad);
    CHECK_MSG(bad_rows == 0, "[%s] %d Q8_0-cache rows-kernel results differ from a row at a time", ops->name, bad_rows);
}

/* ---- attention scores at the common head widths ----------------------------------------------
 * The widths real models use (multiples of 32, which test_vectors and test_kv_f16 step over): every
 * key of a 53-key call has the bits of the same key scored alone and from another start, for both
 * cache types (a level may not score a key differently by where it falls in a call: attention
 * scores pieces of keys from different starts in prefill and in decoding), and stays within the
 * summation-order tolerance of the scalar level. */
static void test_scores_widths(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    int bad = 0;
    const int64_t widths[] = {32, 64, 96, 128, 160, 256};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        const int64_t hd = widths[w], n_kv = 53, ld = hd + (int64_t)(w % 3) * 8;
        uint16_t *Kh = malloc(sizeof(uint16_t) * (size_t)(n_kv * ld));
        float *Kf = malloc(sizeof(float) * (size_t)(n_kv * ld)), q[256], s[53], sh[53], r[53], one, oneh;
        for (int64_t i = 0; i < n_kv * ld; i++) {
            Kh[i] = vwn_fp32_to_fp16(rnd_unit() * 2.0f);
            Kf[i] = vwn_fp16_to_fp32(Kh[i]);
        }
        for (int64_t i = 0; i < hd; i++) q[i] = rnd_unit();
        ops->attn_scores(s, q, Kf, ld, n_kv, hd, 0.125f);
        ops->attn_scores_f16(sh, q, Kh, ld, n_kv, hd, 0.125f);
        ref->attn_scores(r, q, Kf, ld, n_kv, hd, 0.125f);
        for (int64_t j = 0; j < n_kv; j++) {
            ops->attn_scores(&one, q, Kf + j * ld, ld, 1, hd, 0.125f);
            ops->attn_scores_f16(&oneh, q, Kh + j * ld, ld, 1, hd, 0.125f);
            bad += (fbits(s[j]) != fbits(one)) + (fbits(sh[j]) != fbits(oneh)) + (fbits(sh[j]) != fbits(s[j]));
            bad += fabsf(s[j] - r[j]) > 1e-5f * sqrtf((float)hd) * 0.125f * 2.0f * (float)hd;
        }
        /* from key 7 on */
        ops->attn_scores(r, q, Kf + 7 * ld, ld, n_kv - 7, hd, 0.125f);
        for (int64_t j = 7; j < n_kv; j++) bad += fbits(r[j - 7]) != fbits(s[j]);
        free(Kh), free(Kf);
    }
    CHECK_MSG(bad == 0, "[%s] %d attention scores at head widths 32-256 differ", ops->name, bad);
}

/* ---- attention over several query rows (attn_scores_rows, attn_values_rows; optional) ----------
 * Each row's scores and weighted values must be the bits of the one-row kernels of the same table
 * on that row alone: prefill takes a block of tokens together where decoding takes one, and
 * tests/test_forward.py holds the two to the same logits. Head widths below, at and past the
 * register tiles (1-4, 5-8 and over 8 vectors, with tails), 1-9 rows (tiles of 4, 2, 1), key counts
 * around the 8- and 16-key trees, both cache types, and the values continuing an accumulated sum.
 * Each of the two kernels is optional on its own. */
static void test_attention_rows(const vwn_ops *ops) {
    if (!ops->attn_scores_rows && !ops->attn_values_rows) return;
    int bad = 0, calls = 0;
    /* partial last vectors at an odd and an even vector count of every width (16, 8 and 4 lanes) */
    const int64_t widths[] = {1, 6, 8, 16, 24, 30, 40, 60, 64, 72, 100, 128, 136, 200};
    const int64_t keys[] = {1, 15, 16, 17, 33, 70};
    enum { MAXR = 9, MAXK = 70, MAXW = 200 };
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            for (int f16 = 0; f16 < 2; f16++) {
                const int64_t hd = widths[w], n_kv = keys[k], ld = hd + 5;
                const int32_t kv_type = f16 ? VWN_TYPE_F16 : VWN_TYPE_F32;
                static float Kf[MAXK * (MAXW + 5)], Vf[MAXK * (MAXW + 5)], q[MAXR][MAXW], p[MAXR][MAXK];
                static uint16_t Kh[MAXK * (MAXW + 5)], Vh[MAXK * (MAXW + 5)];
                static float s1[MAXR][MAXK], s2[MAXR][MAXK], y1[MAXR][MAXW], y2[MAXR][MAXW];
                for (int64_t i = 0; i < n_kv * ld; i++) {
                    Kh[i] = vwn_fp32_to_fp16(rnd_unit() * 2.0f), Kf[i] = vwn_fp16_to_fp32(Kh[i]);
                    Vh[i] = vwn_fp32_to_fp16(rnd_unit() * 2.0f), Vf[i] = vwn_fp16_to_fp32(Vh[i]);
                }
                const void *K = f16 ? (const void *)Kh : (const void *)Kf, *V = f16 ? (const void *)Vh : (const void *)Vf;
                for (int32_t nr = 1; nr <= MAXR; nr++) {
                    float *so[MAXR], *yo[MAXR];
                    const float *qs[MAXR], *ps[MAXR];
                    for (int32_t r = 0; r < nr; r++) {
                        for (int64_t i = 0; i < hd; i++) q[r][i] = rnd_unit();
                        for (int64_t j = 0; j < n_kv; j++) p[r][j] = fabsf(rnd_unit());
                        for (int64_t i = 0; i < hd; i++) y1[r][i] = y2[r][i] = rnd_unit();
                        so[r] = s1[r], yo[r] = y1[r], qs[r] = q[r], ps[r] = p[r];
                    }
                    const bool acc = (nr + (int)k) % 2 == 1; /* continue a sum, or start one */
                    if (ops->attn_scores_rows) ops->attn_scores_rows(so, qs, nr, kv_type, K, ld, n_kv, hd, 0.125f);
                    if (ops->attn_values_rows) ops->attn_values_rows(yo, ps, nr, kv_type, V, ld, n_kv, hd, acc);
                    for (int32_t r = 0; r < nr; r++) {
                        if (f16) {
                            ops->attn_scores_f16(s2[r], q[r], Kh, ld, n_kv, hd, 0.125f);
                            ops->attn_values_f16(y2[r], p[r], Vh, ld, n_kv, hd, acc);
                        } else {
                            ops->attn_scores(s2[r], q[r], Kf, ld, n_kv, hd, 0.125f);
                            ops->attn_values(y2[r], p[r], Vf, ld, n_kv, hd, acc);
                        }
                        if (ops->attn_scores_rows)
                            for (int64_t j = 0; j < n_kv; j++) bad += fbits(s1[r][j]) != fbits(s2[r][j]);
                        /* a row's scores (16, 8 or 4 keys summed at once) against each key alone (a
                         * horizontal sum): the same bits */
                        for (int64_t j = 0; j < n_kv; j++) {
                            float one;
                            if (f16) ops->attn_scores_f16(&one, q[r], Kh + j * ld, ld, 1, hd, 0.125f);
                            else ops->attn_scores(&one, q[r], Kf + j * ld, ld, 1, hd, 0.125f);
                            bad += fbits(one) != fbits(s2[r][j]);
                        }
                        if (ops->attn_values_rows)
                            for (int64_t i = 0; i < hd; i++) bad += fbits(y1[r][i]) != fbits(y2[r][i]);
                    }
                    calls++;
                }
            }
    CHECK_MSG(bad == 0, "[%s] %d results of the attention rows kernels differ from a row or a key at a time (%d calls)",
              ops->name, bad, calls);
}

/* Whether the library can split work over threads (built with OpenMP, as this test then is). */
#ifdef _OPENMP
#define SPLITS 1
#else
#define SPLITS 0
#endif

/* vwn_attention (lib/attention.c) on one thread and split over 2 and 3 (split = 0 forces it at any
 * size): the same bits, for decoding and prefill, with and without GQA, at odd head counts and
 * widths, over fp32, fp16 and Q8_0 caches; and within tolerance of a double-precision softmax attention. */
static void test_attention_split(const vwn_ops *ops) {
    static const int32_t shapes[][3] = {{12, 12, 64}, {6, 2, 32}, {5, 5, 48}, {8, 1, 16}, {3, 3, 128}};
    /* p0, T: decoding and prefill within one block of positions (VWN_ATT_POS_BLOCK = 512) and across
     * several: decoding over 2 and 3 blocks, a few tokens (draft verification) across a block's
     * end and over 3 blocks, chunks of 8 tokens that cross a block's end */
    static const int32_t runs[][2] = {{0, 1}, {7, 1}, {100, 1}, {0, 13}, {5, 9}, {30, 17}, {600, 1},
                                      {1100, 1}, {509, 6}, {1030, 8}, {505, 17}, {490, 40}};
    int bad_bits = 0, bad_ref = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t ri = 0; ri < sizeof runs / sizeof runs[0]; ri++)
            for (int ti = 0; ti < 3; ti++) {
                const int32_t H = shapes[si][0], Hkv = shapes[si][1], hd = shapes[si][2];
                const int32_t p0 = runs[ri][0], T = runs[ri][1], n_ctx = p0 + T + 3;
                const int32_t kv_type = ti == 0 ? VWN_TYPE_F32 : ti == 1 ? VWN_TYPE_F16 : VWN_TYPE_Q8_0;
                if (kv_type == VWN_TYPE_Q8_0 && hd % VWN_QK8_0) continue; /* Q8_0 rows: whole blocks */
                const size_t rows = (size_t)Hkv * n_ctx, rb = vwn_kv_row_bytes(kv_type, hd), cache = rows * (size_t)hd;
                void *K = calloc(rows, rb), *V = calloc(rows, rb);
                float *Kf = malloc(sizeof(float) * cache), *Vf = malloc(sizeof(float) * cache);
                float *q = malloc(sizeof(float) * (size_t)T * H * hd);
                float *out[3], *sc = malloc(sizeof(float) * vwn_attention_scratch_floats(H, hd, n_ctx, 3));
                for (size_t i = 0; i < cache; i++) {
                    float k = rnd_unit() * 2.0f, v = rnd_unit();
                    if (kv_type == VWN_TYPE_F16) {
                        ((uint16_t *)K)[i] = vwn_fp32_to_fp16(k), ((uint16_t *)V)[i] = vwn_fp32_to_fp16(v);
                        k = vwn_fp16_to_fp32(((uint16_t *)K)[i]), v = vwn_fp16_to_fp32(((uint16_t *)V)[i]);
                    } else if (kv_type == VWN_TYPE_F32) {
                        ((float *)K)[i] = k, ((float *)V)[i] = v;
                    }
                    Kf[i] = k, Vf[i] = v;
                }
                if (kv_type == VWN_TYPE_Q8_0) { /* quantized as the context stores them; the reference reads them back */
                    ops->quantize_q8_0(Kf, K, (int64_t)cache), ops->quantize_q8_0(Vf, V, (int64_t)cache);
                    vwn_dequant_row(VWN_TYPE_Q8_0, K, Kf, (int64_t)cache), vwn_dequant_row(VWN_TYPE_Q8_0, V, Vf, (int64_t)cache);
                }
                for (size_t i = 0; i < (size_t)T * H * hd; i++) q[i] = rnd_unit();
                for (int th = 0; th < 3; th++) {
                    out[th] = malloc(sizeof(float) * (size_t)T * H * hd);
                    if (th > 0 && !SPLITS) continue; /* no threads: the same serial pass again */
                    /* NaN scratch: a partial that no thread computed cannot pass on a stale value */
                    memset(sc, 0xff, sizeof(float) * vwn_attention_scratch_floats(H, hd, n_ctx, 3));
                    vwn_attention(ops, q, kv_type, K, V, p0, T, H, Hkv, hd, out[th], sc, n_ctx, th + 1,
                                  th == 0 ? INT64_MAX : 0);
                    if (th > 0) bad_bits += memcmp(out[0], out[th], sizeof(float) * (size_t)T * H * hd) != 0;
                }
                /* the reference: softmax(q k / sqrt(hd)) v in double over positions 0..p0+t */
                double *s = malloc(sizeof(double) * (size_t)n_ctx);
                for (int32_t t = 0; t < T; t++)
                    for (int32_t h = 0; h < H; h++) {
                        const int32_t kvh = h / (H / Hkv), n = p0 + t + 1;
                        const float *qh = q + ((size_t)t * H + h) * hd;
                        double mx = -1e300, sum = 0;
                        for (int32_t j = 0; j < n; j++) {
                            double d = 0;
                            for (int32_t i = 0; i < hd; i++) d += (double)qh[i] * Kf[((size_t)kvh * n_ctx + j) * hd + i];
                            s[j] = d / sqrt((double)hd);
                            if (s[j] > mx) mx = s[j];
                        }
                        for (int32_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                        for (int32_t i = 0; i < hd; i++) {
                            double o = 0;
                            for (int32_t j = 0; j < n; j++) o += s[j] / sum * Vf[((size_t)kvh * n_ctx + j) * hd + i];
                            /* |v| <= 1 and the weights sum to 1: fp32 rounding stays far below 1e-5 */
                            bad_ref += fabs(o - out[0][((size_t)t * H + h) * hd + i]) > 1e-5;
                        }
                    }
                free(s);
                for (int th = 0; th < 3; th++) free(out[th]);
                free(K), free(V), free(Kf), free(Vf), free(q), free(sc);
            }
    /* a decoded token's output has the bits of the same token in a prefill chunk (its blocks folded
     * as they come) -- the forward tests' chunked prompts against decoding rest on it */
    int bad_chunk = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int32_t p = 500; p < 1300; p += 263) {
            const int32_t H = shapes[si][0], Hkv = shapes[si][1], hd = shapes[si][2], n_ctx = p + 1, T = 8;
            const size_t cache = (size_t)Hkv * n_ctx * hd, qn = (size_t)T * H * hd;
            float *K = malloc(sizeof(float) * cache), *V = malloc(sizeof(float) * cache), *q = malloc(sizeof(float) * qn);
            float *o8 = malloc(sizeof(float) * qn), *o1 = malloc(sizeof(float) * (size_t)H * hd);
            float *sc = malloc(sizeof(float) * vwn_attention_scratch_floats(H, hd, n_ctx, 2));
            for (size_t i = 0; i < cache; i++) K[i] = rnd_unit() * 3.0f, V[i] = rnd_unit();
            for (size_t i = 0; i < qn; i++) q[i] = rnd_unit();
            for (int th = 1; th <= 2; th++) {
                vwn_attention(ops, q, VWN_TYPE_F32, K, V, p - (T - 1), T, H, Hkv, hd, o8, sc, n_ctx, th, 0);
                vwn_attention(ops, q + (size_t)(T - 1) * H * hd, VWN_TYPE_F32, K, V, p, 1, H, Hkv, hd, o1, sc, n_ctx,
                              3 - th, 0);
                bad_chunk += memcmp(o8 + (size_t)(T - 1) * H * hd, o1, sizeof(float) * (size_t)H * hd) != 0;
            }
            free(K), free(V), free(q), free(o8), free(o1), free(sc);
        }
    CHECK_MSG(bad_chunk == 0, "[%s] %d decoded tokens differ from the same token in a prefill chunk", ops->name, bad_chunk);
    CHECK_MSG(bad_bits == 0, "[%s] %d attention runs differ between 1 and 2-3 threads", ops->name, bad_bits);
    CHECK_MSG(bad_ref == 0, "[%s] %d attention outputs off the double-precision reference", ops->name, bad_ref);
}

static bool test_level(const vwn_ops *ops) {
    const vwn_ops *ref = vwn_ops_get(VWN_SIMD_SCALAR);
    int failed_before = vt_failed;
    test_quantize(ops, ref);
    test_matmul(ops);
    test_matmul_q4_extremes(ops);
    test_matmul_consistent(ops);
    test_matmul_mt(ops);
    test_matmul_steal(ops);
    test_vectors(ops);
    test_mix(ops);
    test_ghc_coef(ops);
    test_kv_f16(ops);
    test_kv_q8_0(ops);
    test_scores_widths(ops);
    test_attention_rows(ops);
    test_attention_split(ops);
    return vt_failed == failed_before;
}

/* Which parts to run: none named = all; else any of "common" (conversions, rows, dispatch), the
 * level names (scalar, avx2, avx512, neon) and "avx512-novnni" (the AVX-512 table without VNNI).
 * ctest runs each part as its own test (tests/CMakeLists.txt), so the levels run side by side on
 * the CI's cores rather than one after another. Parts named that this CPU or build cannot run
 * (nothing checked) exit with SKIPPED, which ctest reports as a skipped test, not a pass. */
#define SKIPPED 77
static bool part_wanted(int argc, char **argv, const char *part) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], part) == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        bool known = strcmp(argv[i], "common") == 0 || strcmp(argv[i], "avx512-novnni") == 0;
        for (int l = 0; l < N_LEVELS; l++) known = known || strcmp(argv[i], vwn_simd_name((vwn_simd)levels[l])) == 0;
        if (!known) {
            fprintf(stderr, "test_ops: unknown part '%s' (common, scalar, avx2, avx512, avx512-novnni, neon)\n", argv[i]);
            return 2;
        }
    }
    if (part_wanted(argc, argv, "common")) {
        test_fp16();
        test_bf16();
        test_rows();
        test_dispatch();
        printf("best SIMD level: %s\n", vwn_simd_name(vwn_simd_best()));
#if defined(__aarch64__)
        /* NEON is part of every AArch64 CPU: here it must be tested, never skipped */
        CHECK_MSG(vwn_ops_get(VWN_SIMD_NEON) != NULL && vwn_simd_best() == VWN_SIMD_NEON,
                  "the NEON level is missing on AArch64");
#endif
    }

    for (int i = 0; i < N_LEVELS; i++) {
        if (!part_wanted(argc, argv, vwn_simd_name((vwn_simd)levels[i]))) continue;
        const vwn_ops *ops = vwn_ops_get(levels[i]);
        if (!ops) {
            printf("level %-7s skipped (not supported by this CPU or build)\n",
                   vwn_simd_name((vwn_simd)levels[i]));
            continue;
        }
        rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(i + 1); /* each level's inputs, whatever ran before */
        printf("level %-7s tested: %s\n", ops->name, test_level(ops) ? "ok" : "FAILED");
    }
#if defined(__x86_64__)
    /* the AVX-512 table for CPUs without VNNI runs wherever AVX-512 does (part "avx512-novnni") */
    if (part_wanted(argc, argv, "avx512-novnni") && vwn_ops_get(VWN_SIMD_AVX512) &&
        vwn_ops_get(VWN_SIMD_AVX512) != &vwn_ops_avx512) {
        rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(N_LEVELS + 1);
        printf("level avx512 without VNNI tested: %s\n", test_level(&vwn_ops_avx512) ? "ok" : "FAILED");
    }
#endif
    if (argc > 1 && vt_passed + vt_failed == 0) {
        printf("test_ops: nothing to check in the parts named on this CPU and build\n");
        return SKIPPED;
    }
    return vt_finish("test_ops");
}

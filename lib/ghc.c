/* ghc.c -- Generalized Hyper-Connections around one sublayer (spec §2).
 *
 * The wide state of a token is H (n rows of width s); the backbone vector x has m rows of width s.
 * A coefficient matrix C (n x K, K = 2m + n) holds, per row i of H: the read weights R[i, 0..m),
 * the carry weights A[i, 0..n) and the write weights Bt[i, 0..m) (write-transposed: row j of Bt
 * says how much of each backbone segment y_k goes into wide row j).
 *
 * Column o < m + n of C says how much of row i goes into output o of the read (o < m: segment o of
 * x) or of the carry (o >= m: row o - m of G). So read and carry are one product: out_o = Σ_i C[i,o] H_i.
 *
 * The work is linear in D per token but touches the whole wide state: it is done in two passes,
 * each over one token's state while it is in cache (see ghc.h). */
#include "ghc.h"

#include <math.h>
#include <string.h>

/* Mixing products pay off from this many multiply-adds of s floats per token (else: axpy loops). */
#define GEMM_MIN_PAIRS 256

#ifdef VWN_OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

size_t vwn_ghc_tmp_floats(const vwn_hparams *hp) {
    const size_t n = (size_t)hp->ghc_n, m = (size_t)hp->ghc_m, s = (size_t)hp->seg;
    return s * n + (m + n) * n + n * s + s * m + 64;
}

static vwn_mat f32_mat(const float *data, int64_t rows, int64_t cols) {
    vwn_mat w = {data, VWN_TYPE_F32, rows, cols, (size_t)cols * sizeof(float)};
    return w;
}

/* tanh through one expf: 1 - 2 / (e^{2|x|} + 1), with the sign of x. Its absolute error is a few
 * float ulps of 1 (it is added to C0, so absolute error is what matters), and it costs a third of
 * libm's tanhf. */
static inline float fast_tanh(float x) {
    const float a = fabsf(x);
    if (a > 9.0f) return x > 0 ? 1.0f : -1.0f;
    const float t = 1.0f - 2.0f / (expf(2.0f * a) + 1.0f);
    return x < 0 ? -t : t;
}

/* ---- coefficients: C = C0 + S ∘ tanh(rmsnorm_s(H) · Wᵀ / sqrt(s)) for all T·n rows at once ---- */

static void coefficients(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                         const float *H, int32_t T, float *C, float *rows, int n_threads) {
    const int n = hp->ghc_n, s = hp->seg, K = hp->n_coef;
    const int64_t R = (int64_t)T * n;
    if (!hp->ghc_dynamic) {
        for (int32_t t = 0; t < T; t++) memcpy(C + (size_t)t * n * K, g->statc, (size_t)n * K * sizeof(float));
        return;
    }
    for (int64_t r = 0; r < R; r++) ops->rmsnorm(rows + (size_t)r * s, H + (size_t)r * s, g->norm, s, hp->rms_eps);
    const vwn_mat W = f32_mat(g->proj, K, s); /* Linear(s, K): [K, s] */
    vwn_matmul_mt(ops, &W, rows, R, C, NULL, n_threads);
    const float inv_sqrt_s = 1.0f / sqrtf((float)s);
    for (int64_t r = 0; r < R; r++) {
        const int i = (int)(r % n);
        float *c = C + (size_t)r * K;
        for (int k = 0; k < K; k++) c[k] = g->statc[i * K + k] + g->scale[i * K + k] * fast_tanh(c[k] * inv_sqrt_s);
    }
}

/* ---- read and carry ----------------------------------------------------------------------------- */

/* Output o (< m + n) for one token with short multiply-adds: Σ_i C[i,o] H_i into out (s floats). */
static void mix_row(const vwn_hparams *hp, const vwn_ops *ops, const float *Ct, const float *Ht,
                    int o, float *out) {
    const int n = hp->ghc_n, s = hp->seg, K = hp->n_coef;
    memset(out, 0, (size_t)s * sizeof(float));
    for (int i = 0; i < n; i++) {
        const float a = Ct[(size_t)i * K + o];
        if (a != 0.0f) ops->axpy(out, a, Ht + (size_t)i * s, s);
    }
}

/* Destination of output o of one token: segment o of x, or row o - m of G. */
static inline float *mix_dst(const vwn_hparams *hp, float *xt, float *Gt, int o) {
    return o < hp->ghc_m ? xt + (size_t)o * hp->seg : Gt + (size_t)(o - hp->ghc_m) * hp->seg;
}

/* Read and carry of one token as two products: with Hᵀ (s x n) as the "weights" and the columns of
 * C as the "tokens", out[o] = Hᵀ · C[:, o] for the m read outputs (into x) and the n carry outputs
 * (into G). n_threads > 1 splits the s rows of Hᵀ over threads. */
static void mix_gemm(const vwn_hparams *hp, const vwn_ops *ops, const float *Ct, const float *Ht,
                     float *xt, float *Gt, float *tmp, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    float *Htr = tmp;                        /* [s][n] */
    float *At = tmp + (size_t)s * n;         /* [m+n][n]: At[o][i] = C[i][o] */
    for (int i = 0; i < n; i++)
        for (int e = 0; e < s; e++) Htr[(size_t)e * n + i] = Ht[(size_t)i * s + e];
    for (int i = 0; i < n; i++)
        for (int o = 0; o < m + n; o++) At[(size_t)o * n + i] = Ct[(size_t)i * K + o];
    const vwn_mat W = f32_mat(Htr, s, n);
    if (n_threads > 1) {
        vwn_matmul_mt(ops, &W, At, m, xt, NULL, n_threads);
        vwn_matmul_mt(ops, &W, At + (size_t)m * n, n, Gt, NULL, n_threads);
    } else {
        ops->matmul(&W, At, n, NULL, m, xt, s, 0, s);
        ops->matmul(&W, At + (size_t)m * n, n, NULL, n, Gt, s, 0, s);
    }
}

void vwn_ghc_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                    const float *H, int32_t T, float *C, float *x, float *G, float *rows, float *tmp,
                    int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, K = hp->n_coef;
    const size_t Dw = (size_t)hp->n_wide, D = (size_t)hp->n_embd, nk = (size_t)n * K;
    const size_t tmp_stride = vwn_ghc_tmp_floats(hp);
    const bool gemm = (size_t)n * (size_t)(m + n) >= GEMM_MIN_PAIRS;

    coefficients(hp, g, ops, H, T, C, rows, n_threads);

    if (T == 1 && gemm) { /* decode: one token, threads split the product */
        mix_gemm(hp, ops, C, H, x, G, tmp, n_threads);
        return;
    }
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1 && n_threads > 1)
#endif
    for (int32_t t = 0; t < T; t++) {
        const float *Ht = H + (size_t)t * Dw, *Ct = C + (size_t)t * nk;
        float *xt = x + (size_t)t * D, *Gt = G + (size_t)t * Dw;
        if (gemm) mix_gemm(hp, ops, Ct, Ht, xt, Gt, tmp + (size_t)THREAD_ID() * tmp_stride, 1);
        else
            for (int o = 0; o < m + n; o++) mix_row(hp, ops, Ct, Ht, o, mix_dst(hp, xt, Gt, o));
    }
}

/* ---- write ---------------------------------------------------------------------------------------- */

void vwn_ghc_after(const vwn_hparams *hp, const vwn_ops *ops, const float *C, const float *y,
                   int32_t T, float *G, float *tmp, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    const size_t tmp_stride = vwn_ghc_tmp_floats(hp);
    if ((size_t)n * (size_t)m >= GEMM_MIN_PAIRS) {
        /* per token: Y[j] = yᵀ-weights · Bt[j, :] (Bt rows are read in place, K floats apart) */
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1 && n_threads > 1)
#endif
        for (int32_t t = 0; t < T; t++) {
            float *base = tmp + (size_t)THREAD_ID() * tmp_stride;
            float *ytr = base, *Y = base + (size_t)s * m;   /* [s][m], [n][s] */
            const float *yt = y + (size_t)t * m * s;
            for (int k = 0; k < m; k++)
                for (int e = 0; e < s; e++) ytr[(size_t)e * m + k] = yt[(size_t)k * s + e];
            const vwn_mat W = f32_mat(ytr, s, m);
            ops->matmul(&W, C + (size_t)t * n * K + m + n, K, NULL, n, Y, s, 0, s);
            float *Gt = G + (size_t)t * n * s;
            for (size_t e = 0; e < (size_t)n * s; e++) Gt[e] += Y[e];
        }
        return;
    }
    const int64_t rows = (int64_t)T * n;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (rows * s * m > 32768 && n_threads > 1)
#endif
    for (int64_t r = 0; r < rows; r++) {
        const int64_t t = r / n;
        const int j = (int)(r % n);
        const float *bt = C + (size_t)t * n * K + (size_t)j * K + m + n;
        const float *yt = y + (size_t)t * m * s;
        float *gj = G + (size_t)r * s;
        for (int k = 0; k < m; k++)
            if (bt[k] != 0.0f) ops->axpy(gj, bt[k], yt + (size_t)k * s, s);
    }
}

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

#ifdef VWN_OPENMP
#include <omp.h>
#endif

/* Routing rows processed together when computing coefficients (a unit of work for a thread). */
#define COEF_ROWS 64

size_t vwn_ghc_tmp_floats(const vwn_hparams *hp) {
    const size_t n = (size_t)hp->ghc_n, m = (size_t)hp->ghc_m, s = (size_t)hp->seg;
    return s * (2 * m + n) + 64; /* the projection, transposed */
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

/* ---- coefficients: C = C0 + S ∘ tanh(rmsnorm_s(H) · Wᵀ / sqrt(s)) ------------------------------ */

static void coefficients(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                         const float *H, int32_t T, float *C, float *rows, float *tmp, int n_threads) {
    const int n = hp->ghc_n, s = hp->seg, K = hp->n_coef;
    const int64_t R = (int64_t)T * n;
    if (!hp->ghc_dynamic) {
        for (int32_t t = 0; t < T; t++) memcpy(C + (size_t)t * n * K, g->statc, (size_t)n * K * sizeof(float));
        return;
    }
    /* W is [K, s] (a Linear(s, K) weight); the mix kernel wants it as [s, K] */
    float *Wt = tmp;
    for (int k = 0; k < K; k++)
        for (int e = 0; e < s; e++) Wt[(size_t)e * K + k] = g->proj[(size_t)k * s + e];
    const float inv_sqrt_s = 1.0f / sqrtf((float)s);
    const int64_t n_blocks = (R + COEF_ROWS - 1) / COEF_ROWS;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_blocks > 1 && n_threads > 1)
#endif
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        const int64_t r0 = blk * COEF_ROWS, r1 = r0 + COEF_ROWS < R ? r0 + COEF_ROWS : R;
        for (int64_t r = r0; r < r1; r++) ops->rmsnorm(rows + (size_t)r * s, H + (size_t)r * s, g->norm, s, hp->rms_eps);
        ops->mix(C + (size_t)r0 * K, K, rows + (size_t)r0 * s, s, 1, Wt, K, r1 - r0, s, K, false);
        for (int64_t r = r0; r < r1; r++) {
            const int i = (int)(r % n);
            float *c = C + (size_t)r * K;
            for (int k = 0; k < K; k++)
                c[k] = g->statc[i * K + k] + g->scale[i * K + k] * fast_tanh(c[k] * inv_sqrt_s);
        }
    }
}

/* ---- read and carry: x_k = Σ_i C[i,k] H_i, G_j = Σ_i C[i,m+j] H_i ------------------------------- */

void vwn_ghc_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                    const float *H, int32_t T, float *C, float *x, float *G, float *rows, float *tmp,
                    int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    const size_t Dw = (size_t)hp->n_wide, D = (size_t)hp->n_embd, nk = (size_t)n * K;

    coefficients(hp, g, ops, H, T, C, rows, tmp, n_threads);

    /* per token: column o of C weighs the rows of H into output o (read for o < m, carry after) */
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1 && n_threads > 1)
#endif
    for (int32_t t = 0; t < T; t++) {
        const float *Ht = H + (size_t)t * Dw, *Ct = C + (size_t)t * nk;
        ops->mix(x + (size_t)t * D, s, Ct, 1, K, Ht, s, m, n, s, false);
        ops->mix(G + (size_t)t * Dw, s, Ct + m, 1, K, Ht, s, n, n, s, false);
    }
}

/* ---- write: G_j += Σ_k Bt[j,k] y_k ---------------------------------------------------------------- */

void vwn_ghc_after(const vwn_hparams *hp, const vwn_ops *ops, const float *C, const float *y,
                   int32_t T, float *G, float *tmp, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    (void)tmp;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1 && n_threads > 1)
#endif
    for (int32_t t = 0; t < T; t++)
        ops->mix(G + (size_t)t * n * s, s, C + (size_t)t * n * K + m + n, K, 1, y + (size_t)t * m * s, s, n,
                 m, s, true);
}

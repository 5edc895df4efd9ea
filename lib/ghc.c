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

/* Row i of C for one token: static part, plus the dynamic part from row i of H. */
static void coef_row(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                     const float *h, int i, float *crow) {
    const int s = hp->seg, K = hp->n_coef;
    if (!hp->ghc_dynamic) {
        memcpy(crow, g->statc + (size_t)i * K, (size_t)K * sizeof(float));
        return;
    }
    float r[4096]; /* the routing-normalised row; s <= 4096 is checked when a context is made */
    ops->rmsnorm(r, h, g->norm, s, hp->rms_eps);
    const float inv_sqrt_s = 1.0f / sqrtf((float)s);
    for (int c = 0; c < K; c++) {
        const float dot = ops->dot(r, g->proj + (size_t)c * s, s);
        crow[c] = g->statc[i * K + c] + g->scale[i * K + c] * tanhf(dot * inv_sqrt_s);
    }
}

/* Output o (< m + n) of read/carry for one token: Σ_i C[i,o] H_i into out (s floats). */
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

void vwn_ghc_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                    const float *H, int32_t T, float *C, float *x, float *G, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, K = hp->n_coef;
    const size_t Dw = (size_t)hp->n_wide, D = (size_t)hp->n_embd, nk = (size_t)n * K;
    if (T > 1 || n_threads == 1) {
        /* prefill: one token per thread at a time, both steps while its state is in cache */
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1 && n_threads > 1)
#endif
        for (int32_t t = 0; t < T; t++) {
            const float *Ht = H + (size_t)t * Dw;
            float *Ct = C + (size_t)t * nk;
            for (int i = 0; i < n; i++) coef_row(hp, g, ops, Ht + (size_t)i * hp->seg, i, Ct + (size_t)i * K);
            for (int o = 0; o < m + n; o++) mix_row(hp, ops, Ct, Ht, o, mix_dst(hp, x + (size_t)t * D, G + (size_t)t * Dw, o));
        }
        return;
    }
    /* decode: one token, threads split the coefficient rows, then the outputs */
    const size_t work = (size_t)n * hp->seg * (size_t)(K + m + n);
#ifdef VWN_OPENMP
#pragma omp parallel num_threads(n_threads) if (work > 32768)
#endif
    {
#ifdef VWN_OPENMP
#pragma omp for schedule(static)
#endif
        for (int i = 0; i < n; i++) coef_row(hp, g, ops, H + (size_t)i * hp->seg, i, C + (size_t)i * K);
#ifdef VWN_OPENMP
#pragma omp for schedule(static)
#endif
        for (int o = 0; o < m + n; o++) mix_row(hp, ops, C, H, o, mix_dst(hp, x, G, o));
    }
    (void)work;
}

void vwn_ghc_after(const vwn_hparams *hp, const vwn_ops *ops, const float *C, const float *y,
                   int32_t T, float *G, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
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

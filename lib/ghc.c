/* ghc.c -- Generalized Hyper-Connections around one sublayer (spec §2).
 *
 * The wide state of a token is H (n rows of width s); the backbone vector x has m rows of width s.
 * A coefficient matrix C (n x K, K = 2m + n) holds, per row i of H: the read weights R[i, 0..m),
 * the carry weights A[i, 0..n) and the write weights Bt[i, 0..m) (write-transposed: row j of Bt
 * says how much of each backbone segment y_k goes into wide row j).
 *
 * The work is small (linear in D per token) but touches the whole wide state, so the loops below
 * go over each row of H once per pass and are parallel over tokens. */
#include "ghc.h"

#include <math.h>
#include <string.h>

void vwn_ghc_coefficients(const vwn_hparams *hp, const vwn_ghc_weights *g, const float *H,
                          int32_t T, float *C, int n_threads) {
    const int n = hp->ghc_n, s = hp->seg, K = hp->n_coef;
    const size_t nk = (size_t)n * (size_t)K;
    if (!hp->ghc_dynamic) {
        for (int32_t t = 0; t < T; t++) memcpy(C + (size_t)t * nk, g->statc, nk * sizeof(float));
        return;
    }
    const float inv_sqrt_s = 1.0f / sqrtf((float)s);
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1)
#endif
    for (int32_t t = 0; t < T; t++) {
        float r[4096]; /* one routing-normalised row; s <= 4096 is checked at load */
        for (int i = 0; i < n; i++) {
            const float *h = H + ((size_t)t * n + i) * s;
            /* routing RMSNorm over the s channels of row i */
            double ss = 0.0;
            for (int c = 0; c < s; c++) ss += (double)h[c] * h[c];
            const float inv = (float)(1.0 / sqrt(ss / s + (double)hp->rms_eps));
            for (int c = 0; c < s; c++) r[c] = h[c] * inv * g->norm[c];
            /* C[i, c] = C0[i, c] + S[i, c] * tanh(r · W[c] / sqrt(s)) */
            float *crow = C + (size_t)t * nk + (size_t)i * K;
            for (int c = 0; c < K; c++) {
                const float *w = g->proj + (size_t)c * s;
                float dot = 0.0f;
                for (int e = 0; e < s; e++) dot += r[e] * w[e];
                crow[c] = g->statc[i * K + c] + g->scale[i * K + c] * tanhf(dot * inv_sqrt_s);
            }
        }
    }
}

void vwn_ghc_read_carry(const vwn_hparams *hp, const float *C, const float *H, int32_t T,
                        float *x, float *G, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1)
#endif
    for (int32_t t = 0; t < T; t++) {
        const float *Ct = C + (size_t)t * n * K;
        const float *Ht = H + (size_t)t * n * s;
        float *xt = x + (size_t)t * m * s;
        float *Gt = G + (size_t)t * n * s;
        memset(xt, 0, (size_t)m * s * sizeof(float));
        memset(Gt, 0, (size_t)n * s * sizeof(float));
        /* one pass over the rows of H: each row feeds m read and n carry accumulations */
        for (int i = 0; i < n; i++) {
            const float *hi = Ht + (size_t)i * s;
            const float *ci = Ct + (size_t)i * K;
            for (int k = 0; k < m; k++) {
                const float a = ci[k];
                float *dst = xt + (size_t)k * s;
                for (int c = 0; c < s; c++) dst[c] += a * hi[c];
            }
            for (int j = 0; j < n; j++) {
                const float a = ci[m + j];
                if (a == 0.0f) continue;
                float *dst = Gt + (size_t)j * s;
                for (int c = 0; c < s; c++) dst[c] += a * hi[c];
            }
        }
    }
}

void vwn_ghc_write(const vwn_hparams *hp, const float *C, const float *G, const float *y,
                   int32_t T, float *H, int n_threads) {
    const int n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static) if (T > 1)
#endif
    for (int32_t t = 0; t < T; t++) {
        const float *Ct = C + (size_t)t * n * K;
        const float *yt = y + (size_t)t * m * s;
        for (int j = 0; j < n; j++) {
            float *hj = H + ((size_t)t * n + j) * s;
            const float *gj = G + ((size_t)t * n + j) * s;
            memcpy(hj, gj, (size_t)s * sizeof(float));
            const float *bt = Ct + (size_t)j * K + m + n;
            for (int k = 0; k < m; k++) {
                const float b = bt[k];
                if (b == 0.0f) continue;
                const float *yk = yt + (size_t)k * s;
                for (int c = 0; c < s; c++) hj[c] += b * yk[c];
            }
        }
    }
}

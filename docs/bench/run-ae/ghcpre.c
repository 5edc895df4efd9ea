/* ghcpre.c -- the (8,64) prefill GHC module alone: vwn_ghc_before at T = 256 with a pending write,
 * one thread, dynamic and static coefficients, each dynamic call followed by an FMA loop of
 * similar length: GFLOP/s and share of the loop. COLD=MB streams that many MB between calls;
 * -DTIMERS with a build of ghc_timers.patch (-DGHC_FN=ghc_var_before) prints the steps' shares. */
#include "model.h"
#include "ghc.h"
#include "common.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fma_loop.h"
#ifndef GHC_FN
#define GHC_FN vwn_ghc_before
#endif
float *GHC_FN(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops, const float *y_prev, float *H,
              int32_t T, float *x, float *G, const vwn_ghc_scratch *sc, int n_threads);
#ifdef TIMERS
extern double tsc_part[8]; /* ghc_timers.patch */
#endif
int main(int argc, char **argv) {
    vwn_model *m; if (vwn_model_load(argv[1], NULL, &m)) return 1;
    const int N = argc > 2 ? atoi(argv[2]) : 20, nt = argc > 3 ? atoi(argv[3]) : 1, T = 256;
    const vwn_hparams *hp = &m->hp;
    const vwn_ops *ops = vwn_ops_best();
    const int64_t n = hp->ghc_n, K = hp->n_coef, Dw = hp->n_wide, D = hp->n_embd, mm = hp->ghc_m, s = hp->seg;
    float *H = vwn_aligned_alloc(T * Dw * 4), *H0 = vwn_aligned_alloc(T * Dw * 4), *G = vwn_aligned_alloc(T * Dw * 4);
    float *x = vwn_aligned_alloc(T * D * 4), *y = vwn_aligned_alloc(T * D * 4);
    float *coef = vwn_aligned_alloc(8 * n * K * 4), *wcoef = vwn_aligned_alloc(T * n * mm * 4);
    float *rows = vwn_aligned_alloc(8 * n * 4), *tmp = vwn_aligned_alloc(4 * (n * K + Dw) * 4);
    for (int64_t i = 0; i < T * Dw; i++) H0[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (int64_t i = 0; i < T * D; i++) y[i] = (float)((i * 13) % 17) / 17.0f - 0.5f;
    const double flop = 2.0 * T * (n * s * K + (mm + n) * n * s + n * mm * s);
    double *g_ = malloc(N * sizeof(double)), *r_ = malloc(N * sizeof(double)), *us_st = malloc(N * sizeof(double)), *us_dy = malloc(N * sizeof(double));
    vwn_hparams hs = *hp; hs.ghc_dynamic = false;
    for (int k = 0; k < N; k++) {
        if (getenv("COLD")) { static char *junk; const size_t jn = (size_t)atoi(getenv("COLD")) << 20; if (!junk) { junk = malloc(jn); memset(junk, 1, jn); } long sm = 0; for (size_t i = 0; i < jn; i += 64) sm += junk[i]; static volatile long sk; sk = sm; }
        {   /* static GHC (no coefficient projection or tanh): the same call otherwise */
            memcpy(H, H0, T * Dw * 4);
            for (int64_t i = 0; i < T * n * mm; i++) wcoef[i] = 0.01f;
            vwn_ghc_scratch sc = {coef, wcoef, rows, tmp, false};
            double t0 = now();
            GHC_FN(&hs, &m->layers[k % hp->n_layer].attn_ghc, ops, y, H, T, x, G, &sc, nt);
            us_st[k] = (now() - t0) / T * 1e6;
        }
        const vwn_ghc_weights *g = &m->layers[k % hp->n_layer].attn_ghc;
        memcpy(H, H0, T * Dw * 4);
        for (int64_t i = 0; i < T * n * mm; i++) wcoef[i] = 0.01f;
        vwn_ghc_scratch sc = {coef, wcoef, rows, tmp, false};
        if (getenv("COLD")) { static char *junk; const size_t jn = (size_t)atoi(getenv("COLD")) << 20; if (!junk) { junk = malloc(jn); memset(junk, 1, jn); } long sm = 0; for (size_t i = 0; i < jn; i += 64) sm += junk[i]; static volatile long sk; sk = sm; }
        double t0 = now();
        GHC_FN(hp, g, ops, y, H, T, x, G, &sc, nt);
        double t = now() - t0;
        double pk = fma_gflops((long)(flop / 512 / 2));
        g_[k] = flop / t * 1e-9; r_[k] = g_[k] / pk; us_dy[k] = t / T * 1e6;
        if (k == 0) printf("first call: %.1f us per token\n", t / T * 1e6);
    }
    qsort(g_, N, sizeof(double), cmpd); qsort(r_, N, sizeof(double), cmpd); qsort(us_st, N, sizeof(double), cmpd); qsort(us_dy, N, sizeof(double), cmpd);
    printf("per token: dynamic %.2f us, static %.2f us (medians)\n", us_dy[N / 2], us_st[N / 2]);
    printf("(8,64) prefill GHC, T=%d, %d thread(s): %.1f GFLOP/s (%.2f us per token), %.0f%% of the FMA loop (q1-q3 %.0f-%.0f%%)\n",
           T, nt, g_[N / 2], flop / T / g_[N / 2] * 1e-3, 100 * r_[N / 2], 100 * r_[N / 4], 100 * r_[3 * N / 4]);
#ifdef TIMERS
    double tot = 0; for (int i = 0; i < 8; i++) tot += tsc_part[i];
    const char *nm[8] = {"prefetch", "coef_rows (all)", "read mix", "carry mix", "carry copy", "  write", "  norms+tanh+wcoef", "  projection mix"};
    for (int i = 0; i < 8; i++) printf("%-22s %5.1f%%\n", nm[i], 100 * tsc_part[i] / (tot - tsc_part[5] - tsc_part[6] - tsc_part[7]));
#endif
    return 0;
}

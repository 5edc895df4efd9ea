/* The (8,64) decode GHC module alone: vwn_ghc_before at T = 1 with a pending write, 1 and 2
 * threads, hot (back to back) and cold (8 MB streamed through the caches between calls, as the
 * sublayer's weights do in a decode). */
#include "model.h"
#include "ghc.h"
#include "common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    vwn_model *m; if (vwn_model_load(argv[1], NULL, &m)) return 1;
    const vwn_hparams *hp = &m->hp;
    const vwn_ops *ops = vwn_ops_best();
    const int64_t n = hp->ghc_n, K = hp->n_coef, Dw = hp->n_wide, D = hp->n_embd;
    float *H = vwn_aligned_alloc(Dw * 4), *H0 = vwn_aligned_alloc(Dw * 4), *G = vwn_aligned_alloc(Dw * 4);
    float *x = vwn_aligned_alloc(D * 4), *y = vwn_aligned_alloc(D * 4);
    float *coef = vwn_aligned_alloc(n * K * 4 * 4), *wcoef = vwn_aligned_alloc(n * hp->ghc_m * 4 * 4);
    float *rows = vwn_aligned_alloc(n * 4 * 4), *tmp = vwn_aligned_alloc(2 * (n * K + Dw) * 4);
    for (int64_t i = 0; i < Dw; i++) H0[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (int64_t i = 0; i < D; i++) y[i] = (float)((i * 13) % 17) / 17.0f - 0.5f;
    for (int64_t i = 0; i < n * hp->ghc_m; i++) wcoef[i] = 0.01f;
    const size_t junk_n = 8 << 20; char *junk = vwn_big_alloc(junk_n); memset(junk, 1, junk_n);
    volatile long sink = 0;
    const int N = 2000;
    double *ts = malloc(N * sizeof(double));
    for (int cold = 0; cold < 2; cold++)
        for (int nt = 1; nt <= 2; nt++) {
            for (int k = 0; k < N; k++) {
                const vwn_ghc_weights *g = &m->layers[k % hp->n_layer].attn_ghc;
                memcpy(H, H0, Dw * 4);
                for (int64_t i = 0; i < n * hp->ghc_m; i++) wcoef[i] = 0.01f;
                if (cold) { long s = 0; for (size_t i = 0; i < junk_n; i += 64) s += junk[i]; sink += s; }
                vwn_ghc_scratch sc = {coef, wcoef, rows, tmp, false};
                double t0 = now();
                vwn_ghc_before(hp, g, ops, y, H, 1, x, G, &sc, nt);
                ts[k] = now() - t0;
            }
            qsort(ts, N, sizeof(double), cmp);
            printf("%s nt=%d: median %.2f us, p10 %.2f, p90 %.2f\n", cold ? "cold" : "hot ", nt, ts[N / 2], ts[N / 10], ts[N * 9 / 10]);
        }
    return 0;
}

/* A/B/C: decode GHC mode (vwn_x_ghc 0 split, 1 serial, 2 serial + helper prefetch), tokens rotating
 * between three contexts; logits compared bit for bit. */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern int vwn_x_ghc;
extern size_t vwn_x_pf;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int N = argc > 2 ? atoi(argv[2]) : 150, nt = argc > 3 ? atoi(argv[3]) : 2;
    if (argc > 4) vwn_x_pf = (size_t)atoll(argv[4]) * 1024;
    vwn_model *m; if (vwn_model_load(argv[1], NULL, &m)) { printf("load failed\n"); return 1; }
    vwn_model_info info; vwn_model_get_info(m, &info); int V = info.n_vocab;
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = 1024; p.n_threads = nt; p.mtp = false;
    vwn_context *c[3]; for (int i = 0; i < 3; i++) vwn_context_new(m, &p, &c[i]);
    int32_t prompt[64]; for (int i = 0; i < 64; i++) prompt[i] = 1 + (i * 37) % 1000;
    for (int i = 0; i < 3; i++) { vwn_x_ghc = i; vwn_decode(c[i], prompt, 64); }
    double *t[3]; for (int i = 0; i < 3; i++) t[i] = malloc(N * sizeof(double));
    int32_t tok = 5; int diff = 0;
    for (int k = 0; k < N; k++) {
        const float *lg[3];
        for (int j = 0; j < 3; j++) {
            int ii = (j + k) % 3;
            vwn_x_ghc = ii;
            double t0 = now(); vwn_decode(c[ii], &tok, 1); t[ii][k] = now() - t0;
            vwn_get_logits(c[ii], -1, &lg[ii]);
        }
        if (memcmp(lg[0], lg[1], V * 4) || memcmp(lg[0], lg[2], V * 4)) diff++;
        tok = 1 + (tok * 131 + 7) % (V - 1);
    }
    for (int i = 0; i < 3; i++) qsort(t[i], N, sizeof(double), cmp);
    printf("%s nt=%d pf=%zuK: split %.1f us, serial %.1f (%.4f), serial+prefetch %.1f (%.4f); logits differ in %d tokens\n",
           argv[1], nt, vwn_x_pf / 1024, t[0][N/2], t[1][N/2], t[1][N/2] / t[0][N/2], t[2][N/2], t[2][N/2] / t[0][N/2], diff);
    return 0;
}

/* A/B: the file's layout (model 0, VWN_REPACK=0) against packed rows (model 1), tokens alternating
 * between a context of each; logits compared bit for bit every token. Also prefill of 64 tokens. */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int N = argc > 2 ? atoi(argv[2]) : 150, nt = argc > 3 ? atoi(argv[3]) : 2;
    vwn_model *m[2];
    setenv("VWN_REPACK", "0", 1);
    if (vwn_model_load(argv[1], NULL, &m[0])) { printf("load failed\n"); return 1; }
    setenv("VWN_REPACK", "1", 1);
    double l0 = now();
    if (vwn_model_load(argv[1], NULL, &m[1])) { printf("load failed\n"); return 1; }
    double l1 = now();
    vwn_model_info info; vwn_model_get_info(m[0], &info);
    int V = info.n_vocab;
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = 1024; p.n_threads = nt; p.mtp = false;
    vwn_context *c[2]; for (int i = 0; i < 2; i++) vwn_context_new(m[i], &p, &c[i]);
    int32_t prompt[64]; for (int i = 0; i < 64; i++) prompt[i] = 1 + (i * 37) % 1000;
    double pf[2][8];
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 2; i++) {
            int ii = (r & 1) ? 1 - i : i;
            vwn_context_clear(c[ii]);
            double t0 = now(); vwn_decode(c[ii], prompt, 64); pf[ii][r] = now() - t0;
        }
    double *t[2] = {malloc(N * sizeof(double)), malloc(N * sizeof(double))};
    int32_t tok = 5; int diff = 0;
    for (int k = 0; k < N; k++) {
        const float *lg[2];
        for (int i = 0; i < 2; i++) {
            int ii = (k & 1) ? 1 - i : i;
            double t0 = now(); vwn_decode(c[ii], &tok, 1); t[ii][k] = now() - t0;
            vwn_get_logits(c[ii], -1, &lg[ii]);
        }
        if (memcmp(lg[0], lg[1], (size_t)V * 4)) diff++;
        tok = 1 + (tok * 131 + 7) % (V - 1);
    }
    for (int i = 0; i < 2; i++) { qsort(t[i], N, sizeof(double), cmp); qsort(pf[i], 8, sizeof(double), cmp); }
    printf("%s nt=%d packed %.0f MB (load %.0f ms): decode file %.1f us, packed %.1f us, ratio %.4f; prefill64 file %.0f us, packed %.0f us, ratio %.4f; logits differ in %d tokens\n",
           argv[1], nt, vwn_model_packed_bytes(m[1]) / 1e6, (l1 - l0) / 1e3, t[0][N/2], t[1][N/2], t[1][N/2] / t[0][N/2], pf[0][4], pf[1][4], pf[1][4] / pf[0][4], diff);
    return 0;
}

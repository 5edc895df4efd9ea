/* Prefill A/B: rows in pairs (vwn_x_pair 1) against one row at a time, contexts alternating. */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern int vwn_x_pair;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int P = argc > 2 ? atoi(argv[2]) : 256, nt = argc > 3 ? atoi(argv[3]) : 2, R = 10;
    vwn_model *m; if (vwn_model_load(argv[1], NULL, &m)) { printf("load failed\n"); return 1; }
    vwn_model_info info; vwn_model_get_info(m, &info); int V = info.n_vocab;
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = P + 16; p.n_batch = P; p.n_threads = nt; p.mtp = false;
    vwn_context *c[2]; for (int i = 0; i < 2; i++) vwn_context_new(m, &p, &c[i]);
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 1 + (i * 37) % (V - 1);
    double t[2][64]; int diff = 0;
    for (int r = 0; r < R; r++) {
        const float *lg[2];
        for (int j = 0; j < 2; j++) {
            int ii = (j + r) % 2;
            vwn_x_pair = ii;
            vwn_context_clear(c[ii]);
            double t0 = now(); vwn_decode(c[ii], prompt, P); t[ii][r] = now() - t0;
            vwn_get_logits(c[ii], -1, &lg[ii]);
        }
        if (memcmp(lg[0], lg[1], V * 4)) diff++;
    }
    for (int i = 0; i < 2; i++) qsort(t[i], R, sizeof(double), cmp);
    printf("%s nt=%d prefill %d: one row %.1f ms, pairs %.1f ms (%.4f); logits differ in %d of %d\n", argv[1], nt, P,
           t[0][R / 2] / 1e3, t[1][R / 2] / 1e3, t[1][R / 2] / t[0][R / 2], diff, R);
    return 0;
}

/* Two copies of one model in one process, one file in 2 MiB pages and one partly in 4 KiB pages (its
 * page cache built by the session-start loader), tokens decoded alternately ABBA in a context of
 * each, logits compared. args: MODEL_A MODEL_B PROMPT GEN THREADS */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc, char **argv) {
    vwn_model *m[2]; vwn_context *c[2];
    int P = atoi(argv[3]), N = atoi(argv[4]);
    for (int k = 0; k < 2; k++) {
        if (vwn_model_load(argv[1 + k], NULL, &m[k])) { printf("%s\n", vwn_last_error()); return 1; }
        vwn_context_params cp = vwn_context_default_params(); cp.n_threads = atoi(argv[5]); cp.n_ctx = P + N + 8; cp.mtp = false;
        if (vwn_context_new(m[k], &cp, &c[k])) { printf("%s\n", vwn_last_error()); return 1; }
    }
    vwn_model_info info; vwn_model_get_info(m[0], &info); const int V = info.n_vocab;
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % 20000;
    double *r = malloc(sizeof(double) * 3 * N), t[2] = {0, 0}; int nr = 0, diff = 0;
    for (int rep = 0; rep < 3; rep++) {
        for (int k = 0; k < 2; k++) { vwn_context_clear(c[k]); vwn_decode(c[k], prompt, P); }
        for (int i = 0; i < N; i++) {
            int32_t tok = 200 + (i * 53) % 5000; double tt[2];
            const int first = ((i + rep) % 4 == 0 || (i + rep) % 4 == 3);
            for (int kk = 0; kk < 2; kk++) {
                const int k = kk == 0 ? first : !first;
                double t0 = now(); vwn_decode(c[k], &tok, 1); tt[k] = now() - t0; t[k] += tt[k];
            }
            const float *la, *lb; vwn_get_logits(c[0], -1, &la); vwn_get_logits(c[1], -1, &lb);
            diff += memcmp(la, lb, sizeof(float) * V) != 0;
            r[nr++] = tt[0] / tt[1];
        }
    }
    qsort(r, nr, sizeof(double), cmpd);
    printf("A (2 MiB pages) %.1f us/token, B (partly 4 KiB) %.1f us/token; A/B per token: median %.3f [q1 %.3f q3 %.3f]; logits differ in %d tokens\n",
           t[0] / nr, t[1] / nr, r[nr / 2], r[nr / 4], r[3 * nr / 4], diff);
    return 0;
}

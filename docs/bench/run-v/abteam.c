/* In-process A/B of the throwaway vwn_x_flag (one OpenMP region per decoded token, team_proto.diff):
 * each token decoded with the flag off and on in ABBA order (rewinding one position in between),
 * logits compared. args: MODEL PROMPT GEN THREADS */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern int vwn_x_flag;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc, char **argv) {
    vwn_model *model; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(argv[1], &mp, &model)) return 1;
    int P = atoi(argv[2]), N = atoi(argv[3]);
    vwn_context_params cp = vwn_context_default_params(); cp.n_threads = atoi(argv[4]); cp.n_ctx = P + N + 8; cp.mtp = false;
    vwn_context *ctx; if (vwn_context_new(model, &cp, &ctx)) { printf("%s\n", vwn_last_error()); return 1; }
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % 20000;
    vwn_model_info info; vwn_model_get_info(model, &info); const int V = info.n_vocab;
    float *keep = malloc(sizeof(float) * V);
    double *r = malloc(sizeof(double) * 3 * N), t[2] = {0, 0}; int nr = 0, diff = 0;
    for (int rep = 0; rep < 3; rep++) {
        vwn_context_clear(ctx); vwn_x_flag = 0; vwn_decode(ctx, prompt, P);
        for (int i = 0; i < N; i++) {
            int32_t tok = 200 + (i * 53) % 5000; double tt[2];
            const int first = ((i + rep) % 4 == 0 || (i + rep) % 4 == 3);
            for (int k = 0; k < 2; k++) {
                const int a = k == 0 ? first : !first; vwn_x_flag = a;
                double t0 = now(); vwn_decode(ctx, &tok, 1); tt[a] = now() - t0; t[a] += tt[a];
                const float *lg; vwn_get_logits(ctx, -1, &lg);
                if (k == 0) { memcpy(keep, lg, sizeof(float) * V); vwn_context_truncate(ctx, P + i); }
                else diff += memcmp(keep, lg, sizeof(float) * V) != 0;
            }
            r[nr++] = tt[1] / tt[0];
        }
    }
    qsort(r, nr, sizeof(double), cmpd);
    printf("%s P %d: off %.1f us/token, on %.1f us/token; on/off per token: median %.3f [q1 %.3f q3 %.3f]; logits differ in %d tokens\n",
           strrchr(argv[1], '/') + 1, P, t[0] / nr, t[1] / nr, r[nr / 2], r[nr / 4], r[3 * nr / 4], diff);
    vwn_context_free(ctx); vwn_model_free(model); return 0;
}

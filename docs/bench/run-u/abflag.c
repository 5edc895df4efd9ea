/* In-process A/B of two settings of a throwaway global flag `vwn_x_flag` (lib/forward.c): one
 * context, each token decoded with flag A and flag B in ABBA order (rewinding one position in
 * between), logits compared. Also the GHC time per token of each, and the rdtsc clocks of
 * ghc_clocks_and_prefetch.diff (which it needs). args: MODEL PROMPT GEN THREADS A B
 * Build (from the repository root, after the throwaway diff is applied and the library rebuilt):
 *   clang -O2 -march=native -fopenmp=libomp -DVWN_OPENMP -Iinclude -Ilib docs/bench/run-u/X.c build/lib/libvwn.a \
 *     -lm /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so \
 *     /usr/lib/llvm-14/lib/libomp.so -lpthread -Wl,-rpath,/usr/lib/llvm-14/lib -o abflag */

#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern int vwn_x_flag;
extern unsigned long long vwn_x_split[2][8];
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
int main(int argc, char **argv) {
    vwn_model *model; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(argv[1], &mp, &model)) return 1;
    int P = atoi(argv[2]), N = atoi(argv[3]), fl[2] = {atoi(argv[5]), atoi(argv[6])};
    vwn_context_params cp = vwn_context_default_params(); cp.n_threads = atoi(argv[4]); cp.n_ctx = P + N + 8; cp.mtp = false;
    vwn_context *ctx; if (vwn_context_new(model, &cp, &ctx)) { printf("%s\n", vwn_last_error()); return 1; }
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % 20000;
    vwn_model_info info; vwn_model_get_info(model, &info); const int V = info.n_vocab;
    float *keep = malloc(sizeof(float) * V);
    double t[2] = {0, 0}, g[2] = {0, 0}; int n[2] = {0, 0}, diff = 0;
    for (int rep = 0; rep < 3; rep++) {
        vwn_context_clear(ctx);
        vwn_x_flag = fl[0]; vwn_decode(ctx, prompt, P);
        for (int i = 0; i < N; i++) {
            int32_t tok = 200 + (i * 53) % 5000;
            const int first = ((i + rep) % 4 == 0 || (i + rep) % 4 == 3);
            for (int k = 0; k < 2; k++) {
                const int a = k == 0 ? first : !first;
                vwn_x_flag = fl[a];
                vwn_perf p0, p1; vwn_context_get_perf(ctx, &p0);
                double t0 = now(); vwn_decode(ctx, &tok, 1); t[a] += now() - t0; n[a]++;
                vwn_context_get_perf(ctx, &p1); g[a] += p1.t_ghc_us - p0.t_ghc_us;
                const float *lg; vwn_get_logits(ctx, -1, &lg);
                if (k == 0) { memcpy(keep, lg, sizeof(float) * V); vwn_context_truncate(ctx, vwn_context_length(ctx) - 1); }
                else diff += memcmp(keep, lg, sizeof(float) * V) != 0;
            }
        }
    }
    extern unsigned long long vwn_x_tsc[8]; for (int i = 0; i < 4; i++) printf("step %d: %.0f cycles\n", i, (double)vwn_x_tsc[i] / vwn_x_tsc[4]); printf("enter %.0f cycles per module, %llu modules\n", (double)vwn_x_tsc[5] / vwn_x_tsc[4], vwn_x_tsc[4]);
    extern unsigned long long vwn_x_tsc2[2][8]; for (int j = 0; j < 2; j++) for (int i = 0; i < 5; i++) printf("thread %d coef part %d: %.0f cycles\n", j, i, (double)vwn_x_tsc2[j][i] / (vwn_x_tsc[4] + vwn_x_split[1][4]));
 for (int i = 0; i < 2; i++) printf("thread %d: fork %.0f coef %.0f barrier %.0f readcarry %.0f\n", i, (double)vwn_x_split[i][0]/vwn_x_split[1][4], (double)vwn_x_split[i][1]/vwn_x_split[1][4], (double)vwn_x_split[i][2]/vwn_x_split[1][4], (double)vwn_x_split[i][3]/vwn_x_split[1][4]); printf("total %.0f, join %.0f, calls %llu\n", (double)vwn_x_split[0][4]/vwn_x_split[1][4], (double)vwn_x_split[0][6]/vwn_x_split[1][4], vwn_x_split[1][4]);
    printf("%s P %d: A=%d %.1f us/token (ghc %.1f), B=%d %.1f us/token (ghc %.1f), B/A time %.4f, logits differ %d\n", argv[1], P,
           fl[0], t[0] / n[0], g[0] / n[0], fl[1], t[1] / n[1], g[1] / n[1], (t[1] / n[1]) / (t[0] / n[0]), diff);
}

/* abflag.c without the GHC clocks: ABBA per token of vwn_x_flag A / B, cp.mtp = false (as vwn
 * bench), with the RoPE + KV store clock of kv_store_prefetch.diff (which it needs).
 * args: MODEL PROMPT GEN THREADS A B
 * Build (from the repository root, after the throwaway diff is applied and the library rebuilt):
 *   clang -O2 -march=native -fopenmp=libomp -DVWN_OPENMP -Iinclude -Ilib docs/bench/run-u/X.c build/lib/libvwn.a \
 *     -lm /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so \
 *     /usr/lib/llvm-14/lib/libomp.so -lpthread -Wl,-rpath,/usr/lib/llvm-14/lib -o abflag2 */

#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern int vwn_x_flag;
extern double vwn_x_rope_us[2];
extern long vwn_x_rope_n[2];
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
        vwn_x_rope_us[0] = vwn_x_rope_us[1] = 0; vwn_x_rope_n[0] = vwn_x_rope_n[1] = 0;
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
    printf("rope+store per layer: flag0 %.2f us, flag!=0 %.2f us\n", vwn_x_rope_us[0] / (vwn_x_rope_n[0] + 1e-9), vwn_x_rope_us[1] / (vwn_x_rope_n[1] + 1e-9));
    printf("%s P %d: A=%d %.1f us/token (ghc %.1f), B=%d %.1f us/token (ghc %.1f), B/A time %.4f, logits differ %d\n", argv[1], P,
           fl[0], t[0] / n[0], g[0] / n[0], fl[1], t[1] / n[1], g[1] / n[1], (t[1] / n[1]) / (t[0] / n[0]), diff);
}

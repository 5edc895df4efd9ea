/* In-process A/B of decode attention against the session-start attention.c: one context, each token
 * decoded with the old and the new attention in ABBA order (rewinding one position in between), the
 * logits compared every token. It needs a throwaway hook in lib/forward.c (removed): a global
 * function pointer `vwn_x_attn` with vwn_attention's signature, called instead of it when set; and
 * old_attention.c as kvread.c's header makes it. args: MODEL PROMPT GEN THREADS [kv_f16]
 * Build: as kvread.c, with abold.c old_attention.c. */
#include "vwn.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void old_vwn_attention(const vwn_ops *, const float *, int32_t, const void *, const void *, int32_t, int32_t, int32_t, int32_t, int32_t, float *, float *, int32_t, int, int64_t);
extern void (*vwn_x_attn)(const vwn_ops *, const float *, int32_t, const void *, const void *, int32_t, int32_t, int32_t, int32_t, int32_t, float *, float *, int32_t, int, int64_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
int main(int argc, char **argv) {
    vwn_model *model; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(argv[1], &mp, &model)) return 1;
    int P = atoi(argv[2]), N = atoi(argv[3]);
    vwn_context_params cp = vwn_context_default_params(); cp.n_threads = atoi(argv[4]); cp.n_ctx = P + N + 8;
    if (argc > 5) cp.kv_type = atoi(argv[5]) ? VWN_TYPE_F16 : VWN_TYPE_F32;
    vwn_context *ctx; if (vwn_context_new(model, &cp, &ctx)) { printf("%s\n", vwn_last_error()); return 1; }
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % 20000;
    vwn_model_info info; vwn_model_get_info(model, &info); const int V = info.n_vocab;
    float *keep = malloc(sizeof(float) * V);
    double t[2] = {0, 0}; int n[2] = {0, 0}, diff = 0;
    for (int rep = 0; rep < 3; rep++) {
        vwn_context_clear(ctx);
        vwn_x_attn = NULL; vwn_decode(ctx, prompt, P);
        for (int i = 0; i < N; i++) {
            int32_t tok = 200 + (i * 53) % 5000;
            /* decode the token with one setting, rewind, decode again with the other: compare */
            const int first = ((i + rep) % 4 == 0 || (i + rep) % 4 == 3);
            for (int k = 0; k < 2; k++) {
                const int a = k == 0 ? first : !first;
                vwn_x_attn = a ? NULL : old_vwn_attention;
                double t0 = now(); vwn_decode(ctx, &tok, 1); t[a] += now() - t0; n[a]++;
                const float *lg; vwn_get_logits(ctx, -1, &lg);
                if (k == 0) { memcpy(keep, lg, sizeof(float) * V); vwn_context_truncate(ctx, vwn_context_length(ctx) - 1); }
                else diff += memcmp(keep, lg, sizeof(float) * V) != 0;
            }
        }
    }
    printf("%s P %d: old %.1f us/token, new %.1f us/token, new/old time %.4f, logits differ %d\n", argv[1], P, t[0] / n[0], t[1] / n[1], (t[1] / n[1]) / (t[0] / n[0]), diff);
}

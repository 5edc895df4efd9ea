/* In-process A/B of prefill against the session-start attention.c: the prompt decoded REPS times with
 * the old and the new attention alternating (after one warm-up of each), the last logits compared.
 * Needs the same throwaway hook as abold.c. AA=1: old against old (a control), BB=1: new against
 * new. args: MODEL PROMPT REPS THREADS. Build: as kvread.c, with abpreold.c old_attention.c. */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ops/ops.h"
void old_vwn_attention(const vwn_ops *, const float *, int32_t, const void *, const void *, int32_t, int32_t, int32_t, int32_t, int32_t, float *, float *, int32_t, int, int64_t);
extern void (*vwn_x_attn)(const vwn_ops *, const float *, int32_t, const void *, const void *, int32_t, int32_t, int32_t, int32_t, int32_t, float *, float *, int32_t, int, int64_t);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
int main(int argc, char **argv) {
    vwn_model *model; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(argv[1], &mp, &model)) return 1;
    int P = atoi(argv[2]), R = atoi(argv[3]);
    vwn_context_params cp = vwn_context_default_params(); cp.n_threads = atoi(argv[4]); cp.n_ctx = P + 8; cp.n_batch = P; cp.mtp = getenv("AB_MTP") != NULL;
    vwn_context *ctx; if (vwn_context_new(model, &cp, &ctx)) { printf("%s\n", vwn_last_error()); return 1; }
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % 20000;
    vwn_model_info info; vwn_model_get_info(model, &info); const int V = info.n_vocab;
    float *keep = malloc(sizeof(float) * V); double t[2] = {0, 0}; int diff = 0;
    vwn_decode(ctx, prompt, P); vwn_x_attn = old_vwn_attention; vwn_context_clear(ctx); vwn_decode(ctx, prompt, P); /* warm-up, both */
    for (int r = 0; r < R; r++)
        for (int k = 0; k < 2; k++) {
            const int a = (r % 2 == 0) ? k : !k;
            vwn_x_attn = a ? (getenv("AA") ? old_vwn_attention : NULL) : (getenv("BB") ? NULL : old_vwn_attention); vwn_context_clear(ctx);
            double t0 = now(); vwn_decode(ctx, prompt, P); t[a] += now() - t0;
            const float *lg; vwn_get_logits(ctx, -1, &lg);
            if (k == 0) memcpy(keep, lg, sizeof(float) * V); else diff += memcmp(keep, lg, sizeof(float) * V) != 0;
        }
    printf("%s prefill %d: old %.2f ms, new %.2f ms, new/old %.4f, logits differ %d\n", argv[1], P, t[0] / R / 1e3, t[1] / R / 1e3, t[1] / t[0], diff);
}

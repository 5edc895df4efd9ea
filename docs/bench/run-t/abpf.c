/* In-process A/B of prefetching the layer's KV cache during its Q, K, V products
 * (kv_prefetch_proto.diff applied: its switches vwn_x_pf, vwn_x_cap, vwn_x_nopf, vwn_x_g): each token
 * decoded both ways in ABBA order, rewinding one position, logits compared. Env: CAP (KiB per
 * thread), NOPF=1 (pace without prefetching), G (chunks per pacing step). args: MODEL PROMPT GEN
 * THREADS. Build: as ../run-s/abatt.c. */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern int vwn_x_pf; extern size_t vwn_x_cap;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
int main(int argc, char **argv) {
    vwn_model *model; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(argv[1], &mp, &model)) return 1;
    int P = atoi(argv[2]), N = atoi(argv[3]); { extern int vwn_x_nopf; vwn_x_nopf = getenv("NOPF") != NULL; extern int vwn_x_g; if (getenv("G")) vwn_x_g = atoi(getenv("G")); } if (getenv("CAP")) vwn_x_cap = (size_t)atol(getenv("CAP")) << 10;
    vwn_context_params cp = vwn_context_default_params(); cp.n_threads = atoi(argv[4]); cp.n_ctx = P + N + 8;
    if (argc > 5) cp.kv_type = atoi(argv[5]) ? VWN_TYPE_F16 : VWN_TYPE_F32;
    vwn_context *ctx; if (vwn_context_new(model, &cp, &ctx)) { printf("%s\n", vwn_last_error()); return 1; }
    int32_t *prompt = malloc(sizeof(int32_t) * P); for (int i = 0; i < P; i++) prompt[i] = 100 + (i * 37) % 20000;
    vwn_model_info info; vwn_model_get_info(model, &info); const int V = info.n_vocab;
    float *keep = malloc(sizeof(float) * V);
    double t[2] = {0, 0}; int n[2] = {0, 0}, diff = 0;
    for (int rep = 0; rep < 3; rep++) {
        vwn_context_clear(ctx);
        vwn_x_pf = 1; vwn_decode(ctx, prompt, P);
        for (int i = 0; i < N; i++) {
            int32_t tok = 200 + (i * 53) % 5000;
            /* decode the token with one setting, rewind, decode again with the other: compare */
            const int first = ((i + rep) % 4 == 0 || (i + rep) % 4 == 3);
            for (int k = 0; k < 2; k++) {
                const int a = k == 0 ? first : !first;
                vwn_x_pf = a;
                double t0 = now(); vwn_decode(ctx, &tok, 1); t[a] += now() - t0; n[a]++;
                const float *lg; vwn_get_logits(ctx, -1, &lg);
                if (k == 0) { memcpy(keep, lg, sizeof(float) * V); vwn_context_truncate(ctx, vwn_context_length(ctx) - 1); }
                else diff += memcmp(keep, lg, sizeof(float) * V) != 0;
            }
        }
    }
    printf("%s P %d: old %.1f us/token, new %.1f us/token, new/old time %.4f, logits differ %d\n", argv[1], P, t[0] / n[0], t[1] / n[1], (t[1] / n[1]) / (t[0] / n[0]), diff);
}

/* split.c -- prefill time of one model under variants of the matmul split, alternating in one
 * process: static (2 threads), balanced with a minimum claim (2 threads), 1 thread. */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "matmul_var.c"

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    const char *path = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 10, P = argc > 3 ? atoi(argv[3]) : 256;
    int mins[3] = {argc > 4 ? atoi(argv[4]) : 4, 0, 0};
    vwn_model *m; vwn_model_params mp = vwn_model_default_params();
    if (vwn_model_load(path, &mp, &m)) { fprintf(stderr, "%s\n", vwn_last_error()); return 1; }
    vwn_context_params cp = vwn_context_default_params(); cp.n_ctx = P + 8; cp.n_threads = 2; cp.mtp = false;
    vwn_context *c; if (vwn_context_new(m, &cp, &c)) { fprintf(stderr, "%s\n", vwn_last_error()); return 1; }
    int32_t *tok = malloc(sizeof(int32_t) * P);
    for (int i = 0; i < P; i++) tok[i] = 1 + (i * 7919) % 30000;
    const char *names[3] = {"static2", "balanced2", "one"};
    double sum[3] = {0}, best[3] = {1e9, 1e9, 1e9};
    vwn_decode(c, tok, P); vwn_context_clear(c);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 3; k++) {
            int v = (k + r) % 3;
            vwn_exp_split = v == 1; vwn_exp_min = mins[0];
            vwn_context_set_threads(c, v == 2 ? 1 : 2);
            vwn_context_clear(c);
            double t0 = now();
            if (vwn_decode(c, tok, P)) { fprintf(stderr, "%s\n", vwn_last_error()); return 1; }
            double dt = now() - t0;
            sum[v] += dt; if (dt < best[v]) best[v] = dt;
            printf("r%d %-9s %.1f ms %.1f tok/s\n", r, names[v], dt * 1e3, P / dt);
        }
    }
    for (int v = 0; v < 3; v++) printf("%-9s mean %.1f ms best %.1f ms\n", names[v], sum[v] / rounds * 1e3, best[v] * 1e3);
    printf("balanced/static mean %.3f best %.3f; static2 vs one %.2fx, balanced2 vs one %.2fx (means)\n",
           sum[1] / sum[0], best[1] / best[0], sum[2] / sum[0], sum[2] / sum[1]);
    return 0;
}

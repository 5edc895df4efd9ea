/* attq8.c -- decode attention alone (vwn_attention, one token at position P-1 over P cached
 * positions, 12 heads of 64, MHA as the 110M model) over fp32, fp16 and Q8_0 caches in turn, in
 * one process: median µs a call and GB/s of cache read; COLD=1 streams 64 MB between calls (as a
 * token's weights push the cache out of the LLC). Args: P THREADS ROUNDS. */
#include "attention.h"
#include "ops/ops.h"
#include "fma_loop.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    const int P = atoi(argv[1]), th = atoi(argv[2]), R = atoi(argv[3]), H = 12, hd = 64;
    const vwn_ops *ops = vwn_ops_best();
    const int types[3] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_Q8_0};
    void *K[3], *V[3];
    const size_t rows = (size_t)H * P;
    float *src = malloc(rows * hd * sizeof(float)), *q = malloc(H * hd * sizeof(float)), *out = malloc(H * hd * sizeof(float));
    for (size_t i = 0; i < rows * hd; i++) src[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (int i = 0; i < H * hd; i++) q[i] = (float)(i % 17) * 0.05f;
    for (int t = 0; t < 3; t++) {
        const size_t rb = vwn_kv_row_bytes(types[t], hd);
        K[t] = malloc(rows * rb), V[t] = malloc(rows * rb);
        for (size_t r = 0; r < rows; r++) {
            vwn_kv_store(ops, types[t], (char *)K[t] + r * rb, src + r * hd, hd);
            vwn_kv_store(ops, types[t], (char *)V[t] + r * rb, src + r * hd, hd);
        }
    }
    float *sc = malloc(sizeof(float) * vwn_attention_scratch_floats(H, hd, P, th));
    const size_t junk_n = (size_t)64 << 20;
    char *junk = getenv("COLD") ? malloc(junk_n) : NULL;
    if (junk) memset(junk, 1, junk_n);
    double *us[3];
    for (int t = 0; t < 3; t++) us[t] = malloc(sizeof(double) * R);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < 3; t++) {
            if (junk) { volatile long s = 0; for (size_t i = 0; i < junk_n; i += 64) s += junk[i]; }
            const double t0 = now();
            vwn_attention(ops, q, types[t], K[t], V[t], P - 1, 1, H, H, hd, out, sc, P, th, 0);
            us[t][r] = (now() - t0) * 1e6;
        }
    const char *names[3] = {"f32", "f16", "q8_0"};
    for (int t = 0; t < 3; t++) {
        qsort(us[t], R, sizeof(double), cmpd);
        const double bytes = 2.0 * rows * vwn_kv_row_bytes(types[t], hd);
        printf("P=%d threads %d %s: %.1f us (q1-q3 %.1f-%.1f), %.1f GB/s of cache\n", P, th, names[t], us[t][R / 2],
               us[t][R / 4], us[t][3 * R / 4], bytes / us[t][R / 2] * 1e-3);
    }
    return 0;
}

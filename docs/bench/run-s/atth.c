/* Decode attention (T = 1) over one layer's cache held in cache: 12 heads x 64, n_pos positions,
 * through vwn_attention on THREADS threads, against the same heads split by hand (each thread
 * calling vwn_attention on its half with one thread). args: N_POS THREADS REPS
 * Build: clang -O2 -fopenmp=libomp -DVWN_OPENMP -Iinclude -Ilib atth.c ... (link as abatt.c) */
#include "attention.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <omp.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    int n_pos = atoi(argv[1]), nt = atoi(argv[2]), H = 12, hd = 64, n_ctx = n_pos;
    const vwn_ops *ops = vwn_ops_best();
    size_t layer = (size_t)H * n_ctx * hd * 4;
    float *kv = aligned_alloc(64, 2 * layer);
    for (size_t i = 0; i < 2 * layer / 4; i++) kv[i] = (float)(i % 17) / 17.0f;
    float q[768], out[768]; for (int i = 0; i < 768; i++) q[i] = (float)((i * 7) % 13) / 13.0f;
    float *sc = aligned_alloc(64, sizeof(float) * VWN_ATT_BLOCK * n_ctx * nt);
    int reps = atoi(argv[3]);
for (int round=0; round<3; round++) {
    double t0 = now();
    for (int r = 0; r < reps; r++) vwn_attention(ops, q, VWN_TYPE_F32, kv, (char *)kv + layer, n_pos - 1, 1, H, H, hd, out, sc, n_ctx, nt, VWN_ATT_SPLIT_CACHE);
    double t = (now() - t0) / reps;
    double t1 = now();
    for (int r = 0; r < reps; r++) {
#pragma omp parallel num_threads(nt)
        { int i = omp_get_thread_num(), hh = H / nt; size_t off = (size_t)i * hh * n_ctx * hd;
          vwn_attention(ops, q + i * hh * hd, VWN_TYPE_F32, kv + off, (char *)(kv + off) + layer, n_pos - 1, 1, hh, hh, hd, out + i * hh * hd, sc + i * VWN_ATT_BLOCK * n_ctx, n_ctx, 1, VWN_ATT_SPLIT_CACHE); }
    }
    printf("manual split: %.2f us per call\n", (now() - t1) / reps * 1e6);
    printf("pos %d threads %d: %.2f us per call, %.2f ns per key-head\n", n_pos, nt, t * 1e6, t * 1e9 / (H * n_pos) * nt);
}
}

/* mixb.c -- the GHC mix kernel alone, in cache: the (8,64) carry (64 x 64 coefficients, strided
 * by K = 80, times a 64 x 96 state) and the coefficient projection (16 rows x 96 by 96 x 80),
 * each followed by the FMA loop: share of the loop. */
#include "ops/ops.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fma_loop.h"
int main(int argc, char **argv) {
    const vwn_ops *ops = vwn_ops_best();
    const int N = 31, R = 2000;
    float *C = aligned_alloc(64, 64 * 80 * 4), *H = aligned_alloc(64, 64 * 96 * 4), *G = aligned_alloc(64, 64 * 96 * 4);
    float *P = aligned_alloc(64, 96 * 80 * 4), *Cr = aligned_alloc(64, 16 * 80 * 4);
    for (int i = 0; i < 64 * 80; i++) C[i] = (i % 13) * 0.01f;
    for (int i = 0; i < 64 * 96; i++) H[i] = (i % 7) * 0.1f;
    for (int i = 0; i < 96 * 80; i++) P[i] = (i % 5) * 0.1f;
    double r1[64], r2[64];
    for (int k = 0; k < N; k++) {
        double t0 = now();
        for (int q = 0; q < R; q++) ops->mix(G, 96, C + 8, 1, 80, H, 96, 64, 64, 96, false);
        double g = 2.0 * 64 * 64 * 96 * R / (now() - t0) * 1e-9;
        r1[k] = g / fma_gflops((long)(2.0 * 64 * 64 * 96 * R / 512 / 2));
        t0 = now();
        for (int q = 0; q < R * 4; q++) ops->mix(Cr, 80, H, 96, 1, P, 80, 16, 96, 80, false);
        g = 2.0 * 16 * 96 * 80 * R * 4 / (now() - t0) * 1e-9;
        r2[k] = g / fma_gflops((long)(2.0 * 16 * 96 * 80 * R * 4 / 512 / 2));
    }
    qsort(r1, N, 8, cmpd); qsort(r2, N, 8, cmpd);
    printf("carry mix (64x64 by 64x96): %.0f%% of the FMA loop (q1-q3 %.0f-%.0f%%); coefficient projection (16x96 by 96x80): %.0f%% (%.0f-%.0f%%)\n",
           100 * r1[N / 2], 100 * r1[N / 4], 100 * r1[3 * N / 4], 100 * r2[N / 2], 100 * r2[N / 4], 100 * r2[3 * N / 4]);
    return 0;
}

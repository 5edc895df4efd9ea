/* coefb.c -- ghc_coef for a token's 64 x 80 coefficients: a call per row of 80 against one call
 * over all 5,120 (mult the same), in cache. */
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    const vwn_ops *ops = vwn_ops_best();
    float *c = aligned_alloc(64, 5120 * 4), *c0 = aligned_alloc(64, 5120 * 4), *sc = aligned_alloc(64, 5120 * 4);
    for (int i = 0; i < 5120; i++) c[i] = (i % 17) * 0.1f - 0.8f, c0[i] = 0.5f, sc[i] = 0.1f;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int q = 0; q < 20000; q++) for (int row = 0; row < 64; row++) ops->ghc_coef(c + row * 80, c0 + row * 80, sc + row * 80, 80, 1e-3f);
        double t1 = now();
        for (int q = 0; q < 20000; q++) ops->ghc_coef(c, c0, sc, 5120, 1e-3f);
        double t2 = now();
        printf("per row: %.2f us a token; one call: %.2f us a token\n", (t1 - t0) / 20000 * 1e6, (t2 - t1) / 20000 * 1e6);
    }
}

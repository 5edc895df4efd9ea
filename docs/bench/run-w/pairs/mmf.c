/* one thread: F32 / BF16 matmul, T = 1..8 -- from DRAM (rows x 768) */
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc, char **argv) {
    const vwn_ops *ops = vwn_ops_best();
    int64_t rows = atol(argv[1]), cols = atol(argv[4]);
    int reps = atoi(argv[2]); int type = atoi(argv[3]); /* 0 f32, 30 bf16 */
    size_t es = type == 0 ? 4 : 2, rb = cols * es;
    char *data = aligned_alloc(2 << 20, rows * rb);
    srand(1);
    if (type == 0) for (size_t i = 0; i < rows * cols; i++) ((float *)data)[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    else for (size_t i = 0; i < rows * cols; i++) ((uint16_t *)data)[i] = vwn_fp32_to_bf16((float)rand() / (float)RAND_MAX - 0.5f);
    vwn_mat W = {data, type, rows, cols, rb, NULL};
    float *X = malloc(8 * cols * 4), *Y = malloc(8 * rows * 4);
    for (int i = 0; i < 8 * cols; i++) X[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int T = 1; T <= 8; T++) {
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            ops->matmul(&W, X, cols, NULL, T, Y, rows, 0, rows);
            double dt = now() - t0; if (dt < best) best = dt;
        }
        printf("T=%d %.3f ms %.1f GB/s %.1f GFLOP/s\n", T, best * 1e3, rows * rb / best / 1e9, 2.0 * rows * cols * T / best / 1e9);
    }
    return 0;
}

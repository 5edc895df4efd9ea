/* one thread: packed Q8_0 matmul, T = 1..8, rows in pairs (the library's kernel) -- measured from
 * DRAM (a 160000 x 768 matrix, 130 MB) and in L2/L3 (2048 x 768). */
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc, char **argv) {
    const vwn_ops *ops = vwn_ops_best();
    int64_t rows = atol(argv[1]), cols = 768;
    int reps = atoi(argv[2]);
    size_t rb = cols / 32 * sizeof(vwn_block_q8_0);
    char *data = aligned_alloc(2 << 20, rows * rb), *pk = aligned_alloc(2 << 20, rows * rb);
    srand(1);
    for (size_t i = 0; i < rows * rb; i++) data[i] = (char)rand();
    for (int64_t r = 0; r < rows; r++) for (int b = 0; b < cols / 32; b++) ((vwn_block_q8_0 *)(data + r * rb))[b].d = 0x3c00;
    vwn_pack_rows(8, data, pk, rows, cols);
    vwn_mat W = {data, 8, rows, cols, rb, pk};
    float *X = malloc(8 * cols * 4), *Y = malloc(8 * rows * 4);
    for (int i = 0; i < 8 * cols; i++) X[i] = (float)rand() / RAND_MAX - 0.5f;
    vwn_block_q8_0 *xq = malloc(8 * cols / 32 * sizeof(vwn_block_q8_0));
    for (int t = 0; t < 8; t++) ops->quantize_q8_0(X + t * cols, xq + t * cols / 32, cols);
    for (int T = 1; T <= 8; T++) {
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            ops->matmul(&W, X, cols, xq, T, Y, rows, 0, rows);
            double dt = now() - t0; if (dt < best) best = dt;
        }
        printf("T=%d %.3f ms  %.1f GB/s\n", T, best * 1e3, rows * rb / best / 1e9);
    }
    return 0;
}

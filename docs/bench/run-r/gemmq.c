/* Q8_0 matmul throughput at T tokens, one thread, matrix in L2/L3 (hot): GMAC/s, file vs packed. */
#include "ops/ops.h"
#include "common.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
extern int vwn_x_pair;
int main(int argc, char **argv) {
    if (getenv("NOPAIR")) vwn_x_pair = 0;
    const int64_t rows = atoll(argv[1]), cols = atoll(argv[2]), T = atoll(argv[3]);
    const vwn_ops *ops = vwn_ops_best();
    size_t rb = vwn_row_bytes(VWN_TYPE_Q8_0, cols);
    char *w = vwn_big_alloc(rb * rows), *pk = vwn_big_alloc(rb * rows);
    for (size_t i = 0; i < rb * rows; i++) w[i] = (char)(i * 2654435761u >> 13);
    for (int64_t i = 0; i < rows * cols / 32; i++) ((vwn_block_q8_0 *)w)[i].d = 0x3c00;
    vwn_pack_rows(VWN_TYPE_Q8_0, w, pk, rows, cols);
    float *x = malloc(sizeof(float) * T * cols), *y = malloc(sizeof(float) * T * rows);
    for (int64_t i = 0; i < T * cols; i++) x[i] = (float)(i % 13) - 6;
    vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * T * cols / 32);
    ops->quantize_q8_0(x, xq, T * cols);
    vwn_mat m = {w, VWN_TYPE_Q8_0, rows, cols, rb, pk};
    double best[2] = {1e9, 1e9};
    for (int rep = 0; rep < 60; rep++) {
        vwn_x_pair = rep & 1;
        double t0 = now();
        ops->matmul(&m, x, cols, xq, T, y, rows, 0, rows);
        double t = now() - t0; if (t < best[rep & 1]) best[rep & 1] = t;
    }
    printf("packed %lldx%lld T=%lld: one row %.1f GMAC/s, pairs %.1f GMAC/s (%.3fx)\n", (long long)rows, (long long)cols, (long long)T,
           (double)rows * cols * T / best[0] / 1e9, (double)rows * cols * T / best[1] / 1e9, best[0] / best[1]);
    return 0;
}

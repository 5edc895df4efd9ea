/* matmul.c -- the threaded matmul driver the forward pass calls: quantizes the activations once
 * when the weights are Q8_0, then splits the weight rows over OpenMP threads in 16-row-aligned
 * chunks and runs the kernel of the chosen vwn_ops table on each chunk. */
#include "ops/ops.h"
#include "vwn.h"

#define ROW_ALIGN 16

size_t vwn_matmul_scratch_size(const vwn_mat *W, int64_t T) {
    if (W->type != VWN_TYPE_Q8_0 || T <= 0 || W->cols <= 0) return 0;
    uint64_t blocks = (uint64_t)(W->cols / VWN_QK8_0);
    if ((uint64_t)T > UINT64_MAX / blocks / sizeof(vwn_block_q8_0)) return 0;
    uint64_t bytes = (uint64_t)T * blocks * sizeof(vwn_block_q8_0);
    return bytes > SIZE_MAX ? 0 : (size_t)bytes;
}

/* Rows [r0, r1) of thread i of n: 16-row chunks dealt out in contiguous runs. */
static void thread_rows(int64_t rows, int i, int n, int64_t *r0, int64_t *r1) {
    int64_t chunks = (rows + ROW_ALIGN - 1) / ROW_ALIGN;
    int64_t c0 = chunks * i / n, c1 = chunks * (i + 1) / n;
    *r0 = c0 * ROW_ALIGN < rows ? c0 * ROW_ALIGN : rows;
    *r1 = c1 * ROW_ALIGN < rows ? c1 * ROW_ALIGN : rows;
}

void vwn_matmul_mt(const vwn_ops *ops, const vwn_mat *W, const float *X, int64_t T, float *Y,
                   void *xq_scratch, int n_threads) {
    const int64_t cols = W->cols, rows = W->rows;
    if (T <= 0 || rows <= 0) return;

    void *xq = NULL;
    if (W->type == VWN_TYPE_Q8_0) {
        xq = xq_scratch;
        vwn_block_q8_0 *q = xq_scratch;
        for (int64_t t = 0; t < T; t++) ops->quantize_q8_0(X + t * cols, q + t * (cols / VWN_QK8_0), cols);
    }

    int64_t chunks = (rows + ROW_ALIGN - 1) / ROW_ALIGN;
    if (n_threads > chunks) n_threads = (int)chunks;
#ifdef VWN_OPENMP
    if (n_threads > 1) {
        const int n = n_threads;
#pragma omp parallel for num_threads(n) schedule(static, 1)
        for (int i = 0; i < n; i++) {
            int64_t r0, r1;
            thread_rows(rows, i, n, &r0, &r1);
            if (r0 < r1) ops->matmul(W, X, cols, xq, T, Y, rows, r0, r1);
        }
        return;
    }
#endif
    ops->matmul(W, X, cols, xq, T, Y, rows, 0, rows);
}

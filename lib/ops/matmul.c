/* matmul.c -- the threaded matmul driver the forward pass calls: quantizes the activations to Q8_0
 * once when the weights are Q8_0 or Q4_0, then splits the weight rows over OpenMP threads in
 * 16-row-aligned chunks (small matmuls stay on the calling thread) and runs the kernel of the
 * chosen vwn_ops table on each chunk. Every (row, token) result is computed the same way whatever
 * the split, so any thread count gives identical output. */
#include "ops/ops.h"
#include "vwn.h"

#ifdef VWN_OPENMP
#include <omp.h>
#endif

#define ROW_ALIGN 16
/* Below this many multiply-adds a matmul runs on the calling thread: starting a thread team costs
 * a few microseconds, more than the work saves. Results do not depend on the split either way. */
#define MIN_PARALLEL_MACS (1 << 17)

/* Weights whose dots take Q8_0-quantized activations (the kernels' xq). */
static bool takes_q8(int32_t type) {
    return type == VWN_TYPE_Q8_0 || type == VWN_TYPE_Q4_0;
}

size_t vwn_matmul_scratch_size(const vwn_mat *W, int64_t T) {
    if (!takes_q8(W->type) || T <= 0 || W->cols < VWN_QK8_0) return 0;
    uint64_t blocks = (uint64_t)(W->cols / VWN_QK8_0);
    if ((uint64_t)T > UINT64_MAX / blocks / sizeof(vwn_block_q8_0)) return 0;
    uint64_t bytes = (uint64_t)T * blocks * sizeof(vwn_block_q8_0);
    return bytes > SIZE_MAX ? 0 : (size_t)bytes;
}

#ifdef VWN_OPENMP
/* Rows [r0, r1) of thread i of n: 16-row chunks dealt out in contiguous runs. */
static void thread_rows(int64_t rows, int i, int n, int64_t *r0, int64_t *r1) {
    int64_t chunks = (rows + ROW_ALIGN - 1) / ROW_ALIGN;
    int64_t c0 = chunks * i / n, c1 = chunks * (i + 1) / n;
    *r0 = c0 * ROW_ALIGN < rows ? c0 * ROW_ALIGN : rows;
    *r1 = c1 * ROW_ALIGN < rows ? c1 * ROW_ALIGN : rows;
}
#endif

void vwn_matmul_mt_many(const vwn_ops *ops, const vwn_mat *const *W, float *const *Y, int count,
                        const float *X, int64_t T, void *xq_scratch, int n_threads) {
    if (T <= 0 || count <= 0) return;
    const int64_t cols = W[0]->cols;
    const bool q8 = takes_q8(W[0]->type);
    const int64_t n_blocks = q8 ? T * (cols / VWN_QK8_0) : 0; /* X is one run of T * cols floats */
    vwn_block_q8_0 *xq = q8 ? xq_scratch : NULL;

    int64_t chunks = 0;
    double macs = 0;
    for (int i = 0; i < count; i++) {
        chunks += (W[i]->rows + ROW_ALIGN - 1) / ROW_ALIGN;
        macs += (double)W[i]->rows * (double)cols * (double)T;
    }
    int n = n_threads < 1 ? 1 : n_threads;
    if (n > chunks) n = (int)(chunks > 0 ? chunks : 1);
    if (macs < (double)MIN_PARALLEL_MACS) n = 1;
#ifdef VWN_OPENMP
    if (n > 1) {
        /* a few blocks (decoding): quantized by the calling thread, so the team needs no barrier
         * (measured: Q8_0 decode 1-13% faster in three A/B pairs) */
        const bool quantize_first = q8 && n_blocks < 256;
        if (quantize_first) ops->quantize_q8_0(X, xq, n_blocks * VWN_QK8_0);
        /* one thread team for all the products (one fork and one join instead of one each) */
#pragma omp parallel num_threads(n)
        {
            const int i = omp_get_thread_num(), nt = omp_get_num_threads();
            if (q8 && !quantize_first) {
                int64_t b0 = n_blocks * i / nt, b1 = n_blocks * (i + 1) / nt;
                if (b0 < b1) ops->quantize_q8_0(X + b0 * VWN_QK8_0, xq + b0, (b1 - b0) * VWN_QK8_0);
#pragma omp barrier
            }
            for (int w = 0; w < count; w++) {
                int64_t r0, r1;
                thread_rows(W[w]->rows, i, nt, &r0, &r1);
                if (r0 < r1) ops->matmul(W[w], X, cols, xq, T, Y[w], W[w]->rows, r0, r1);
            }
        }
        return;
    }
#endif
    if (q8) ops->quantize_q8_0(X, xq, n_blocks * VWN_QK8_0);
    for (int w = 0; w < count; w++) ops->matmul(W[w], X, cols, xq, T, Y[w], W[w]->rows, 0, W[w]->rows);
}

void vwn_matmul_mt(const vwn_ops *ops, const vwn_mat *W, const float *X, int64_t T, float *Y,
                   void *xq_scratch, int n_threads) {
    vwn_matmul_mt_many(ops, &W, &Y, 1, X, T, xq_scratch, n_threads);
}

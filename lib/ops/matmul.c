/* matmul.c -- the threaded matmul driver the forward pass calls: quantizes the activations to Q8_0
 * once when the weights are Q8_0 or Q4_0, then splits the weight rows over OpenMP threads in
 * 16-row-aligned chunks (small matmuls stay on the calling thread) and runs the kernel of the
 * chosen vwn_ops table on each chunk, the chunks balanced between the threads as they run (below).
 * Every (row, token) result is computed the same way whatever the split, so any thread count gives
 * identical output. */
#include "ops/ops.h"
#include "vwn.h"

#include <stdatomic.h>

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

size_t vwn_matmul_scratch_size(const vwn_ops *ops, const vwn_mat *W, int64_t T) {
    if (T <= 0) return 0;
    if (!takes_q8(W->type)) return ops && ops->prep_bytes ? ops->prep_bytes(T, W->cols) : 0;
    if (W->cols < VWN_QK8_0) return 0;
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

/* ---- the balanced split ------------------------------------------------------------------------
 *
 * The halves of a static split seldom finish together: a core slowed for a moment (by the other
 * work of a shared machine, or by where its lines come from) keeps the other waiting at the join.
 * Decoding lost 5-22% of a product's time so (docs/performance.md, "A balanced split for
 * decoding"); a 256-token prefill on the two vCPUs of a shared Intel host, whose cores ran the
 * same tile at different speeds, left the second thread waiting 24% of its time (ibid., "A
 * balanced split for prefill"). So the chunks of all the call's products are numbered in one
 * sequence (matrix 0's, then matrix 1's, ...) and each thread owns a run of it, its static share.
 * The owner claims the front half of what is left of its run, then half of the rest, and so on;
 * a thread whose run is empty takes the back half of the longest run left and makes it its own.
 * A run is one 64-bit word, [next, end) in chunks, changed only by compare-and-swap: until a steal
 * the owner's claims touch only its own cache line. Each thread still reads long contiguous
 * stretches of rows, which the hardware prefetchers follow.
 *
 * A claim of many tokens is a GEMM call of its own, which reads its activations once per block of
 * columns: with many tokens no claim is smaller than PREFILL_MIN_CLAIM chunks (64 rows), whose
 * weights outweigh the activations' reads from L2 (a claim of single chunks measured 0.86-1.04 of
 * the static split's speed on Zen 4). */
#define BALANCED_MAX_T 4        /* up to this many tokens, claims go down to one chunk */
#define PREFILL_MIN_CLAIM 4     /* chunks; more tokens than BALANCED_MAX_T */
#define BALANCED_MAX_THREADS 64 /* runs on the calling thread's stack */
#define BALANCED_MAX_COUNT 8    /* products per call */

typedef struct {
    _Alignas(64) _Atomic uint64_t run; /* next | end << 32, in chunks of the sequence */
} run_slot;

typedef struct {
    const vwn_ops *ops;
    const vwn_mat *const *W;
    float *const *Y;
    int count;
    int64_t first[BALANCED_MAX_COUNT]; /* the sequence number of each matrix's first chunk */
    const float *X;
    const void *xq;
    int64_t T;
    run_slot *runs;
    int n_runs;
    uint64_t min_claim; /* chunks: 1, or PREFILL_MIN_CLAIM for many tokens */
} balanced_job;

static uint64_t run_pack(uint64_t next, uint64_t end) { return next | end << 32; }

/* Claims chunks [*c0, *c1) of a run: the front half of what is left for its owner (at least mn
 * chunks, or all that is left), the back half for a thief (who needs at least 2 mn chunks to be
 * left). False if there is nothing to take. */
static bool run_claim(run_slot *r, bool owner, uint64_t mn, uint64_t *c0, uint64_t *c1) {
    uint64_t v = atomic_load_explicit(&r->run, memory_order_relaxed);
    for (;;) {
        const uint64_t next = v & 0xffffffffu, end = v >> 32, left = end > next ? end - next : 0;
        if (left < (owner ? 1u : 2u * mn)) return false;
        uint64_t nv;
        if (owner) {
            uint64_t take = left / 2 > mn ? left / 2 : mn;
            if (take > left) take = left;
            *c0 = next, *c1 = next + take, nv = run_pack(next + take, end);
        } else {
            *c0 = end - left / 2, *c1 = end, nv = run_pack(next, end - left / 2);
        }
        /* relaxed: the word only hands out chunks; the rows are published by the region's join */
        if (atomic_compare_exchange_weak_explicit(&r->run, &v, nv, memory_order_relaxed, memory_order_relaxed))
            return true;
    }
}

/* Chunks [c0, c1) of the sequence, matrix by matrix. */
static void run_chunks(const balanced_job *job, int64_t c0, int64_t c1) {
    const int64_t cols = job->W[0]->cols;
    int w = 0;
    while (c0 < c1) {
        while (w + 1 < job->count && c0 >= job->first[w + 1]) w++;
        const int64_t stop = w + 1 < job->count && job->first[w + 1] < c1 ? job->first[w + 1] : c1;
        const int64_t rows = job->W[w]->rows, r0 = (c0 - job->first[w]) * ROW_ALIGN;
        const int64_t r1 = (stop - job->first[w]) * ROW_ALIGN < rows ? (stop - job->first[w]) * ROW_ALIGN : rows;
        job->ops->matmul(job->W[w], job->X, cols, job->xq, job->T, job->Y[w], rows, r0, r1);
        c0 = stop;
    }
}

/* Thread i of nt: the runs it owns (i, i + nt, ...; nt < n_runs if OpenMP gave fewer threads),
 * then whatever it can take from the others. */
static void balanced_share(const balanced_job *job, int i, int nt) {
    uint64_t c0, c1;
    for (int own = i; own < job->n_runs; own += nt)
        while (run_claim(&job->runs[own], true, job->min_claim, &c0, &c1)) run_chunks(job, (int64_t)c0, (int64_t)c1);
    run_slot *mine = &job->runs[i]; /* empty now: no thief can change it */
    for (;;) {
        int victim = -1;
        uint64_t most = 2 * job->min_claim - 1; /* a thief needs 2 min_claim chunks left */
        for (int k = 0; k < job->n_runs; k++) {
            const uint64_t v = atomic_load_explicit(&job->runs[k].run, memory_order_relaxed);
            const uint64_t next = v & 0xffffffffu, end = v >> 32;
            if (end > next && end - next > most) most = end - next, victim = k;
        }
        if (victim < 0) return; /* every run is claimed to its last chunk */
        if (!run_claim(&job->runs[victim], false, job->min_claim, &c0, &c1)) continue; /* raced: look again */
        atomic_store_explicit(&mine->run, run_pack(c0, c1), memory_order_relaxed);
        while (run_claim(mine, true, job->min_claim, &c0, &c1)) run_chunks(job, (int64_t)c0, (int64_t)c1);
    }
}
#endif

void vwn_matmul_mt_many(const vwn_ops *ops, const vwn_mat *const *W, float *const *Y, int count,
                        const float *X, int64_t T, void *xq_scratch, int n_threads) {
    if (T <= 0 || count <= 0) return;
    const int64_t cols = W[0]->cols;
    const bool q8 = takes_q8(W[0]->type);
    const int64_t n_blocks = q8 ? T * (cols / VWN_QK8_0) : 0; /* X is one run of T * cols floats */
    /* float weights: the activations prepared for the table's kernels (where it wants them) */
    const bool prep = !q8 && xq_scratch && ops->prep_bytes && ops->prepare_x && ops->prep_bytes(T, cols) > 0;
    void *xq = q8 || prep ? xq_scratch : NULL;

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
        /* the balanced split; a static one where its tables would not fit (a huge team or call) */
        const bool balanced = n <= BALANCED_MAX_THREADS && count <= BALANCED_MAX_COUNT && chunks < ((int64_t)1 << 32);
        run_slot runs[BALANCED_MAX_THREADS];
        balanced_job job = {ops, W, Y, count, {0}, X, xq, T, runs, n, T <= BALANCED_MAX_T ? 1u : PREFILL_MIN_CLAIM};
        if (balanced) {
            for (int w = 1; w < count; w++) job.first[w] = job.first[w - 1] + (W[w - 1]->rows + ROW_ALIGN - 1) / ROW_ALIGN;
            for (int i = 0; i < n; i++)
                atomic_init(&runs[i].run, run_pack((uint64_t)(chunks * i / n), (uint64_t)(chunks * (i + 1) / n)));
        }
        /* one thread team for all the products (one fork and one join instead of one each) */
#pragma omp parallel num_threads(n)
        {
            const int i = omp_get_thread_num(), nt = omp_get_num_threads();
            if (q8 && !quantize_first) {
                int64_t b0 = n_blocks * i / nt, b1 = n_blocks * (i + 1) / nt;
                vwn_block_q8_0 *xb = xq;
                if (b0 < b1) ops->quantize_q8_0(X + b0 * VWN_QK8_0, xb + b0, (b1 - b0) * VWN_QK8_0);
#pragma omp barrier
            }
            if (prep) {
                const int64_t t0 = T * i / nt, t1 = T * (i + 1) / nt;
                if (t0 < t1) ops->prepare_x(X, cols, T, cols, t0, t1, xq);
#pragma omp barrier
            }
            if (balanced) {
                balanced_share(&job, i, nt);
            } else {
                for (int w = 0; w < count; w++) {
                    int64_t r0, r1;
                    thread_rows(W[w]->rows, i, nt, &r0, &r1);
                    if (r0 < r1) ops->matmul(W[w], X, cols, xq, T, Y[w], W[w]->rows, r0, r1);
                }
            }
        }
        return;
    }
#endif
    if (q8) ops->quantize_q8_0(X, xq, n_blocks * VWN_QK8_0);
    if (prep) ops->prepare_x(X, cols, T, cols, 0, T, xq);
    for (int w = 0; w < count; w++) ops->matmul(W[w], X, cols, xq, T, Y[w], W[w]->rows, 0, W[w]->rows);
}

void vwn_matmul_mt(const vwn_ops *ops, const vwn_mat *W, const float *X, int64_t T, float *Y,
                   void *xq_scratch, int n_threads) {
    vwn_matmul_mt_many(ops, &W, &Y, 1, X, T, xq_scratch, n_threads);
}

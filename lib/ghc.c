/* ghc.c -- Generalized Hyper-Connections around one sublayer (spec §2).
 *
 * The wide state of a token is H (n rows of width s); the backbone vector x has m rows of width s.
 * A coefficient matrix C (n x K, K = 2m + n) holds, per row i of H: the read weights R[i, 0..m),
 * the carry weights A[i, 0..n) and the write weights Bt[i, 0..m) (write-transposed: row j of Bt
 * says how much of each backbone segment y_k goes into wide row j).
 *
 * Column o < m + n of C says how much of row i goes into output o of the read (o < m: segment o of
 * x) or of the carry (o >= m: row o - m of G). So read and carry are one product: out_o = Σ_i C[i,o] H_i.
 *
 * The work is linear in D per token but touches the whole wide state: it is done in two passes
 * (see ghc.h), each shared out over the context's threads, during decoding too. */
#include "ghc.h"

#include <math.h>
#include <string.h>

/* Units of work shared out between threads: coefficient rows per block, and outputs (segments of
 * width s) per piece of the read/carry and of the write. Small enough that one token's work splits
 * evenly over two threads at (m,n) = (8,64); each piece is a whole 4-row tile of the mix kernel. */
#define COEF_ROWS 16
#define OUT_ROWS 4
/* Below this many multiply-adds a pass runs on the calling thread (as in lib/ops/matmul.c). */
#define MIN_PARALLEL_MACS (1 << 17)

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- before: coefficients, then read and carry -------------------------------------------------
 *
 * Coefficients (dynamic): C_i = C0_i + S_i ∘ tanh(rmsnorm(H_i) · Wᵀ / sqrt(s)). The model keeps
 * g ∘ Wᵀ (the gain folded in at load, lib/model.c), so this is (H_i · (g ∘ Wᵀ)) times
 * 1 / (rms(H_i) sqrt(s)): a product of rows of H by an [s, K] matrix, then ghc_coef per row.
 * Static GHC copies C0.
 *
 * Read and carry: column o of C weighs the rows of H into output o (x_o for o < m, G_{o-m} after).
 *
 * Each output is computed the same way whatever the grouping, so the two schedules below (and
 * any thread count) give identical results. */

typedef struct before_args {
    const vwn_hparams *hp;
    const vwn_ghc_weights *g;
    const vwn_ops *ops;
    float *H;
    const float *y_prev; /* the previous sublayer's output, whose write into H is still to do */
    float *C, *x, *G, *mult;
} before_args;

/* The write of rows [r0, r1): H_r += Σ_k Bt[r,k] y_k, with Bt in the write columns of row r of C
 * (the module's coefficients; when folded into the next module's pass, about to be overwritten).
 * vwn_ghc_after is this alone. */
static void write_rows(const before_args *a, int64_t r0, int64_t r1) {
    const vwn_hparams *hp = a->hp;
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    while (r0 < r1) {
        const int64_t t = r0 / n, end = (t + 1) * n < r1 ? (t + 1) * n : r1; /* rows of one token */
        a->ops->mix(a->H + r0 * s, s, a->C + r0 * K + m + n, K, 1, a->y_prev + t * m * s, s, end - r0, m, s, true);
        r0 = end;
    }
}

/* Coefficients of rows [r0, r1) of H (row r = token r / n, wide row r % n), after those rows'
 * pending write if there is one (a row's write reads only its own row of C). */
static void coef_rows(const before_args *a, int64_t r0, int64_t r1) {
    const vwn_hparams *hp = a->hp;
    if (a->y_prev) write_rows(a, r0, r1);
    const int64_t n = hp->ghc_n, s = hp->seg, K = hp->n_coef;
    if (!hp->ghc_dynamic) {
        for (int64_t r = r0; r < r1; r++) memcpy(a->C + r * K, a->g->statc + (r % n) * K, (size_t)K * sizeof(float));
        return;
    }
    const float inv_sqrt_s = 1.0f / sqrtf((float)s);
    for (int64_t r = r0; r < r1; r++)
        a->mult[r] = inv_sqrt_s / sqrtf(a->ops->sum_sq(a->H + r * s, s) / (float)s + hp->rms_eps);
    a->ops->mix(a->C + r0 * K, K, a->H + r0 * s, s, 1, a->g->proj, K, r1 - r0, s, K, false);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t i = r % n;
        a->ops->ghc_coef(a->C + r * K, a->g->statc + i * K, a->g->scale + i * K, K, a->mult[r]);
    }
}

/* Piece q of token t's read and carry: OUT_ROWS outputs of x (the first pieces), then of G. */
static void read_carry_piece(const before_args *a, int64_t t, int64_t q) {
    const vwn_hparams *hp = a->hp;
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    const int64_t pieces_x = ceil_div(m, OUT_ROWS);
    const float *Ht = a->H + t * hp->n_wide, *Ct = a->C + t * n * K;
    if (q < pieces_x) {
        const int64_t o0 = q * OUT_ROWS, no = m - o0 < OUT_ROWS ? m - o0 : OUT_ROWS;
        a->ops->mix(a->x + t * hp->n_embd + o0 * s, s, Ct + o0, 1, K, Ht, s, no, n, s, false);
    } else {
        const int64_t j0 = (q - pieces_x) * OUT_ROWS, no = n - j0 < OUT_ROWS ? n - j0 : OUT_ROWS;
        a->ops->mix(a->G + t * hp->n_wide + j0 * s, s, Ct + m + j0, 1, K, Ht, s, no, n, s, false);
    }
}

/* All of token t's work: its rows' write and coefficients, then its read and carry while its state
 * and coefficients are still in cache. */
static void token_pass(const before_args *a, int64_t t, int64_t pieces) {
    const int64_t n = a->hp->ghc_n;
    for (int64_t r0 = t * n; r0 < (t + 1) * n; r0 += COEF_ROWS)
        coef_rows(a, r0, r0 + COEF_ROWS < (t + 1) * n ? r0 + COEF_ROWS : (t + 1) * n);
    for (int64_t q = 0; q < pieces; q++) read_carry_piece(a, t, q);
}

void vwn_ghc_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                    const float *y_prev, float *H, int32_t T, float *C, float *x, float *G, float *rows,
                    int n_threads) {
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef, R = (int64_t)T * n;
    const before_args a = {hp, g, ops, H, y_prev, C, x, G, rows /* T·n per-row multipliers */};
    const int64_t pieces = ceil_div(m, OUT_ROWS) + ceil_div(n, OUT_ROWS);
    const double macs = (double)R * s * ((hp->ghc_dynamic ? K : 0) + m + n + (y_prev ? m : 0));
    const int nt = n_threads > 1 && macs >= (double)MIN_PARALLEL_MACS ? n_threads : 1;
    (void)nt;

    const int64_t coef_blocks = ceil_div(R, COEF_ROWS);
    if (nt == 1) {
        /* one thread: no OpenMP construct at all (a serialized region still costs ~1 µs, as much
         * as the whole GHC of a small model in decoding) */
        for (int64_t t = 0; t < T; t++) token_pass(&a, t, pieces);
        return;
    }
    if (T >= 4 * nt) {
        /* many tokens (prefill): whole tokens per thread */
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int64_t t = 0; t < T; t++) token_pass(&a, t, pieces);
        return;
    }

    /* few tokens (decoding): every token's work split between the threads -- blocks of rows
     * (write, coefficients), then (after the barrier) pieces of the read and carry */
#ifdef VWN_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
#ifdef VWN_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t b = 0; b < coef_blocks; b++)
            coef_rows(&a, b * COEF_ROWS, (b + 1) * COEF_ROWS < R ? (b + 1) * COEF_ROWS : R);
#ifdef VWN_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < (int64_t)T * pieces; p++) read_carry_piece(&a, p / pieces, p % pieces);
    }
}

/* ---- after: write, G_j += Σ_k Bt[j,k] y_k -------------------------------------------------------- */

void vwn_ghc_after(const vwn_hparams *hp, const vwn_ops *ops, const float *C, const float *y,
                   int32_t T, float *G, int n_threads) {
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg;
    const before_args a = {hp, NULL, ops, G, y, (float *)C, NULL, NULL, NULL}; /* write_rows reads C only */
    const int64_t pieces = ceil_div(n, OUT_ROWS);
    const double macs = (double)T * n * m * s;
    const int nt = n_threads > 1 && macs >= (double)MIN_PARALLEL_MACS ? n_threads : 1;
    (void)nt;
    if (nt == 1) { /* no OpenMP construct (see vwn_ghc_before) */
        write_rows(&a, 0, (int64_t)T * n);
        return;
    }
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int64_t p = 0; p < (int64_t)T * pieces; p++) {
        const int64_t t = p / pieces, j0 = (p % pieces) * OUT_ROWS, no = n - j0 < OUT_ROWS ? n - j0 : OUT_ROWS;
        write_rows(&a, t * n + j0, t * n + j0 + no);
    }
}

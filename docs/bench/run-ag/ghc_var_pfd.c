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
 * (see ghc.h), each shared out over the context's threads, during decoding too.
 *
 * The write needs only the write columns of C, and one module later: they are kept apart, in
 * `wcoef` ([T][n][m]). With whole tokens per thread, C and the carry of a token live in a
 * per-thread buffer and the carry is copied over the token's state. Prefill at (m,n) = (8,64),
 * one module, measured per token (one thread, 256 tokens, AVX-512): 26.2-26.6 µs with C and G in
 * [T]-sized buffers, 23.8 µs with only G (the carry) in a per-thread buffer, 22.5 µs with both --
 * the state, C and G of 256 tokens (17.8 MB) no longer stream through L3 as three arrays but as
 * one; two threads 12.8-13.1 -> 10.7-11.5 µs (docs/performance.md). */
#include "ghc.h"
#include <x86intrin.h>
double tsc_part[8];
#define TICK(i) do { unsigned long long _n = __rdtsc(); tsc_part[i] += (double)(_n - _t); _t = _n; } while (0)

#include <math.h>
#include <string.h>
#ifdef VWN_OPENMP
#include <omp.h>
#endif

/* Units of work shared out between threads: coefficient rows per block, and outputs (segments of
 * width s) per piece of the read/carry and of the write. Small enough that one token's work splits
 * evenly over two threads at (m,n) = (8,64); each piece is a whole 4-row tile of the mix kernel. */
#define COEF_ROWS 16
#define OUT_ROWS 4
/* Tokens a thread takes at a time in a prefill (token_pass prefetches the next token's lines: the
 * first of the next chunk is likely another thread's, a miss once per chunk). */
#define GHC_CHUNK 4
/* Below this many multiply-adds a pass runs on the calling thread (as in lib/ops/matmul.c). */
#define MIN_PARALLEL_MACS (1 << 17)

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* A software prefetch into L2 (for reading, or for writing); nothing where the compiler has none. */
#if defined(__GNUC__) || defined(__clang__)
#define VWN_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#define VWN_PREFETCH_L2_WRITE(p) __builtin_prefetch((p), 1, 2)
#else
#define VWN_PREFETCH_L2(p) ((void)(p))
#define VWN_PREFETCH_L2_WRITE(p) ((void)(p))
#endif

/* ---- before: coefficients, then read and carry -------------------------------------------------
 *
 * Coefficients (dynamic): C_i = C0_i + S_i ∘ tanh(rmsnorm(H_i) · Wᵀ / sqrt(s)). The model keeps
 * g ∘ Wᵀ (the gain folded in at load, lib/model.c), so this is (H_i · (g ∘ Wᵀ)) times
 * 1 / (rms(H_i) sqrt(s)): a product of rows of H by an [s, K] matrix, then ghc_coef per row.
 * Static GHC copies C0.
 *
 * Read and carry: column o of C weighs the rows of H into output o (x_o for o < m, G_{o-m} after).
 *
 * Each output is computed the same way whatever the grouping, so the schedules below (and any
 * thread count) give identical results. */

typedef struct before_args {
    const vwn_hparams *hp;
    const vwn_ghc_weights *g;
    const vwn_ops *ops;
    float *H;
    const float *y_prev; /* the previous sublayer's output, whose write into H is still to do */
    float *x, *G;
    const vwn_ghc_scratch *sc;
    int64_t T; /* tokens */
} before_args;

/* The write of rows [r0, r1) (row r = token r / n, wide row r % n): H_r += Σ_k Bt[r,k] y_k, with
 * Bt from wcoef. vwn_ghc_after is this alone. */
static void write_rows(const before_args *a, int64_t r0, int64_t r1) {
    const vwn_hparams *hp = a->hp;
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg;
    while (r0 < r1) {
        const int64_t t = r0 / n, end = (t + 1) * n < r1 ? (t + 1) * n : r1; /* rows of one token */
        a->ops->mix(a->H + r0 * s, s, a->sc->wcoef + r0 * m, m, 1, a->y_prev + t * m * s, s, end - r0, m, s, true);
        r0 = end;
    }
}

/* Coefficients of rows [r0, r1) into Cr (row r0's, stride K), after those rows' pending write if
 * there is one (a row's write reads only its own write coefficients, replaced here once used).
 * mult: scratch of r1 - r0 floats. */
static void coef_rows(const before_args *a, int64_t r0, int64_t r1, float *Cr, float *mult) {
    const vwn_hparams *hp = a->hp;
    unsigned long long _t = __rdtsc();
    if (a->y_prev) write_rows(a, r0, r1);
    TICK(5);
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    if (!hp->ghc_dynamic) {
        for (int64_t r = r0; r < r1; r++) memcpy(Cr + (r - r0) * K, a->g->statc + (r % n) * K, (size_t)K * sizeof(float));
    } else {
        const float inv_sqrt_s = 1.0f / sqrtf((float)s);
        for (int64_t r = r0; r < r1; r++)
            mult[r - r0] = inv_sqrt_s / sqrtf(a->ops->sum_sq(a->H + r * s, s) / (float)s + hp->rms_eps);
        TICK(6);
        a->ops->mix(Cr, K, a->H + r0 * s, s, 1, a->g->proj, K, r1 - r0, s, K, false);
        TICK(7);
        for (int64_t r = r0; r < r1; r++) {
            const int64_t i = r % n;
            a->ops->ghc_coef(Cr + (r - r0) * K, a->g->statc + i * K, a->g->scale + i * K, K, mult[r - r0]);
        }
        TICK(6);
    }
    for (int64_t r = r0; r < r1; r++)
        memcpy(a->sc->wcoef + r * m, Cr + (r - r0) * K + m + n, (size_t)m * sizeof(float));
}

/* Part p of 4 of token t's lines brought towards the cache (L2) ahead of use: its wide state, the
 * pending sublayer output it adds in, and the read output it will write (for writing). The whole-
 * token passes call this for the next token between the four steps of the current one. In a prefill
 * the state is cold (the sublayer's weights went through the caches since it was last touched) and
 * a token's lines are many short strided streams -- n rows of s floats, walked four rows at a time
 * -- that the hardware prefetchers pick up late: one (2,8) module over 256 cold tokens, one thread,
 * took 4.2 µs per token against 2.8 with the state in cache, 3.4 with this (docs/performance.md).
 * All of it at once, before the token, was no faster (the misses queue up behind each other). */
static void prefetch_token_part(const before_args *a, int64_t t, int p) {
#ifdef NOPF
    (void)a; (void)t; (void)p; return;
#endif
    if (t >= a->T) return;
    const vwn_hparams *hp = a->hp;
    const int64_t lines_h = hp->n_wide * (int64_t)sizeof(float) / 64, lines_x = hp->n_embd * (int64_t)sizeof(float) / 64;
    const char *h = (const char *)(a->H + t * hp->n_wide), *x = (const char *)(a->x + t * hp->n_embd);
    for (int64_t l = lines_h * p / 4; l < lines_h * (p + 1) / 4; l++) VWN_PREFETCH_L2(h + l * 64);
    for (int64_t l = lines_x * p / 4; l < lines_x * (p + 1) / 4; l++) {
        if (a->y_prev) VWN_PREFETCH_L2((const char *)(a->y_prev + t * hp->n_embd) + l * 64);
        VWN_PREFETCH_L2_WRITE(x + l * 64);
    }
}

/* Whole token t on one thread, with tmp ([n*K + D']) for its coefficients and carry: its rows'
 * write and coefficients, its read, its carry, and the carry copied over its state; between the
 * steps, the next token's lines are prefetched. */
static void token_pass(const before_args *a, int64_t t, float *tmp) {
    const vwn_hparams *hp = a->hp;
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    float *Ct = tmp, *Gt = tmp + n * K, *Ht = a->H + t * hp->n_wide;
    float mult[COEF_ROWS];
    unsigned long long _t = __rdtsc();
    prefetch_token_part(a, t + PFD, 0);
    TICK(0);
    for (int64_t r0 = 0; r0 < n; r0 += COEF_ROWS)
        coef_rows(a, t * n + r0, t * n + (r0 + COEF_ROWS < n ? r0 + COEF_ROWS : n), Ct + r0 * K, mult);
    TICK(1);
    prefetch_token_part(a, t + PFD, 1);
    TICK(0);
    a->ops->mix(a->x + t * hp->n_embd, s, Ct, 1, K, Ht, s, m, n, s, false);
    TICK(2);
    prefetch_token_part(a, t + PFD, 2);
    TICK(0);
    a->ops->mix(Gt, s, Ct + m, 1, K, Ht, s, n, n, s, false);
    TICK(3);
    prefetch_token_part(a, t + PFD, 3);
    TICK(0);
    memcpy(Ht, Gt, (size_t)hp->n_wide * sizeof(float));
    TICK(4);
    if (a->sc->keep_coef) memcpy(a->sc->coef + t * n * K, Ct, (size_t)(n * K) * sizeof(float));
}

/* Piece q of token t's read and carry (split work): OUT_ROWS outputs of x (the first pieces),
 * then of G, from the coefficients in sc->coef. */
static void read_carry_piece(const before_args *a, int64_t t, int64_t q) {
    const vwn_hparams *hp = a->hp;
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef;
    const int64_t pieces_x = ceil_div(m, OUT_ROWS);
    const float *Ht = a->H + t * hp->n_wide, *Ct = a->sc->coef + t * n * K;
    if (q < pieces_x) {
        const int64_t o0 = q * OUT_ROWS, no = m - o0 < OUT_ROWS ? m - o0 : OUT_ROWS;
        a->ops->mix(a->x + t * hp->n_embd + o0 * s, s, Ct + o0, 1, K, Ht, s, no, n, s, false);
    } else {
        const int64_t j0 = (q - pieces_x) * OUT_ROWS, no = n - j0 < OUT_ROWS ? n - j0 : OUT_ROWS;
        a->ops->mix(a->G + t * hp->n_wide + j0 * s, s, Ct + m + j0, 1, K, Ht, s, no, n, s, false);
    }
}

float *ghc_var_before(const vwn_hparams *hp, const vwn_ghc_weights *g, const vwn_ops *ops,
                      const float *y_prev, float *H, int32_t T, float *x, float *G,
                      const vwn_ghc_scratch *sc, int n_threads) {
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg, K = hp->n_coef, R = (int64_t)T * n;
    const before_args a = {hp, g, ops, H, y_prev, x, G, sc, T};
    const int64_t pieces = ceil_div(m, OUT_ROWS) + ceil_div(n, OUT_ROWS);
    const double macs = (double)R * s * ((hp->ghc_dynamic ? K : 0) + m + n + (y_prev ? m : 0));
    const int nt = n_threads > 1 && macs >= (double)MIN_PARALLEL_MACS ? n_threads : 1;

    if (nt == 1) {
        /* one thread: no OpenMP construct at all (a serialized region still costs ~1 µs, as much
         * as the whole GHC of a small model in decoding) */
        for (int64_t t = 0; t < T; t++) token_pass(&a, t, sc->tmp);
        return H;
    }
    if (T >= VWN_GHC_TOKENS_PER_THREAD * nt) {
        /* many tokens (prefill): whole tokens per thread, handed out GHC_CHUNK at a time as the
         * threads come for them (a static split waits for the slower core; see matmul.c) */
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, GHC_CHUNK)
#endif
        for (int64_t t = 0; t < T; t++) {
#ifdef VWN_OPENMP
            token_pass(&a, t, sc->tmp + (size_t)omp_get_thread_num() * (size_t)(n * K + hp->n_wide));
#else
            token_pass(&a, t, sc->tmp);
#endif
        }
        return H;
    }

    /* few tokens (decoding): every token's work split between the threads -- blocks of rows
     * (write, coefficients), then (after the barrier) pieces of the read and carry */
    const int64_t coef_blocks = ceil_div(R, COEF_ROWS);
#ifdef VWN_OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
#ifdef VWN_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t b = 0; b < coef_blocks; b++) {
            const int64_t r0 = b * COEF_ROWS, r1 = r0 + COEF_ROWS < R ? r0 + COEF_ROWS : R;
            coef_rows(&a, r0, r1, sc->coef + r0 * K, sc->rows + r0);
        }
#ifdef VWN_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t p = 0; p < (int64_t)T * pieces; p++) read_carry_piece(&a, p / pieces, p % pieces);
    }
    return G;
}

/* ---- after: write, G_j += Σ_k Bt[j,k] y_k -------------------------------------------------------- */

void ghc_var_after(const vwn_hparams *hp, const vwn_ops *ops, const float *wcoef, const float *y,
                   int32_t T, float *G, int n_threads) {
    const int64_t n = hp->ghc_n, m = hp->ghc_m, s = hp->seg;
    const vwn_ghc_scratch sc = {NULL, (float *)wcoef, NULL, NULL, false}; /* write_rows reads wcoef only */
    const before_args a = {hp, NULL, ops, G, y, NULL, NULL, &sc, T};
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

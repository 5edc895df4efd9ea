/* gemm_avx512.c -- the AVX-512 products of float weights (F32, F16, BF16) with fp32 activations,
 * for decoding and prefill alike: Y[t][r] = sum_k W[r][k] X[t][k]. Compiled with AVX-512 flags and
 * reached only through ops_avx512.c's tables, like attn_avx512.c.
 *
 * The order of the sums (docs/design.md, "Float products on AVX-512"): every (row, token) result is
 * ONE chain of fused multiply-adds over the columns in order, from zero -- acc = fma(W[r][k],
 * X[t][k], acc) for k = 0, 1, ..., cols - 1 -- with no lane sums. A vector holds 16 rows (a
 * "panel") for one token, so the products are outer products: the 16 rows' weights at column k
 * times X[t][k] broadcast. Where the chain stops between column blocks, it parks in Y as fp32 and
 * continues from there, which changes no bit: decode, prefill, every blocking and every thread
 * split give the same results.
 *
 * Why outer products: the dot-product form (16 columns a vector, lane sums at the end; ops_avx2.c
 * keeps it) needs a register per (row, token) and a full activation vector for every few FMAs,
 * and with the two chains a one-token dot needs for latency its register tile was 4 rows x 3
 * tokens, which streams 16 bytes from L2 per FMA: on a CPU with two 512-bit FMA pipes (Intel
 * Cascade Lake) it ran at 26-45% of the FMA peak. Here a 48-row x 9-token tile holds 27
 * accumulators and each FMA takes one broadcast float: per column, 3 weight vectors and 9
 * broadcasts feed 27 FMAs (docs/performance.md, "Twenty-fourth session"). Fewer instructions per
 * FMA than the 2 x 12 tile's 24 (14 loads): where a core's other hardware thread is busy, this one
 * issues ~2-3 instructions a cycle, and 3 x 9 measured 1.03-1.05x the GEMM speed of 2 x 12 on such
 * a host ("Twenty-fifth session").
 *
 * The weights are read from the packed panel layout (ops.h): panel p holds rows 16p..16p+15,
 * column-major, so a panel's column is one 64-byte (F32) or 32-byte (F16, BF16) load and a panel
 * is one forward stream. A matrix without a packed copy (VWN_REPACK=0, a model read into memory)
 * is packed on the fly, a block at a time, into the same layout as floats -- the same bits, slower.
 *
 *  - T <= SMALL_T (decoding, draft verification): two panels at a time over all columns, the
 *    activations broadcast from X itself; each weight is read once.
 *  - larger T: blocked: columns in blocks of KC, and for each block all tokens' activations
 *    copied 1,088 bytes apart (prep_block; once per call for all threads, vwn_ops.prepare_x) and
 *    read in token tiles of NR;
 *    rows in blocks of about MC (MC x KC F32 weights stay in the 1 MiB L2), inside which every
 *    token tile runs over every GEMM_NP panels. F16 and BF16 panels (and any unpacked matrix) are
 *    widened to fp32 per GEMM_NP panels and column block, once for all tokens. */
#include "ops/ops.h"
#include "vwn.h"

#include <immintrin.h>
#include <string.h>

#define PANEL 16     /* rows per panel: one vector                                             */
#define GEMM_NP 3    /* panels per GEMM tile                                                    */
#define NR 9         /* tokens per GEMM tile (3 panels x 9 tokens: 27 of the 32 registers)     */
#define KC 256       /* columns per block                                                      */
#define XS (KC + 16) /* floats between tokens in the activations prepared for a column block    */
#define MC 512       /* rows per block of packed F32 weights (512 KiB a block, in L2)          */
#define MC_PANELS (MC / PANEL / GEMM_NP * GEMM_NP) /* a row block in panels: whole tiles          */
#define PREFETCH_K 16 /* the GEMM tile prefetches its weights this many columns ahead (1 KiB) */
#define SMALL_T 4    /* up to this many tokens: no blocking, activations read in place         */
#define STACK_T 24   /* tokens per pass when the call brings no prepared activations          */

#define INLINE static inline __attribute__((always_inline))

/* The 16 rows of a packed panel at column k, as floats (the widening is exact). */
INLINE __m512 panel_col(int type, const char *P, int64_t k) {
    if (type == VWN_TYPE_F32) return _mm512_loadu_ps((const float *)P + k * PANEL);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)P + k * PANEL));
    if (type == VWN_TYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The rows of the panel starting at row p0 that are in [r0, r1). */
INLINE __mmask16 rows_mask(int64_t p0, int64_t r0, int64_t r1) {
    const int64_t lo = r0 > p0 ? r0 - p0 : 0, hi = r1 - p0 < PANEL ? r1 - p0 : PANEL;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* ---- few tokens: activations read in place ------------------------------------------------- */

/* np (1, 2) panels at P and P + pstride bytes, tt tokens of X (X[j ldx + k]), columns [0, n): the
 * chains start from zero (first) or from Y, and end in Y (y: the first panel's row 0 of token 0),
 * rows masked by m. */
INLINE void panels_small(int type, int np, int tt, const char *P, size_t pstride, const float *X, int64_t ldx,
                         int64_t n, float *y, int64_t ldy, const __mmask16 *m, bool first) {
    __m512 a[2][SMALL_T];
    for (int p = 0; p < np; p++)
        for (int j = 0; j < tt; j++)
            a[p][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[p], y + j * ldy + p * PANEL);
    for (int64_t k = 0; k < n; k++) {
        const __m512 w0 = panel_col(type, P, k);
        const __m512 w1 = np > 1 ? panel_col(type, P + pstride, k) : w0;
        for (int j = 0; j < tt; j++) {
            const __m512 b = _mm512_set1_ps(X[j * ldx + k]);
            a[0][j] = _mm512_fmadd_ps(w0, b, a[0][j]);
            if (np > 1) a[1][j] = _mm512_fmadd_ps(w1, b, a[1][j]);
        }
    }
    for (int p = 0; p < np; p++)
        for (int j = 0; j < tt; j++) _mm512_mask_storeu_ps(y + j * ldy + p * PANEL, m[p], a[p][j]);
}

/* panels_small for a type and tt known at compile time */
#define SMALL_CASE(ty, t_)                                                                                   \
    case t_:                                                                                                 \
        if (np == 2) panels_small(ty, 2, t_, P, pstride, X, ldx, n, y, ldy, m, first);                     \
        else panels_small(ty, 1, t_, P, pstride, X, ldx, n, y, ldy, m, first);                             \
        break;
#define SMALL_FN(name, ty)                                                                                   \
    static void name(int np, int tt, const char *P, size_t pstride, const float *X, int64_t ldx, int64_t n, \
                     float *y, int64_t ldy, const __mmask16 *m, bool first) {                               \
        switch (tt) {                                                                                        \
            SMALL_CASE(ty, 1) SMALL_CASE(ty, 2) SMALL_CASE(ty, 3)                                            \
        default:                                                                                             \
            SMALL_CASE(ty, 4)                                                                                \
        }                                                                                                    \
    }
SMALL_FN(small_f32, VWN_TYPE_F32)
SMALL_FN(small_f16, VWN_TYPE_F16)
SMALL_FN(small_bf16, VWN_TYPE_BF16)
#undef SMALL_FN
#undef SMALL_CASE

static void small_any(int type, int np, int tt, const char *P, size_t pstride, const float *X, int64_t ldx,
                      int64_t n, float *y, int64_t ldy, const __mmask16 *m, bool first) {
    if (type == VWN_TYPE_F32) small_f32(np, tt, P, pstride, X, ldx, n, y, ldy, m, first);
    else if (type == VWN_TYPE_F16) small_f16(np, tt, P, pstride, X, ldx, n, y, ldy, m, first);
    else small_bf16(np, tt, P, pstride, X, ldx, n, y, ldy, m, first);
}

/* ---- packing on the fly (matrices without a packed copy) ------------------------------------ */

/* Rows [p0, p0 + 16 np) x columns [k0, k0 + n) of the file's layout into F32 panels at buf (panel q
 * at buf + q * KC * PANEL, column k at + k * PANEL); rows past the matrix are zero. */
static void pack_block(const vwn_mat *W, int64_t p0, int np, int64_t k0, int64_t n, float *buf) {
    for (int i = 0; i < np * PANEL; i++) {
        float *d = buf + (i / PANEL) * KC * PANEL + i % PANEL;
        const int64_t r = p0 + i;
        if (r >= W->rows) {
            for (int64_t k = 0; k < n; k++) d[k * PANEL] = 0.0f;
            continue;
        }
        const char *row = (const char *)W->data + (size_t)r * W->row_bytes;
        if (W->type == VWN_TYPE_F32) {
            const float *s = (const float *)row + k0;
            for (int64_t k = 0; k < n; k++) d[k * PANEL] = s[k];
        } else if (W->type == VWN_TYPE_F16) {
            const uint16_t *s = (const uint16_t *)row + k0;
            for (int64_t k = 0; k < n; k++) d[k * PANEL] = vwn_fp16_to_fp32(s[k]);
        } else {
            const uint16_t *s = (const uint16_t *)row + k0;
            for (int64_t k = 0; k < n; k++) d[k * PANEL] = vwn_bf16_to_fp32(s[k]);
        }
    }
}

/* Packed F16 / BF16 panels (np of them, pstride bytes apart) at columns [k0, k0 + n) widened into
 * buf as pack_block lays it out. */
static void widen_block(int type, const char *P, size_t pstride, int np, int64_t k0, int64_t n, float *buf) {
    for (int q = 0; q < np; q++)
        for (int64_t k = 0; k < n; k++)
            _mm512_storeu_ps(buf + q * KC * PANEL + k * PANEL, panel_col(type, P + q * pstride, k0 + k));
}

/* ---- many tokens: the blocked product -------------------------------------------------------- */

/* np (1 to GEMM_NP) panels of F32 columns at P, pstride floats apart, tt tokens at xp (token j's
 * column k at xp[j XS + k]), columns [0, n); chains as in panels_small. */
INLINE void panels_tile(int np, int tt, const float *P, int64_t pstride, const float *xp, int64_t n, float *y,
                        int64_t ldy, const __mmask16 *m, bool first) {
    __m512 a[GEMM_NP][NR];
    for (int p = 0; p < np; p++)
        for (int j = 0; j < tt; j++)
            a[p][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[p], y + j * ldy + p * PANEL);
    for (int64_t k = 0; k < n; k++) {
        __m512 w[GEMM_NP];
        for (int p = 0; p < np; p++) {
            _mm_prefetch((const char *)(P + p * pstride + (k + PREFETCH_K) * PANEL), _MM_HINT_T0);
            w[p] = _mm512_loadu_ps(P + p * pstride + k * PANEL);
        }
        for (int j = 0; j < tt; j++) {
            const __m512 b = _mm512_set1_ps(xp[j * XS + k]);
            for (int p = 0; p < np; p++) a[p][j] = _mm512_fmadd_ps(w[p], b, a[p][j]);
        }
    }
    for (int p = 0; p < np; p++)
        for (int j = 0; j < tt; j++) _mm512_mask_storeu_ps(y + j * ldy + p * PANEL, m[p], a[p][j]);
}

static void tile_any(int np, int tt, const float *P, int64_t pstride, const float *xp, int64_t n, float *y,
                     int64_t ldy, const __mmask16 *m, bool first) {
#define NP_MIN(a) ((a) < GEMM_NP ? (a) : GEMM_NP)
#define TILE_CASE(t_)                                                                                        \
    case t_:                                                                                                 \
        if (np >= GEMM_NP) panels_tile(GEMM_NP, t_, P, pstride, xp, n, y, ldy, m, first);                  \
        else if (np == 1) panels_tile(1, t_, P, pstride, xp, n, y, ldy, m, first);                         \
        else if (np == 2) panels_tile(NP_MIN(2), t_, P, pstride, xp, n, y, ldy, m, first);                 \
        else panels_tile(NP_MIN(3), t_, P, pstride, xp, n, y, ldy, m, first);                              \
        break;
    switch (tt) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5)
#if NR > 6
        TILE_CASE(6) TILE_CASE(7)
#endif
#if NR > 8
        TILE_CASE(8)
#endif
#if NR > 9
        TILE_CASE(9) TILE_CASE(10) TILE_CASE(11)
#endif
#if NR > 12
        TILE_CASE(12) TILE_CASE(13)
#endif
    default:
        TILE_CASE(NR)
    }
#undef TILE_CASE
#undef NP_MIN
}

/* The activations as the tiles read them: for each column block kb (n columns from kb KC), the
 * T tokens' n columns, token t at (kb T + t) XS floats -- rows 1,088 bytes apart, so the 9 rows a
 * tile broadcasts from fall in different L1 sets (X's own rows, 2048 floats apart in the FFN's
 * down projection, share one set). matmul.c prepares them once per call for all its threads and
 * matrices (vwn_ops.prepare_x); without that buffer a call prepares STACK_T tokens at a time,
 * one column block at a time, on the stack. */
size_t vwn_avx512_prep_bytes(int64_t T, int64_t cols);
void vwn_avx512_prepare_x(const float *X, int64_t ldx, int64_t T, int64_t cols, int64_t t0, int64_t t1, void *out);

size_t vwn_avx512_prep_bytes(int64_t T, int64_t cols) {
    if (T <= SMALL_T || cols <= 0) return 0;
    const uint64_t blocks = ((uint64_t)cols + KC - 1) / KC, per_token = blocks * XS * sizeof(float);
    if ((uint64_t)T > SIZE_MAX / per_token) return 0;
    return (size_t)((uint64_t)T * per_token);
}

/* Tokens [t0, t1), columns [k0, k0 + n), to dst (token t at t XS). */
static void prep_block(const float *X, int64_t ldx, int64_t t0, int64_t t1, int64_t k0, int64_t n, float *dst) {
    for (int64_t t = t0; t < t1; t++) memcpy(dst + t * XS, X + t * ldx + k0, (size_t)n * sizeof(float));
}

void vwn_avx512_prepare_x(const float *X, int64_t ldx, int64_t T, int64_t cols, int64_t t0, int64_t t1, void *out) {
    for (int64_t k0 = 0; k0 < cols; k0 += KC)
        prep_block(X, ldx, t0, t1, k0, cols - k0 < KC ? cols - k0 : KC, (float *)out + (k0 / KC) * T * XS);
}

/* Panels [q0, q1) (rows masked to [r0, r1)) x T tokens: their activations prepared in prep, or
 * (prep NULL, T <= STACK_T) prepared here a column block at a time into xs. */
static void gemm_pass(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y, int64_t ldy,
                      int64_t r0, int64_t r1, int64_t q0, int64_t q1, const float *prep, float *xs) {
    const int type = W->type;
    const int64_t cols = W->cols;
    const char *packed = W->packed;
    const size_t psize = (size_t)PANEL * (size_t)cols * (type == VWN_TYPE_F32 ? 4 : 2); /* bytes a panel */
    float buf[GEMM_NP * KC * PANEL]; /* a tile's panels' column block as F32 (16 KiB a panel) */
    for (int64_t k0 = 0; k0 < cols; k0 += KC) {
        const int64_t n = cols - k0 < KC ? cols - k0 : KC;
        const bool first = k0 == 0;
        const float *xp = prep ? prep + (k0 / KC) * T * XS : xs;
        if (!prep) prep_block(X, ldx, 0, T, k0, n, xs);
        if (packed && type == VWN_TYPE_F32) {
            /* F32 panels in place: a row block's column block stays in L2 while every token tile
             * runs over it (the token tile in L1) */
            for (int64_t b0 = q0; b0 < q1; b0 += MC_PANELS) {
                const int64_t b1 = b0 + MC_PANELS < q1 ? b0 + MC_PANELS : q1;
                for (int64_t t0 = 0; t0 < T; t0 += NR) {
                    const int tt = T - t0 < NR ? (int)(T - t0) : NR;
                    for (int64_t q = b0; q < b1; q += GEMM_NP) {
                        const int np = b1 - q >= GEMM_NP ? GEMM_NP : (int)(b1 - q);
                        __mmask16 m[GEMM_NP];
                        for (int p = 0; p < GEMM_NP; p++) m[p] = rows_mask((q + p) * PANEL, r0, r1);
                        const float *P = (const float *)(packed + (size_t)q * psize) + k0 * PANEL;
                        tile_any(np, tt, P, (int64_t)(psize / 4), xp + t0 * XS, n,
                                 Y + t0 * ldy + q * PANEL, ldy, m, first);
                    }
                }
            }
        } else {
            /* F16 / BF16 panels, or no packed copy: each tile's panels' column block widened (or
             * packed) into buf once, then every token tile over it */
            for (int64_t q = q0; q < q1; q += GEMM_NP) {
                const int np = q1 - q >= GEMM_NP ? GEMM_NP : (int)(q1 - q);
                __mmask16 m[GEMM_NP];
                for (int p = 0; p < GEMM_NP; p++) m[p] = rows_mask((q + p) * PANEL, r0, r1);
                if (packed) widen_block(type, packed + (size_t)q * psize, psize, np, k0, n, buf);
                else pack_block(W, q * PANEL, np, k0, n, buf);
                for (int64_t t0 = 0; t0 < T; t0 += NR) {
                    const int tt = T - t0 < NR ? (int)(T - t0) : NR;
                    tile_any(np, tt, buf, KC * PANEL, xp + t0 * XS, n, Y + t0 * ldy + q * PANEL, ldy, m,
                             first);
                }
            }
        }
    }
}

/* ---- the product ----------------------------------------------------------------------------- */

void vwn_avx512_matmul_float(const vwn_mat *W, const float *X, int64_t ldx, const float *xq, int64_t T, float *Y,
                             int64_t ldy, int64_t r0, int64_t r1);
void vwn_avx512_matmul_float(const vwn_mat *W, const float *X, int64_t ldx, const float *xq, int64_t T, float *Y,
                             int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    const int type = W->type;
    const int64_t cols = W->cols;
    const int64_t q0 = r0 / PANEL, q1 = (r1 + PANEL - 1) / PANEL; /* the panels rows [r0, r1) touch */
    if (T <= SMALL_T) {
        const char *packed = W->packed;
        const size_t psize = (size_t)PANEL * (size_t)cols * (type == VWN_TYPE_F32 ? 4 : 2);
        for (int64_t q = q0; q < q1; q += 2) {
            const int np = q1 - q >= 2 ? 2 : 1;
            const __mmask16 m[2] = {rows_mask(q * PANEL, r0, r1), rows_mask((q + 1) * PANEL, r0, r1)};
            float *y = Y + q * PANEL;
            if (packed) {
                small_any(type, np, (int)T, packed + (size_t)q * psize, psize, X, ldx, cols, y, ldy, m, true);
            } else {
                float buf[2 * KC * PANEL];
                for (int64_t k0 = 0; k0 < cols; k0 += KC) {
                    const int64_t n = cols - k0 < KC ? cols - k0 : KC;
                    pack_block(W, q * PANEL, np, k0, n, buf);
                    small_any(VWN_TYPE_F32, np, (int)T, (const char *)buf, KC * PANEL * sizeof(float), X + k0, ldx,
                              n, y, ldy, m, k0 == 0);
                }
            }
        }
        return;
    }
    float xs[STACK_T * XS]; /* the activations of a pass without a prepared buffer */
    if (xq) {
        gemm_pass(W, X, ldx, T, Y, ldy, r0, r1, q0, q1, xq, xs);
        return;
    }
    for (int64_t t0 = 0; t0 < T; t0 += STACK_T)
        gemm_pass(W, X + t0 * ldx, ldx, T - t0 < STACK_T ? T - t0 : STACK_T, Y + t0 * ldy, ldy, r0, r1, q0, q1, NULL,
                  xs);
}

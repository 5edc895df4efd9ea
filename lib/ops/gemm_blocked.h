/* gemm_blocked.h -- the blocked float GEMM driver shared by ops_avx2.c and ops_neon.c (T above
 * their small-T paths; ops_avx512.c's float products have their own, gemm_avx512.c): rows in
 * blocks of RB, tokens in blocks of TB, columns in blocks of KC, and inside tiles of RT rows x TT
 * tokens computed by the including file's tile_float. Included after tile_float with GEMM_VEC
 * defined as that file's accumulator vector type (__m256 or float32x4_t), so it is compiled with
 * the file's flags and constants.
 * Every (row, token) result is the same chain of tile_float steps over the column blocks in
 * order, whatever the loop order below. (The loop order was measured on x86 only; NEON takes the
 * same loops, tested under qemu, its speed not measured: there is no ARM machine here.) */
#ifndef GEMM_VEC
#error "define GEMM_VEC before including gemm_blocked.h"
#endif
/* Accumulator chains per (row, token) dot: tile_float keeps chain p of its tile at part + p * RB *
 * TB (ops_avx2.c uses two, see there; ops_neon.c one). */
#ifndef GEMM_CHAINS
#define GEMM_CHAINS 1
#endif
/* GEMM_PANEL 1: 16-bit weights (F16, BF16) are widened once per row block, column block and token
 * block into a float panel (the including file's widen_cols), which the tiles then read as F32:
 * each widening then serves TB tokens, where inside a tile it serves TT, and a small tile (AVX2's
 * 3 x 2) spent more on widening than on FMAs. The widening is exact, so results do not change.
 * GEMM_PANEL 0: the tiles widen. */
#ifndef GEMM_PANEL
#define GEMM_PANEL 0
#endif

/* Rows [rb0, rb1) (at most RB) x the token block at t0 (at most TB tokens), over all columns in KC
 * blocks (part: the tiles' accumulators between column blocks; panel: RB x KC floats for widened
 * 16-bit weights). A tile sees its column block as columns [0, c1 - c0) of rows and activations
 * that start at c0 (KC is a multiple of the chains' period, so block parities do not move). */
INLINE void gemm_block(int type, const char *base, size_t rs, int64_t cols, const float *X, int64_t ldx,
                       int64_t T, float *Y, int64_t ldy, int64_t rb0, int64_t rb1, int64_t t0, GEMM_VEC *part,
                       float *panel) {
    const int64_t tb = T - t0 < TB ? T - t0 : TB;
    const float *xb = X + t0 * ldx;
    float *yb = Y + t0 * ldy;
    for (int64_t c0 = 0; c0 < cols; c0 += KC) {
        const int64_t c1 = c0 + KC < cols ? c0 + KC : cols, n = c1 - c0;
        const bool first = c0 == 0, last = c1 == cols;
        const int wt = GEMM_PANEL ? VWN_TYPE_F32 : type; /* the weights' type as the tiles read them */
        const char *wb = base + rb0 * rs + c0 * (type == VWN_TYPE_F32 ? 4 : 2); /* row rb0 at column c0 */
        size_t ws = rs;
#if GEMM_PANEL
        if (type != VWN_TYPE_F32) {
            for (int64_t r = rb0; r < rb1; r++) widen_cols(type, base + r * rs, c0, n, panel + (r - rb0) * KC);
            wb = (const char *)panel, ws = KC * sizeof(float);
        }
#else
        (void)panel;
#endif
        for (int64_t r = rb0; r < rb1;) {
            const int rt = rb1 - r >= RT ? RT : 1;
            const char *w = wb + (r - rb0) * ws;
            const float *xc = xb + c0;
            GEMM_VEC *pr = part + (r - rb0) * TB;
            int64_t t = 0;
            if (rt == RT) {
                for (; t + TT <= tb; t += TT)
                    tile_float(wt, RT, TT, w, ws, xc + t * ldx, ldx, 0, n, pr + t, first, last,
                               yb + t * ldy + r, ldy);
                for (; t < tb; t++)
                    tile_float(wt, RT, 1, w, ws, xc + t * ldx, ldx, 0, n, pr + t, first, last,
                               yb + t * ldy + r, ldy);
            } else {
                for (; t + TT <= tb; t += TT)
                    tile_float(wt, 1, TT, w, ws, xc + t * ldx, ldx, 0, n, pr + t, first, last,
                               yb + t * ldy + r, ldy);
                for (; t < tb; t++)
                    tile_float(wt, 1, 1, w, ws, xc + t * ldx, ldx, 0, n, pr + t, first, last,
                               yb + t * ldy + r, ldy);
            }
            r += rt;
        }
    }
}

/* The GEMM over rows [r0, r1) of W and T tokens. Loop order: when all T tokens' activations fit
 * in L2 (1 MiB), each block of RB rows runs over every token block before the next rows -- the
 * weights stream from memory once and the activations are re-read from L2. One thread, a 2048 x
 * 768 F32 product from memory at T = 256: AVX-512 77-90 -> 85-95 GFLOP/s, AVX2 57-84 -> 89-92.
 * Otherwise token blocks are outermost and each reads the weights again (from L3): rows first
 * measured 3% slower there (768 x 2048 at T = 256, 2 MiB of activations). */
INLINE void gemm_float(int type, const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                       int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    const size_t rs = W->row_bytes;
    const int64_t cols = W->cols;
    GEMM_VEC part[GEMM_CHAINS * RB * TB]; /* a row block's accumulators between column blocks */
    float panel[GEMM_PANEL ? RB * KC : 1]; /* a row block's widened 16-bit weights (not for F32) */
    if ((uint64_t)T * (uint64_t)cols * sizeof(float) <= (uint64_t)1 << 20) {
        for (int64_t rb0 = r0; rb0 < r1; rb0 += RB)
            for (int64_t t0 = 0; t0 < T; t0 += TB)
                gemm_block(type, base, rs, cols, X, ldx, T, Y, ldy, rb0, rb0 + RB < r1 ? rb0 + RB : r1, t0, part, panel);
    } else {
        for (int64_t t0 = 0; t0 < T; t0 += TB)
            for (int64_t rb0 = r0; rb0 < r1; rb0 += RB)
                gemm_block(type, base, rs, cols, X, ldx, T, Y, ldy, rb0, rb0 + RB < r1 ? rb0 + RB : r1, t0, part, panel);
    }
}

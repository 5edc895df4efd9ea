/* tile_float.h -- the float (F32, F16, BF16) register tile of ops_avx2.c (ops_avx512.c had it too
 * until its float products became outer products, gemm_avx512.c):
 * rt rows x tt tokens over columns [c0, c1), each (row, token) dot in two accumulator chains --
 * chain 0 sums the even VL-column blocks, chain 1 the odd ones, and the result is the lane sum of
 * their sum (docs/design.md, "Summation order of a float dot product"). The GEMM's RT x TT tiles
 * (gemm_blocked.h) and the small-T paths below -- single rows, rows side by side from segments
 * (seg_tiles), token groups (seg_groups) -- all run it, so every path of a level sums in the same
 * order.
 *
 * Included with the file's flags after its constants (VL, RT, SMALL_T, RB, TB; the segments'
 * SEG_*) and its loads (load_w, load_w_any, load_x_any), with these defined:
 *   TILE_VEC        the vector type (__m256, __m512)
 *   TILE_ZERO()     a zero vector          TILE_LOADU(p)   an unaligned load of VL floats
 *   TILE_FMA(a,b,c) a * b + c              TILE_ADD(a,b)   a + b
 *   TILE_HSUM(v)    the lane sum, in the file's fixed order
 * c0 must be a multiple of 2 VL (so a block's parity is the column's) and c1 - c0 a multiple of
 * VL unless c1 == cols. part: the chains' accumulators between column blocks, chain p of row i
 * token j at part[p * RB * TB + i * TB + j]; first: start from zero, last: reduce into Y.
 * The TILE_ macros are undefined at the end. */
#ifndef VWN_SMALL_LONG_ROWS
#define VWN_SMALL_LONG_ROWS
/* Whether a small-T pass (decoding, draft verification) reads several rows side by side instead
 * of one at a time: when the activations (tt x cols floats) and one row of weights overflow the
 * 32 KiB L1 data cache of Zen 4 together -- by 4 KiB more from two tokens on -- and the level has
 * the registers for tt tokens (LONG_ROWS_MAX_T, defined by the file). Then each row's stream
 * pushes the activations out of L1 before the next row reads them again, and the dot slows down
 * by a third or more: one thread, one token, F32 from DRAM, 19 GB/s at 5120-11008 columns against
 * 28 at 768-3072. Several rows side by side (each activation vector loaded once for all of them)
 * run at 22-25 GB/s there; two and three tokens over 4096-6144 columns gain 15-90%. Just past
 * 32 KiB the interleaved streams were slower (one token: F32 at 4096 columns 23.6 against 24.6
 * GB/s, BF16 21 against 24.6; two F32 tokens at 3072: 14.0 against 15.0), hence the thresholds
 * (docs/performance.md, "Long rows in decoding"). */
#define VWN_L1D_BYTES 32768
static inline bool small_long_rows(int tt, const vwn_mat *W) {
    const size_t bytes = (size_t)tt * (size_t)W->cols * sizeof(float) + W->row_bytes;
    return tt <= LONG_ROWS_MAX_T && bytes > (tt == 1 ? VWN_L1D_BYTES : VWN_L1D_BYTES + 4096);
}
#endif

#ifndef TILE_VEC
#error "define TILE_VEC (and TILE_ZERO, TILE_LOADU, TILE_FMA, TILE_ADD, TILE_HSUM) before including tile_float.h"
#endif

INLINE void tile_float(int type, int rt, int tt, const char *w, size_t wstride, const float *x,
                       int64_t ldx, int64_t c0, int64_t c1, TILE_VEC *part, bool first, bool last,
                       float *y, int64_t ldy) {
    TILE_VEC a0[RT][SMALL_T], a1[RT][SMALL_T]; /* rt <= RT, tt <= SMALL_T */
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            a0[i][j] = first ? TILE_ZERO() : part[i * TB + j];
            a1[i][j] = first ? TILE_ZERO() : part[RB * TB + i * TB + j];
        }
    int64_t c = c0;
    for (; c + 2 * VL <= c1; c += 2 * VL) {
        TILE_VEC wv[RT]; /* one chain's block at a time: 2 rt tt accumulators + rt + 1 registers */
        for (int i = 0; i < rt; i++) wv[i] = load_w(type, w + i * wstride, c);
        for (int j = 0; j < tt; j++) {
            const TILE_VEC xv = TILE_LOADU(x + j * ldx + c);
            for (int i = 0; i < rt; i++) a0[i][j] = TILE_FMA(wv[i], xv, a0[i][j]);
        }
        for (int i = 0; i < rt; i++) wv[i] = load_w(type, w + i * wstride, c + VL);
        for (int j = 0; j < tt; j++) {
            const TILE_VEC xv = TILE_LOADU(x + j * ldx + c + VL);
            for (int i = 0; i < rt; i++) a1[i][j] = TILE_FMA(wv[i], xv, a1[i][j]);
        }
    }
    if (c < c1) { /* the last block of chain 0, and of chain 1 if the columns go on */
        TILE_VEC wv[RT];
        for (int i = 0; i < rt; i++) wv[i] = load_w_any(type, w + i * wstride, c, c1);
        for (int j = 0; j < tt; j++) {
            const TILE_VEC xv = load_x_any(x + j * ldx, c, c1);
            for (int i = 0; i < rt; i++) a0[i][j] = TILE_FMA(wv[i], xv, a0[i][j]);
        }
        if (c + VL < c1) {
            for (int i = 0; i < rt; i++) wv[i] = load_w_any(type, w + i * wstride, c + VL, c1);
            for (int j = 0; j < tt; j++) {
                const TILE_VEC xv = load_x_any(x + j * ldx, c + VL, c1);
                for (int i = 0; i < rt; i++) a1[i][j] = TILE_FMA(wv[i], xv, a1[i][j]);
            }
        }
    }
    for (int i = 0; i < rt; i++)
        for (int j = 0; j < tt; j++) {
            if (last) {
                y[j * ldy + i] = TILE_HSUM(TILE_ADD(a0[i][j], a1[i][j]));
            } else {
                part[i * TB + j] = a0[i][j];
                part[RB * TB + i * TB + j] = a1[i][j];
            }
        }
}

/* Small T (decode and draft verification, memory-bound): one row at a time, whole, for all tt
 * tokens -- each weight is loaded (and widened) once, and the weights are read as one linear
 * stream, which the hardware prefetcher follows at full bandwidth (several interleaved adjacent
 * rows measured 1.5-2x slower on Zen 4). Except: for 2 or more tokens over a long enough range,
 * SEG_RT(tt) rows side by side from far-apart segments (seg_rows), each activation vector loaded
 * once for all of them -- with one row at a time, a token's activation loads outnumber the
 * weight loads, and a core keeps fewer lines in flight (110M models, 2 threads, 2-6 tokens in
 * one process: F32 0.76-0.99, BF16 0.77-0.94 of the time); and for one token, RT rows side by
 * side from segments where the range allows (SEG_ONE_TOKEN: a one-token dot is two FMA chains
 * long, so one row at a time waits on the FMA latency -- BF16 and F16 rows 0.87-0.89 of the time
 * on AVX-512 with RT rows, AVX2 BF16 0.83, F32 0.92, 110M models, 2 threads, in one process;
 * docs/performance.md, "Twenty-second session"), or adjacent over long rows (small_long_rows).
 * Every (row, token) dot is the tile's, so the results do not change. */
#include "ops/seg_rows.h"

/* Rows r0 + i + q h (i < h, q < rt) for tt tokens: row i of each of rt segments side by side,
 * through a small buffer, since the tile's outputs are consecutive rows. */
INLINE void seg_tiles(int type, int rt, int tt, const vwn_mat *W, const float *X, int64_t ldx, float *Y,
                      int64_t ldy, int64_t r0, int64_t h) {
    float yt[(SEG_RT_MAX > RT ? SEG_RT_MAX : RT) * SMALL_T];
    for (int64_t i = 0; i < h; i++) {
        tile_float(type, rt, tt, (const char *)W->data + (r0 + i) * W->row_bytes, (size_t)h * W->row_bytes, X, ldx, 0,
                   W->cols, NULL, true, true, yt, rt);
        for (int q = 0; q < rt; q++)
            for (int j = 0; j < tt; j++) Y[j * ldy + r0 + q * h + i] = yt[j * rt + q];
    }
}

/* Token groups: for more tokens than one register tile holds (the file's matmul_float decides
 * when), tt <= TB. Over column blocks of SEG_KC, row i of each of SEG_GRP_RT far-apart segments
 * (seg_rows) for every group of SEG_GRP_T tokens in turn -- the first group streams the block's
 * weights from memory, the others read them again from L1 -- each group's chains parked in part
 * between blocks; the rows left over, one at a time, group by group. Every (row, token) dot is
 * the tile's, in the same order, so the results are bit for bit those of any other path. One row
 * at a time, 4-8 tokens issue more activation loads than weight loads and ran at 2.5-5 decode
 * steps, the GEMM (its widened panels amortized over few tokens) at 3-5 (110M models, 2 threads:
 * docs/performance.md, "Twentieth session"). */
#if SEG_GRP_T > 3 || SEG_GRP_MAX_T > TB
#error "group_tiles handles short groups of 1 and 2 tokens only, seg_groups up to TB tokens"
#endif
/* The tiles of rt rows for all tt tokens over columns [c, c1), SEG_GRP_T tokens at a time; group k
 * writes to y + k ldy, its chains at part + k. */
INLINE void group_tiles(int type, int rt, int tt, const char *w, size_t wstride, const float *X, int64_t ldx,
                        int64_t c, int64_t c1, int64_t cols, TILE_VEC *part, float *y, int64_t ldy) {
    for (int k = 0; k < tt; k += SEG_GRP_T) {
        const int n = tt - k;
        const float *x = X + k * ldx;
        if (n >= SEG_GRP_T)
            tile_float(type, rt, SEG_GRP_T, w, wstride, x, ldx, c, c1, part + k, c == 0, c1 == cols, y + k * ldy, ldy);
        else if (SEG_GRP_T > 2 && n == 2)
            tile_float(type, rt, 2, w, wstride, x, ldx, c, c1, part + k, c == 0, c1 == cols, y + k * ldy, ldy);
        else
            tile_float(type, rt, 1, w, wstride, x, ldx, c, c1, part + k, c == 0, c1 == cols, y + k * ldy, ldy);
    }
}

/* Rows [r0, r1) for tt (<= TB) tokens in token groups; the range must allow segments
 * (seg_rows(SEG_GRP_RT, ...) > 0). */
INLINE void seg_groups(int type, int tt, const vwn_mat *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                       int64_t r0, int64_t r1) {
    enum { rt = SEG_GRP_RT };
    TILE_VEC part[2 * RB * TB];
    float yt[SEG_GRP_RT * TB];
    const int64_t cols = W->cols, h = seg_rows(rt, W->row_bytes, r0, r1);
    const size_t stride = (size_t)h * W->row_bytes;
    for (int64_t i = 0; i < h; i++) {
        const char *w = (const char *)W->data + (r0 + i) * W->row_bytes;
        for (int64_t c = 0; c < cols; c += SEG_KC)
            group_tiles(type, rt, tt, w, stride, X, ldx, c, cols - c > SEG_KC ? c + SEG_KC : cols, cols, part, yt, rt);
        for (int q = 0; q < rt; q++)
            for (int j = 0; j < tt; j++) Y[j * ldy + r0 + q * h + i] = yt[j * rt + q];
    }
    for (int64_t r = r0 + rt * h; r < r1; r++) /* the few rows left */
        group_tiles(type, 1, tt, (const char *)W->data + r * W->row_bytes, 0, X, ldx, 0, cols, cols, part, Y + r, ldy);
}

INLINE void small_float(int type, int tt, const vwn_mat *W, const float *X, int64_t ldx, float *Y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    const char *base = W->data;
    int64_t r = r0;
    /* A few tokens over a long range: SEG_RT(tt) rows side by side from far-apart segments (each
     * activation vector loaded once for all of them; the file sets how many its registers hold);
     * one token, RT of them (SEG_ONE_TOKEN). (tt and srt are constants here, so a branch
     * whose condition folds to false is not compiled: each inlined tile adds to the build.) */
    const int srt = SEG_RT(tt) > 1 ? SEG_RT(tt) : SEG_ONE_TOKEN && tt == 1 ? RT : 1;
    if (srt > 1) {
        const int64_t h = seg_rows(srt, W->row_bytes, r0, r1);
        if (h > 0) {
            seg_tiles(type, srt, tt, W, X, ldx, Y, ldy, r0, h);
            r = r0 + srt * h; /* the few rows left, one at a time */
        }
    }
    /* (past LONG_ROWS_MAX_T the pass below never runs, and its tile is compiled for one token, not
     * tt -- the 4 x 8 tiles cost minutes in the sanitizer builds) */
    const int lt = tt <= LONG_ROWS_MAX_T ? tt : 1;
    if (small_long_rows(tt, W))
        for (; r + RT <= r1; r += RT)
            tile_float(type, RT, lt, base + r * W->row_bytes, W->row_bytes, X, ldx, 0, W->cols, NULL, true, true,
                       Y + r, ldy);
    for (; r < r1; r++)
        tile_float(type, 1, tt, base + r * W->row_bytes, 0, X, ldx, 0, W->cols, NULL, true, true, Y + r, ldy);
}

#undef TILE_VEC
#undef TILE_ZERO
#undef TILE_LOADU
#undef TILE_FMA
#undef TILE_ADD
#undef TILE_HSUM

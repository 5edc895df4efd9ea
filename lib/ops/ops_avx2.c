/* ops_avx2.c -- the AVX2 + FMA + F16C kernels (x86-64), compiled with -mavx2 -mfma -mf16c and only
 * called when ops.c found those features.
 *
 * Matmul. Every float (row, token) dot keeps two 8-lane fp32 accumulator chains that step over the
 * columns 8 at a time, alternately (lib/ops/tile_float.h; Q8_0: one accumulator, four 32-value
 * blocks at a time), summed across lanes at the end in a fixed order, whatever tile it is computed
 * in: so results do not depend on T, on the row range or on the thread split (decode and prefill
 * agree bit for bit).
 *  - T <= 4 (decode, draft verification; memory-bound): one weight row at a time for all T
 *    tokens, so the weights are read as one linear stream (float weights; Q8_0 below).
 *  - T > 4 (prefill): a blocked, register-tiled GEMM (lib/ops/gemm_blocked.h). Tokens go in blocks
 *    of TB, rows in blocks of RB and columns in blocks of KC (the TB x KC block of X stays in
 *    L1/L2 for all RB rows and the weight panel in L1 for all TB tokens); inside, tiles of RT rows
 *    x TT tokens keep both chains' accumulators in registers. F16/BF16 weights are widened once
 *    per row and column block into a float panel. Partial sums of a tile between column blocks are
 *    the accumulators themselves, stored and reloaded, so blocking does not change results.
 *  - Q8_0: activations pre-quantized to Q8_0 (the caller's xq); the int8 pairs are multiplied
 *    with the sign trick (|w| times x with w's sign, vpmaddubsw, no saturation since |w| <= 128
 *    and |x| <= 127), summed to int32 exactly, then scaled by d_w * d_x (exact in fp32), four
 *    blocks per step. Every T runs one row at a time for up to 8 tokens (chunks of 8 beyond), with
 *    the activations regrouped once per call (see "Q8_0 weights" below).
 *  - Q4_0: the same row kernel and the same activation quads; the weight nibbles are split and
 *    regrouped once per row to match them and kept unsigned, the -8 offset taken off the int32
 *    sums as 8 * sum(x), prepared once per call (see "Q4_0 weights"). */
#include "ops/ops.h"
#include "vwn.h"

#include <immintrin.h>
#include <math.h>

#define VL 8        /* floats per vector */
#define KC 1024     /* columns per cache block (multiple of 32)  */
#define TB 48       /* tokens per block                          */
#define RB 6        /* rows per block (x KC floats: the panel)   */
#define RT 3        /* float GEMM tile: rows                     */
#define TT 2        /*   tokens (x 2 chains: 12 accumulators)    */
#define SMALL_T 4   /* T up to this: one row at a time           */

#define INLINE static inline __attribute__((always_inline))

/* ---- loads and reductions -------------------------------------------------------------------- */

INLINE __m256 load_w(int type, const void *row, int64_t c) {
    if (type == VWN_TYPE_F32) return _mm256_loadu_ps((const float *)row + c);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + c));
    if (type == VWN_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* bf16 */
}

/* Masks of the first n lanes (n <= 8) of 8 (or of 4 from the same table): masked loads never
 * touch the lanes left out, so a row's tail is read in place. (A copy of the tail through a
 * buffer on the stack made every row stall on the failed forwarding of its stores to the vector
 * load: F32 rows of 100 columns ran at a third of the speed of 256-column ones.) */
static const int32_t tail_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

INLINE __m256i tail_mask8(int64_t n) { return _mm256_loadu_si256((const __m256i *)(tail_lanes + 8 - n)); }

/* The last n < 8 weights of a row, zero-padded (never reads past the row). 16-bit weights: the
 * first n & ~1 by 32-bit masked lanes, an odd last one inserted. */
INLINE __m256 load_w_tail(int type, const void *row, int64_t c, int64_t n) {
    if (type == VWN_TYPE_F32) return _mm256_maskload_ps((const float *)row + c, tail_mask8(n));
    const uint16_t *p = (const uint16_t *)row + c;
    __m128i h = _mm_maskload_epi32((const int *)p, _mm_loadu_si128((const __m128i *)(tail_lanes + 8 - n / 2)));
    switch (n) { /* the odd last weight (word n - 1) */
    case 1: h = _mm_insert_epi16(h, p[0], 0); break;
    case 3: h = _mm_insert_epi16(h, p[2], 2); break;
    case 5: h = _mm_insert_epi16(h, p[4], 4); break;
    case 7: h = _mm_insert_epi16(h, p[6], 6); break;
    default: break;
    }
    if (type == VWN_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* bf16 */
}

INLINE __m256 load_x_tail(const float *x, int64_t n) { return _mm256_maskload_ps(x, tail_mask8(n)); }

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- float weights (F32, F16, BF16) ------------------------------------------------------------ */

/* Every float (row, token) dot runs as two accumulator chains: chain 0 sums the 8-column blocks
 * 0, 2, 4, ... and chain 1 the blocks 1, 3, 5, ... (each by FMA in block order, from zero; a
 * partial last block is zero-padded), and the result is the lane sum of chain 0 + chain 1 -- in
 * the decode kernel and in the GEMM alike, so decode, prefill and any split agree bit for bit.
 * Decoding reads one row at a time (a single linear stream), and the two chains keep the FMA
 * latency from setting the pace. The old decode tile of 8 interleaved rows (one chain each) was
 * starved by the hardware prefetcher on Zen 4: one thread, one token, 2048 x 768 from DRAM,
 * BF16 10 GB/s and F32 18 GB/s against 28-29 and 25 for one row with two chains (2, 3 and 4
 * interleaved rows were no better than 8: 9-15 GB/s; one row with one chain: 22 and 25). The
 * GEMM's 3 x 2 tile (12 accumulators, 3 weight vectors and 1 activation vector: all 16 registers)
 * with KC = 1024 and the widened panel matched the old 3 x 4 one-chain tile (2048 x 768 at
 * T = 256: F32 87-91 against 88-93 GFLOP/s, BF16 85-88 against 81-86); without the panel its BF16
 * ran 13% slower, widening 3 vectors per 6 FMAs. */

INLINE __m256 load_w_any(int type, const void *row, int64_t c, int64_t c1) {
    return c + VL <= c1 ? load_w(type, row, c) : load_w_tail(type, row, c, c1 - c);
}
INLINE __m256 load_x_any(const float *x, int64_t c, int64_t c1) {
    return c + VL <= c1 ? _mm256_loadu_ps(x + c) : load_x_tail(x + c, c1 - c);
}

/* The float tile (rt rows x tt tokens in two accumulator chains) and the small-T rows that use it
 * (lib/ops/tile_float.h). */
#define TILE_VEC __m256
#define TILE_ZERO _mm256_setzero_ps
#define TILE_LOADU _mm256_loadu_ps
#define TILE_FMA _mm256_fmadd_ps
#define TILE_ADD _mm256_add_ps
#define TILE_HSUM hsum
#define LONG_ROWS_MAX_T 2 /* tokens of a long-row pass (3 rows x 2 tokens x 2 chains: 12 of the 16 registers) */
/* rows side by side from segments (tile_float.h, seg_rows): 3 rows for two tokens, 2 for three
 * (2 x rows x tokens accumulators within 12 of the 16 registers). 4-16 tokens: token groups
 * (seg_groups) of 2 over 3 rows (groups of 3 over 2 rows measured 2-6% slower), 256-column
 * blocks (512 and 1024: 1-5% slower) */
#define SEG_RT(tt) ((tt) == 2 ? 3 : (tt) == 3 ? 2 : 1)
#define SEG_RT_MAX 3
#define SEG_ONE_TOKEN 1 /* one token: RT rows side by side from segments (F32, F16, BF16) */
#define SEG_GRP_MIN_T 4
#define SEG_GRP_MAX_T 16
#define SEG_GRP_RT 3
#define SEG_GRP_T 2
#define SEG_KC 256
#include "ops/tile_float.h"

/* Columns [c0, c0 + n) of a 16-bit row as floats at dst (gemm_blocked.h's panel). */
INLINE void widen_cols(int type, const void *row, int64_t c0, int64_t n, float *dst) {
    int64_t c = 0;
    for (; c + VL <= n; c += VL) _mm256_storeu_ps(dst + c, load_w(type, row, c0 + c));
    if (c < n) _mm256_maskstore_ps(dst + c, tail_mask8(n - c), load_w_tail(type, row, c0 + c, n - c));
}

#define GEMM_CHAINS 2
#define GEMM_PANEL 1
#define GEMM_VEC __m256
#include "ops/gemm_blocked.h"
#undef GEMM_VEC
#undef GEMM_CHAINS
#undef GEMM_PANEL

INLINE void matmul_float(int type, const vwn_mat *W, const float *X, int64_t ldx, int64_t T,
                         float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    /* 4-16 tokens over a range long enough for segments: token groups (tile_float.h, seg_groups;
     * 110M models, 2 threads, in one process against what ran before -- one row at a time at 4
     * tokens, the GEMM from 5: F32 0.86-0.93 of the time at 4-24 tokens, 1.05 at 32; BF16
     * 0.71-0.90 at 4-16, 1.00 at 24) */
    if (T >= SEG_GRP_MIN_T && T <= SEG_GRP_MAX_T && seg_rows(SEG_GRP_RT, W->row_bytes, r0, r1) > 0) {
        seg_groups(type, (int)T, W, X, ldx, Y, ldy, r0, r1);
        return;
    }
    switch (T) {
    case 1: small_float(type, 1, W, X, ldx, Y, ldy, r0, r1); return;
    case 2: small_float(type, 2, W, X, ldx, Y, ldy, r0, r1); return;
    case 3: small_float(type, 3, W, X, ldx, Y, ldy, r0, r1); return;
    case 4: small_float(type, 4, W, X, ldx, Y, ldy, r0, r1); return;
    default: break;
    }
    gemm_float(type, W, X, ldx, T, Y, ldy, r0, r1);
}

static void matmul_f32(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                       int64_t ldy, int64_t r0, int64_t r1) {
    matmul_float(VWN_TYPE_F32, W, X, ldx, T, Y, ldy, r0, r1);
}
static void matmul_f16(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                       int64_t ldy, int64_t r0, int64_t r1) {
    matmul_float(VWN_TYPE_F16, W, X, ldx, T, Y, ldy, r0, r1);
}
static void matmul_bf16(const vwn_mat *W, const float *X, int64_t ldx, int64_t T, float *Y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    matmul_float(VWN_TYPE_BF16, W, X, ldx, T, Y, ldy, r0, r1);
}

/* ---- Q8_0 weights ----------------------------------------------------------------------------- */

/* Q8_0 dots step over quads: four blocks (128 values) as four vectors in which every int32 lane
 * holds quants of one block only -- lanes 0,1: block 0, 2,3: block 2, 4,5: block 1, 6,7: block 3,
 * each vector one 8-byte piece of every block. The sign trick (|w| times x with w's sign,
 * vpmaddubsw: no saturation since |w| <= 128 and |x| <= 127) and vpmaddwd give exact int32
 * partials; the four are added and the lane sums converted and scaled once per quad: per (row,
 * token) 4 x (sign + maddubs + madd) + 3 adds + cvt + mul + fma, against 4 x (sign + maddubs +
 * madd + cvt + fma, and a scalar scale product broadcast) block by block. The regrouping (4
 * unpacks per quad) is paid once per weight row and shared by the tokens. */

/* The 16 bytes at qs (quants of block k of a group) if k < n, else zeros: a short group's absent
 * blocks are never read (the row may end there). */
INLINE __m128i half_or_zero(const int8_t *qs, int64_t k, int64_t n) {
    return k < n ? _mm_loadu_si128((const __m128i *)qs) : _mm_setzero_si128();
}
#define LOAD2(lo, hi)                                                                              \
    _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1)

/* The quants of the first n (<= 4) of the four blocks at b as a quad (see above), absent blocks
 * zero: 128-bit halves of blocks 0|1 and 2|3 loaded side by side, then 64-bit unpacks pair block
 * 0 with 2 and 1 with 3. Full quads (n = 4, a constant) compile to plain loads. A short quad -- the
 * last of a row whose length is not a multiple of 128 -- reads its blocks straight from the row:
 * through a copy on the stack, the vector loads could not be forwarded from its stores (measured
 * 1.5-2x slower decoding at D = 192). */
INLINE void quad_quants(const vwn_block_q8_0 *b, int64_t n, __m256i v[4]) {
    const __m256i l01 = LOAD2(half_or_zero(b[0].qs, 0, n), half_or_zero(b[1].qs, 1, n));
    const __m256i h01 = LOAD2(half_or_zero(b[0].qs + 16, 0, n), half_or_zero(b[1].qs + 16, 1, n));
    const __m256i l23 = LOAD2(half_or_zero(b[2].qs, 2, n), half_or_zero(b[3].qs, 3, n));
    const __m256i h23 = LOAD2(half_or_zero(b[2].qs + 16, 2, n), half_or_zero(b[3].qs + 16, 3, n));
    v[0] = _mm256_unpacklo_epi64(l01, l23);
    v[1] = _mm256_unpackhi_epi64(l01, l23);
    v[2] = _mm256_unpacklo_epi64(h01, h23);
    v[3] = _mm256_unpackhi_epi64(h01, h23);
}

/* Four blocks' fp16 scales d0..d3 as fp32 in a quad's lanes (blocks 0 2 1 3, each twice: the
 * order quad_quants pairs them in). Compilers gather the four words with a vmovd and three
 * vpinsrw from memory. (Doubling the words before the conversion instead of the permute after it
 * made clang build them with a dozen scalar shifts, 1.25x slower for Q4_0 at T = 1; two 32-byte
 * loads, a word blend, a byte shuffle and a 64-bit permute measured 4% slower.) */
INLINE __m256 scales4(uint16_t d0, uint16_t d1, uint16_t d2, uint16_t d3) {
    const uint64_t d = (uint64_t)d0 | (uint64_t)d2 << 16 | (uint64_t)d1 << 32 | (uint64_t)d3 << 48;
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)d));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(f),
                                    _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

/* The fp16 scales of the four blocks at b as fp32 in the quad's lanes. */
INLINE __m256 quad_scales(const vwn_block_q8_0 *b) { return scales4(b[0].d, b[1].d, b[2].d, b[3].d); }

/* The n blocks at b (1 <= n <= 4) as a quad; absent blocks are zero (quants and scales). */
INLINE void load_quad(const vwn_block_q8_0 *b, int64_t n, __m256i v[4], __m256 *d) {
    if (n >= 4) {
        quad_quants(b, 4, v);
        *d = quad_scales(b);
        return;
    }
    quad_quants(b, n, v);
    *d = scales4(b[0].d, 1 < n ? b[1].d : 0, 2 < n ? b[2].d : 0, 0);
}

/* int32 lane sums of w . x over a quad (aw = |w|). */
INLINE __m256i quad_dot(const __m256i aw[4], const __m256i w[4], const __m256i x[4]) {
    const __m256i one = _mm256_set1_epi16(1);
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[0], _mm256_sign_epi8(x[0], w[0])), one);
    for (int c = 1; c < 4; c++)
        s = _mm256_add_epi32(
            s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw[c], _mm256_sign_epi8(x[c], w[c])), one));
    return s;
}

/* The activation side, prepared once per call and shared by all rows: a quad's quants and
 * scales. */
typedef struct {
    __m256i q[4];
    __m256 d;
} q8_prep;

#define Q8_T 8          /* tokens per row pass                                        */
#define PREP_MAX 256    /* quads x tokens prepared on the stack (40 KiB)              */

/* One Q8_0 row (nb blocks at w) for tt tokens: each weight quad is loaded and regrouped once for
 * all of them; the weights are read as one linear stream. prepared: the activations come from xp
 * (quad p of token j at xp[j * quads + p]); else they are regrouped from xq as it goes (rows too
 * long for the stack buffer) -- the same values either way. */
INLINE void row_q8(int tt, bool prepared, const vwn_block_q8_0 *w, const q8_prep *xp,
                   const vwn_block_q8_0 *xq, int64_t nb, float *y, int64_t ldy) {
    const int64_t quads = (nb + 3) / 4;
    __m256 acc[Q8_T];
    for (int j = 0; j < tt; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t k = 0, p = 0; k < nb; k += 4, p++) {
        __m256i wq[4], aw[4];
        __m256 dw;
        load_quad(w + k, nb - k, wq, &dw);
        for (int c = 0; c < 4; c++) aw[c] = _mm256_sign_epi8(wq[c], wq[c]);
        for (int j = 0; j < tt; j++) {
            q8_prep tmp;
            const q8_prep *e = &tmp;
            if (prepared) e = &xp[j * quads + p];
            else load_quad(xq + j * nb + k, nb - k, tmp.q, &tmp.d);
            const __m256 s = _mm256_cvtepi32_ps(quad_dot(aw, wq, e->q));
            acc[j] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, e->d), acc[j]);
        }
    }
    for (int j = 0; j < tt; j++) y[j * ldy] = hsum(acc[j]);
}

/* One or two tokens over rows side by side, row i of nr far-apart segments (tile_float.h,
 * seg_rows): w0 + k ws, results at y + k ystep; nr = SEG_Q8_RT(tt). One row at a time keeps too
 * few lines in flight, and its dot waits on its own chain: on this session's Intel host (Cascade
 * Lake, no VNNI used at this level), a 32000 x 768 matrix from DRAM, 2 threads, in one process, 4
 * rows took 0.74-0.79 of the time of one row at one token (2 rows 0.83-0.86), 2 rows 0.82-0.92 at
 * two tokens (4 rows 0.94-0.99: the registers); docs/performance.md, "Twenty-third session".
 * Each (row, token) takes row_q8's operations in its order: the same bits. */
#define SEG_Q8_RT(tt) ((tt) == 1 ? 4 : (tt) == 2 ? 2 : 1)
INLINE void rows_seg_q8(int nr, int tt, const char *w0, int64_t ws, const q8_prep *xp, int64_t nb, float *y,
                        int64_t ldy, int64_t ystep) {
    const int64_t quads = nb / 4;
    __m256 acc[4][2];
    for (int k = 0; k < nr; k++)
        for (int j = 0; j < tt; j++) acc[k][j] = _mm256_setzero_ps();
    for (int64_t p = 0; p < quads; p++)
        for (int k = 0; k < nr; k++) {
            __m256i wq[4], aw[4];
            __m256 dw;
            load_quad((const vwn_block_q8_0 *)(w0 + k * ws) + 4 * p, 4, wq, &dw);
            for (int c = 0; c < 4; c++) aw[c] = _mm256_sign_epi8(wq[c], wq[c]);
            for (int j = 0; j < tt; j++) {
                const q8_prep *e = &xp[j * quads + p];
                const __m256 s = _mm256_cvtepi32_ps(quad_dot(aw, wq, e->q));
                acc[k][j] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, e->d), acc[k][j]);
            }
        }
    for (int k = 0; k < nr; k++)
        for (int j = 0; j < tt; j++) y[j * ldy + k * ystep] = hsum(acc[k][j]);
}

INLINE void rows_q8(int tt, const vwn_mat *W, const vwn_block_q8_0 *xq, float *Y, int64_t ldy,
                    int64_t r0, int64_t r1) {
    const int64_t nb = W->cols / VWN_QK8_0, quads = (nb + 3) / 4;
    const char *base = W->data;
    if (quads * tt > PREP_MAX) {
        for (int64_t r = r0; r < r1; r++)
            row_q8(tt, false, (const vwn_block_q8_0 *)(base + r * W->row_bytes), NULL, xq, nb,
                   Y + r, ldy);
        return;
    }
    q8_prep xp[PREP_MAX];
    for (int j = 0; j < tt; j++)
        for (int64_t p = 0; p < quads; p++)
            load_quad(xq + j * nb + 4 * p, nb - 4 * p, xp[j * quads + p].q, &xp[j * quads + p].d);
    int64_t r = r0;
    const int nr = SEG_Q8_RT(tt);
    if (nr > 1 && nb % 4 == 0) { /* one or two tokens over a long range (rows_seg_q8) */
        const int64_t h = seg_rows(nr, W->row_bytes, r0, r1);
        for (int64_t i = 0; i < h; i++)
            rows_seg_q8(nr, tt <= 2 ? tt : 1, base + (r0 + i) * W->row_bytes, h * (int64_t)W->row_bytes, xp, nb,
                        Y + r0 + i, ldy, h);
        r = r0 + nr * h;
    }
    for (; r < r1; r++)
        row_q8(tt, true, (const vwn_block_q8_0 *)(base + r * W->row_bytes), xp, xq, nb, Y + r, ldy);
}

/* Also used by the AVX-512 level on CPUs without VNNI. */
void vwn_avx2_matmul_q8_0(const vwn_mat *W, const void *xqv, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1);

/* Every T: the row kernel rows_fn on balanced chunks of at most Q8_T tokens (a compile-time count
 * for the inlined kernel), and no more than the prepared activations' buffer (prep_max) holds.
 * Measured on Zen 4 against the block-by-block kernels this replaced (an 8-row decode tile with
 * prefetch for T = 1, a 2 x 3 tile GEMM over 512-column blocks for T > 1), 2048x768, 768x2048 and
 * 32000x768: 1 thread, weights in L3, T = 1 the same, T = 2..64 0.65-0.85x the time; 2 threads
 * from DRAM 0.4-0.77x. Chunks of 8 tokens measured faster than chunks of 6 or 3 for T >= 8. */
#define QUANT_CHUNKS(rows_fn, prep_max)                                                           \
    do {                                                                                           \
        const int64_t nb = W->cols / VWN_QK8_0, quads = (nb + 3) / 4; /* Q4_0: 32 a block too */  \
        const vwn_block_q8_0 *xq = xqv;                                                            \
        int64_t most = Q8_T; /* rows over prep_max quads are not prepared: Q8_T */                 \
        if (quads <= (prep_max) && (prep_max) / quads < most) most = (prep_max) / quads;           \
        const int64_t n = (T + most - 1) / most;                                                   \
        for (int64_t c = 0, t = 0; c < n; c++) {                                                   \
            const int64_t t1 = T * (c + 1) / n;                                                    \
            const vwn_block_q8_0 *xc = xq + t * nb;                                                \
            float *yc = Y + t * ldy;                                                               \
            switch (t1 - t) {                                                                      \
            case 1: rows_fn(1, W, xc, yc, ldy, r0, r1); break;                                     \
            case 2: rows_fn(2, W, xc, yc, ldy, r0, r1); break;                                     \
            case 3: rows_fn(3, W, xc, yc, ldy, r0, r1); break;                                     \
            case 4: rows_fn(4, W, xc, yc, ldy, r0, r1); break;                                     \
            case 5: rows_fn(5, W, xc, yc, ldy, r0, r1); break;                                     \
            case 6: rows_fn(6, W, xc, yc, ldy, r0, r1); break;                                     \
            case 7: rows_fn(7, W, xc, yc, ldy, r0, r1); break;                                     \
            default: rows_fn(8, W, xc, yc, ldy, r0, r1); break;                                    \
            }                                                                                      \
            t = t1;                                                                                \
        }                                                                                          \
    } while (0)

void vwn_avx2_matmul_q8_0(const vwn_mat *W, const void *xqv, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1) {
    QUANT_CHUNKS(rows_q8, PREP_MAX);
}

/* ---- Q4_0 weights ----------------------------------------------------------------------------- */

/* Q4_0 dots use the Q8_0 quads above: the activations are the same Q8_0 quads, and a weight quad
 * (four blocks, 72 bytes) is made to match them lane for lane. The nibbles are kept unsigned
 * (0..15, the value plus 8): vpmaddubsw takes them as its unsigned side as they are (no sign
 * trick: |nibble * x| <= 15 * 127, so a pair sum cannot saturate, and the four pair sums of a
 * quad, at most 4 * 2 * 15 * 127 = 15240, add up in int16 exactly), one vpmaddwd widens the sum
 * to int32, and the excess 8 * sum(x) -- which depends only on the activations -- starts the
 * int32 sum, prepared once per call:
 *   sum_j (q_j - 8) x_j = sum_j q_j x_j - 8 sum_j x_j    (exact in int32).
 * Per (row, token) a quad costs 4 vpmaddubsw + 3 adds + vpmaddwd + add + cvt + mul + fma; the
 * nibble split and regrouping (2 unpacks, 2 shifts, 4 ands) and the scales are paid once per
 * weight row. */

/* The quants of the four Q4_0 blocks at b as a quad of nibbles: the 16 bytes of blocks 0|1 and
 * 2|3 loaded side by side, 64-bit unpacks pair block 0 with 2 and 1 with 3 as in quad_quants --
 * bytes 0..7 of every block (values 0..7 in the low nibbles, 16..23 in the high ones) and bytes
 * 8..15 (values 8..15 and 24..31) -- then the nibbles are split. */
INLINE void quad_nibbles(const vwn_block_q4_0 *b, int64_t n, __m256i v[4]) {
#define Q4HALF(k) half_or_zero((const int8_t *)b[k].qs, k, n)
    const __m256i q01 = LOAD2(Q4HALF(0), Q4HALF(1)), q23 = LOAD2(Q4HALF(2), Q4HALF(3));
#undef Q4HALF
    const __m256i lo = _mm256_unpacklo_epi64(q01, q23), hi = _mm256_unpackhi_epi64(q01, q23);
    const __m256i m = _mm256_set1_epi8(0x0F);
    v[0] = _mm256_and_si256(lo, m);
    v[1] = _mm256_and_si256(hi, m);
    v[2] = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m);
    v[3] = _mm256_and_si256(_mm256_srli_epi16(hi, 4), m);
}
#undef LOAD2

/* The fp16 scales of the four Q4_0 blocks at b as fp32 in the quad's lanes, as quad_scales. */
INLINE __m256 quad_scales_q4(const vwn_block_q4_0 *b) { return scales4(b[0].d, b[1].d, b[2].d, b[3].d); }

/* The n Q4_0 blocks at b (1 <= n <= 4) as a quad; absent blocks are zero (nibbles and scales: their
 * terms vanish, as the activations' absent blocks are zero too). */
INLINE void load_quad_q4(const vwn_block_q4_0 *b, int64_t n, __m256i v[4], __m256 *d) {
    if (n >= 4) {
        quad_nibbles(b, 4, v);
        *d = quad_scales_q4(b);
        return;
    }
    quad_nibbles(b, n, v);
    *d = scales4(b[0].d, 1 < n ? b[1].d : 0, 2 < n ? b[2].d : 0, 0);
}

/* The activation side of a Q4_0 step, prepared once per call and shared by all rows: a Q8_0 quad's
 * quants and scales, and -8 times the quants' lane sums (the start of the int32 sums). */
typedef struct {
    __m256i q[4], ncorr;
    __m256 d;
} q4_prep;

INLINE void prep_q4(const vwn_block_q8_0 *x, int64_t n, q4_prep *e) {
    load_quad(x, n, e->q, &e->d);
    const __m256i one = _mm256_set1_epi8(1);
    __m256i s = _mm256_maddubs_epi16(one, e->q[0]);                  /* pair sums, |s| <= 254 */
    for (int c = 1; c < 4; c++) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(one, e->q[c]));
    e->ncorr = _mm256_madd_epi16(s, _mm256_set1_epi16(-8));
}

/* ncorr + nibbles . x over a quad, in int32 lanes (exact, see above). */
INLINE __m256i quad_dot_q4(__m256i ncorr, const __m256i w[4], const __m256i x[4]) {
    __m256i p = _mm256_maddubs_epi16(w[0], x[0]);
    for (int c = 1; c < 4; c++) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[c], x[c]));
    return _mm256_add_epi32(ncorr, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

#define PREP_MAX_Q4 256 /* quads x tokens of Q4_0 activations prepared on the stack (48 KiB) */

/* One Q4_0 row (nb blocks at w) for tt tokens, as row_q8: each weight quad is loaded and split
 * once for all of them, the weights read as one linear stream. prepared: the activations come from
 * xp (quad p of token j at xp[j * quads + p]); else they are prepared from xq as it goes. */
INLINE void row_q4(int tt, bool prepared, const vwn_block_q4_0 *w, const q4_prep *xp,
                   const vwn_block_q8_0 *xq, int64_t nb, float *y, int64_t ldy) {
    const int64_t quads = (nb + 3) / 4;
    __m256 acc[Q8_T];
    for (int j = 0; j < tt; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t k = 0, p = 0; k < nb; k += 4, p++) {
        __m256i wq[4];
        __m256 dw;
        /* the lines of the quad 4 KiB on, as the AVX-512 Q4_0 rows (ops_avx512.c, Q4_PREFETCH;
         * forced to this level on the same machine: 84-86% -> 86-90% of the bandwidth) */
        _mm_prefetch((const char *)(w + k) + 4096, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + k) + 4096 + 64, _MM_HINT_T0);
        load_quad_q4(w + k, nb - k, wq, &dw);
        for (int j = 0; j < tt; j++) {
            q4_prep tmp;
            const q4_prep *e = &tmp;
            if (prepared) e = &xp[j * quads + p];
            else prep_q4(xq + j * nb + k, nb - k, &tmp);
            const __m256 s = _mm256_cvtepi32_ps(quad_dot_q4(e->ncorr, wq, e->q));
            acc[j] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, e->d), acc[j]);
        }
    }
    for (int j = 0; j < tt; j++) y[j * ldy] = hsum(acc[j]);
}

INLINE void rows_q4(int tt, const vwn_mat *W, const vwn_block_q8_0 *xq, float *Y, int64_t ldy,
                    int64_t r0, int64_t r1) {
    const int64_t nb = W->cols / VWN_QK4_0, quads = (nb + 3) / 4;
    const char *base = W->data;
    if (quads * tt > PREP_MAX_Q4) {
        for (int64_t r = r0; r < r1; r++)
            row_q4(tt, false, (const vwn_block_q4_0 *)(base + r * W->row_bytes), NULL, xq, nb,
                   Y + r, ldy);
        return;
    }
    q4_prep xp[PREP_MAX_Q4];
    for (int j = 0; j < tt; j++)
        for (int64_t p = 0; p < quads; p++)
            prep_q4(xq + j * nb + 4 * p, nb - 4 * p, &xp[j * quads + p]);
    for (int64_t r = r0; r < r1; r++)
        row_q4(tt, true, (const vwn_block_q4_0 *)(base + r * W->row_bytes), xp, xq, nb, Y + r, ldy);
}

/* Also used by the AVX-512 level on CPUs without VNNI. */
void vwn_avx2_matmul_q4_0(const vwn_mat *W, const void *xqv, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1);

/* Every T: as vwn_avx2_matmul_q8_0. */
void vwn_avx2_matmul_q4_0(const vwn_mat *W, const void *xqv, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1) {
    QUANT_CHUNKS(rows_q4, PREP_MAX_Q4);
}
#undef QUANT_CHUNKS

static void matmul_avx2(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T,
                        float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    switch (W->type) {
    case VWN_TYPE_F32: matmul_f32(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_F16: matmul_f16(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_BF16: matmul_bf16(W, X, ldx, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q8_0: vwn_avx2_matmul_q8_0(W, xq, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q4_0: vwn_avx2_matmul_q4_0(W, xq, T, Y, ldy, r0, r1); break;
    default: break;
    }
}

/* ---- Q8_0 quantization of activations (same bytes as the scalar level) ---------------------- */

void vwn_avx2_quantize_q8_0(const float *x, vwn_block_q8_0 *out, int64_t n);

void vwn_avx2_quantize_q8_0(const float *x, vwn_block_q8_0 *out, int64_t n) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / VWN_QK8_0; b++) {
        const float *xb = x + b * VWN_QK8_0;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign_mask, v0), _mm256_andnot_ps(sign_mask, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign_mask, v2), _mm256_andnot_ps(sign_mask, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = vwn_fp32_to_fp16(d);
        const __m256 idv = _mm256_set1_ps(id);
        /* cvtps_epi32 rounds to nearest even, like lrintf in the scalar level */
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, idv));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, idv));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, idv));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, idv));
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        /* undo the lane interleaving of the packs: dwords 0 4 1 5 2 6 3 7 */
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        p = _mm256_max_epi8(p, _mm256_set1_epi8(-127));
        _mm256_storeu_si256((__m256i *)out[b].qs, p);
    }
}

/* ---- vector helpers ---------------------------------------------------------------------------- */

static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + VL), _mm256_loadu_ps(b + i + VL), acc1);
    }
    for (; i + VL <= n; i += VL) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    if (i < n) acc1 = _mm256_fmadd_ps(load_x_tail(a + i, n - i), load_x_tail(b + i, n - i), acc1);
    return hsum(_mm256_add_ps(acc0, acc1));
}

static float sum_sq_avx2(const float *x, int64_t n) {
    return dot_avx2(x, x, n);
}

static void axpy_avx2(float *y, float a, const float *x, int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + VL <= n; i += VL)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

static void scale_avx2(float *y, float a, int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

static void rmsnorm_avx2(float *out, const float *x, const float *gain, int64_t n, float eps) {
    const float inv = 1.0f / sqrtf(sum_sq_avx2(x, n) / (float)n + eps);
    const __m256 iv = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), iv);
        if (gain) v = _mm256_mul_ps(v, _mm256_loadu_ps(gain + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++) out[i] = x[i] * inv * (gain ? gain[i] : 1.0f);
}

/* exp(x) for fp32 lanes: 2^n * p(r) with r = x - n ln2 in [-ln2/2, ln2/2] and a degree-6
 * polynomial (Cephes expf coefficients); about 1 ulp. Overflows to Inf, underflows to 0. */
static inline __m256 exp_avx2(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228f), lo = _mm256_set1_ps(-87.3365f);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n in two factors so n = 128 (x near 88.72) does not overflow the exponent field */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    p = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    p = _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), over);
    return _mm256_andnot_ps(under, p);
}

static void silu_mul_avx2(float *out, const float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp_avx2(_mm256_xor_ps(g, neg));
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ghc_coef (ops.h): tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)), 8 lanes at a time. */
static void ghc_coef_avx2(float *c, const float *c0, const float *scale, int64_t n, float mult) {
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 vm = _mm256_set1_ps(mult), cap = _mm256_set1_ps(9.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        __m256 x = _mm256_mul_ps(vm, _mm256_loadu_ps(c + i));
        __m256 a = _mm256_min_ps(cap, _mm256_andnot_ps(sign, x));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp_avx2(_mm256_add_ps(a, a)), one)));
        t = _mm256_or_ps(t, _mm256_and_ps(sign, x));
        _mm256_storeu_ps(c + i, _mm256_fmadd_ps(_mm256_loadu_ps(scale + i), t, _mm256_loadu_ps(c0 + i)));
    }
    for (; i < n; i++) {
        const float x = mult * c[i], a = fabsf(x);
        const float t = a > 9.0f ? 1.0f : 1.0f - 2.0f / (expf(2.0f * a) + 1.0f);
        c[i] = c0[i] + scale[i] * (x < 0 ? -t : t);
    }
}

/* softmax_exp (ops.h): the max and the sum in 8 lanes, the exp as silu_mul's; a scalar tail. */
static float softmax_exp_avx2(float *x, int64_t n, float *max_out) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    float lanes[VL], m = -INFINITY;
    _mm256_storeu_ps(lanes, mx);
    for (int k = 0; k < VL; k++) m = lanes[k] > m ? lanes[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (max_out) *max_out = m;
    const __m256 vmax = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i + VL <= n; i += VL) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum(sum);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

/* Keys and values are fp32, fp16 or Q8_0 blocks (kv_type F16, Q8_0): `type` is F32, F16 or Q8_0,
 * the loads widen (load_kv). A Q8_0 value d * qs is exact in fp32 (11 x 8 significant bits), as is
 * the fp16 widening, so every kernel below gives the bits of its fp32 form on the rows widened. */

/* Bytes of a cache row of ld values (Q8_0: ld / 32 blocks of 34 bytes). */
INLINE size_t kv_row_bytes(int type, int64_t ld) {
    if (type == VWN_TYPE_Q8_0) return (size_t)(ld / VWN_QK8_0) * sizeof(vwn_block_q8_0);
    return (size_t)ld * (type == VWN_TYPE_F32 ? sizeof(float) : sizeof(uint16_t));
}

/* Values c.. c + 7 of a Q8_0 row (c a multiple of 8: one block's quarter), d * qs. */
INLINE __m256 load_q8(const void *row, int64_t c) {
    const vwn_block_q8_0 *b = (const vwn_block_q8_0 *)row + c / VWN_QK8_0;
    const __m128i qs = _mm_loadl_epi64((const __m128i *)(b->qs + c % VWN_QK8_0));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b->d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(qs)));
}
INLINE __m256 load_kv(int type, const void *row, int64_t c) {
    return type == VWN_TYPE_Q8_0 ? load_q8(row, c) : load_w(type, row, c);
}
/* The last n < 8 values zero-padded. (Q8_0 rows are whole blocks, so never partial; were one, the
 * 8 bytes read would still lie inside the block, and the lanes past n are cleared.) */
INLINE __m256 load_kv_tail(int type, const void *row, int64_t c, int64_t n) {
    if (type == VWN_TYPE_Q8_0) return _mm256_and_ps(load_q8(row, c), _mm256_castsi256_ps(tail_mask8(n)));
    return load_w_tail(type, row, c, n);
}

/* A key's dot with q over n lanes: ceil(n / 8) vectors (the last one zero-padded if n is not a
 * multiple of 8), in pairs on two chains, an odd last one on the first; then hsum. The chains
 * depend on the vector count only, so the row tiles below (unrolled per count) repeat them. */
INLINE __m256 dot_kv_lanes_as(bool full, const float *q, int type, const void *k, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int64_t nv = (n + VL - 1) / VL;
    int64_t v = 0;
    for (; v + 2 < nv; v += 2) { /* both vectors whole */
        const int64_t i = v * VL;
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_kv(type, k, i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + VL), load_kv(type, k, i + VL), acc1);
    }
    /* the last one or two vectors: the last whole if full, else of n % 8 lanes */
    const int64_t i = v * VL, tail = n - (nv - 1) * VL;
    const __m256 ql = full ? _mm256_loadu_ps(q + (nv - 1) * VL) : load_x_tail(q + (nv - 1) * VL, tail);
    const __m256 kl = full ? load_kv(type, k, (nv - 1) * VL) : load_kv_tail(type, k, (nv - 1) * VL, tail);
    if (v + 2 == nv) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_kv(type, k, i), acc0);
        acc1 = _mm256_fmadd_ps(ql, kl, acc1);
    } else if (v < nv) {
        acc0 = _mm256_fmadd_ps(ql, kl, acc0);
    }
    return _mm256_add_ps(acc0, acc1);
}
/* (full: n a multiple of 8, every load whole. Left to decide per load, the compiler merged the
 * fp16 forms of both into one that took each vector apart word by word: fp16 keys 2.5x slower.) */
INLINE __m256 dot_kv_lanes(const float *q, int type, const void *k, int64_t n) {
    return n % VL == 0 ? dot_kv_lanes_as(true, q, type, k, n) : dot_kv_lanes_as(false, q, type, k, n);
}
INLINE float dot_kv(const float *q, int type, const void *k, int64_t n) { return hsum(dot_kv_lanes(q, type, k, n)); }

static void attn_scores_rows_avx2(float *const *out, const float *const *q, int32_t nr, int32_t kv_type, const void *K,
                                  int64_t ldk, int64_t n_kv, int64_t head_dim, float scale);

/* One row's scores are the rows kernel's (below) with a tile of one row: 8 keys summed at once by
 * the tree, the same bits as a horizontal sum per key. */
static void attn_scores_avx2(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv,
                             int64_t head_dim, float scale) {
    attn_scores_rows_avx2(&out, &q, 1, VWN_TYPE_F32, K, ldk, n_kv, head_dim, scale);
}

static void attn_scores_f16_avx2(float *out, const float *q, const uint16_t *K, int64_t ldk, int64_t n_kv,
                                 int64_t head_dim, float scale) {
    attn_scores_rows_avx2(&out, &q, 1, VWN_TYPE_F16, K, ldk, n_kv, head_dim, scale);
}

static void attn_scores_q8_0_avx2(float *out, const float *q, const vwn_block_q8_0 *K, int64_t ldk, int64_t n_kv,
                                  int64_t head_dim, float scale) {
    attn_scores_rows_avx2(&out, &q, 1, VWN_TYPE_Q8_0, K, ldk, n_kv, head_dim, scale);
}

/* Up to 64 output lanes in registers over all keys (each value row read once, in key order); a
 * tail of fewer than 8 lanes in plain C. Each output is one fma chain over the keys, in order.
 * Columns c0.. of V (fp32, fp16 or Q8_0 by `type`). */
INLINE void values_block(int nv, int type, float *out, const float *p, const void *V, int64_t c0, int64_t ldv,
                         int64_t n_kv, bool accumulate) {
    const size_t vrow = kv_row_bytes(type, ldv);
    __m256 acc[8];
    for (int v = 0; v < nv; v++) acc[v] = accumulate ? _mm256_loadu_ps(out + v * VL) : _mm256_setzero_ps();
    for (int64_t j = 0; j < n_kv; j++) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const void *row = (const char *)V + (size_t)j * vrow;
        for (int v = 0; v < nv; v++) acc[v] = _mm256_fmadd_ps(pj, load_kv(type, row, c0 + v * VL), acc[v]);
    }
    for (int v = 0; v < nv; v++) _mm256_storeu_ps(out + v * VL, acc[v]);
}

INLINE void values_kv(int type, float *out, const float *p, const void *V, int64_t ldv, int64_t n_kv,
                      int64_t head_dim, bool accumulate) {
    int64_t i = 0;
    while (i + VL <= head_dim) {
        const int64_t nv = (head_dim - i) / VL < 8 ? (head_dim - i) / VL : 8;
        switch (nv) {
        case 1: values_block(1, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        case 2: values_block(2, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        case 3: values_block(3, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        case 4: values_block(4, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        case 5: values_block(5, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        case 6: values_block(6, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        case 7: values_block(7, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        default: values_block(8, type, out + i, p, V, i, ldv, n_kv, accumulate); break;
        }
        i += nv * VL;
    }
    for (; i < head_dim; i++) {
        float s = accumulate ? out[i] : 0.0f;
        if (type == VWN_TYPE_F32)
            for (int64_t j = 0; j < n_kv; j++) s += p[j] * ((const float *)V)[j * ldv + i];
        else if (type == VWN_TYPE_Q8_0) /* (not reached: Q8_0 rows are whole blocks) */
            for (int64_t j = 0; j < n_kv; j++) {
                const vwn_block_q8_0 *b = (const vwn_block_q8_0 *)V + (j * ldv + i) / VWN_QK8_0;
                s += p[j] * (vwn_fp16_to_fp32(b->d) * (float)b->qs[(j * ldv + i) % VWN_QK8_0]);
            }
        else
            for (int64_t j = 0; j < n_kv; j++) s += p[j] * vwn_fp16_to_fp32(((const uint16_t *)V)[j * ldv + i]);
        out[i] = s;
    }
}

static void attn_values_avx2(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv,
                             int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_F32, out, p, V, ldv, n_kv, head_dim, accumulate);
}

static void attn_values_f16_avx2(float *out, const float *p, const uint16_t *V, int64_t ldv, int64_t n_kv,
                                 int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_F16, out, p, V, ldv, n_kv, head_dim, accumulate);
}

static void attn_values_q8_0_avx2(float *out, const float *p, const vwn_block_q8_0 *V, int64_t ldv, int64_t n_kv,
                                  int64_t head_dim, bool accumulate) {
    values_kv(VWN_TYPE_Q8_0, out, p, V, ldv, n_kv, head_dim, accumulate);
}

/* ---- attention over several query rows at once (ops.h: attn_scores_rows, attn_values_rows) ---- */

/* As on AVX-512 (ops_avx512.c): the queries stay in registers, each key's vectors are loaded once
 * for the rows of a tile, and 8 keys' scores are summed by a transposing tree with hsum's pairs
 * -- a_i = v_i + v_(i+4), b_i = a_i + a_(i+2), b_0 + b_1 -- so a score has dot_kv's bits. With
 * 16 registers: 2 rows of queries up to 4 vectors (head_dim 32), 1 row up to 8 (64); a single
 * row (attn_scores) is a tile of one, a row of a wider head scores_wide. The values
 * stay a row at a time: 2-row tiles over 32-lane column blocks (the registers hold no more) took
 * 1.16x the time of one row's 64-lane blocks (a 2,048-token prefill, one thread). */
#define ROWS_MAX_NV 8

/* step a: [A_lo + A_hi | B_lo + B_hi] */
INLINE __m256 tree_a(__m256 A, __m256 B) {
    return _mm256_add_ps(_mm256_permute2f128_ps(A, B, 0x20), _mm256_permute2f128_ps(A, B, 0x31));
}
/* step b: per 128-bit lane [X b0, X b1, Y b0, Y b1] */
INLINE __m256 tree_b(__m256 P, __m256 Q) {
    return _mm256_add_ps(_mm256_shuffle_ps(P, Q, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(P, Q, _MM_SHUFFLE(3, 2, 3, 2)));
}
/* step c: the 8 sums, keys 0 2 4 6 1 3 5 7 (undone by the permute in scores_tile) */
INLINE __m256 tree_c(__m256 P, __m256 Q) {
    return _mm256_add_ps(_mm256_shuffle_ps(P, Q, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(P, Q, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The dots of rt rows (nv query vectors each, the last one of `last` lanes) with key k, as
 * dot_kv_lanes. */
INLINE void key_dots(int rt, int nv, int type, const __m256 q[][ROWS_MAX_NV], const void *k, int64_t last,
                     __m256 out[]) {
    __m256 a0[2], a1[2];
    for (int r = 0; r < rt; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    int v = 0;
    for (; v + 2 <= nv; v += 2) {
        const __m256 k0 = load_kv(type, k, v * VL);
        const __m256 k1 = v + 2 == nv && last < VL ? load_kv_tail(type, k, (v + 1) * VL, last) : load_kv(type, k, (v + 1) * VL);
        for (int r = 0; r < rt; r++) {
            a0[r] = _mm256_fmadd_ps(q[r][v], k0, a0[r]);
            a1[r] = _mm256_fmadd_ps(q[r][v + 1], k1, a1[r]);
        }
    }
    if (v < nv) {
        const __m256 k0 = last < VL ? load_kv_tail(type, k, v * VL, last) : load_kv(type, k, v * VL);
        for (int r = 0; r < rt; r++) a0[r] = _mm256_fmadd_ps(q[r][v], k0, a0[r]);
    }
    for (int r = 0; r < rt; r++) out[r] = _mm256_add_ps(a0[r], a1[r]);
}

#define KEYS_ARGS int rt, int nv, int type, const __m256 q[][ROWS_MAX_NV], const char *K, size_t krow, int64_t last
#define KEYS_PASS rt, nv, type, q
INLINE void keys_2(KEYS_ARGS, __m256 out[]) {
    __m256 x[2], y[2];
    key_dots(KEYS_PASS, K, last, x);
    key_dots(KEYS_PASS, K + krow, last, y);
    for (int r = 0; r < rt; r++) out[r] = tree_a(x[r], y[r]);
}
INLINE void keys_4(KEYS_ARGS, __m256 out[]) {
    __m256 x[2], y[2];
    keys_2(KEYS_PASS, K, krow, last, x);
    keys_2(KEYS_PASS, K + 2 * krow, krow, last, y);
    for (int r = 0; r < rt; r++) out[r] = tree_b(x[r], y[r]);
}
INLINE void keys_8(KEYS_ARGS, __m256 out[]) {
    __m256 x[2], y[2];
    keys_4(KEYS_PASS, K, krow, last, x);
    keys_4(KEYS_PASS, K + 4 * krow, krow, last, y);
    for (int r = 0; r < rt; r++) out[r] = tree_c(x[r], y[r]);
}
#undef KEYS_ARGS
#undef KEYS_PASS

/* rt rows over n_kv keys: 8 at a time through the tree, the rest one by one. */
INLINE void scores_tile(int rt, int nv, int type, float *const *out, const float *const *q, const void *K,
                        int64_t ldk, int64_t n_kv, int64_t hd, float scale) {
    const size_t krow = kv_row_bytes(type, ldk);
    const int64_t last = hd - (int64_t)(nv - 1) * VL; /* lanes of the last vector */
    __m256 qr[2][ROWS_MAX_NV];
    for (int r = 0; r < rt; r++)
        for (int v = 0; v < nv; v++) qr[r][v] = load_x_any(q[r], v * VL, hd);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256 sv = _mm256_set1_ps(scale);
    int64_t j = 0;
    /* a full last vector as a constant: with `last` unknown the compiler merged the fp16 loads of
     * both forms into one and took every vector apart word by word (fp16 cache 2.5x slower) */
    if (last == VL)
        for (; j + 8 <= n_kv; j += 8) {
            __m256 s[2];
            keys_8(rt, nv, type, qr, (const char *)K + (size_t)j * krow, krow, VL, s);
            for (int r = 0; r < rt; r++) _mm256_storeu_ps(out[r] + j, _mm256_mul_ps(sv, _mm256_permutevar8x32_ps(s[r], order)));
        }
    for (; j + 8 <= n_kv; j += 8) {
        __m256 s[2];
        keys_8(rt, nv, type, qr, (const char *)K + (size_t)j * krow, krow, last, s);
        for (int r = 0; r < rt; r++) _mm256_storeu_ps(out[r] + j, _mm256_mul_ps(sv, _mm256_permutevar8x32_ps(s[r], order)));
    }
    for (; j < n_kv; j++)
        for (int r = 0; r < rt; r++) out[r][j] = scale * dot_kv(q[r], type, (const char *)K + (size_t)j * krow, hd);
}

/* A row of a head wider than the tiles' registers hold (more than 8 vectors): its query read from
 * L1 for every key (dot_kv_lanes), 8 keys summed by the same tree. */
INLINE void scores_wide_as(bool full, int type, float *out, const float *q, const void *K, int64_t ldk, int64_t n_kv,
                           int64_t hd, float scale) {
    const size_t krow = kv_row_bytes(type, ldk);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t j = 0;
    for (; j + 8 <= n_kv; j += 8) {
        const char *k = (const char *)K + (size_t)j * krow;
        __m256 d[8];
        for (int i = 0; i < 8; i++) d[i] = dot_kv_lanes_as(full, q, type, k + (size_t)i * krow, hd);
        for (int i = 0; i < 4; i++) d[i] = tree_a(d[2 * i], d[2 * i + 1]);
        for (int i = 0; i < 2; i++) d[i] = tree_b(d[2 * i], d[2 * i + 1]);
        _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_set1_ps(scale), _mm256_permutevar8x32_ps(tree_c(d[0], d[1]), order)));
    }
    for (; j < n_kv; j++) out[j] = scale * dot_kv(q, type, (const char *)K + (size_t)j * krow, hd);
}
static void scores_wide(int type, float *out, const float *q, const void *K, int64_t ldk, int64_t n_kv, int64_t hd,
                        float scale) {
    if (hd % VL == 0) scores_wide_as(true, type, out, q, K, ldk, n_kv, hd, scale);
    else scores_wide_as(false, type, out, q, K, ldk, n_kv, hd, scale);
}

/* One function per tile shape and cache type (see ops_avx512.c: inlined into one, the shapes'
 * queries were kept on the stack). */
typedef void (*scores_tile_fn)(float *const *out, const float *const *q, const void *K, int64_t ldk, int64_t n_kv,
                               int64_t hd, float scale);
#define SCORES_TILE(rt, nv, type, name)                                                                          \
    static __attribute__((noinline)) void name(float *const *out, const float *const *q, const void *K, int64_t ldk, \
                                               int64_t n_kv, int64_t hd, float scale) {                          \
        scores_tile(rt, nv, type, out, q, K, ldk, n_kv, hd, scale);                                              \
    }
#define SCORES_TILES(rt, nv)                                  \
    SCORES_TILE(rt, nv, VWN_TYPE_F32, scores_f32_##rt##x##nv) \
    SCORES_TILE(rt, nv, VWN_TYPE_F16, scores_f16_##rt##x##nv)
/* Q8_0 rows are whole 32-value blocks: 4 or 8 vectors (heads of 32 and 64; wider ones: scores_wide) */
SCORES_TILE(2, 4, VWN_TYPE_Q8_0, scores_q8_2x4)
SCORES_TILE(1, 4, VWN_TYPE_Q8_0, scores_q8_1x4)
SCORES_TILE(1, 8, VWN_TYPE_Q8_0, scores_q8_1x8)
SCORES_TILES(2, 1)
SCORES_TILES(2, 2)
SCORES_TILES(2, 3)
SCORES_TILES(2, 4)
SCORES_TILES(1, 1)
SCORES_TILES(1, 2)
SCORES_TILES(1, 3)
SCORES_TILES(1, 4)
SCORES_TILES(1, 5)
SCORES_TILES(1, 6)
SCORES_TILES(1, 7)
SCORES_TILES(1, 8)
#undef SCORES_TILES
#undef SCORES_TILE

/* [cache type: F32, F16, Q8_0 (kv_types)][nv - 1]: 2-row tiles up to 4 vectors (NULL past them),
 * 1-row tiles up to 8; NULL where a type has no rows of that width (the rest go to scores_wide) */
static const int kv_types[3] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_Q8_0};
static const scores_tile_fn scores_2rows[3][ROWS_MAX_NV] = {
    {scores_f32_2x1, scores_f32_2x2, scores_f32_2x3, scores_f32_2x4, NULL, NULL, NULL, NULL},
    {scores_f16_2x1, scores_f16_2x2, scores_f16_2x3, scores_f16_2x4, NULL, NULL, NULL, NULL},
    {NULL, NULL, NULL, scores_q8_2x4, NULL, NULL, NULL, NULL}};
static const scores_tile_fn scores_1row[3][ROWS_MAX_NV] = {
    {scores_f32_1x1, scores_f32_1x2, scores_f32_1x3, scores_f32_1x4, scores_f32_1x5, scores_f32_1x6, scores_f32_1x7,
     scores_f32_1x8},
    {scores_f16_1x1, scores_f16_1x2, scores_f16_1x3, scores_f16_1x4, scores_f16_1x5, scores_f16_1x6, scores_f16_1x7,
     scores_f16_1x8},
    {NULL, NULL, NULL, scores_q8_1x4, NULL, NULL, NULL, scores_q8_1x8}};

static void attn_scores_rows_avx2(float *const *out, const float *const *q, int32_t nr, int32_t kv_type, const void *K,
                                  int64_t ldk, int64_t n_kv, int64_t head_dim, float scale) {
    const int t = kv_type == VWN_TYPE_F16 ? 1 : kv_type == VWN_TYPE_Q8_0 ? 2 : 0, type = kv_types[t];
    const int64_t nv = (head_dim + VL - 1) / VL;
    int32_t r = 0;
    if (nv <= ROWS_MAX_NV) {
        const scores_tile_fn t2 = scores_2rows[t][nv - 1], t1 = scores_1row[t][nv - 1];
        if (t2)
            for (; r + 2 <= nr; r += 2) t2(out + r, q + r, K, ldk, n_kv, head_dim, scale);
        if (t1)
            for (; r < nr; r++) t1(out + r, q + r, K, ldk, n_kv, head_dim, scale);
    }
    for (; r < nr; r++) scores_wide(type, out[r], q[r], K, ldk, n_kv, head_dim, scale);
}

static void to_f16_avx2(uint16_t *out, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL)
        _mm_storeu_si128((__m128i *)(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) out[i] = vwn_fp32_to_fp16(x[i]);
}

/* ---- mix: 4 outputs x nv vectors of 8 accumulators, B rows broadcast-multiplied (ops.h) --------
 * As ops_avx512.c's mix: every tile is compiled with its output count (1-4), its vector count (1-3)
 * and whether its last vector is a masked tail fixed, so the inner loop has no tests; the 4 x 3
 * accumulators, three B vectors and the broadcast coefficient fill the 16 registers. Each output
 * column is the FMA chain over i = 0, 1, ... from 0 (or from out), as on AVX-512: the two levels give
 * the same bits. (It replaced a generic C tile left to the compiler to vectorize, whose 4 x 64
 * accumulators spilled to the stack on every step: one thread, data in cache, one GHC module took
 * 19.3 µs per token at (2,8) and 117 at (8,64) with it, 2.7 and 24 with this; AVX-512 2.3 and 21.) */
INLINE void mix_block8(int nv, int no, bool tail, float *out, int64_t ldo, const float *A, int64_t ao,
                       int64_t ai, const float *B, int64_t ldb, int64_t n_in, __m256i last, bool accumulate) {
    __m256 acc[4][3];
    for (int o = 0; o < no; o++)
        for (int v = 0; v < nv; v++) {
            const float *p = out + o * ldo + v * VL;
            acc[o][v] = !accumulate ? _mm256_setzero_ps()
                        : (tail && v == nv - 1) ? _mm256_maskload_ps(p, last) : _mm256_loadu_ps(p);
        }
    for (int64_t i = 0; i < n_in; i++) {
        const float *bi = B + i * ldb;
        __m256 b[3];
        for (int v = 0; v < nv; v++)
            b[v] = (tail && v == nv - 1) ? _mm256_maskload_ps(bi + v * VL, last) : _mm256_loadu_ps(bi + v * VL);
        for (int o = 0; o < no; o++) {
            const __m256 a = _mm256_broadcast_ss(A + o * ao + i * ai);
            for (int v = 0; v < nv; v++) acc[o][v] = _mm256_fmadd_ps(a, b[v], acc[o][v]);
        }
    }
    for (int o = 0; o < no; o++)
        for (int v = 0; v < nv; v++) {
            float *p = out + o * ldo + v * VL;
            if (tail && v == nv - 1) _mm256_maskstore_ps(p, last, acc[o][v]);
            else _mm256_storeu_ps(p, acc[o][v]);
        }
}

#define MIX8_NV(no, tail)                                                                           \
    switch (nv) {                                                                                   \
    case 1: mix_block8(1, no, tail, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;      \
    case 2: mix_block8(2, no, tail, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;      \
    default: mix_block8(3, no, tail, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;     \
    }
#define MIX8_NO(tail)                                                                               \
    switch (no) {                                                                                   \
    case 4: MIX8_NV(4, tail) break;                                                                 \
    case 3: MIX8_NV(3, tail) break;                                                                 \
    case 2: MIX8_NV(2, tail) break;                                                                 \
    default: MIX8_NV(1, tail) break;                                                                \
    }

static void mix_avx2(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai, const float *B,
                     int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols, bool accumulate) {
    for (int64_t c0 = 0; c0 < n_cols; c0 += 3 * VL) {
        const int64_t nc = n_cols - c0 < 3 * VL ? n_cols - c0 : 3 * VL;
        const int nv = (int)((nc + VL - 1) / VL);
        const int64_t rem = nc - (int64_t)(nv - 1) * VL; /* columns in the last vector, 1..8 */
        const __m256i last = tail_mask8(rem);
        for (int64_t o0 = 0; o0 < n_out; o0 += 4) {
            const int no = n_out - o0 < 4 ? (int)(n_out - o0) : 4;
            float *y = out + o0 * ldo + c0;
            const float *a = A + o0 * ao;
            const float *b = B + c0;
            if (rem == VL) {
                MIX8_NO(false)
            } else {
                MIX8_NO(true)
            }
        }
    }
}
#undef MIX8_NO
#undef MIX8_NV

const vwn_ops vwn_ops_avx2 = {
    .name = "avx2",
    .level = VWN_SIMD_AVX2,
    .matmul = matmul_avx2,
    .quantize_q8_0 = vwn_avx2_quantize_q8_0,
    .dot = dot_avx2,
    .axpy = axpy_avx2,
    .scale = scale_avx2,
    .sum_sq = sum_sq_avx2,
    .rmsnorm = rmsnorm_avx2,
    .silu_mul = silu_mul_avx2,
    .attn_scores = attn_scores_avx2,
    .attn_values = attn_values_avx2,
    .attn_scores_f16 = attn_scores_f16_avx2,
    .attn_values_f16 = attn_values_f16_avx2,
    .attn_scores_q8_0 = attn_scores_q8_0_avx2,
    .attn_values_q8_0 = attn_values_q8_0_avx2,
    .attn_scores_rows = attn_scores_rows_avx2,
    .attn_values_rows = NULL, /* 2-row tiles of 32 lanes measured 0.86x the one-row 64-lane blocks */
    .to_f16 = to_f16_avx2,
    .mix = mix_avx2,
    .ghc_coef = ghc_coef_avx2,
    .softmax_exp = softmax_exp_avx2,
};

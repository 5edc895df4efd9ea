/* ops_avx512.c -- the AVX-512 kernels (x86-64: F/BW/VL/DQ, plus VNNI for Q8_0 and Q4_0 where
 * present). Compiled with AVX-512 flags, so nothing here may run unless ops.c found the features:
 * all of this file's code stays in this file, reached only through the two tables at the bottom.
 *   vwn_ops_avx512       for AVX-512 F/BW/VL/DQ CPUs; Q8_0 and Q4_0 weights use the AVX2 kernels
 *                        (no VNNI).
 *   vwn_ops_avx512_vnni  adds the VNNI Q8_0 and Q4_0 kernels (vpdpbusd).
 * The tables' attention kernels live in attn_avx512.c (same flags, reached the same way), the row
 * loads both files use in avx512_loads.h.
 * Float weights (F32, F16, BF16) take gemm_avx512.c: outer products over 16-row panels, each
 * (row, token) one FMA chain over the columns in order, no lane sums (docs/design.md, "Float
 * products on AVX-512"). BF16 weights are widened to fp32 by a shift and use FMA, like F16
 * (vcvtph2ps): AVX512-BF16's vdpbf16ps would round the activations to bf16 (8 bits of mantissa),
 * a relative error ~2^-9 per product, far outside the accuracy the other levels keep, so it is not
 * used.
 *
 * Q8_0 and Q4_0 step over 8 blocks at a time, each dot summed across lanes at the end in a fixed
 * order, so results do not depend on T, the row range or the thread split. Column tails use
 * masked loads (they never touch memory past the row).
 *
 * Q8_0 with VNNI: one accumulator per (row, token) steps over 8 blocks at a time (an "oct", with
 * each int32 lane holding one block's partial sum), and every T runs the one-row-at-a-time kernel,
 * in chunks of up to 8 tokens (measured faster than a GEMM there too). vpdpbusd multiplies
 * unsigned by signed bytes, so the weights are offset by 128 (xor 0x80) and 128 * sum(x) is
 * subtracted; the int32 sums of w * x are exact. Q4_0 takes the same path with the same activation
 * octs: its nibbles are the weights offset by 8, regrouped into octs by word permutes (see "Q4_0
 * weights with VNNI"), and 8 * sum(x) is subtracted. */
#include "ops/ops.h"
#include "vwn.h"

#include <immintrin.h>
#include <math.h>

#define VL 16       /* floats per vector */
#define SMALL_T 8   /* Q8_0 / Q4_0: T up to this: one row at a time */

#define INLINE static inline __attribute__((always_inline))

/* From ops_avx2.c (plain AVX2 code, fine on every AVX-512 CPU). */
void vwn_avx2_matmul_q8_0(const vwn_mat *W, const void *xq, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1);
void vwn_avx2_matmul_q4_0(const vwn_mat *W, const void *xq, int64_t T, float *Y, int64_t ldy,
                          int64_t r0, int64_t r1);
void vwn_avx2_quantize_q8_0(const float *x, vwn_block_q8_0 *out, int64_t n);

#include "ops/avx512_loads.h"

/* From attn_avx512.c (attention's kernels; a file of their own so that the two compile in
 * parallel: together they took 7 minutes under ASan at -O1). */
void vwn_avx512_attn_scores(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv, int64_t head_dim,
                            float scale);
void vwn_avx512_attn_scores_f16(float *out, const float *q, const uint16_t *K, int64_t ldk, int64_t n_kv,
                                int64_t head_dim, float scale);
void vwn_avx512_attn_values(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv, int64_t head_dim,
                            bool accumulate);
void vwn_avx512_attn_values_f16(float *out, const float *p, const uint16_t *V, int64_t ldv, int64_t n_kv,
                                int64_t head_dim, bool accumulate);
void vwn_avx512_attn_scores_q8_0(float *out, const float *q, const vwn_block_q8_0 *K, int64_t ldk, int64_t n_kv,
                                 int64_t head_dim, float scale);
void vwn_avx512_attn_values_q8_0(float *out, const float *p, const vwn_block_q8_0 *V, int64_t ldv, int64_t n_kv,
                                 int64_t head_dim, bool accumulate);
void vwn_avx512_attn_scores_rows(float *const *out, const float *const *q, int32_t nr, int32_t kv_type, const void *K,
                                 int64_t ldk, int64_t n_kv, int64_t head_dim, float scale);
void vwn_avx512_attn_values_rows(float *const *out, const float *const *p, int32_t nr, int32_t kv_type, const void *V,
                                 int64_t ldv, int64_t n_kv, int64_t head_dim, bool accumulate);

/* ---- float weights (F32, F16, BF16): gemm_avx512.c --------------------------------------------- */

/* Rows [r0, r1) of W (F32, F16 or BF16; its packed panels where W->packed is set) for T tokens;
 * xq: X prepared by vwn_avx512_prepare_x, or NULL. */
void vwn_avx512_matmul_float(const vwn_mat *W, const float *X, int64_t ldx, const float *xq, int64_t T, float *Y,
                             int64_t ldy, int64_t r0, int64_t r1);
size_t vwn_avx512_prep_bytes(int64_t T, int64_t cols);
void vwn_avx512_prepare_x(const float *X, int64_t ldx, int64_t T, int64_t cols, int64_t t0, int64_t t1, void *out);

/* Rows side by side from far-apart segments (the Q8_0 kernels below) */
#include "ops/seg_rows.h"

/* ---- Q8_0 weights with VNNI ------------------------------------------------------------------- */

/* Q8_0 dots step over octs: eight blocks (256 values) as four vectors in which every int32 lane
 * holds quants of one block only -- block g (g < 4) in lanes 4g, 4g+1 and block 4+g in lanes
 * 4g+2, 4g+3, each vector one 8-byte piece of every block. Four vpdpbusd into one accumulator sum
 * exact int32 partials (16 products a lane), converted and scaled once: per (row, token) an oct
 * costs 4 vpdpbusd + cvt + mul + fma, against 4 x (vpdpbusd + cvt + mul + fma) with one vector per
 * block pair (lanes 0..7 and 8..15 of two blocks), which made the small-T kernel compute-bound from
 * T = 3. The regrouping (12 shuffles per oct) is paid once per weight row and shared by the
 * tokens. Measured, 1 thread, weights in L3 (2048x768): time per extra token 22.4 -> 10.8 us
 * against the block-pair kernel (15 us with quads: 4 blocks, 4 lanes a block), T = 1 43 -> 36 us.
 * Building the octs from 128-bit broadcast loads and blends instead of pair loads and shuffles
 * measured 8% slower; two rows at a time (sharing the activation loads) and software prefetch
 * (1-4 KiB ahead) did not measurably help.
 * Every Q8_0 result takes this path, so all T, row ranges and thread splits agree bit for bit. */

INLINE __m512i pair_of(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

INLINE __m256i block_quants(const vwn_block_q8_0 *b) {
    return _mm256_loadu_si256((const __m256i *)b->qs);
}

/* An oct's four vectors from its four block pairs (p[c]: blocks 2c | 2c+1): 128-bit shuffles
 * gather the first (l) and second (h) 16 bytes of blocks 0..3 and of 4..7, and 64-bit unpacks
 * pair block g with block 4+g. */
INLINE void oct_from_pairs(const __m512i p[4], __m512i v[4]) {
    const __m512i l01 = _mm512_shuffle_i64x2(p[0], p[1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i h01 = _mm512_shuffle_i64x2(p[0], p[1], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i l23 = _mm512_shuffle_i64x2(p[2], p[3], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i h23 = _mm512_shuffle_i64x2(p[2], p[3], _MM_SHUFFLE(3, 1, 3, 1));
    v[0] = _mm512_unpacklo_epi64(l01, l23);
    v[1] = _mm512_unpackhi_epi64(l01, l23);
    v[2] = _mm512_unpacklo_epi64(h01, h23);
    v[3] = _mm512_unpackhi_epi64(h01, h23);
}

/* Eight blocks' fp16 scales as fp32 in the oct's lanes: gathered into two 64-bit words by the
 * scalar unit, converted, then spread by one permute. */
INLINE __m512 scales8(const uint16_t d[8]) {
    const uint64_t lo = (uint64_t)d[0] | (uint64_t)d[1] << 16 | (uint64_t)d[2] << 32 |
                        (uint64_t)d[3] << 48;
    const uint64_t hi = (uint64_t)d[4] | (uint64_t)d[5] << 16 | (uint64_t)d[6] << 32 |
                        (uint64_t)d[7] << 48;
    const __m256 f = _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
    const __m512i idx = _mm512_setr_epi32(0, 0, 4, 4, 1, 1, 5, 5, 2, 2, 6, 6, 3, 3, 7, 7);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(f));
}

/* The n blocks at b (1 <= n <= 8) as an oct (see above); absent blocks are zero (quants and
 * scales). A short oct -- the last of a row whose length is not a multiple of 256, e.g. every row
 * of a 192-wide model -- loads its present blocks straight from the row (no copy through the
 * stack, whose stores the vector loads could not forward: measured 2x slower decoding at D = 192). */
INLINE void load_oct(const vwn_block_q8_0 *b, int64_t n, __m512i v[4], __m512 *d) {
    __m512i p[4];
    uint16_t dh[8];
    if (n >= 8) {
        for (int c = 0; c < 4; c++) p[c] = pair_of(block_quants(b + 2 * c), block_quants(b + 2 * c + 1));
        for (int k = 0; k < 8; k++) dh[k] = b[k].d;
    } else {
        const __m256i z = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++)
            p[c] = pair_of(2 * c < n ? block_quants(b + 2 * c) : z,
                           2 * c + 1 < n ? block_quants(b + 2 * c + 1) : z);
        for (int k = 0; k < 8; k++) dh[k] = k < n ? b[k].d : 0;
    }
    oct_from_pairs(p, v);
    *d = scales8(dh);
}

/* -(off * sum) per lane of an oct's quants: the excess of vpdpbusd when the other side is offset
 * by off -- 128 for Q8_0 weights (xor 0x80), 8 for Q4_0 weights (their nibbles). */
INLINE __m512i oct_ncorr(const __m512i v[4], uint8_t off) {
    const __m512i k = _mm512_set1_epi8((char)off);
    __m512i s = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) s = _mm512_dpbusd_epi32(s, k, v[c]);
    return _mm512_sub_epi32(_mm512_setzero_si512(), s);
}

/* sum + u . s over an oct (u unsigned, s signed bytes). */
INLINE __m512i oct_dot(__m512i sum, const __m512i u[4], const __m512i s[4]) {
    for (int c = 0; c < 4; c++) sum = _mm512_dpbusd_epi32(sum, u[c], s[c]);
    return sum;
}

/* acc + an oct's exact int32 partials, scaled by the weights' (dw) and activations' (dx) scales:
 * every (row, token) accumulation of the Q8_0 / Q4_0 kernels, in this one order. */
INLINE __m512 oct_acc(__m512 acc, __m512i s, __m512 dw, __m512 dx) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dx), acc);
}

/* The activation side of a Q8_0 or Q4_0 step, prepared once per call and shared by all rows: an
 * oct's quants, minus the weights' offset (128 for Q8_0, 8 for Q4_0) times their lane sums (the
 * accumulator's start), and the fp32 scales. A short last oct has zero blocks. */
typedef struct {
    __m512i q[4], ncorr;
    __m512 d;
} q8_prep;

#define PREP_MAX 128 /* octs x tokens prepared on the stack (48 KiB) */

/* The weights' offset of a type: what makes them unsigned for vpdpbusd. */
#define W_OFFSET(type) ((type) == VWN_TYPE_Q8_0 ? 0x80 : 0x08)

INLINE void prep_oct(int type, const vwn_block_q8_0 *x, int64_t n, q8_prep *e) {
    load_oct(x, n, e->q, &e->d);
    e->ncorr = oct_ncorr(e->q, W_OFFSET(type));
}

/* ---- Q4_0 weights with VNNI ------------------------------------------------------------------- */

/* Q4_0 dots use the Q8_0 octs above: the activations are the same octs, and a Q4_0 weight oct is
 * built to match them lane for lane with no scalar work. Eight Q4_0 blocks are 144 bytes, 72
 * 16-bit words (block k's scale is word 9k, its quants words 9k+1 .. 9k+8): three 64-byte loads
 * cover them, and word permutes (vpermt2w) gather the quants of blocks 0..3 into one vector and
 * of blocks 4..7 into another (a block's 16 bytes per 128-bit lane) and the eight scales straight
 * into the oct's lane order. 64-bit unpacks then pair block g with block 4+g as in oct_from_pairs:
 * bytes 0..7 of every block hold values 0..7 (low nibbles) and 16..23 (high), bytes 8..15 values
 * 8..15 and 24..31, so a mask and a shift split them into the oct's four vectors. The nibbles
 * (0..15, the value plus 8) are already the unsigned side vpdpbusd wants, and the excess
 * 8 * sum(x) starts the accumulator (prep_oct with offset 8): per (row, token) an oct costs what a
 * Q8_0 one does, 4 vpdpbusd + cvt + mul + fma, and the weight side 3 loads, 3 permutes, 2 unpacks,
 * 2 shifts, 4 ands and a conversion per 144 bytes, paid once per row. */

/* Word indices of the permutes. The three loads are words 0..31 (w0), 32..63 (w1) and 40..71
 * (w2) of the oct, and a permute of a pair a | b picks word i of a as index i, of b as 32 + i. */
/* the quants of blocks 0..3 (words 9k + 1 .. 9k + 8), from w0 | w1 */
static const uint16_t q4_idx_lo[32] = {
    1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
    19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35};
/* the quants of blocks 4..7, from w1 | w2: words 37..63 from w1, 64..71 from w2 */
static const uint16_t q4_idx_hi[32] = {
    5,  6,  7,  8,  9,  10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21,
    23, 24, 25, 26, 27, 28, 29, 30, 56, 57, 58, 59, 60, 61, 62, 63};
/* the scales (words 9k) in the oct's lane order, blocks 0 4 1 5 2 6 3 7 each twice, from w0 | w1
 * (the upper 16 words unused) */
static const uint16_t q4_idx_d[32] = {0, 0, 36, 36, 9, 9, 45, 45, 18, 18, 54, 54, 27, 27, 63, 63};

/* The first n bytes at p of a 64-byte load (n <= 0: none), the rest zero (never touches memory
 * past them). */
INLINE __m512i load_bytes(const char *p, int64_t n) {
    if (n >= 64) return _mm512_loadu_si512(p);
    return _mm512_maskz_loadu_epi8(n > 0 ? ((__mmask64)1 << n) - 1 : 0, p);
}

/* The n Q4_0 blocks at b (1 <= n <= 8) as an oct of nibbles and its scales; absent blocks are
 * zero (their terms vanish, as the activations' absent blocks are zero too). */
INLINE void load_oct_q4(const vwn_block_q4_0 *b, int64_t n, __m512i v[4], __m512 *d) {
    const char *p = (const char *)b;
    __m512i w0, w1, w2;
    if (n >= 8) {
        w0 = _mm512_loadu_si512(p);
        w1 = _mm512_loadu_si512(p + 64);
        w2 = _mm512_loadu_si512(p + 80);
    } else {
        const int64_t bytes = n * (int64_t)sizeof *b;
        w0 = load_bytes(p, bytes);
        w1 = load_bytes(p + 64, bytes - 64);
        w2 = load_bytes(p + 80, bytes - 80);
    }
    const __m512i q03 = _mm512_permutex2var_epi16(w0, _mm512_loadu_si512(q4_idx_lo), w1);
    const __m512i q47 = _mm512_permutex2var_epi16(w1, _mm512_loadu_si512(q4_idx_hi), w2);
    const __m512i dh = _mm512_permutex2var_epi16(w0, _mm512_loadu_si512(q4_idx_d), w1);
    *d = _mm512_cvtph_ps(_mm512_castsi512_si256(dh));
    const __m512i lo = _mm512_unpacklo_epi64(q03, q47), hi = _mm512_unpackhi_epi64(q03, q47);
    const __m512i m = _mm512_set1_epi8(0x0F);
    v[0] = _mm512_and_si512(lo, m);
    v[1] = _mm512_and_si512(hi, m);
    v[2] = _mm512_and_si512(_mm512_srli_epi16(lo, 4), m);
    v[3] = _mm512_and_si512(_mm512_srli_epi16(hi, 4), m);
}

/* ---- packed Q8_0 rows -------------------------------------------------------------------------- */

/* A packed oct (ops.h: the layout) holds what load_oct builds, already in the registers' order
 * and XOR 0x80: the weight side of an oct is 4 loads, and its scales a 16-byte load, a conversion
 * and the permute that gives each scale its four lanes -- against 8 loads, 12 shuffles, 4 XORs and
 * 8 scalar loads from the file's layout. The same values in the same lanes: the same bits. */
INLINE void load_oct_packed(const char *o, __m512i v[4], __m512 *d) {
    const __m256 f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)o));
    const __m512i idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    *d = _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(f));
    for (int c = 0; c < 4; c++) v[c] = _mm512_loadu_si512(o + 16 + 64 * c);
}

/* ---- the row kernel and its drivers (Q8_0 and Q4_0) ------------------------------------------ */

/* Q4_0 rows prefetch the weights 4 KiB ahead (rows are contiguous, so the stream runs on into the
 * next rows; a prefetch past the matrix is harmless). Decoding the 110M model from DRAM, 2 threads,
 * slow bandwidth state: 86-98% of the machine's bandwidth without, 95-105% with, faster in each
 * of 15 interleaved pairs in that state (2 and 3 KiB gained less, 6 KiB the same, 8 and 16 KiB
 * less). The same for Q8_0 measured no better (0-5% slower), so Q8_0 rows do not prefetch. */
#define Q4_PREFETCH 4096

/* One Q8_0 or Q4_0 row (nb blocks at w) for tt tokens, read once as a linear stream (see
 * small_float). The weights are made unsigned for vpdpbusd -- Q8_0: w ^ 0x80 = w + 128, Q4_0: the
 * nibbles, w + 8 -- and the excess, the offset times sum(x), which depends only on the
 * activations, is subtracted (it starts the accumulator); the int32 sums are exact. prepared: the
 * activations come from xp (oct p of token j at xp[j * octs + p]); else they are prepared from xq
 * as it goes (rows too long for the stack buffer) -- the same values either way. packed: w is the
 * Q8_0 row in the packed layout (nb a multiple of 8), else in the file's. */
INLINE void row_quant(int type, int tt, bool prepared, bool packed, const void *w, const q8_prep *xp,
                      const vwn_block_q8_0 *xq, int64_t nb, float *y, int64_t ldy) {
    const int64_t octs = (nb + 7) / 8;
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    __m512 acc[SMALL_T];
    for (int j = 0; j < tt; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t k = 0, p = 0; k < nb; k += 8, p++) {
        __m512i wu[4];
        __m512 dw;
        if (type == VWN_TYPE_Q4_0) { /* the lines of the oct Q4_PREFETCH bytes on (see there) */
            const char *pf = (const char *)((const vwn_block_q4_0 *)w + k) + Q4_PREFETCH;
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 64, _MM_HINT_T0);
            _mm_prefetch(pf + 128, _MM_HINT_T0);
        }
        if (packed) { /* Q8_0 */
            load_oct_packed((const char *)w + p * (int64_t)(8 * sizeof(vwn_block_q8_0)), wu, &dw);
        } else if (type == VWN_TYPE_Q8_0) {
            load_oct((const vwn_block_q8_0 *)w + k, nb - k, wu, &dw);
            for (int c = 0; c < 4; c++) wu[c] = _mm512_xor_si512(wu[c], k80);
        } else {
            load_oct_q4((const vwn_block_q4_0 *)w + k, nb - k, wu, &dw);
        }
        for (int j = 0; j < tt; j++) {
            q8_prep tmp;
            const q8_prep *e = &tmp;
            if (prepared) e = &xp[j * octs + p];
            else prep_oct(type, xq + j * nb + k, nb - k, &tmp);
            acc[j] = oct_acc(acc[j], oct_dot(e->ncorr, wu, e->q), dw, e->d);
        }
    }
    for (int j = 0; j < tt; j++) y[j * ldy] = _mm512_reduce_add_ps(acc[j]);
}

/* Two packed Q8_0 rows (w0, w1: nb blocks each) for tt tokens, the activations prepared (xp):
 * each token's activation vectors are loaded once for both rows, which halves the loads of a
 * token-oct -- the limit of the one-row kernel from a few tokens on (prefill). Tokens go in groups
 * of up to 4 (the accumulators, both rows' weights and one token's activations then fit in the
 * registers); the row pair's weights are reread from L1 for each group. Every (row, token) result
 * takes the operations of row_quant in the same order: the same bits. Measured, one thread, a
 * 2048 x 768 or 768 x 2048 matrix in L2/L3: 1.11-1.21x the one-row kernel's rate at T = 2 to 8
 * (groups of 8 tokens: 1.08-1.14x at T = 8; a 32000-row matrix streamed from memory: the same);
 * a 256-token prefill of the 110M models 6-11% faster (docs/performance.md, "Packed Q8_0 rows"). */
#define PAIR_G 4 /* tokens per group */
/* ... adjacent rows only from PAIR_MIN_T tokens on; over a range long enough for two far-apart
 * segments (seg_rows.h), rows from its two halves from 2 tokens on. Adjacent rows,
 * streamed from memory (one thread, a 130 MB matrix,
 * 768 columns; docs/performance.md, "Nineteenth session"), the pairs read at a third to half the
 * rate of one row at a time at T = 2-4 (6.5-8 against 16-20 GB/s), which made a speculative
 * verification of 3 tokens cost two decode steps; at T = 5-6 they are 0-18% slower, at T = 7-8
 * faster (11-12 against 10-10.5 GB/s); software prefetch did not mend T = 2-4. In L2/L3 they are
 * faster at every T (1.15-1.2x at T = 2-6). So decoding batches (a verification, a few tokens)
 * read one row at a time, and a prefill's chunks of 7-8 read rows in pairs. Rows from far-apart
 * segments keep both streams going: in the 110M Q8_0 model, 2 threads, 3-8 tokens 4-21% and a
 * 16-256-token prefill 3-14% faster than adjacent pairs or single rows (docs/performance.md,
 * "Nineteenth session"). One and two tokens read four rows from segments where the range allows
 * (rows_seg_packed, below). */
#define PAIR_MIN_T 7
INLINE void row_pair_packed(int tt, const char *w0, const char *w1, const q8_prep *xp, int64_t nb, float *y,
                            int64_t ldy, int64_t ystep) {
    const int64_t octs = nb / 8;
    for (int g = 0; g < tt; g += PAIR_G) {
        const int gn = tt - g < PAIR_G ? tt - g : PAIR_G;
        __m512 acc0[PAIR_G], acc1[PAIR_G];
        for (int j = 0; j < gn; j++) acc0[j] = acc1[j] = _mm512_setzero_ps();
        for (int64_t p = 0; p < octs; p++) {
            __m512i u0[4], u1[4];
            __m512 d0, d1;
            load_oct_packed(w0 + p * (int64_t)(8 * sizeof(vwn_block_q8_0)), u0, &d0);
            load_oct_packed(w1 + p * (int64_t)(8 * sizeof(vwn_block_q8_0)), u1, &d1);
            for (int j = 0; j < gn; j++) {
                const q8_prep *e = &xp[(g + j) * octs + p];
                __m512i s0 = e->ncorr, s1 = e->ncorr; /* oct_dot for both rows, interleaved */
                for (int c = 0; c < 4; c++) {
                    s0 = _mm512_dpbusd_epi32(s0, u0[c], e->q[c]);
                    s1 = _mm512_dpbusd_epi32(s1, u1[c], e->q[c]);
                }
                acc0[j] = oct_acc(acc0[j], s0, d0, e->d);
                acc1[j] = oct_acc(acc1[j], s1, d1, e->d);
            }
        }
        for (int j = 0; j < gn; j++) {
            y[(g + j) * ldy] = _mm512_reduce_add_ps(acc0[j]);
            y[(g + j) * ldy + ystep] = _mm512_reduce_add_ps(acc1[j]);
        }
    }
}

/* One or two tokens over SEG_Q_ROWS packed Q8_0 rows side by side, row i of as many far-apart
 * segments (seg_rows.h): w0 + k ws, results at y + k ystep. One row at a time, a
 * core keeps too few of its lines in flight on the Intel host of the twenty-third session (a
 * Cascade Lake, ~9 GB/s per core from DRAM, bound by its outstanding misses): a 32000 x 768
 * matrix from DRAM, 2 threads, in one process, 4 rows took 0.84-0.89 of the time of one row at
 * one token and 0.95-0.96 at two, 2 rows (row_pair_packed) 0.88-0.92 at one token; at 3 tokens 4
 * rows were no faster than 2, at 4 slower (docs/performance.md, "Twenty-third session"). Each
 * (row, token) takes row_quant's operations in its order: the same bits. */
#define SEG_Q_ROWS 4
#define SEG_Q_MAX_T 2
INLINE void rows_seg_packed(int tt, const char *w0, int64_t ws, const q8_prep *xp, int64_t nb, float *y, int64_t ldy,
                            int64_t ystep) {
    const int64_t octs = nb / 8;
    __m512 acc[SEG_Q_ROWS][SEG_Q_MAX_T];
    for (int k = 0; k < SEG_Q_ROWS; k++)
        for (int j = 0; j < tt; j++) acc[k][j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < octs; p++)
        for (int k = 0; k < SEG_Q_ROWS; k++) {
            __m512i u[4];
            __m512 d;
            load_oct_packed(w0 + k * ws + p * (int64_t)(8 * sizeof(vwn_block_q8_0)), u, &d);
            for (int j = 0; j < tt; j++) {
                const q8_prep *e = &xp[j * octs + p];
                acc[k][j] = oct_acc(acc[k][j], oct_dot(e->ncorr, u, e->q), d, e->d);
            }
        }
    for (int k = 0; k < SEG_Q_ROWS; k++)
        for (int j = 0; j < tt; j++) y[j * ldy + k * ystep] = _mm512_reduce_add_ps(acc[k][j]);
}

/* Rows [r0, r1) for tt <= SMALL_T tokens, the activations prepared once if they fit. */
INLINE void small_quant(int type, int tt, const vwn_mat *W, const vwn_block_q8_0 *xq, float *Y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = W->cols / VWN_QK8_0, octs = (nb + 7) / 8;
    const bool packed = type == VWN_TYPE_Q8_0 && W->packed != NULL;
    const char *base = packed ? W->packed : W->data; /* rows row_bytes apart in both layouts */
    if (octs * tt > PREP_MAX) {
        for (int64_t r = r0; r < r1; r++) {
            const char *w = base + r * W->row_bytes;
            if (packed) row_quant(type, tt, false, true, w, NULL, xq, nb, Y + r, ldy);
            else row_quant(type, tt, false, false, w, NULL, xq, nb, Y + r, ldy);
        }
        return;
    }
    q8_prep xp[PREP_MAX];
    for (int j = 0; j < tt; j++)
        for (int64_t p = 0; p < octs; p++)
            prep_oct(type, xq + j * nb + 8 * p, nb - 8 * p, &xp[j * octs + p]);
    int64_t r = r0;
    const int64_t hq = packed && tt <= SEG_Q_MAX_T ? seg_rows(SEG_Q_ROWS, W->row_bytes, r0, r1) : 0;
    const int64_t h = packed && tt >= 2 && hq == 0 ? seg_rows(2, W->row_bytes, r0, r1) : 0;
    if (hq > 0) { /* one or two tokens over a long range: 4 rows from its quarters (rows_seg_packed) */
        for (int64_t i = 0; i < hq; i++)
            rows_seg_packed(tt <= SEG_Q_MAX_T ? tt : 1, base + (r0 + i) * W->row_bytes, hq * (int64_t)W->row_bytes, xp,
                            nb, Y + r0 + i, ldy, hq);
        r = r0 + SEG_Q_ROWS * hq;
    } else if (h > 0) { /* a long range: rows in pairs from its two halves (seg_rows.h) */
        for (int64_t i = 0; i < h; i++)
            row_pair_packed(tt, base + (r0 + i) * W->row_bytes, base + (r0 + h + i) * W->row_bytes, xp, nb, Y + r0 + i,
                            ldy, h);
        r = r0 + 2 * h;
    } else if (packed && tt >= PAIR_MIN_T) { /* adjacent rows in pairs (prefill; see row_pair_packed) */
        for (; r + 1 < r1; r += 2)
            row_pair_packed(tt, base + r * W->row_bytes, base + (r + 1) * W->row_bytes, xp, nb, Y + r, ldy, 1);
    }
    for (; r < r1; r++) {
        const char *w = base + r * W->row_bytes;
        if (packed) row_quant(type, tt, true, true, w, xp, xq, nb, Y + r, ldy);
        else row_quant(type, tt, true, false, w, xp, xq, nb, Y + r, ldy);
    }
}

/* Any T: the small-T kernel on balanced chunks of at most SMALL_T tokens, each chunk streaming
 * the weights once more. The int32-heavy Q8_0 dot is compute-bound from about T = 4 on, so the
 * extra passes cost little, and the chunks measured 1.6-2.9x faster than the register-tiled GEMM
 * this replaced (4 rows x 3 tokens over 512-column blocks; T = 16 and 64, 2048x768, 768x2048 and
 * 32000x768, 1 thread in L3 and 2 threads from DRAM), which rebuilt the weight and activation
 * octs in every tile and spilled. Chunks of 12 measured the same as 8, of 16 slower (spills), of 6
 * a little slower. Q4_0 (same per-token work) takes the same path. */
INLINE void matmul_quant_vnni(int type, const vwn_mat *W, const void *xqv, int64_t T, float *Y,
                              int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = W->cols / VWN_QK8_0, octs = (nb + 7) / 8;
    const vwn_block_q8_0 *xq = xqv;
    /* chunks no longer than the prepared activations' buffer holds (rows over PREP_MAX octs
     * are not prepared: SMALL_T) */
    int64_t most = SMALL_T;
    if (octs <= PREP_MAX && PREP_MAX / octs < most) most = PREP_MAX / octs;
    const int64_t n = (T + most - 1) / most;
    for (int64_t c = 0, t = 0; c < n; c++) {
        const int64_t t1 = T * (c + 1) / n;
        const vwn_block_q8_0 *xc = xq + t * nb;
        float *yc = Y + t * ldy;
        switch (t1 - t) {
        case 1: small_quant(type, 1, W, xc, yc, ldy, r0, r1); break;
        case 2: small_quant(type, 2, W, xc, yc, ldy, r0, r1); break;
        case 3: small_quant(type, 3, W, xc, yc, ldy, r0, r1); break;
        case 4: small_quant(type, 4, W, xc, yc, ldy, r0, r1); break;
        case 5: small_quant(type, 5, W, xc, yc, ldy, r0, r1); break;
        case 6: small_quant(type, 6, W, xc, yc, ldy, r0, r1); break;
        case 7: small_quant(type, 7, W, xc, yc, ldy, r0, r1); break;
        default: small_quant(type, 8, W, xc, yc, ldy, r0, r1); break;
        }
        t = t1;
    }
}

static void matmul_avx512(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T,
                          float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    switch (W->type) {
    case VWN_TYPE_F32:
    case VWN_TYPE_F16:
    case VWN_TYPE_BF16: vwn_avx512_matmul_float(W, X, ldx, xq, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q8_0: vwn_avx2_matmul_q8_0(W, xq, T, Y, ldy, r0, r1); break;
    case VWN_TYPE_Q4_0: vwn_avx2_matmul_q4_0(W, xq, T, Y, ldy, r0, r1); break;
    default: break;
    }
}

static void matmul_avx512_vnni(const vwn_mat *W, const float *X, int64_t ldx, const void *xq,
                               int64_t T, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    if (T <= 0 || r0 >= r1) return;
    if (W->type == VWN_TYPE_Q8_0) matmul_quant_vnni(VWN_TYPE_Q8_0, W, xq, T, Y, ldy, r0, r1);
    else if (W->type == VWN_TYPE_Q4_0) matmul_quant_vnni(VWN_TYPE_Q4_0, W, xq, T, Y, ldy, r0, r1);
    else matmul_avx512(W, X, ldx, xq, T, Y, ldy, r0, r1);
}

/* ---- vector helpers (masked tails) ------------------------------------------------------------- */

static float dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + VL), _mm512_loadu_ps(b + i + VL), acc1);
    }
    for (; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float sum_sq_avx512(const float *x, int64_t n) {
    return dot_avx512(x, x, n);
}

static void axpy_avx512(float *y, float a, const float *x, int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static void scale_avx512(float *y, float a, int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void rmsnorm_avx512(float *out, const float *x, const float *gain, int64_t n, float eps) {
    const float inv = 1.0f / sqrtf(sum_sq_avx512(x, n) / (float)n + eps);
    const __m512 iv = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), iv);
        if (gain) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, gain + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

/* exp(x) = 2^k exp(r) with k = round(x / ln 2) and r = x - k ln 2 in [-ln2/2, ln2/2] (Cephes
 * polynomial, about 1 ulp); returns exp(r) and sets *k. No range checks: callers clamp x. */
INLINE __m512 exp_reduced_avx512(__m512 x, __m512 *k) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    *k = n;
    return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
}

/* exp(x): as exp_avx2 in ops_avx2.c, with overflow to inf and underflow to 0. */
static inline __m512 exp_avx512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.7228f), lo = _mm512_set1_ps(-87.3365f);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n;
    __m512 p = exp_reduced_avx512(x, &n);
    /* 2^n in two halves: n can reach 128, past the largest float exponent */
    __m512i ni = _mm512_cvtps_epi32(n);
    __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
    p = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    p = _mm512_mask_mov_ps(p, over, _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(p, under, _mm512_setzero_ps());
}

static void silu_mul_avx512(float *out, const float *gate, const float *up, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* ghc_coef (ops.h): tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)), 16 lanes at a time, masked tail.
 * |x| is capped at 9, so the exponent 2|x| lies in [0, 18]: exp needs no range checks, its 2^n is
 * one vscalefps, and 1 / (e + 1) is a 14-bit reciprocal refined by one Newton step (relative error
 * ~2^-27): about half the instructions of exp_avx512 + vdivps (measured: ghc_coef was 14% of the
 * (8,64) GHC's time in prefill). */
static void ghc_coef_avx512(float *c, const float *c0, const float *scale, int64_t n, float mult) {
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f), vm = _mm512_set1_ps(mult);
    const __m512 cap = _mm512_set1_ps(9.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 x = _mm512_mul_ps(vm, _mm512_maskz_loadu_ps(m, c + i));
        const __m512 a = _mm512_min_ps(cap, _mm512_abs_ps(x));
        const __m512 y = _mm512_add_ps(a, a);
        __m512 k;
        const __m512 p = exp_reduced_avx512(y, &k);                  /* exp(y) = 2^k p */
        const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, k), one); /* e + 1 in [2, 6.6e7] */
        __m512 q = _mm512_rcp14_ps(d);
        q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, two)); /* q (2 - d q): ~1/d to 2^-27 */
        __m512 t = _mm512_fnmadd_ps(two, q, one);         /* 1 - 2/(e+1) */
        t = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t),
                                                _mm512_and_si512(sign, _mm512_castps_si512(x))));
        _mm512_mask_storeu_ps(c + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, scale + i), t,
                                                        _mm512_maskz_loadu_ps(m, c0 + i)));
    }
}

/* softmax_exp (ops.h): the max and the sum in 16 lanes, the exp as silu_mul's. */
static float softmax_exp_avx512(float *x, int64_t n, float *max_out) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
    }
    const float m_all = _mm512_reduce_max_ps(mx);
    if (max_out) *max_out = m_all;
    const __m512 vmax = _mm512_set1_ps(m_all);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static void to_f16_avx512(uint16_t *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += VL) {
        const __mmask16 m = n - i >= VL ? (__mmask16)0xffff : tail_mask(n - i);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(out + i, m, h);
    }
}

/* ---- mix: 4 outputs x nv vectors of accumulators, B rows broadcast-multiplied (ops.h) ----------
 * Every tile is compiled with its output count fixed, 1 to 4 (no test in the inner loop): the GHC
 * carry is nearly all full tiles, but its read at m = 2 is one tile of 2 outputs, and the plain
 * twin (m = n = 1) has only tiles of 1. With one generic copy for the partial tiles, the (2,8) GHC
 * took 2.72-3.07 µs per token (one thread, in cache) against 2.27-2.28 with them, the twin's 0.86
 * against 0.27 (docs/performance.md, "The GHC mix on every level"). */

INLINE void mix_block(int nv, int64_t no, float *out, int64_t ldo, const float *A, int64_t ao,
                      int64_t ai, const float *B, int64_t ldb, int64_t n_in, __mmask16 last,
                      bool accumulate) {
    __m512 acc[4][6];
    for (int o = 0; o < 4; o++)
        for (int v = 0; v < nv; v++) {
            const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xffff;
            acc[o][v] = (accumulate && o < no) ? _mm512_maskz_loadu_ps(m, out + o * ldo + v * VL)
                                              : _mm512_setzero_ps();
        }
    for (int64_t i = 0; i < n_in; i++) {
        __m512 b[6];
        for (int v = 0; v < nv; v++)
            b[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xffff, B + i * ldb + v * VL);
        for (int o = 0; o < 4; o++) {
            if (o >= no) break;
            const __m512 a = _mm512_set1_ps(A[o * ao + i * ai]);
            for (int v = 0; v < nv; v++) acc[o][v] = _mm512_fmadd_ps(a, b[v], acc[o][v]);
        }
    }
    for (int o = 0; o < no; o++)
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(out + o * ldo + v * VL, v == nv - 1 ? last : (__mmask16)0xffff, acc[o][v]);
}

#define MIX_NV(no_expr)                                                                              \
    switch (nv) {                                                                                    \
    case 1: mix_block(1, no_expr, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;         \
    case 2: mix_block(2, no_expr, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;         \
    case 3: mix_block(3, no_expr, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;         \
    case 4: mix_block(4, no_expr, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;         \
    case 5: mix_block(5, no_expr, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;         \
    default: mix_block(6, no_expr, y, ldo, a, ao, ai, b, ldb, n_in, last, accumulate); break;        \
    }

static void mix_avx512(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai, const float *B,
                       int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols, bool accumulate) {
    for (int64_t c0 = 0; c0 < n_cols; c0 += 6 * VL) {
        const int64_t nc = n_cols - c0 < 6 * VL ? n_cols - c0 : 6 * VL;
        const int nv = (int)((nc + VL - 1) / VL);
        const __mmask16 last = tail_mask(nc - (int64_t)(nv - 1) * VL);
        for (int64_t o0 = 0; o0 < n_out; o0 += 4) {
            const int64_t no = n_out - o0 < 4 ? n_out - o0 : 4;
            float *y = out + o0 * ldo + c0;
            const float *a = A + o0 * ao;
            const float *b = B + c0;
            switch (no) {
            case 4: MIX_NV(4) break;
            case 3: MIX_NV(3) break;
            case 2: MIX_NV(2) break;
            default: MIX_NV(1) break;
            }
        }
    }
}
#undef MIX_NV

#define AVX512_TABLE(ident, matmul_fn, ptypes)         \
    const vwn_ops ident = {                            \
        .name = "avx512",                              \
        .level = VWN_SIMD_AVX512,                      \
        .packs = ptypes,                               \
        .matmul = matmul_fn,                           \
        .quantize_q8_0 = vwn_avx2_quantize_q8_0,       \
        .prep_bytes = vwn_avx512_prep_bytes,           \
        .prepare_x = vwn_avx512_prepare_x,             \
        .dot = dot_avx512,                             \
        .axpy = axpy_avx512,                           \
        .scale = scale_avx512,                         \
        .sum_sq = sum_sq_avx512,                       \
        .rmsnorm = rmsnorm_avx512,                     \
        .silu_mul = silu_mul_avx512,                   \
        .attn_scores = vwn_avx512_attn_scores,             \
        .attn_values = vwn_avx512_attn_values,             \
        .attn_scores_f16 = vwn_avx512_attn_scores_f16,     \
        .attn_values_f16 = vwn_avx512_attn_values_f16,     \
        .attn_scores_q8_0 = vwn_avx512_attn_scores_q8_0,   \
        .attn_values_q8_0 = vwn_avx512_attn_values_q8_0,   \
        .attn_scores_rows = vwn_avx512_attn_scores_rows,   \
        .attn_values_rows = vwn_avx512_attn_values_rows,   \
        .to_f16 = to_f16_avx512,                       \
        .mix = mix_avx512,                             \
        .ghc_coef = ghc_coef_avx512,                   \
        .softmax_exp = softmax_exp_avx512,             \
    }

#define FLOATS (1u << VWN_TYPE_F32 | 1u << VWN_TYPE_F16 | 1u << VWN_TYPE_BF16)
AVX512_TABLE(vwn_ops_avx512, matmul_avx512, FLOATS);
AVX512_TABLE(vwn_ops_avx512_vnni, matmul_avx512_vnni, FLOATS | 1u << VWN_TYPE_Q8_0);

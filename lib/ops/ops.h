/* ops.h -- the numeric kernels. Knows tensors and vectors, nothing about models.
 *
 * Every kernel exists as a plain scalar version (ops_scalar.c, the reference) and, where it pays,
 * SIMD versions (ops_avx2.c, ops_avx512.c, ops_neon.c) with the same signature, collected in a
 * vwn_ops table per SIMD level. ops.c detects the CPU and hands out the table. */
#ifndef VWN_OPS_H
#define VWN_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* A weight matrix as stored in the file: `rows` rows of `cols` elements of `type`, row-major,
 * row r at (const char *)data + r * row_bytes. Linear layers compute y = W x (torch [out, in]). */
typedef struct vwn_mat {
    const void *data;
    int32_t type;        /* vwn_type */
    int64_t rows, cols;
    size_t row_bytes;
    const void *packed;  /* the same matrix in the packed layout (below), for the kernels that
                          * read it (vwn_ops.packs); or NULL: every kernel reads data */
} vwn_mat;

/* Q8_0 block, ggml layout: 32 values = d * qs[i]. */
#define VWN_QK8_0 32
typedef struct {
    uint16_t d;          /* fp16 scale */
    int8_t qs[VWN_QK8_0];
} vwn_block_q8_0;

/* Q4_0 block, ggml layout: 32 values, value j = d * ((qs[j] & 0x0F) - 8) and value j + 16 =
 * d * ((qs[j] >> 4) - 8) for j < 16 (the low nibbles hold the first half of the block). */
#define VWN_QK4_0 32
typedef struct {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[VWN_QK4_0 / 2];
} vwn_block_q4_0;

/* Packed layouts: a copy of a matrix in the order a level's kernels read it (vwn_ops.packs says
 * which types a table reads packed), made once at load (lib/model.c).
 *
 * Q8_0 (the AVX-512 VNNI kernels; docs/design.md, "Packed Q8_0 rows"): what the kernel loads
 * straight into its registers, so that streaming a row costs no shuffles and no scalar work. Rows
 * of cols values (cols % 256 == 0) are cols / 256 octs of 8 blocks; a packed oct takes the 272
 * bytes the 8 blocks take in the file, so packed row r is at packed + r * row_bytes, as in the
 * file. An oct is its 8 fp16 scales (16 bytes), then its quants in 4 vectors of 64 bytes: one
 * stream, read strictly forward. Blocks b0..b7 of the oct, blocks g and 4+g sharing 128-bit lane
 * g of every vector:
 *   scales: in the order b0 b4 b1 b5 b2 b6 b3 b7;
 *   quants: vector c lane g = quants 8c..8c+7 of b_g, then of b_{4+g}, each byte XOR 0x80 (the
 *           quant plus 128: the unsigned side of vpdpbusd).
 * F32, F16, BF16 (the AVX-512 kernels, lib/ops/gemm_avx512.c; docs/design.md, "Float products on
 * AVX-512"): panels of 16 rows, column-major -- panel p (rows 16p..16p+15) at packed + p * 16 *
 * row_bytes, its element (row 16p + i, column k) at index k * 16 + i, in the file's type. The last
 * panel is padded with zero rows to 16.
 * vwn_packable: whether a matrix of type and cols can be packed (Q8_0 with cols % 256 == 0; F32,
 * F16, BF16). vwn_packed_bytes: the size of the packed copy of rows x cols (0 if not packable).
 * vwn_pack_rows writes rows [r, r + rows) of the packed copy from the file's rows at src (plain C,
 * portable, the values exactly) to dst, the copy's bytes for row r -- for the float layouts r
 * must be a multiple of 16, and a last piece that ends inside a panel writes that panel whole,
 * zero rows included. */
bool vwn_packable(int32_t type, int64_t cols);
size_t vwn_packed_bytes(int32_t type, int64_t rows, int64_t cols);
void vwn_pack_rows(int32_t type, const void *src, void *dst, int64_t rows, int64_t cols);

/* fp16 / bf16 <-> fp32, exact (round to nearest even when narrowing). */
float vwn_fp16_to_fp32(uint16_t h);
uint16_t vwn_fp32_to_fp16(float f);
float vwn_bf16_to_fp32(uint16_t h);
uint16_t vwn_fp32_to_bf16(float f);

/* Bytes of one row of `cols` elements of type (0 if cols is not valid for the type). */
size_t vwn_row_bytes(int32_t type, int64_t cols);
/* Dequantizes one row of `cols` elements to fp32. */
void vwn_dequant_row(int32_t type, const void *src, float *dst, int64_t cols);

typedef struct vwn_ops {
    const char *name;    /* "scalar", "avx2", ... */
    int level;           /* vwn_simd */
    uint32_t packs;      /* bit 1 << type set: matmul reads W->packed of weights of that type
                          * where it is set (the results are the same bits as from W->data); other
                          * tables ignore it. A model packs at load the matrices whose types the
                          * best table reads packed (lib/model.c) */

    /* Y[t][r] = sum_c W[r][c] * X[t][c] for t < T and rows r0 <= r < r1.
     * X: T rows of W->cols fp32 (ldx floats apart); Y: ldy floats apart. For Q8_0 and Q4_0
     * weights, xq holds X quantized to Q8_0 blocks by quantize_q8_0 (T rows of cols/32 blocks) and
     * X is unused (it may then be NULL). For F32, F16 and BF16 weights xq is NULL or holds X
     * prepared by the table's prepare_x (below) for this T and cols (X must then still be
     * given). Within one table every Y[t][r] is
     * bit-identical whatever T, r0, r1 and the other rows and tokens of the call: decode (T = 1)
     * and prefill agree exactly, and so do all thread splits. Y must not overlap X or the
     * weights. */
    void (*matmul)(const vwn_mat *W, const float *X, int64_t ldx, const void *xq, int64_t T,
                   float *Y, int64_t ldy, int64_t r0, int64_t r1);
    /* Quantizes n floats (n % 32 == 0) to Q8_0 blocks (the activation side of Q8_0 and Q4_0
     * dots). */
    void (*quantize_q8_0)(const float *x, vwn_block_q8_0 *out, int64_t n);
    /* Optional (NULL in a table without them): the activations of a product of float weights,
     * prepared once per call and shared by every thread and matrix of it, as quantize_q8_0's
     * blocks are for Q8_0. prep_bytes: the bytes prepare_x writes for T tokens of cols floats, or
     * 0 where the table's kernels read X itself at this T. prepare_x: the preparation of tokens
     * [t0, t1) of the T (X: rows of cols floats, ldx apart; out: prep_bytes(T, cols) bytes), so
     * that threads can share the work; any split writes the same bytes. */
    size_t (*prep_bytes)(int64_t T, int64_t cols);
    void (*prepare_x)(const float *X, int64_t ldx, int64_t T, int64_t cols, int64_t t0, int64_t t1, void *out);

    /* Vector helpers. */
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*axpy)(float *y, float a, const float *x, int64_t n);      /* y += a x       */
    void (*scale)(float *y, float a, int64_t n);                     /* y *= a         */
    float (*sum_sq)(const float *x, int64_t n);                      /* sum x^2        */

    /* Fused helpers of the forward pass (all fp32; out may alias x / gate).
     * rmsnorm:     out[i] = x[i] / sqrt(mean(x^2) + eps) * gain[i]   (gain NULL means 1)
     * silu_mul:    out[i] = silu(gate[i]) * up[i],  silu(g) = g / (1 + exp(-g))
     * attn_scores: out[j] = scale * dot(q, K + j*ldk, head_dim)       for j < n_kv (each score the
     *              bits of that key alone, n_kv = 1: attention splits the keys into pieces anywhere,
     *              so kernels that sum several keys' lanes at once keep the one-key sum's pairs)
     * attn_values: out[i] = sum_j p[j] * V[j*ldv + i]                 for i < head_dim (overwrites,
     *              or with accumulate adds to out: each output is one chain over the keys in order,
     *              so keys [0, a) then [a, n) with accumulate give the bits of [0, n) in one call;
     *              out must not overlap p or V) */
    void (*rmsnorm)(float *out, const float *x, const float *gain, int64_t n, float eps);
    void (*silu_mul)(float *out, const float *gate, const float *up, int64_t n);
    void (*attn_scores)(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv,
                        int64_t head_dim, float scale);
    void (*attn_values)(float *out, const float *p, const float *V, int64_t ldv, int64_t n_kv,
                        int64_t head_dim, bool accumulate);
    /* The same two over an fp16 KV cache (context param kv_type = F16): K and V rows hold fp16
     * bits. Each result is bit-identical to the fp32 kernel of the same table run on the rows
     * widened to fp32 (the widening is exact, and the kernels keep the same fma order). */
    void (*attn_scores_f16)(float *out, const float *q, const uint16_t *K, int64_t ldk, int64_t n_kv,
                            int64_t head_dim, float scale);
    void (*attn_values_f16)(float *out, const float *p, const uint16_t *V, int64_t ldv, int64_t n_kv,
                            int64_t head_dim, bool accumulate);
    /* The same two over a Q8_0 KV cache (context param kv_type = Q8_0): a cache row of head_dim
     * values is head_dim / 32 blocks (vwn_block_q8_0; head_dim % 32 == 0), and ldk / ldv count
     * values (multiples of 32: row j starts at block j * ldk / 32). A value is d * qs[i] with d
     * the block's fp16 scale widened -- exact in fp32 (11 x 8 significant bits) -- so, as for fp16,
     * each result is bit-identical to the fp32 kernel of the same table run on the rows
     * dequantized (vwn_dequant_row). */
    void (*attn_scores_q8_0)(float *out, const float *q, const vwn_block_q8_0 *K, int64_t ldk, int64_t n_kv,
                             int64_t head_dim, float scale);
    void (*attn_values_q8_0)(float *out, const float *p, const vwn_block_q8_0 *V, int64_t ldv, int64_t n_kv,
                             int64_t head_dim, bool accumulate);
    /* The two above for nr query rows that share their keys and values (a prefill's block of
     * tokens, a GQA group's heads): row r is out[r] and q[r] (scores) or p[r] (values), the cache
     * rows are fp32, fp16 bits or Q8_0 blocks as kv_type says (VWN_TYPE_F32, VWN_TYPE_F16 or
     * VWN_TYPE_Q8_0, ld in values as above), and every row's results are the bits of attn_scores /
     * attn_values (_f16, _q8_0) of this table on that row alone.
     * Optional: NULL in a table that has no faster way than a row at a time (lib/attention.c then
     * calls the one-row kernels). */
    void (*attn_scores_rows)(float *const *out, const float *const *q, int32_t nr, int32_t kv_type, const void *K,
                             int64_t ldk, int64_t n_kv, int64_t head_dim, float scale);
    void (*attn_values_rows)(float *const *out, const float *const *p, int32_t nr, int32_t kv_type, const void *V,
                             int64_t ldv, int64_t n_kv, int64_t head_dim, bool accumulate);
    /* to_f16: out[i] = fp16(x[i]), rounded to nearest even (= vwn_fp32_to_fp16 for every finite
     * x and infinities; NaN stays NaN): storing keys and values into an fp16 cache. */
    void (*to_f16)(uint16_t *out, const float *x, int64_t n);
    /* mix: out[o*ldo + c] (= or +=) sum_i A[o*ao + i*ai] * B[i*ldb + c], for o < n_out, c < n_cols,
     * i < n_in -- a small product with strided coefficients and no horizontal sums (the GHC
     * mixes and coefficient projection). out must not overlap A or B. */
    void (*mix)(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai, const float *B,
                int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols, bool accumulate);
    /* ghc_coef: c[i] = c0[i] + scale[i] * tanh(mult * c[i]) for i < n -- the last step of the
     * dynamic GHC coefficients (spec §2). tanh is computed as 1 - 2 / (exp(2|x|) + 1) with the
     * sign of x: its absolute error is a few float ulps of 1, which is what matters here (the
     * result is added to c0). */
    void (*ghc_coef)(float *c, const float *c0, const float *scale, int64_t n, float mult);
    /* softmax_exp: x[i] = exp(x[i] - max(x)) for i < n (n >= 1); returns their sum (the caller
     * divides) and, if max_out is not NULL, stores max(x) there. The attention softmax. */
    float (*softmax_exp)(float *x, int64_t n, float *max_out);
} vwn_ops;

/* The table for a level (NULL if not compiled in or not supported by this CPU). */
const vwn_ops *vwn_ops_get(int level);
/* The best supported table, honouring the VWN_SIMD environment variable (an unknown or
 * unsupported name there is ignored). Never NULL. */
const vwn_ops *vwn_ops_best(void);

/* ---- the threaded matmul driver (matmul.c) ----
 * Y = X W^T for T tokens: X is T x W->cols floats, contiguous; Y is T x W->rows floats, contiguous.
 * For Q8_0 and Q4_0 weights X is first quantized to Q8_0 into xq_scratch, and for float weights
 * prepared there by the table's prepare_x where it has one; xq_scratch must hold
 * vwn_matmul_scratch_size(ops, W, T) bytes (it may be NULL where that is 0; for float weights NULL
 * also works, the kernels then prepare their own pieces). Rows are split
 * over n_threads OpenMP threads in chunks of 16 rows (serial without OpenMP, if n_threads <= 1 or
 * for matmuls under 2^17 multiply-adds, where a thread team costs more than it saves). The output
 * is bit-identical for every n_threads. */
size_t vwn_matmul_scratch_size(const vwn_ops *ops, const vwn_mat *W, int64_t T);
void vwn_matmul_mt(const vwn_ops *ops, const vwn_mat *W, const float *X, int64_t T, float *Y,
                   void *xq_scratch, int n_threads);
/* Several products of the same input, Y[i] = X W[i]^T for i < count, in one thread team (the
 * activations quantized once): the attention's Q, K, V and the FFN's gate and up. Every W[i] must
 * have the same cols and type. Same results as count calls of vwn_matmul_mt. */
void vwn_matmul_mt_many(const vwn_ops *ops, const vwn_mat *const *W, float *const *Y, int count,
                        const float *X, int64_t T, void *xq_scratch, int n_threads);

/* ---- the tables of each level (internal: use vwn_ops_get, which checks the CPU first) ---- */
extern const vwn_ops vwn_ops_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const vwn_ops vwn_ops_avx2;
extern const vwn_ops vwn_ops_avx512;       /* AVX-512 F/BW/VL/DQ (Q8_0, Q4_0 weights via AVX2) */
extern const vwn_ops vwn_ops_avx512_vnni;  /* ... + VNNI: what vwn_ops_get gives where present  */
#endif
#if defined(__aarch64__)
extern const vwn_ops vwn_ops_neon;
#endif

#endif

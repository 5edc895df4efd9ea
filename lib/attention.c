/* attention.c -- rotary position embedding and causal attention over the KV cache (spec §3). */
#include "attention.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#ifdef VWN_OPENMP
#include <omp.h>
#endif

void vwn_rope_table(float *cos_t, float *sin_t, int32_t n_pos, int32_t head_dim, float theta) {
    const int32_t half = head_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        /* computed in double so long contexts keep their accuracy */
        const double inv_freq = pow((double)theta, -2.0 * i / head_dim);
        for (int32_t p = 0; p < n_pos; p++) {
            const double a = p * inv_freq;
            cos_t[(size_t)p * half + i] = (float)cos(a);
            sin_t[(size_t)p * half + i] = (float)sin(a);
        }
    }
}

void vwn_rope_apply(float *v, int32_t n_heads, int32_t hd, const float *cos_p, const float *sin_p) {
    const int32_t half = hd / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * hd;
        for (int32_t i = 0; i < half; i++) {
            const float a = x[i], b = x[i + half];
            x[i] = a * cos_p[i] - b * sin_p[i];
            x[i + half] = a * sin_p[i] + b * cos_p[i];
        }
    }
}

/* Queries of consecutive tokens share their keys and values (causal: token t sees positions
 * 0..p0+t), and so do the `group` query heads of one KV head (GQA). A work item is a block of up
 * to VWN_ATT_BLOCK tokens and one KV head (in decoding, sometimes a block of positions, below); its
 * query rows (head, token) go in chunks of up to VWN_ATT_BLOCK, and within a chunk the keys and
 * values are taken in pieces of about 16 KiB, every row of the chunk running over a piece while it
 * is in L1 -- so each piece comes from L2/L3 (or memory) once per chunk instead of once per row:
 * in prefill a chunk is one head's block of tokens, in decoding up to VWN_ATT_BLOCK heads of a GQA
 * group. Every score is computed alone, and every output is one chain over the keys in order
 * (attn_values with accumulate continues it exactly), so the pieces do not change the bits.
 *
 * Positions come in fixed blocks of VWN_ATT_POS_BLOCK. A row's softmax and weighted sum are taken
 * over each block alone -- the block's max m_b, its sum l_b of exp(s - m_b), and o_b = the
 * normalized weights times the values -- and the blocks are folded in order (fold() below). When
 * the KV heads of a few tokens (decoding, draft verification) do not divide evenly among the
 * threads (GQA with 3 KV heads on 2 threads, MQA), the work items are the (KV head, block) pairs,
 * so a long context still splits evenly, and the partials are folded after a barrier; otherwise,
 * and in prefill, an item folds its blocks as it goes. Both compute each block and each fold the
 * same way, so a token's output has the same bits however the prompt was cut into calls and
 * whatever the thread count; up to VWN_ATT_POS_BLOCK positions there is one block and the output
 * is o_0 itself. (MQA decoding at 1,000-4,000 positions: attention in 0.53-0.63 of the time of one
 * thread per KV head; docs/design.md, "Attention over blocks of positions", and
 * docs/performance.md, "Sixteenth session".) */

/* Keys per piece: ~16 KiB of keys (or values) of one head, at least 16. */
static int32_t piece_keys(size_t row_bytes) {
    const int32_t k = (int32_t)(16384 / row_bytes);
    return k < 16 ? 16 : k;
}

/* The fixed blocks of positions, and how many a row of n keys spans. */
#define PB VWN_ATT_POS_BLOCK
static int32_t pos_blocks(int32_t n) { return (n + PB - 1) / PB; }

/* Folds block partial (o, m, l) into a row's output out, which holds the fold of the blocks
 * before it with max *M and weight *L: the blocks' weights become l exp(m - max), and out the
 * weighted mean of their o. The first block is out itself (M = m, L = l). */
static void fold(float *out, float *M, float *L, const float *o, float m, float l, int32_t hd) {
    const float mx = m > *M ? m : *M;
    const float c_out = *L * expf(*M - mx), c_o = l * expf(m - mx), sum = c_out + c_o;
    const float a = c_out / sum, b = c_o / sum;
    for (int32_t i = 0; i < hd; i++) out[i] = a * out[i] + b * o[i];
    *M = mx, *L = sum;
}

/* What one chunk of rows works on: tokens t0..t0+nt-1 of KV head kvh, rows r0..r0+nr-1 of its
 * `group` * nt (row r: query head kvh * group + r / nt, token t0 + r % nt). */
typedef struct {
    const vwn_ops *ops;
    const float *q;
    int32_t type;           /* the cache's kv_type: F32, F16 or Q8_0 */
    size_t row;             /* bytes of one key (value) row */
    const char *K, *V;      /* this KV head's keys and values, position 0 */
    int32_t p0, t0, nt, kvh, n_head, group, hd, r0, nr;
} chunk;

static int32_t row_head(const chunk *c, int32_t i) { return c->kvh * c->group + (c->r0 + i) / c->nt; }
static int32_t row_token(const chunk *c, int32_t i) { return c->t0 + (c->r0 + i) % c->nt; }
static int32_t row_keys(const chunk *c, int32_t i) { return c->p0 + row_token(c, i) + 1; }

/* Blocks bA..bB-1 of positions (clipped to the chunk's last key) for every row of the chunk: the
 * keys of the whole run first, then the values, each as one stretch of the cache (switching
 * between keys and values every block was 3-8% slower decoding from memory). For each block b and
 * row i with keys in it: o = the softmax of the row's scores over its keys in the block times
 * their values, written to out_of(b, i); m, l the block's max and sum of exp. Then `done` is
 * called with the block. sc: VWN_ATT_BLOCK rows of ld >= the run's positions floats. */
typedef struct {
    float *(*out_of)(void *user, int32_t b, int32_t i);
    void (*done)(void *user, int32_t b, const float *m, const float *l);
    void *user;
    bool need_max;          /* false: one block and no fold (m is not used) */
} block_sink;

/* The rows of a chunk with keys in [j0, j1) -- each its own count, the causal limit cutting
 * the later ones short -- and the count all of them have. The one-row kernels take every row
 * alone; the rows kernels (ops.h, attn_scores_rows) take the common keys of all rows together,
 * the one-row kernels each row's rest: a score does not depend on the others, and a value sum
 * continues exactly (accumulate), so the bits are those of a row at a time. */
typedef struct {
    int32_t n, common;
    int32_t row[VWN_ATT_BLOCK], keys[VWN_ATT_BLOCK];
    const float *q[VWN_ATT_BLOCK]; /* scores: the queries; values: the weights */
    float *out[VWN_ATT_BLOCK];
} rows_run;

static void gather_rows(const chunk *c, int32_t j0, int32_t j1, rows_run *run) {
    run->n = 0;
    run->common = j1 - j0;
    for (int32_t i = 0; i < c->nr; i++) {
        const int32_t nk = row_keys(c, i), n = (nk < j1 ? nk : j1) - j0;
        if (n <= 0) continue;
        run->row[run->n] = i;
        run->keys[run->n++] = n;
        if (n < run->common) run->common = n;
    }
}

static void attend_blocks(const chunk *c, int32_t bA, int32_t bB, float *sc, int32_t ld, const block_sink *sink) {
    const vwn_ops *ops = c->ops;
    const float inv_sqrt_hd = 1.0f / sqrtf((float)c->hd);
    const int32_t hd = c->hd, last = c->p0 + c->t0 + c->nt; /* keys of the chunk's last token */
    const int32_t j_begin = bA * PB, j_end = bB * PB < last ? bB * PB : last;
    const int32_t piece = c->nr == 1 ? PB : piece_keys(c->row);
    /* scores of the run, piece by piece (pieces end at block ends) */
    for (int32_t j0 = j_begin; j0 < j_end;) {
        const int32_t be = (j0 / PB + 1) * PB, j1 = j0 + piece < be ? j0 + piece : be;
        const int32_t je = j1 < j_end ? j1 : j_end;
        rows_run run;
        gather_rows(c, j0, je, &run);
        for (int32_t k = 0; k < run.n; k++) {
            const int32_t i = run.row[k];
            run.q[k] = c->q + ((size_t)row_token(c, i) * c->n_head + row_head(c, i)) * hd;
            run.out[k] = sc + (size_t)i * ld + (j0 - j_begin);
        }
        int32_t done = 0; /* keys every row of the run has, taken together */
        if (run.n > 1 && ops->attn_scores_rows) {
            done = run.common;
            ops->attn_scores_rows(run.out, run.q, run.n, c->type, c->K + j0 * c->row, hd, done, hd, inv_sqrt_hd);
        }
        for (int32_t k = 0; k < run.n; k++) {
            const int32_t n = run.keys[k] - done;
            if (n <= 0) continue;
            const char *K = c->K + (size_t)(j0 + done) * c->row;
            if (c->type == VWN_TYPE_F16)
                ops->attn_scores_f16(run.out[k] + done, run.q[k], (const uint16_t *)K, hd, n, hd, inv_sqrt_hd);
            else if (c->type == VWN_TYPE_Q8_0)
                ops->attn_scores_q8_0(run.out[k] + done, run.q[k], (const vwn_block_q8_0 *)K, hd, n, hd, inv_sqrt_hd);
            else ops->attn_scores(run.out[k] + done, run.q[k], (const float *)K, hd, n, hd, inv_sqrt_hd);
        }
        j0 = je;
    }
    /* each block: its softmax, then its values, piece by piece, each row's output continued from the
     * last piece of the block */
    for (int32_t b = bA; b < bB; b++) {
        const int32_t b0 = b * PB, b1 = b0 + PB < j_end ? b0 + PB : j_end;
        if (b0 >= b1) break;
        float m[VWN_ATT_BLOCK], l[VWN_ATT_BLOCK];
        for (int32_t i = 0; i < c->nr; i++) {
            const int32_t nk = row_keys(c, i), n = (nk < b1 ? nk : b1) - b0;
            m[i] = l[i] = 0.0f; /* no key in the block: l = 0, skipped by the folds */
            if (n <= 0) continue;
            float *s = sc + (size_t)i * ld + (b0 - j_begin);
            l[i] = ops->softmax_exp(s, n, sink->need_max ? &m[i] : NULL);
            ops->scale(s, 1.0f / l[i], n);
        }
        for (int32_t j0 = b0; j0 < b1; j0 += piece) {
            const int32_t j1 = b1 - j0 < piece ? b1 : j0 + piece;
            rows_run run;
            gather_rows(c, j0, j1, &run);
            for (int32_t k = 0; k < run.n; k++) {
                const int32_t i = run.row[k];
                run.q[k] = sc + (size_t)i * ld + (j0 - j_begin); /* the row's weights */
                run.out[k] = sink->out_of(sink->user, b, i);
            }
            int32_t done = 0;
            if (run.n > 1 && ops->attn_values_rows) {
                done = run.common;
                ops->attn_values_rows(run.out, run.q, run.n, c->type, c->V + j0 * c->row, hd, done, hd, j0 > b0);
            }
            for (int32_t k = 0; k < run.n; k++) { /* the rest of each row's keys continue its sums */
                const int32_t n = run.keys[k] - done;
                if (n <= 0) continue;
                const char *V = c->V + (size_t)(j0 + done) * c->row;
                const bool acc = j0 > b0 || done > 0;
                if (c->type == VWN_TYPE_F16)
                    ops->attn_values_f16(run.out[k], run.q[k] + done, (const uint16_t *)V, hd, n, hd, acc);
                else if (c->type == VWN_TYPE_Q8_0)
                    ops->attn_values_q8_0(run.out[k], run.q[k] + done, (const vwn_block_q8_0 *)V, hd, n, hd, acc);
                else ops->attn_values(run.out[k], run.q[k] + done, (const float *)V, hd, n, hd, acc);
            }
        }
        if (sink->done) sink->done(sink->user, b, m, l);
    }
}

/* The arguments every item shares. */
typedef struct {
    const vwn_ops *ops;
    const float *q;
    int32_t type;           /* kv_type */
    size_t row;             /* bytes of a cache row */
    const char *k_cache, *v_cache;
    int32_t p0, T, n_head, n_head_kv, hd, n_ctx;
    float *out;
    float *part;            /* a few tokens over several blocks: [T][n_head][blocks][hd] partials */
    float *part_ml;         /* [T][n_head][blocks][2]: their max and sum */
} job;

static chunk make_chunk(const job *jb, int32_t t0, int32_t nt, int32_t kvh, int32_t r0, int32_t nr) {
    const size_t row = jb->row, head = (size_t)jb->n_ctx * row;
    chunk c = {jb->ops, jb->q, jb->type, row, jb->k_cache + kvh * head, jb->v_cache + kvh * head,
               jb->p0, t0, nt, kvh, jb->n_head, jb->n_head / jb->n_head_kv, jb->hd, r0, nr};
    return c;
}

/* A thread's scratch: VWN_ATT_BLOCK rows of n_ctx scores, VWN_ATT_BLOCK partial outputs, and the
 * rows' running max and weight. */
static size_t thread_floats(int32_t hd, int32_t n_ctx) {
    return (size_t)VWN_ATT_BLOCK * ((size_t)n_ctx + (size_t)hd + 2);
}

/* Prefill (and decoding within one block): each row's block 0 goes to its output, every later
 * block to tmp and is folded into the output at once. */
typedef struct {
    const chunk *c;
    float *const *dst;      /* the rows' outputs */
    float *tmp;             /* VWN_ATT_BLOCK x hd */
    float *M, *L;           /* the rows' running max and weight */
} fold_rows;

static float *fold_rows_out(void *user, int32_t b, int32_t i) {
    const fold_rows *f = user;
    return b == 0 ? f->dst[i] : f->tmp + (size_t)i * f->c->hd;
}

static void fold_rows_done(void *user, int32_t b, const float *m, const float *l) {
    const fold_rows *f = user;
    for (int32_t i = 0; i < f->c->nr; i++) {
        if (b == 0) f->M[i] = m[i], f->L[i] = l[i];   /* every row has key 0 */
        else if (l[i] > 0.0f) fold(f->dst[i], &f->M[i], &f->L[i], f->tmp + (size_t)i * f->c->hd, m[i], l[i], f->c->hd);
    }
}

/* Tokens t0..t0+nt-1 and KV head kvh. */
static void attend_tokens(const job *jb, int32_t t0, int32_t nt, int32_t kvh, float *scratch) {
    const int32_t group = jb->n_head / jb->n_head_kv, rows = group * nt, hd = jb->hd;
    const int32_t ld = jb->n_ctx, last = jb->p0 + t0 + nt, blocks = pos_blocks(last);
    float *sc = scratch, *tmp = sc + (size_t)VWN_ATT_BLOCK * ld, *M = tmp + (size_t)VWN_ATT_BLOCK * hd;
    float *L = M + VWN_ATT_BLOCK;
    for (int32_t r0 = 0; r0 < rows; r0 += VWN_ATT_BLOCK) {
        const int32_t nr = rows - r0 < VWN_ATT_BLOCK ? rows - r0 : VWN_ATT_BLOCK;
        const chunk c = make_chunk(jb, t0, nt, kvh, r0, nr);
        float *dst[VWN_ATT_BLOCK];
        for (int32_t i = 0; i < nr; i++)
            dst[i] = jb->out + ((size_t)row_token(&c, i) * jb->n_head + row_head(&c, i)) * hd;
        fold_rows f = {&c, dst, tmp, M, L};
        const block_sink sink = {fold_rows_out, blocks > 1 ? fold_rows_done : NULL, &f, blocks > 1};
        attend_blocks(&c, 0, blocks, sc, ld, &sink);
    }
}

/* Item `it` = (block of tokens it / n_head_kv, KV head it % n_head_kv). */
static void attend_item(const job *jb, int64_t it, float *scratch) {
    const int32_t t0 = (int32_t)(it / jb->n_head_kv) * VWN_ATT_BLOCK;
    attend_tokens(jb, t0, jb->T - t0 < VWN_ATT_BLOCK ? jb->T - t0 : VWN_ATT_BLOCK, (int32_t)(it % jb->n_head_kv), scratch);
}

#ifdef VWN_OPENMP
/* A few tokens (decoding, draft verification) over several blocks: the partial outputs go to their
 * slots, (token, query head, block), to be folded after. */
typedef struct {
    const job *jb;
    const chunk *c;
    int32_t blocks;
} part_rows;

static size_t part_slot(const job *jb, int32_t t, int32_t h, int32_t blocks, int32_t b) {
    return ((size_t)t * jb->n_head + (size_t)h) * (size_t)blocks + (size_t)b;
}

static float *part_out(void *user, int32_t b, int32_t i) {
    const part_rows *p = user;
    return p->jb->part + part_slot(p->jb, row_token(p->c, i), row_head(p->c, i), p->blocks, b) * p->jb->hd;
}

static void part_done(void *user, int32_t b, const float *m, const float *l) {
    const part_rows *p = user;
    for (int32_t i = 0; i < p->c->nr; i++) {
        float *ml = p->jb->part_ml + part_slot(p->jb, row_token(p->c, i), row_head(p->c, i), p->blocks, b) * 2;
        ml[0] = m[i], ml[1] = l[i];
    }
}

/* Items [i0, i1) of (KV head it / blocks, block it % blocks): the rows of the group's query heads
 * and the T tokens over those blocks, head by head, each head's run of blocks in one pass. */
static void attend_parts(const job *jb, int64_t i0, int64_t i1, int32_t blocks, float *scratch) {
    const int32_t rows = jb->n_head / jb->n_head_kv * jb->T;
    while (i0 < i1) {
        const int32_t kvh = (int32_t)(i0 / blocks), bA = (int32_t)(i0 % blocks);
        const int64_t head_end = (int64_t)(kvh + 1) * blocks;
        const int32_t bB = (int32_t)((i1 < head_end ? i1 : head_end) - (int64_t)kvh * blocks);
        for (int32_t r0 = 0; r0 < rows; r0 += VWN_ATT_BLOCK) {
            const int32_t nr = rows - r0 < VWN_ATT_BLOCK ? rows - r0 : VWN_ATT_BLOCK;
            const chunk c = make_chunk(jb, 0, jb->T, kvh, r0, nr);
            part_rows p = {jb, &c, blocks};
            const block_sink sink = {part_out, part_done, &p, true};
            attend_blocks(&c, bA, bB, scratch, jb->n_ctx, &sink);
        }
        i0 = (int64_t)kvh * blocks + bB;
    }
}

/* Row r = (token r / n_head, query head r % n_head): its blocks folded in order (a block without
 * keys of the token's -- the last, for an earlier token -- has l = 0 and is skipped, as in prefill). */
static void fold_row(const job *jb, int32_t r, int32_t blocks) {
    const int32_t hd = jb->hd;
    const size_t slot = part_slot(jb, r / jb->n_head, r % jb->n_head, blocks, 0);
    const float *part = jb->part + slot * hd, *ml = jb->part_ml + slot * 2;
    float *out = jb->out + (size_t)r * hd, M = ml[0], L = ml[1];
    memcpy(out, part, sizeof(float) * (size_t)hd);
    for (int32_t b = 1; b < blocks; b++)
        if (ml[2 * b + 1] > 0.0f) fold(out, &M, &L, part + (size_t)b * hd, ml[2 * b], ml[2 * b + 1], hd);
}
#endif

size_t vwn_attention_scratch_floats(int32_t n_head, int32_t hd, int32_t n_ctx, int n_threads) {
    /* the partials of up to VWN_ATT_BLOCK tokens when the work is split (see vwn_attention) */
    const size_t parts = n_threads > 1 ? (size_t)VWN_ATT_BLOCK * n_head * (size_t)pos_blocks(n_ctx) * ((size_t)hd + 2) : 0;
    return (size_t)n_threads * thread_floats(hd, n_ctx) + parts;
}

void vwn_attention(const vwn_ops *ops, const float *q, int32_t kv_type, const void *k_cache, const void *v_cache,
                   int32_t p0, int32_t T, int32_t n_head, int32_t n_head_kv, int32_t hd,
                   float *out, float *scratch, int32_t n_ctx, int n_threads, int64_t split) {
    const int32_t group = n_head / n_head_kv;
    const size_t per_thread = thread_floats(hd, n_ctx);
    const job jb = {ops, q, kv_type, vwn_kv_row_bytes(kv_type, hd), (const char *)k_cache,
                    (const char *)v_cache, p0, T, n_head, n_head_kv, hd, n_ctx, out, NULL, NULL};
    /* items: (block of tokens, KV head), each folding its blocks of positions as it goes; or, to
     * balance the attention of a few tokens (decoding, draft verification) when their KV heads do
     * not divide evenly among the threads, (KV head, block of positions), folded after a barrier
     * (the same bits either way) */
    const int32_t pblocks = T <= VWN_ATT_BLOCK ? pos_blocks(p0 + T) : 1;
    const int32_t tblocks = (T + VWN_ATT_BLOCK - 1) / VWN_ATT_BLOCK;
    const int64_t n_items = (int64_t)tblocks * n_head_kv;
    const int64_t work = (int64_t)T * n_head_kv * (int64_t)(p0 + T) * hd * group;
#ifdef VWN_OPENMP
    if (n_threads > 1 && (n_items > 1 || pblocks > 1) && work > split) {
        /* Decoding (one block of tokens): each thread a contiguous run of items, one stretch of
         * the cache. Prefill: blocks of later tokens attend to more keys, so the items are
         * claimed one at a time from an atomic counter. (OpenMP's schedule(dynamic, 1) did the
         * same, but its dispatch cost several µs a call on this machine: decode attention over 128
         * cached positions took 14-17 µs on 2 threads against 8 with this loop, and a 256-token
         * Q8_0 prefill 8-15% longer; docs/performance.md, "Attention's thread loop".) */
        _Atomic int64_t next = 0;
#pragma omp parallel num_threads(n_threads)
        {
            const int i = omp_get_thread_num(), nt = omp_get_num_threads();
            float *sc = scratch + (size_t)i * per_thread;
            if (pblocks > 1 && n_head_kv % nt != 0) {
                job pj = jb;
                pj.part = scratch + (size_t)n_threads * per_thread;
                pj.part_ml = pj.part + (size_t)VWN_ATT_BLOCK * n_head * pos_blocks(n_ctx) * hd;
                const int64_t n_parts = (int64_t)n_head_kv * pblocks, n_rows = (int64_t)T * n_head;
                attend_parts(&pj, n_parts * i / nt, n_parts * (i + 1) / nt, pblocks, sc);
#pragma omp barrier
                for (int64_t r = n_rows * i / nt; r < n_rows * (i + 1) / nt; r++) fold_row(&pj, (int32_t)r, pblocks);
            } else if (T == 1) {
                for (int64_t it = n_items * i / nt; it < n_items * (i + 1) / nt; it++) attend_item(&jb, it, sc);
            } else {
                for (int64_t it; (it = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed)) < n_items;)
                    attend_item(&jb, it, sc);
            }
        }
        return;
    }
#else
    (void)n_threads, (void)work, (void)split, (void)pblocks, (void)per_thread;
#endif
    /* one thread: no OpenMP construct (a serialized region costs ~1 µs and cache misses in libomp) */
    for (int64_t it = 0; it < n_items; it++) attend_item(&jb, it, scratch);
}

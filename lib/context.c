/* context.c -- the public context API: parameters, memory plan, creation, vwn_decode, outputs,
 * truncation. The maths lives in forward.c; this file owns argument checks and bookkeeping. */
#include "context.h"
#include "common.h"
#include "attention.h"
#include "ghc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CTX (1 << 20)
#define MAX_THREADS 256

/* ---- parameters ----------------------------------------------------------------------------- */

vwn_context_params vwn_context_default_params(void) {
    vwn_context_params p;
    memset(&p, 0, sizeof p);
    p.n_ctx = 0;      /* 0 = the model's max_seq_len */
    p.n_batch = 512;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p.n_threads = cores < 1 ? 1 : cores > 8 ? 8 : (int32_t)cores;
    p.logits_all = false;
    p.mtp = true;
    p.simd = VWN_SIMD_AUTO;
    p.memory_limit = 0;
    return p;
}

/* Applies defaults and checks ranges; fills *out. */
static vwn_status resolve_params(const vwn_model *m, const vwn_context_params *in, vwn_context_params *out) {
    *out = in ? *in : vwn_context_default_params();
    if (out->n_ctx == 0) out->n_ctx = m->hp.max_seq_len > 0 ? m->hp.max_seq_len : 2048;
    if (out->n_ctx < 1 || out->n_ctx > MAX_CTX)
        return vwn_fail(VWN_ERR_INVALID_ARG, "n_ctx = %d is outside 1..%d", out->n_ctx, MAX_CTX);
    if (out->n_batch == 0) out->n_batch = 512;
    if (out->n_batch < 1) return vwn_fail(VWN_ERR_INVALID_ARG, "n_batch = %d must be positive", out->n_batch);
    if (out->n_batch > out->n_ctx) out->n_batch = out->n_ctx;
    if (out->n_threads == 0) out->n_threads = vwn_context_default_params().n_threads;
    if (out->n_threads < 1 || out->n_threads > MAX_THREADS)
        return vwn_fail(VWN_ERR_INVALID_ARG, "n_threads = %d is outside 1..%d", out->n_threads, MAX_THREADS);
    if (out->simd < VWN_SIMD_AUTO || out->simd > VWN_SIMD_NEON)
        return vwn_fail(VWN_ERR_INVALID_ARG, "simd = %d is not a vwn_simd value", out->simd);
    if (out->simd != VWN_SIMD_AUTO && !vwn_simd_supported((vwn_simd)out->simd))
        return vwn_fail(VWN_ERR_UNSUPPORTED, "SIMD level %s is not supported by this CPU or build",
                        vwn_simd_name((vwn_simd)out->simd));
    if (out->kv_type != VWN_TYPE_F32 && out->kv_type != VWN_TYPE_F16 && out->kv_type != VWN_TYPE_Q8_0)
        return vwn_fail(VWN_ERR_INVALID_ARG, "kv_type = %d: the KV cache is F32 (%d), F16 (%d) or Q8_0 (%d)",
                        out->kv_type, VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_Q8_0);
    if (out->kv_type == VWN_TYPE_Q8_0 && m->hp.head_dim % VWN_QK8_0 != 0)
        return vwn_fail(VWN_ERR_UNSUPPORTED, "kv_type Q8_0 needs a head size that is a multiple of %d; this model's is %d",
                        VWN_QK8_0, m->hp.head_dim);
    if (m->hp.mtp_depth == 0) out->mtp = false;
    if (m->hp.seg > 4096)
        return vwn_fail(VWN_ERR_UNSUPPORTED, "segment width s = %d exceeds 4096", m->hp.seg);
    return VWN_OK;
}

/* ---- memory plan: every buffer of a context, in floats unless noted (KV: in cache rows) ------- */

typedef struct plan {
    size_t kv, rope, tokens, states, state_pos, logits, mtp_logits, mtp_kv;
    size_t wide, coef, wcoef, ghc_tmp, x, xn, y, q, kvb, ff, att, emb, mtp_in, head, xq, prow, draft;
    size_t total_bytes;
    int32_t n_out, ring, n_mtp;
} plan;

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static vwn_status make_plan(const vwn_model *m, const vwn_context_params *p, plan *pl) {
    const vwn_hparams *hp = &m->hp;
    memset(pl, 0, sizeof *pl);
    const size_t ctx = (size_t)p->n_ctx, nb = (size_t)p->n_batch;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim, qd = (size_t)hp->n_head * hp->head_dim;
    const size_t Dw = (size_t)hp->n_wide, D = (size_t)hp->n_embd, V = (size_t)hp->n_vocab;
    pl->n_mtp = p->mtp ? hp->mtp_depth : 0;
    pl->n_out = p->logits_all ? p->n_batch : 1;
    pl->ring = p->n_batch + pl->n_mtp + 1;

    pl->kv = 2 * (size_t)hp->n_layer * ctx * (size_t)hp->n_head_kv;
    pl->mtp_kv = 2 * (size_t)pl->n_mtp * ctx * (size_t)hp->n_head_kv;
    pl->rope = 2 * ctx * (size_t)(hp->head_dim / 2);
    pl->tokens = ctx; /* int32 */
    pl->states = (size_t)pl->n_mtp * pl->ring * Dw;
    pl->state_pos = (size_t)pl->n_mtp * pl->ring; /* int32 */
    pl->logits = (size_t)pl->n_out * V;
    pl->mtp_logits = (size_t)pl->n_mtp * pl->n_out * V;
    pl->draft = pl->n_mtp ? (size_t)pl->n_mtp * V + (size_t)(pl->n_mtp + 1) * V +
                            (size_t)pl->n_mtp * pl->n_mtp * Dw + (size_t)pl->n_mtp * Dw : 0;

    pl->wide = nb * Dw;
    /* GHC (ghc.h): coefficients only for tokens whose work is split between threads */
    const size_t split = (size_t)VWN_GHC_TOKENS_PER_THREAD * (size_t)p->n_threads;
    pl->coef = (nb < split ? nb : split) * (size_t)hp->ghc_n * hp->n_coef;
    pl->wcoef = nb * (size_t)hp->ghc_n * hp->ghc_m;
    pl->ghc_tmp = (size_t)p->n_threads * ((size_t)hp->ghc_n * hp->n_coef + Dw);
    pl->x = nb * D;
    pl->xn = nb * max_sz(D, qd);
    pl->y = nb * D;
    pl->q = nb * qd;
    pl->kvb = nb * kv_dim;
    pl->ff = nb * (size_t)hp->n_ff;
    pl->att = vwn_attention_scratch_floats(hp->n_head, hp->head_dim, p->n_ctx, p->n_threads);
    pl->emb = nb * max_sz(Dw, D);
    pl->mtp_in = pl->n_mtp ? nb * Dw * 2 : 0;
    pl->head = nb * D;
    pl->prow = nb; /* pointers */

    /* Q8_0 activations, or the float ones prepared for the level's kernels (ops.h): the largest
     * input of any matmul (rows of T tokens) */
    const vwn_ops *ops = p->simd == VWN_SIMD_AUTO ? vwn_ops_best() : vwn_ops_get(p->simd);
    size_t xq = 0;
    const vwn_mat *mats[] = {&m->embed_expand, &m->reduce, &m->lm_head};
    for (size_t i = 0; i < 3; i++)
        if (mats[i]->data) xq = max_sz(xq, vwn_matmul_scratch_size(ops, mats[i], (int64_t)nb));
    for (int32_t l = 0; l < hp->n_layer + pl->n_mtp; l++) {
        const vwn_layer_weights *lw = l < hp->n_layer ? &m->layers[l] : &m->mtp[l - hp->n_layer].layer;
        const vwn_mat *lm[] = {&lw->wq, &lw->wk, &lw->wv, &lw->wo, &lw->w_gate, &lw->w_up, &lw->w_down};
        for (size_t i = 0; i < 7; i++) xq = max_sz(xq, vwn_matmul_scratch_size(ops, lm[i], (int64_t)nb));
        if (l >= hp->n_layer)
            xq = max_sz(xq, vwn_matmul_scratch_size(ops, &m->mtp[l - hp->n_layer].proj, (int64_t)nb * hp->ghc_n));
    }
    /* the drafts' head (vwn_model_draft_head: Q8_0, one token) */
    if (pl->n_mtp && m->lm_head.cols % VWN_QK8_0 == 0)
        xq = max_sz(xq, (size_t)(m->lm_head.cols / VWN_QK8_0) * sizeof(vwn_block_q8_0));
    pl->xq = xq; /* bytes */

    /* total, overflow-checked (every count above is bounded by validated model sizes and
     * n_ctx <= 2^20, n_batch <= n_ctx, so the products fit in 64 bits; the sum is checked). */
    size_t floats = pl->rope + pl->states + pl->logits + pl->mtp_logits + pl->draft +
                    pl->wide * 2 + pl->coef + pl->wcoef + pl->ghc_tmp + pl->x + pl->xn + pl->y + pl->q +
                    pl->kvb * 2 + pl->ff * 2 + pl->att + pl->emb + pl->mtp_in + pl->head;
    size_t bytes = 0;
    size_t kv_bytes = 0;
    if (!vwn_mul_size(pl->kv + pl->mtp_kv, vwn_kv_row_bytes(p->kv_type, hp->head_dim), &kv_bytes) || !vwn_mul_size(floats, sizeof(float), &bytes) ||
        !vwn_add_size(bytes, kv_bytes, &bytes) ||
        !vwn_add_size(bytes, (pl->tokens + pl->state_pos + 3 * (size_t)pl->n_mtp + (size_t)pl->n_mtp) * 4, &bytes) ||
        !vwn_add_size(bytes, pl->xq + pl->prow * sizeof(void *) + sizeof(vwn_context) + 64 * 40, &bytes))
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "context size overflows");
    pl->total_bytes = bytes;
    return VWN_OK;
}

vwn_status vwn_context_estimate(const vwn_model *model, const vwn_context_params *params, uint64_t *out_bytes) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(model, VWN_MAGIC_MODEL, "model");
    if (st) return st;
    if (!out_bytes) return vwn_fail(VWN_ERR_INVALID_ARG, "out_bytes is NULL");
    vwn_context_params p;
    if ((st = resolve_params(model, params, &p))) return st;
    plan pl;
    if ((st = make_plan(model, &p, &pl))) return st;
    *out_bytes = pl.total_bytes;
    return VWN_OK;
}

/* ---- creation and destruction --------------------------------------------------------------- */

static void context_release(vwn_context *ctx) {
    vwn_big_free(ctx->k_cache), vwn_big_free(ctx->v_cache), vwn_big_free(ctx->mtp_k), vwn_big_free(ctx->mtp_v);
    void *aligned[] = {ctx->rope_cos, ctx->rope_sin,
                       ctx->states, ctx->logits, ctx->mtp_logits, ctx->draft_probs,
                       ctx->verify_logits, ctx->draft_states, ctx->mtp_last_U,
                       ctx->s.wide, ctx->s.carry, ctx->s.coef, ctx->s.wcoef, ctx->s.ghc_tmp, ctx->s.x,
                       ctx->s.xn, ctx->s.y, ctx->s.q, ctx->s.k, ctx->s.v, ctx->s.ff1, ctx->s.ff2, ctx->s.att,
                       ctx->s.emb, ctx->s.mtp_in, ctx->s.head, ctx->s.xq};
    for (size_t i = 0; i < sizeof aligned / sizeof aligned[0]; i++) vwn_aligned_free(aligned[i]);
    vwn_free(ctx->tokens);
    vwn_free(ctx->state_pos);
    vwn_free(ctx->mtp_len);
    vwn_free(ctx->mtp_first);
    vwn_free(ctx->mtp_count);
    vwn_free(ctx->mtp_last_pos);
    vwn_free(ctx->draft_tokens);
    vwn_free((void *)ctx->s.prow);
}

static float *falloc(size_t n, bool *ok) {
    if (n == 0) return NULL;
    float *p = vwn_aligned_alloc(n * sizeof(float));
    if (!p) *ok = false;
    return p;
}

/* The KV caches (n rows of row_bytes): in huge pages where the OS allows (vwn_big_alloc). */
static void *falloc_big(size_t n, size_t row_bytes, bool *ok) {
    if (n == 0) return NULL;
    void *p = vwn_big_alloc(n * row_bytes);
    if (!p) *ok = false;
    return p;
}

vwn_status vwn_context_new(const vwn_model *model, const vwn_context_params *params, vwn_context **out_ctx) {
    vwn_clear_error();
    if (out_ctx) *out_ctx = NULL;
    vwn_status st = vwn_check_handle(model, VWN_MAGIC_MODEL, "model");
    if (st) return st;
    if (!out_ctx) return vwn_fail(VWN_ERR_INVALID_ARG, "out_ctx is NULL");
    vwn_context_params p;
    if ((st = resolve_params(model, params, &p))) return st;
    plan pl;
    if ((st = make_plan(model, &p, &pl))) return st;
    if (p.memory_limit && pl.total_bytes > p.memory_limit)
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "the context needs %llu bytes, more than memory_limit = %llu",
                        (unsigned long long)pl.total_bytes, (unsigned long long)p.memory_limit);

    vwn_context *ctx = vwn_calloc(1, sizeof *ctx);
    if (!ctx) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "cannot allocate a context");
    ctx->model = model;
    ctx->params = p;
    ctx->n_threads = p.n_threads;
    ctx->n_run = 1;
    ctx->ops = p.simd == VWN_SIMD_AUTO ? vwn_ops_best() : vwn_ops_get(p.simd);
    ctx->n_mtp = pl.n_mtp;
    /* Decode attention splits over threads from a smaller size when the model's weights stream
     * the KV cache out of the last-level cache every token (attention.h) */
    ctx->att_split = model->weight_bytes_per_token > vwn_llc_bytes() ? VWN_ATT_SPLIT_MEMORY : VWN_ATT_SPLIT_CACHE;
    /* VWN_DRAFT_HEAD=exact: drafts through lm_head itself (docs/performance.md) */
    const char *dh = getenv("VWN_DRAFT_HEAD");
    ctx->draft_exact = dh && strcmp(dh, "exact") == 0;
    ctx->n_out = pl.n_out;
    ctx->ring = pl.ring;
    ctx->bytes = pl.total_bytes;

    bool ok = ctx->ops != NULL;
    const size_t kv_half = pl.kv / 2, mtp_half = pl.mtp_kv / 2;
    ctx->kv_row = vwn_kv_row_bytes(p.kv_type, model->hp.head_dim);
    ctx->k_cache = falloc_big(kv_half, ctx->kv_row, &ok);
    ctx->v_cache = falloc_big(kv_half, ctx->kv_row, &ok);
    ctx->mtp_k = falloc_big(mtp_half, ctx->kv_row, &ok);
    ctx->mtp_v = falloc_big(mtp_half, ctx->kv_row, &ok);
    ctx->rope_cos = falloc(pl.rope / 2, &ok);
    ctx->rope_sin = falloc(pl.rope / 2, &ok);
    ctx->states = falloc(pl.states, &ok);
    ctx->logits = falloc(pl.logits, &ok);
    ctx->mtp_logits = falloc(pl.mtp_logits, &ok);
    ctx->draft_probs = falloc(pl.n_mtp ? (size_t)pl.n_mtp * model->hp.n_vocab : 0, &ok);
    ctx->verify_logits = falloc(pl.n_mtp ? (size_t)(pl.n_mtp + 1) * model->hp.n_vocab : 0, &ok);
    ctx->draft_states = falloc((size_t)pl.n_mtp * pl.n_mtp * model->hp.n_wide, &ok);
    ctx->s.wide = falloc(pl.wide, &ok);
    ctx->s.carry = falloc(pl.wide, &ok);
    ctx->s.coef = falloc(pl.coef, &ok);
    ctx->s.wcoef = falloc(pl.wcoef, &ok);
    ctx->s.ghc_tmp = falloc(pl.ghc_tmp, &ok);
    ctx->s.x = falloc(pl.x, &ok);
    ctx->s.xn = falloc(pl.xn, &ok);
    ctx->s.y = falloc(pl.y, &ok);
    ctx->s.q = falloc(pl.q, &ok);
    ctx->s.k = falloc(pl.kvb, &ok);
    ctx->s.v = falloc(pl.kvb, &ok);
    ctx->s.ff1 = falloc(pl.ff, &ok);
    ctx->s.ff2 = falloc(pl.ff, &ok);
    ctx->s.att = falloc(pl.att, &ok);
    ctx->s.emb = falloc(pl.emb, &ok);
    ctx->s.mtp_in = falloc(pl.mtp_in, &ok);
    ctx->s.head = falloc(pl.head, &ok);
    if (pl.xq) {
        ctx->s.xq = vwn_aligned_alloc(pl.xq);
        if (!ctx->s.xq) ok = false;
    }
    ctx->s.prow = vwn_calloc(pl.prow, sizeof(float *));
    ctx->tokens = vwn_calloc((size_t)p.n_ctx, sizeof(int32_t));
    ctx->state_pos = vwn_calloc(pl.state_pos ? pl.state_pos : 1, sizeof(int32_t));
    ctx->mtp_len = vwn_calloc((size_t)pl.n_mtp + 1, sizeof(int32_t));
    ctx->mtp_first = vwn_calloc((size_t)pl.n_mtp + 1, sizeof(int32_t));
    ctx->mtp_count = vwn_calloc((size_t)pl.n_mtp + 1, sizeof(int32_t));
    ctx->mtp_last_pos = vwn_calloc((size_t)pl.n_mtp + 1, sizeof(int32_t));
    ctx->mtp_last_U = falloc((size_t)pl.n_mtp * model->hp.n_wide, &ok);
    ctx->draft_tokens = vwn_calloc((size_t)pl.n_mtp + 1, sizeof(int32_t));
    if (!ctx->s.prow || !ctx->tokens || !ctx->state_pos || !ctx->mtp_len || !ctx->mtp_first ||
        !ctx->mtp_count || !ctx->mtp_last_pos || !ctx->draft_tokens)
        ok = false;
    if (!ok) {
        st = ctx->ops ? vwn_fail(VWN_ERR_OUT_OF_MEMORY, "cannot allocate the context's %llu bytes",
                                 (unsigned long long)pl.total_bytes)
                      : vwn_fail(VWN_ERR_UNSUPPORTED, "no kernels for the requested SIMD level");
        context_release(ctx);
        vwn_free(ctx);
        return st;
    }
    for (size_t i = 0; i < pl.state_pos; i++) ctx->state_pos[i] = -1;
    for (int32_t j = 0; j < pl.n_mtp; j++) ctx->mtp_last_pos[j] = -1;
    vwn_rope_table(ctx->rope_cos, ctx->rope_sin, p.n_ctx, model->hp.head_dim, model->hp.rope_theta);
    ctx->magic = VWN_MAGIC_CONTEXT;
    *out_ctx = ctx;
    return VWN_OK;
}

void vwn_context_free(vwn_context *ctx) {
    if (!ctx || ctx->magic != VWN_MAGIC_CONTEXT) return;
    context_release(ctx);
    ctx->magic = VWN_MAGIC_DEAD;
    vwn_free(ctx);
}

const vwn_model *vwn_context_model(const vwn_context *ctx) {
    vwn_clear_error();
    if (vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context")) return NULL;
    return ctx->model;
}

vwn_context_params vwn_context_get_params(const vwn_context *ctx) {
    vwn_clear_error();
    if (vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context")) return vwn_context_default_params();
    return ctx->params;
}

/* ---- the thread budget ---------------------------------------------------------------------- */

void vwn_ctx_begin(vwn_context *ctx) { ctx->n_run = vwn_threads_acquire(ctx->n_threads); }

void vwn_ctx_end(vwn_context *ctx) {
    vwn_threads_release(ctx->n_run);
    ctx->n_run = 1;
}

/* ---- decode --------------------------------------------------------------------------------- */

vwn_status vwn_decode(vwn_context *ctx, const int32_t *tokens, int32_t n_tokens) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (n_tokens < 1) return vwn_fail(VWN_ERR_INVALID_ARG, "n_tokens = %d, at least 1 token is needed", n_tokens);
    if (!tokens) return vwn_fail(VWN_ERR_INVALID_ARG, "tokens is NULL");
    if (n_tokens > ctx->params.n_ctx - ctx->n_past)
        return vwn_fail(VWN_ERR_CONTEXT_FULL, "%d tokens do not fit: the context holds %d of %d positions",
                        n_tokens, ctx->n_past, ctx->params.n_ctx);
    const int32_t V = ctx->model->hp.n_vocab;
    for (int32_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return vwn_fail(VWN_ERR_TOKEN_OUT_OF_RANGE, "token %d at index %d is outside the vocabulary [0, %d)",
                            tokens[i], i, V);
    if (ctx->params.logits_all && n_tokens > ctx->params.n_batch)
        return vwn_fail(VWN_ERR_BATCH_TOO_LARGE,
                        "%d tokens exceed n_batch = %d, the most whose logits_all outputs can be kept",
                        n_tokens, ctx->params.n_batch);

    const double t0 = vwn_time_us();
    const int32_t n_before = ctx->n_past;
    vwn_ctx_begin(ctx);
    ctx->draft_n = 0;
    ctx->logits_count = 0;
    for (int32_t j = 0; j < ctx->n_mtp; j++) ctx->mtp_count[j] = 0;

    for (int32_t done = 0; done < n_tokens;) {
        int32_t n = n_tokens - done;
        if (n > ctx->params.n_batch) n = ctx->params.n_batch;
        const bool last_chunk = done + n == n_tokens;
        const int32_t keep_from = !last_chunk ? INT32_MAX
                                  : ctx->params.logits_all ? ctx->n_past : ctx->n_past + n - 1;
        /* MTP modules follow every chunk, so their caches and input states stay current. Their
         * logits (a full vocabulary head each) are computed here only with logits_all; otherwise
         * the last position's are computed when first asked for (vwn_get_mtp_logits). */
        st = vwn_forward_main(ctx, tokens + done, n, keep_from, NULL);
        if (!st && ctx->n_mtp > 0)
            st = vwn_forward_mtp_catchup(ctx, ctx->params.logits_all && last_chunk ? 2 : 0);
        if (st) {
            char msg[1024];
            strncpy(msg, vwn_last_error(), sizeof msg - 1);
            msg[sizeof msg - 1] = '\0';
            vwn_context_truncate_internal(ctx, n_before);
            ctx->logits_count = 0;
            for (int32_t j = 0; j < ctx->n_mtp; j++) ctx->mtp_count[j] = 0;
            vwn_ctx_end(ctx);
            return vwn_fail(st, "%s (the context was rolled back to %d tokens)", msg, n_before);
        }
        done += n;
    }
    vwn_ctx_end(ctx);
    ctx->perf.n_eval_tokens += (uint64_t)n_tokens;
    ctx->perf.n_eval_calls++;
    ctx->perf.t_eval_us += vwn_time_us() - t0;
    return VWN_OK;
}

/* ---- outputs -------------------------------------------------------------------------------- */

vwn_status vwn_get_logits(vwn_context *ctx, int32_t pos, const float **out_logits) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!out_logits) return vwn_fail(VWN_ERR_INVALID_ARG, "out_logits is NULL");
    *out_logits = NULL;
    if (ctx->logits_count == 0) return vwn_fail(VWN_ERR_NOT_KEPT, "no logits: the latest call computed none");
    if (pos == -1) pos = ctx->logits_first + ctx->logits_count - 1;
    if (pos < ctx->logits_first || pos >= ctx->logits_first + ctx->logits_count)
        return vwn_fail(VWN_ERR_NOT_KEPT,
                        "logits of position %d were not kept (the latest call kept positions %d..%d; "
                        "set logits_all to keep every position)",
                        pos, ctx->logits_first, ctx->logits_first + ctx->logits_count - 1);
    *out_logits = ctx->logits + (size_t)(pos - ctx->logits_first) * ctx->model->hp.n_vocab;
    return VWN_OK;
}

vwn_status vwn_get_mtp_logits(vwn_context *ctx, int32_t j, int32_t pos, const float **out_logits) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!out_logits) return vwn_fail(VWN_ERR_INVALID_ARG, "out_logits is NULL");
    *out_logits = NULL;
    if (ctx->model->hp.mtp_depth == 0) return vwn_fail(VWN_ERR_NO_MTP, "the model has no MTP modules");
    if (ctx->n_mtp == 0) return vwn_fail(VWN_ERR_NO_MTP, "MTP is disabled in this context (params.mtp)");
    if (j < 1 || j > ctx->n_mtp)
        return vwn_fail(VWN_ERR_INVALID_ARG, "MTP module %d is outside 1..%d", j, ctx->n_mtp);
    if (!ctx->params.logits_all) {
        /* lazy: the logits of module j at its last position n_past-1-j, computed when first asked */
        const int32_t last = ctx->n_past - 1 - j;
        if (pos == -1) pos = last;
        if (pos != last || last < 0)
            return vwn_fail(VWN_ERR_NOT_KEPT,
                            "MTP module %d keeps logits only at its last position %d (set logits_all to keep every position)",
                            j, last);
        if (ctx->mtp_count[j - 1] == 0 || ctx->mtp_first[j - 1] + ctx->mtp_count[j - 1] - 1 != pos) {
            vwn_ctx_begin(ctx);
            st = vwn_forward_mtp_catchup(ctx, 0);
            if (!st && ctx->mtp_last_pos[j - 1] != pos && ctx->mtp_len[j - 1] == pos + 1 &&
                vwn_ring_get(ctx, j - 1, pos)) {
                /* the module's last output state is not at hand (e.g. after a restored state):
                 * run the module at that position again (same inputs, same cache entries) */
                ctx->mtp_len[j - 1] = pos;
                st = vwn_forward_mtp_catchup(ctx, 0);
            }
            if (!st && ctx->mtp_last_pos[j - 1] != pos)
                st = vwn_fail(VWN_ERR_NOT_KEPT,
                              "MTP module %d logits of position %d are not at hand (a restored state keeps only "
                              "the logits it had); they are computed again after the next decode", j, pos);
            if (!st) vwn_forward_mtp_last_logits(ctx, j);
            vwn_ctx_end(ctx);
            if (st) return st;
        }
    }
    const int32_t first = ctx->mtp_first[j - 1], count = ctx->mtp_count[j - 1];
    if (count == 0) return vwn_fail(VWN_ERR_NOT_KEPT, "MTP module %d computed no logits in the latest call", j);
    if (pos == -1) pos = first + count - 1;
    if (pos < first || pos >= first + count)
        return vwn_fail(VWN_ERR_NOT_KEPT, "MTP module %d logits of position %d were not kept (kept %d..%d)",
                        j, pos, first, first + count - 1);
    *out_logits = ctx->mtp_logits + ((size_t)(j - 1) * ctx->n_out + (size_t)(pos - first)) * ctx->model->hp.n_vocab;
    return VWN_OK;
}

int32_t vwn_context_length(const vwn_context *ctx) {
    vwn_clear_error();
    if (vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context")) return -1;
    return ctx->n_past;
}

int32_t vwn_context_mtp_length(const vwn_context *ctx, int32_t j) {
    vwn_clear_error();
    if (vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context")) return -1;
    if (j < 1 || j > ctx->n_mtp) {
        vwn_fail(VWN_ERR_INVALID_ARG, "MTP module %d is outside 1..%d", j, ctx->n_mtp);
        return -1;
    }
    return ctx->mtp_len[j - 1];
}

const int32_t *vwn_context_tokens(const vwn_context *ctx) {
    vwn_clear_error();
    if (vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context")) return NULL;
    return ctx->tokens;
}

/* ---- truncation ----------------------------------------------------------------------------- */

/* True if the ring holds stage at every position of [from, to). */
static bool ring_has(vwn_context *ctx, int32_t stage, int32_t from, int32_t to) {
    for (int32_t p = from; p < to; p++)
        if (!vwn_ring_get(ctx, stage, p)) return false;
    return true;
}

static void ring_drop_from(vwn_context *ctx, int32_t stage, int32_t from) {
    int32_t *tags = ctx->state_pos + (size_t)stage * ctx->ring;
    for (int32_t i = 0; i < ctx->ring; i++)
        if (tags[i] >= from) tags[i] = -1;
}

vwn_status vwn_context_truncate_internal(vwn_context *ctx, int32_t n_keep) {
    ctx->draft_n = 0;
    ctx->n_past = n_keep;
    if (ctx->n_mtp == 0) return VWN_OK;

    /* module j keeps positions whose input token t[i+j] is still in the cache */
    for (int32_t j = 1; j <= ctx->n_mtp; j++) {
        const int32_t lim = n_keep - j > 0 ? n_keep - j : 0;
        if (ctx->mtp_len[j - 1] > lim) ctx->mtp_len[j - 1] = lim;
        /* the kept output state of the module's last position (for its logits) may be gone;
         * vwn_get_mtp_logits then recomputes that position */
        if (ctx->mtp_last_pos[j - 1] >= ctx->mtp_len[j - 1]) ctx->mtp_last_pos[j - 1] = -1;
    }
    ring_drop_from(ctx, 0, n_keep);
    for (int32_t j = 1; j < ctx->n_mtp; j++) ring_drop_from(ctx, j, ctx->mtp_len[j - 1]);

    /* The next catch-up of module j reads stage j-1 at [mtp_len[j], ...); what it does not
     * recompute in the same pass must still be in the ring. */
    bool ok = ring_has(ctx, 0, ctx->mtp_len[0], n_keep);
    for (int32_t j = 2; j <= ctx->n_mtp && ok; j++)
        ok = ring_has(ctx, j - 1, ctx->mtp_len[j - 1], ctx->mtp_len[j - 2]);
    if (ok) return VWN_OK;

    /* A far rewind: the states were overwritten. Recompute them: every module restarts at the
     * earliest position any of them needs and the main model re-evaluates from there (its KV
     * entries are rewritten with the same values). */
    int32_t r = n_keep;
    for (int32_t j = 0; j < ctx->n_mtp; j++) if (ctx->mtp_len[j] < r) r = ctx->mtp_len[j];
    for (int32_t j = 0; j < ctx->n_mtp; j++) {
        ctx->mtp_len[j] = r;
        ring_drop_from(ctx, j, r);
    }
    ctx->n_past = r;
    int32_t redo[64];
    /* a rewind cannot stop half way (it also runs while rolling back an aborted call): the abort
     * callback is not consulted here */
    const vwn_abort_callback abort_cb = ctx->params.abort_callback;
    ctx->params.abort_callback = NULL;
    vwn_status st = VWN_OK;
    for (int32_t p = r; p < n_keep && st == VWN_OK;) {
        int32_t n = n_keep - p;
        if (n > ctx->params.n_batch) n = ctx->params.n_batch;
        if (n > 64) n = 64;
        memcpy(redo, ctx->tokens + p, (size_t)n * sizeof(int32_t));
        st = vwn_forward_main(ctx, redo, n, INT32_MAX, NULL);
        p += n;
    }
    ctx->params.abort_callback = abort_cb;
    return st;
}

vwn_status vwn_context_truncate(vwn_context *ctx, int32_t n_keep) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (n_keep < 0 || n_keep > ctx->n_past)
        return vwn_fail(VWN_ERR_INVALID_ARG, "n_keep = %d is outside 0..%d (the context length)", n_keep, ctx->n_past);
    ctx->logits_count = 0;
    for (int32_t j = 0; j < ctx->n_mtp; j++) ctx->mtp_count[j] = 0;
    vwn_ctx_begin(ctx); /* a far rewind recomputes a few states */
    st = vwn_context_truncate_internal(ctx, n_keep);
    vwn_ctx_end(ctx);
    return st;
}

vwn_status vwn_context_clear(vwn_context *ctx) { return vwn_context_truncate(ctx, 0); }

vwn_status vwn_context_set_threads(vwn_context *ctx, int32_t n_threads) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return vwn_fail(VWN_ERR_INVALID_ARG, "n_threads = %d is outside 1..%d", n_threads, MAX_THREADS);
    if (n_threads > ctx->params.n_threads)
        return vwn_fail(VWN_ERR_INVALID_ARG,
                        "n_threads = %d exceeds the %d the context was created with (its scratch is sized for those)",
                        n_threads, ctx->params.n_threads);
    ctx->n_threads = n_threads;
    return VWN_OK;
}

vwn_status vwn_context_get_perf(const vwn_context *ctx, vwn_perf *out) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "out is NULL");
    *out = ctx->perf;
    return VWN_OK;
}

vwn_status vwn_context_reset_perf(vwn_context *ctx) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    memset(&ctx->perf, 0, sizeof ctx->perf);
    return VWN_OK;
}

/* forward.c -- the VWN forward pass, top to bottom (spec §2-6):
 *
 *   embed -> for each layer: GHC(attention), GHC(FFN) -> output head (group norm, reduce, head)
 *   MTP module j: (state of stage j-1, embedding of t[i+j]) -> one VWN layer -> shared head
 *
 * Every function works on a batch of T consecutive positions. Heavy products go through
 * vwn_matmul_mt (lib/ops), the GHC maths through ghc.c, attention through attention.c.
 * Activations are fp32 whatever the weight type. */
#include "context.h"
#include "common.h"
#include "ghc.h"
#include "attention.h"

#include <math.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------------------------- */

/* torch.nn.GroupNorm over r = n/m groups of D contiguous channels, then the affine weight/bias. */
static void groupnorm(float *out, const float *x, const vwn_hparams *hp, const float *w,
                      const float *b) {
    const int64_t groups = hp->ghc_n / hp->ghc_m, width = hp->n_embd;
    for (int64_t g = 0; g < groups; g++) {
        const float *xg = x + g * width;
        float *og = out + g * width;
        double mean = 0.0, var = 0.0;
        for (int64_t c = 0; c < width; c++) mean += xg[c];
        mean /= (double)width;
        for (int64_t c = 0; c < width; c++) {
            const double d = xg[c] - mean;
            var += d * d;
        }
        var /= (double)width; /* biased, as torch */
        const double inv = 1.0 / sqrt(var + (double)hp->gn_eps);
        for (int64_t c = 0; c < width; c++) {
            const int64_t ch = g * width + c;
            og[c] = (float)((xg[c] - mean) * inv) * w[ch] + b[ch];
        }
    }
}

/* The per-token work between the products (norms, RoPE and the cache stores, SiLU) is shared out
 * over the context's threads when a call has at least PAR_TOKENS tokens: on one thread it left the
 * other waiting for 5-7% of a 256-token prefill (docs/performance.md, "A balanced split for
 * prefill"). Fewer tokens run on the calling thread with no OpenMP construct at all (a serialized
 * region costs about a microsecond, several times each layer in decoding). Each token's result is
 * the same either way. */
#define PAR_TOKENS 16

static bool par_tokens(const vwn_context *ctx, int32_t T) { return ctx->n_run > 1 && T >= PAR_TOKENS; }

/* out[t] = rmsnorm(x[t]) ⊙ w for T rows of width D (out may be x). */
static void rmsnorm_rows(vwn_context *ctx, float *out, const float *x, const float *w, int32_t T, int32_t D) {
    const float eps = ctx->model->hp.rms_eps;
    if (par_tokens(ctx, T)) {
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(ctx->n_run) schedule(static)
#endif
        for (int32_t t = 0; t < T; t++) ctx->ops->rmsnorm(out + (size_t)t * D, x + (size_t)t * D, w, D, eps);
        return;
    }
    for (int32_t t = 0; t < T; t++) ctx->ops->rmsnorm(out + (size_t)t * D, x + (size_t)t * D, w, D, eps);
}

static inline void linear(vwn_context *ctx, const vwn_mat *W, const float *X, int64_t T, float *Y) {
    vwn_matmul_mt(ctx->ops, W, X, T, Y, ctx->s.xq, ctx->n_run);
}

/* Two or three products of the same input in one thread team when the weights share a type (a
 * file may mix types; then one at a time). */
static void linear_many(vwn_context *ctx, const vwn_mat *const *W, float *const *Y, int count,
                        const float *X, int64_t T) {
    bool same = true;
    for (int i = 1; i < count; i++) same = same && W[i]->type == W[0]->type && W[i]->cols == W[0]->cols;
    if (same) {
        vwn_matmul_mt_many(ctx->ops, W, Y, count, X, T, ctx->s.xq, ctx->n_run);
        return;
    }
    for (int i = 0; i < count; i++) linear(ctx, W[i], X, T, Y[i]);
}

/* ---- input embedding (spec §4) -------------------------------------------------------------- */

/* h'_0 of T tokens into out [T][D']. Uses ctx->s.x as row scratch for the factorized kind. */
static void embed(vwn_context *ctx, const int32_t *tokens, int32_t T, float *out) {
    const vwn_model *m = ctx->model;
    const vwn_hparams *hp = &m->hp;
    const bool expand = !hp->wide_embedding && m->embed_expand.data != NULL;
    float *rows = expand ? ctx->s.x : out;
    const int64_t width = m->embed.cols; /* D' (wide) or D (factorized) */
    for (int32_t t = 0; t < T; t++)
        vwn_dequant_row(m->embed.type, (const char *)m->embed.data + (size_t)tokens[t] * m->embed.row_bytes,
                        rows + (size_t)t * width, width);
    if (expand) linear(ctx, &m->embed_expand, rows, T, out);
}

/* ---- the two sublayers (spec §3) ------------------------------------------------------------ */

/* Token t of the call (at position pos): RoPE on its query and key, its key and value into the caches. */
static void rope_store(vwn_context *ctx, int32_t t, int32_t pos, void *k_cache, void *v_cache) {
    const vwn_hparams *hp = &ctx->model->hp;
    vwn_scratch *s = &ctx->s;
    const int32_t hd = hp->head_dim, kv_dim = hp->n_head_kv * hd, half = hd / 2;
    const int32_t kv_type = ctx->params.kv_type, n_ctx = ctx->params.n_ctx;
    const float *c = ctx->rope_cos + (size_t)pos * half, *sn = ctx->rope_sin + (size_t)pos * half;
    vwn_rope_apply(s->q + (size_t)t * hp->n_head * hd, hp->n_head, hd, c, sn);
    vwn_rope_apply(s->k + (size_t)t * kv_dim, hp->n_head_kv, hd, c, sn);
    for (int32_t h = 0; h < hp->n_head_kv; h++) { /* layout: attention.h */
        vwn_kv_store(ctx->ops, kv_type, vwn_kv_row(k_cache, ctx->kv_row, n_ctx, h, pos),
                     s->k + (size_t)t * kv_dim + (size_t)h * hd, hd);
        vwn_kv_store(ctx->ops, kv_type, vwn_kv_row(v_cache, ctx->kv_row, n_ctx, h, pos),
                     s->v + (size_t)t * kv_dim + (size_t)h * hd, hd);
    }
}

/* y = Wo · attention(RoPE(Wq a), RoPE(Wk a), Wv a), a = rmsnorm(x) ⊙ attn_norm; T tokens from p0. */
static void attention_sublayer(vwn_context *ctx, const vwn_layer_weights *lw, const float *x,
                               int32_t T, int32_t p0, void *k_cache, void *v_cache, float *y) {
    const vwn_hparams *hp = &ctx->model->hp;
    vwn_scratch *s = &ctx->s;
    const int32_t D = hp->n_embd, hd = hp->head_dim;
    const int32_t kv_type = ctx->params.kv_type, n_ctx = ctx->params.n_ctx;
    rmsnorm_rows(ctx, s->xn, x, lw->attn_norm, T, D);
    const vwn_mat *qkv[3] = {&lw->wq, &lw->wk, &lw->wv};
    float *const qkv_out[3] = {s->q, s->k, s->v};
    linear_many(ctx, qkv, qkv_out, 3, s->xn, T);
    if (par_tokens(ctx, T)) {
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(ctx->n_run) schedule(static)
#endif
        for (int32_t t = 0; t < T; t++) rope_store(ctx, t, p0 + t, k_cache, v_cache);
    } else {
        for (int32_t t = 0; t < T; t++) rope_store(ctx, t, p0 + t, k_cache, v_cache);
    }
    vwn_attention(ctx->ops, s->q, kv_type, k_cache, v_cache, p0, T, hp->n_head, hp->n_head_kv, hd, s->xn,
                  s->att, n_ctx, ctx->n_run, ctx->att_split);
    linear(ctx, &lw->wo, s->xn, T, y);
}

/* y = Wdown · (silu(Wgate f) ⊙ Wup f), f = rmsnorm(x) ⊙ ffn_norm. */
static void ffn_sublayer(vwn_context *ctx, const vwn_layer_weights *lw, const float *x, int32_t T,
                         float *y) {
    const vwn_hparams *hp = &ctx->model->hp;
    vwn_scratch *s = &ctx->s;
    const int32_t D = hp->n_embd, F = hp->n_ff;
    rmsnorm_rows(ctx, s->xn, x, lw->ffn_norm, T, D);
    const vwn_mat *gate_up[2] = {&lw->w_gate, &lw->w_up};
    float *const gate_up_out[2] = {s->ff1, s->ff2};
    linear_many(ctx, gate_up, gate_up_out, 2, s->xn, T);
    if (par_tokens(ctx, T)) {
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(ctx->n_run) schedule(static)
#endif
        for (int32_t t = 0; t < T; t++)
            ctx->ops->silu_mul(s->ff1 + (size_t)t * F, s->ff1 + (size_t)t * F, s->ff2 + (size_t)t * F, F);
    } else { /* a token at a time here too: the AVX2 and NEON tails (F % 8) are scalar */
        for (int32_t t = 0; t < T; t++)
            ctx->ops->silu_mul(s->ff1 + (size_t)t * F, s->ff1 + (size_t)t * F, s->ff2 + (size_t)t * F, F);
    }
    linear(ctx, &lw->w_down, s->ff1, T, y);
}

/* ---- one VWN layer: each sublayer wrapped by its GHC (spec §2) ------------------------------ */

/* A GHC-wrapped sublayer leaves its write pending -- the state is then s.carry + write(s.wcoef,
 * s.y) -- so that the write can be done row by row inside the next module's first pass (ghc.h).
 * ghc_enter starts a module from either state and leaves the new carry in s.carry (the other
 * buffer, s.wide, is then free) and the read in s.x; ghc_finish does a pending write on its own
 * (after the last layer) and leaves the state in s.wide. */
static void ghc_enter(vwn_context *ctx, const vwn_ghc_weights *g, int32_t T, bool *pending) {
    const vwn_hparams *hp = &ctx->model->hp;
    vwn_scratch *s = &ctx->s;
    const vwn_ghc_scratch sc = {s->coef, s->wcoef, s->emb, s->ghc_tmp, false};
    float *H = *pending ? s->carry : s->wide, *spare = *pending ? s->wide : s->carry;
    const float *carry = vwn_ghc_before(hp, g, ctx->ops, *pending ? s->y : NULL, H, T, s->x, spare, &sc, ctx->n_run);
    if (carry != s->carry) {
        float *tmp = s->wide; s->wide = s->carry; s->carry = tmp;
    }
    *pending = true; /* once the sublayer has written s.y */
}

static void ghc_finish(vwn_context *ctx, int32_t T, bool *pending) {
    if (!*pending) return;
    const double t0 = vwn_time_us();
    vwn_scratch *s = &ctx->s;
    vwn_ghc_after(&ctx->model->hp, ctx->ops, s->wcoef, s->y, T, s->carry, ctx->n_run);
    float *tmp = s->wide; s->wide = s->carry; s->carry = tmp;
    *pending = false;
    ctx->perf.t_ghc_us += vwn_time_us() - t0;
}

/* Runs one layer on the wide states (T tokens from position p0): each sublayer's GHC reads the
 * backbone input from the state and carries the state; the sublayer's write is left pending
 * (see ghc_enter). */
static void layer_forward(vwn_context *ctx, const vwn_layer_weights *lw, int32_t T, int32_t p0,
                          void *k_cache, void *v_cache, bool *pending) {
    vwn_scratch *s = &ctx->s;
    const double t0 = vwn_time_us();
    ghc_enter(ctx, &lw->attn_ghc, T, pending);
    const double t1 = vwn_time_us();
    attention_sublayer(ctx, lw, s->x, T, p0, k_cache, v_cache, s->y);
    const double t2 = vwn_time_us();
    ghc_enter(ctx, &lw->ffn_ghc, T, pending);
    const double t3 = vwn_time_us();
    ffn_sublayer(ctx, lw, s->x, T, s->y);
    ctx->perf.t_ghc_us += (t1 - t0) + (t3 - t2);
}

/* ---- output head (spec §5): group norm, reduce, final RMSNorm, LM head ---------------------- */

/* logits [T][V] of T wide states H [T][D'], with the given group-norm affine and final norm, through
 * the given head (the model's lm_head, or its draft head). */
static void output_head(vwn_context *ctx, const float *H, int32_t T, const float *gn_w,
                        const float *gn_b, const float *final_norm, const vwn_mat *head, float *logits) {
    const vwn_model *m = ctx->model;
    const vwn_hparams *hp = &m->hp;
    vwn_scratch *s = &ctx->s;
    const int32_t Dw = hp->n_wide, D = hp->n_embd;
    const float *z = H;
    if (hp->output_group_norm) {
        for (int32_t t = 0; t < T; t++)
            groupnorm(s->carry + (size_t)t * Dw, H + (size_t)t * Dw, hp, gn_w, gn_b);
        z = s->carry;
    }
    if (m->reduce.data) linear(ctx, &m->reduce, z, T, s->head);
    else memcpy(s->head, z, (size_t)T * D * sizeof(float)); /* n == m: D' == D */
    rmsnorm_rows(ctx, s->head, s->head, final_norm, T, D);
    linear(ctx, head, s->head, T, logits);
}

/* ---- the main model ------------------------------------------------------------------------- */

float *vwn_ring_get(vwn_context *ctx, int32_t stage, int32_t pos) {
    if (stage < 0 || stage >= ctx->n_mtp || pos < 0) return NULL;
    const int32_t slot = pos % ctx->ring;
    if (ctx->state_pos[(size_t)stage * ctx->ring + slot] != pos) return NULL;
    return ctx->states + ((size_t)stage * ctx->ring + slot) * ctx->model->hp.n_wide;
}

static float *ring_put(vwn_context *ctx, int32_t stage, int32_t pos) {
    const int32_t slot = pos % ctx->ring;
    ctx->state_pos[(size_t)stage * ctx->ring + slot] = pos;
    return ctx->states + ((size_t)stage * ctx->ring + slot) * ctx->model->hp.n_wide;
}

static bool aborted(vwn_context *ctx) {
    return ctx->params.abort_callback && ctx->params.abort_callback(ctx->params.abort_user_data);
}

vwn_status vwn_forward_main(vwn_context *ctx, const int32_t *tokens, int32_t n, int32_t keep_from,
                            float *logits_out) {
    const vwn_model *m = ctx->model;
    const vwn_hparams *hp = &m->hp;
    const int32_t p0 = ctx->n_past, Dw = hp->n_wide;
    const size_t kv_layer = (size_t)ctx->params.n_ctx * hp->n_head_kv * ctx->kv_row; /* bytes */

    embed(ctx, tokens, n, ctx->s.wide);
    bool pending = false;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        if (aborted(ctx)) return vwn_fail(VWN_ERR_ABORTED, "decode aborted by the callback at layer %d", l);
        layer_forward(ctx, &m->layers[l], n, p0, (char *)ctx->k_cache + l * kv_layer,
                      (char *)ctx->v_cache + l * kv_layer, &pending);
    }
    ghc_finish(ctx, n, &pending);
    const float *H = ctx->s.wide;

    /* the final states feed MTP module 1 */
    if (ctx->n_mtp > 0)
        for (int32_t t = 0; t < n; t++)
            memcpy(ring_put(ctx, 0, p0 + t), H + (size_t)t * Dw, (size_t)Dw * sizeof(float));

    const int32_t first = keep_from > p0 ? keep_from : p0;
    const int32_t count = p0 + n - first;
    if (count > 0)
        output_head(ctx, H + (size_t)(first - p0) * Dw, count, m->out_norm_w, m->out_norm_b,
                    m->final_norm, &m->lm_head, logits_out ? logits_out : ctx->logits);
    if (!logits_out) {
        ctx->logits_first = first;
        ctx->logits_count = count > 0 ? count : 0;
    }

    memcpy(ctx->tokens + p0, tokens, (size_t)n * sizeof(int32_t));
    ctx->n_past += n;
    return VWN_OK;
}

/* ---- MTP modules (spec §6) ------------------------------------------------------------------ */

/* Runs module j (1-based) at T consecutive positions from pos0. P[t] is the previous stage's wide
 * state at pos0+t, toks[t] the input token t[pos0+t+j]. The output states U are left in s.wide. */
static void mtp_run(vwn_context *ctx, int32_t j, int32_t pos0, int32_t T, const float *const *P,
                    const int32_t *toks) {
    const vwn_model *m = ctx->model;
    const vwn_hparams *hp = &m->hp;
    const vwn_mtp_weights *mw = &m->mtp[j - 1];
    vwn_scratch *s = &ctx->s;
    const int32_t Dw = hp->n_wide, n = hp->ghc_n, sg = hp->seg;
    const size_t kv_mod = (size_t)ctx->params.n_ctx * hp->n_head_kv * ctx->kv_row; /* bytes */

    /* e = rmsnorm_{D'}(h'_0(tok)) ⊙ enorm, p = rmsnorm_{D'}(P) ⊙ hnorm, rows interleaved [e_c ; p_c] */
    embed(ctx, toks, T, s->emb);
    for (int32_t t = 0; t < T; t++) {
        float *e = s->emb + (size_t)t * Dw;
        ctx->ops->rmsnorm(e, e, mw->enorm, Dw, hp->rms_eps);
        float *p = s->carry + (size_t)t * Dw;
        ctx->ops->rmsnorm(p, P[t], mw->hnorm, Dw, hp->rms_eps);
        for (int32_t c = 0; c < n; c++) {
            float *dst = s->mtp_in + ((size_t)t * n + c) * 2 * sg;
            memcpy(dst, e + (size_t)c * sg, (size_t)sg * sizeof(float));
            memcpy(dst + sg, p + (size_t)c * sg, (size_t)sg * sizeof(float));
        }
    }
    /* U_row_c = proj · [e_c ; p_c]: one product over all T*n rows */
    linear(ctx, &mw->proj, s->mtp_in, (int64_t)T * n, s->wide);
    bool pending = false;
    layer_forward(ctx, &mw->layer, T, pos0, (char *)ctx->mtp_k + (size_t)(j - 1) * kv_mod,
                  (char *)ctx->mtp_v + (size_t)(j - 1) * kv_mod, &pending);
    ghc_finish(ctx, T, &pending);
}

/* After module j ran at positions [c0, c0 + T) of its cache (outputs U in s.wide rows 0..T-1):
 * keep them -- the states module j+1 reads into the ring, the last one for the module's logits,
 * the logits asked for (want_logits as in vwn_forward_mtp_catchup; end = the module's target
 * length) -- and advance the module's length. */
static vwn_status mtp_keep(vwn_context *ctx, int32_t j, int32_t c0, int32_t T, int32_t end, int want_logits) {
    const vwn_model *m = ctx->model;
    const int32_t Dw = m->hp.n_wide, V = m->hp.n_vocab;
    const float *U = ctx->s.wide;
    if (j < ctx->n_mtp)
        for (int32_t t = 0; t < T; t++)
            memcpy(ring_put(ctx, j, c0 + t), U + (size_t)t * Dw, (size_t)Dw * sizeof(float));
    memcpy(ctx->mtp_last_U + (size_t)(j - 1) * Dw, U + (size_t)(T - 1) * Dw, (size_t)Dw * sizeof(float));
    ctx->mtp_last_pos[j - 1] = c0 + T - 1;
    /* logits: every position (want 2) or the last one of the module (want 1) */
    int32_t lf = -1, lc = 0;
    if (want_logits == 2) { /* after a far rewind a module may lag by more than n_out: keep the last n_out */
        lf = c0 > end - ctx->n_out ? c0 : end - ctx->n_out;
        lc = c0 + T - lf;
    }
    else if (want_logits == 1 && c0 + T == end) { lf = end - 1; lc = 1; }
    if (lc > 0) {
        int32_t *first = &ctx->mtp_first[j - 1], *count = &ctx->mtp_count[j - 1];
        if (*count == 0 || want_logits == 1) { *first = lf; *count = 0; }
        if (*count + lc > ctx->n_out)
            return vwn_fail(VWN_ERR_INTERNAL, "MTP logits overflow the output buffer");
        const vwn_mtp_weights *mw = &m->mtp[j - 1];
        output_head(ctx, U + (size_t)(lf - c0) * Dw, lc, mw->out_norm_w, mw->out_norm_b, mw->final_norm,
                    &m->lm_head, ctx->mtp_logits + ((size_t)(j - 1) * ctx->n_out + *count) * V);
        *count += lc;
    }
    ctx->mtp_len[j - 1] = c0 + T;
    return VWN_OK;
}

/* Module j up to length end, in batches of at most max_T positions. */
static vwn_status mtp_advance(vwn_context *ctx, int32_t j, int32_t end, int32_t max_T, int want_logits) {
    const float **P = ctx->s.prow;
    while (ctx->mtp_len[j - 1] < end) {
        if (aborted(ctx)) return vwn_fail(VWN_ERR_ABORTED, "MTP catch-up aborted by the callback");
        const int32_t c0 = ctx->mtp_len[j - 1];
        int32_t T = end - c0;
        if (T > max_T) T = max_T;
        for (int32_t t = 0; t < T; t++) {
            P[t] = vwn_ring_get(ctx, j - 1, c0 + t);
            if (!P[t])
                return vwn_fail(VWN_ERR_INTERNAL, "MTP module %d: state of stage %d at position %d is gone",
                                j, j - 1, c0 + t);
        }
        mtp_run(ctx, j, c0, T, P, ctx->tokens + c0 + j);
        vwn_status st = mtp_keep(ctx, j, c0, T, end, want_logits);
        if (st) return st;
    }
    return VWN_OK;
}

vwn_status vwn_forward_mtp_catchup(vwn_context *ctx, int want_logits) {
    const double t_start = vwn_time_us();
    for (int32_t j = 1; j <= ctx->n_mtp; j++) {
        vwn_status st = mtp_advance(ctx, j, ctx->n_past - j, ctx->params.n_batch, want_logits);
        if (st) return st;
    }
    ctx->perf.t_mtp_us += vwn_time_us() - t_start;
    return VWN_OK;
}

vwn_status vwn_forward_mtp_draft_step(vwn_context *ctx, int32_t j, const float *const *P_tent,
                                      const int32_t *toks_tent, int32_t n_tent, float *U_tent,
                                      const vwn_mat *head, float *logits_out) {
    const vwn_model *m = ctx->model;
    const size_t Dw = (size_t)m->hp.n_wide;
    enum { MAX_T = 32 };
    const int32_t q = ctx->n_past - 1, end = ctx->n_past - j; /* kept: [mtp_len, end), tentative: [.., q] */
    if (n_tent < 1 || n_tent > VWN_MAX_MTP + 1 || q + 1 - n_tent != (end > 0 ? end : 0))
        return vwn_fail(VWN_ERR_INTERNAL, "MTP draft step: %d tentative positions do not end at %d", n_tent, q);
    int32_t max_T = ctx->params.n_batch < MAX_T ? ctx->params.n_batch : MAX_T;
    /* the kept positions that do not fit into one batch with the tentative ones, first */
    vwn_status st = mtp_advance(ctx, j, end - (max_T - n_tent), ctx->params.n_batch, 0);
    if (st) return st;
    const int32_t c0 = ctx->mtp_len[j - 1], n_keep = end > c0 ? end - c0 : 0, T = n_keep + n_tent;
    const float *P[MAX_T];
    int32_t toks[MAX_T];
    for (int32_t t = 0; t < n_keep; t++) {
        P[t] = vwn_ring_get(ctx, j - 1, c0 + t);
        if (!P[t])
            return vwn_fail(VWN_ERR_INTERNAL, "MTP module %d: state of stage %d at position %d is gone", j,
                            j - 1, c0 + t);
        toks[t] = ctx->tokens[c0 + t + j];
    }
    for (int32_t t = 0; t < n_tent; t++) {
        P[n_keep + t] = P_tent[t];
        toks[n_keep + t] = toks_tent[t];
    }
    mtp_run(ctx, j, c0, T, P, toks);
    memcpy(U_tent, ctx->s.wide + (size_t)n_keep * Dw, (size_t)n_tent * Dw * sizeof(float));
    if (n_keep > 0 && (st = mtp_keep(ctx, j, c0, n_keep, end, 0))) return st;
    const vwn_mtp_weights *mw = &m->mtp[j - 1];
    output_head(ctx, U_tent + (size_t)(n_tent - 1) * Dw, 1, mw->out_norm_w, mw->out_norm_b, mw->final_norm,
                head, logits_out);
    return VWN_OK;
}

void vwn_forward_mtp_last_logits(vwn_context *ctx, int32_t j) {
    const vwn_mtp_weights *mw = &ctx->model->mtp[j - 1];
    output_head(ctx, ctx->mtp_last_U + (size_t)(j - 1) * ctx->model->hp.n_wide, 1, mw->out_norm_w,
                mw->out_norm_b, mw->final_norm, &ctx->model->lm_head, ctx->mtp_logits + (size_t)(j - 1) * ctx->n_out * ctx->model->hp.n_vocab);
    ctx->mtp_first[j - 1] = ctx->mtp_last_pos[j - 1];
    ctx->mtp_count[j - 1] = 1;
}

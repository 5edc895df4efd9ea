/* speculative.c -- speculative decoding with the model's own MTP modules (spec §6).
 *
 * Draft: after the main model has decoded up to position q and the host picked t = t[q+1], module 1
 * runs at q with (state h'_L at q, t) and proposes d1 = t[q+2]; module j runs at q with (output of
 * module j-1 at q, d_{j-1}) and proposes d_j. Before that, module j must also have seen the
 * positions q+1-j .. q-1, whose input tokens t[q+1..] are only now known (t and earlier drafts):
 * those tentative entries are written past the module's cache length and never counted as kept.
 *
 * Verify: the main model evaluates [t, d1..dk] in one batch. Drafts are accepted left to right while
 * the target agrees -- exact match for a greedy sampler; otherwise accept d with probability
 * min(1, p(d)/q(d)) and on rejection draw from max(0, p - q) renormalised, which makes every kept
 * token follow the target distribution exactly. The caches are truncated past the first rejection;
 * the MTP modules catch up on the kept positions in the next draft, in one batch with its own. */
#include "context.h"
#include "common.h"

#include <math.h>
#include <string.h>

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static bool sampler_greedy(const vwn_sampler *s) { return s == NULL || vwn_sampler_is_greedy(s); }

/* fast: through the model's draft head (vwn_draft_fast), else lm_head (vwn_draft). */
static vwn_status draft(vwn_context *ctx, int32_t next_token, int32_t depth, vwn_sampler *sampler,
                        int32_t *out_drafts, float *out_draft_probs, int32_t *out_n_drafts, bool fast) {
    vwn_status st;
    if (out_n_drafts) *out_n_drafts = 0;
    const vwn_hparams *hp = &ctx->model->hp;
    if (hp->mtp_depth == 0) return vwn_fail(VWN_ERR_NO_MTP, "the model has no MTP modules to draft with");
    if (ctx->n_mtp == 0) return vwn_fail(VWN_ERR_NO_MTP, "MTP is disabled in this context (params.mtp)");
    if (depth < 1 || depth > ctx->n_mtp)
        return vwn_fail(VWN_ERR_INVALID_ARG, "draft depth %d is outside 1..%d (the model's MTP depth)", depth,
                        ctx->n_mtp);
    if (!out_drafts) return vwn_fail(VWN_ERR_INVALID_ARG, "out_drafts is NULL");
    if (ctx->n_past < 1) return vwn_fail(VWN_ERR_INVALID_ARG, "nothing decoded yet: decode a prompt before drafting");
    if (next_token < 0 || next_token >= hp->n_vocab)
        return vwn_fail(VWN_ERR_TOKEN_OUT_OF_RANGE, "next_token %d is outside the vocabulary [0, %d)", next_token,
                        hp->n_vocab);
    if (sampler && (st = vwn_check_handle(sampler, VWN_MAGIC_SAMPLER, "sampler"))) return st;
    if (depth + 1 > ctx->params.n_batch)
        return vwn_fail(VWN_ERR_INVALID_ARG, "n_batch = %d is smaller than the draft depth + 1", ctx->params.n_batch);

    const double t0 = vwn_time_us();

    const int32_t q = ctx->n_past - 1, Dw = hp->n_wide, V = hp->n_vocab;
    const bool greedy = sampler_greedy(sampler);
    int32_t ext[2 * VWN_MAX_MTP + 1]; /* ext[i] = t[q+1+i]: next_token, then the drafts */
    ext[0] = next_token;
    float *logits = ctx->verify_logits; /* scratch row; verify overwrites it later */
    const vwn_mat *head = fast && !ctx->draft_exact ? vwn_model_draft_head(ctx->model, ctx->ops, ctx->n_run)
                                                    : &ctx->model->lm_head;

    /* draft_states[(j-1)*k + idx]: output U of module j at position q+1-j+idx, computed here */
    for (int32_t j = 1; j <= depth; j++) {
        /* module j runs at positions q+1-j .. q (positions before 0 have nothing to predict from),
         * in one batch with the positions before them it has not seen yet (its catch-up after the
         * last verification or decode: vwn_forward_mtp_draft_step) */
        const int32_t i0 = q + 1 - j < 0 ? 0 : q + 1 - j, T = q + 1 - i0;
        const float *P[VWN_MAX_MTP + 1];
        int32_t toks[VWN_MAX_MTP + 1];
        for (int32_t i = i0; i <= q; i++) {
            const float *Pi;
            if (j == 1) Pi = vwn_ring_get(ctx, 0, i);
            else if (i >= q + 2 - j) Pi = ctx->draft_states + ((size_t)(j - 2) * ctx->n_mtp + (size_t)(i - (q + 2 - j))) * Dw;
            else Pi = vwn_ring_get(ctx, j - 1, i);
            if (!Pi) return vwn_fail(VWN_ERR_INTERNAL, "draft: state of stage %d at position %d is missing", j - 1, i);
            P[i - i0] = Pi;
            toks[i - i0] = ext[i + j - (q + 1)];
        }
        float *U = ctx->draft_states + ((size_t)(j - 1) * ctx->n_mtp + (size_t)(i0 - (q + 1 - j))) * Dw;
        if ((st = vwn_forward_mtp_draft_step(ctx, j, P, toks, T, U, head, logits))) return st;
        int32_t d;
        if (greedy) {
            d = argmax(logits, V);
            if (out_draft_probs) out_draft_probs[j - 1] = 1.0f;
        } else {
            float *probs = ctx->draft_probs + (size_t)(j - 1) * V;
            if ((st = vwn_sampler_probs(sampler, logits, V, probs))) return st;
            if ((st = vwn_sampler_draw(sampler, probs, V, &d))) return st;
            if (out_draft_probs) out_draft_probs[j - 1] = probs[d];
        }
        out_drafts[j - 1] = d;
        ctx->draft_tokens[j - 1] = d;
        ext[j] = d;
    }
    /* the modules past depth catch up as after a decode (those up to depth did above) */
    if ((st = vwn_forward_mtp_catchup(ctx, 0))) return st;
    ctx->draft_n = depth;
    ctx->draft_next = next_token;
    ctx->draft_sampled = !greedy;
    if (out_n_drafts) *out_n_drafts = depth;
    ctx->perf.t_mtp_us += vwn_time_us() - t0;
    return VWN_OK;
}

static vwn_status verify(vwn_context *ctx, vwn_sampler *sampler, int32_t *out_tokens, int32_t *out_n) {
    vwn_status st;
    if (out_n) *out_n = 0;
    if (!out_tokens || !out_n) return vwn_fail(VWN_ERR_INVALID_ARG, "out_tokens or out_n is NULL");
    if (ctx->draft_n == 0) return vwn_fail(VWN_ERR_NO_DRAFT, "verify needs a pending draft: call vwn_draft first");
    if (sampler && (st = vwn_check_handle(sampler, VWN_MAGIC_SAMPLER, "sampler"))) return st;
    const bool greedy = sampler_greedy(sampler);
    if (!greedy && !ctx->draft_sampled)
        return vwn_fail(VWN_ERR_INVALID_ARG, "the draft was greedy but verify got a sampling sampler");
    if (greedy && ctx->draft_sampled)
        return vwn_fail(VWN_ERR_INVALID_ARG, "the draft was sampled but verify got a greedy sampler");

    const vwn_hparams *hp = &ctx->model->hp;
    const int32_t k = ctx->draft_n, V = hp->n_vocab, n0 = ctx->n_past;
    if (k + 1 > ctx->params.n_ctx - n0)
        return vwn_fail(VWN_ERR_CONTEXT_FULL, "verifying %d tokens needs %d free positions, %d are left", k + 1,
                        k + 1, ctx->params.n_ctx - n0);
    const double t0 = vwn_time_us();

    int32_t seq[VWN_MAX_MTP + 1];
    seq[0] = ctx->draft_next;
    memcpy(seq + 1, ctx->draft_tokens, (size_t)k * sizeof(int32_t));
    if ((st = vwn_forward_main(ctx, seq, k + 1, n0, ctx->verify_logits))) {
        vwn_context_truncate_internal(ctx, n0);
        return st;
    }

    /* accept the longest agreeing prefix */
    int32_t accepted = 0, final_tok = -1;
    float *p = ctx->verify_logits; /* rows are turned into target probabilities in place */
    for (int32_t i = 0; i <= k; i++) {
        float *row = ctx->verify_logits + (size_t)i * V;
        if (greedy) {
            const int32_t target = argmax(row, V);
            if (i < k && target == seq[i + 1]) { accepted++; continue; }
            final_tok = target;
            break;
        }
        /* sampled: p = target distribution, q = draft distribution */
        if ((st = vwn_sampler_probs(sampler, row, V, row))) goto fail;
        p = row;
        if (i == k) { /* every draft accepted: the bonus token comes from the target */
            if ((st = vwn_sampler_draw(sampler, p, V, &final_tok))) goto fail;
            break;
        }
        const int32_t d = seq[i + 1];
        const float *qd = ctx->draft_probs + (size_t)i * V;
        double u;
        if ((st = vwn_sampler_uniform(sampler, &u))) goto fail;
        if (qd[d] > 0.0f && u < (double)p[d] / (double)qd[d]) {
            vwn_sampler_accept(sampler, d);
            accepted++;
            continue;
        }
        /* rejected: draw from the residual max(0, p - q), renormalised */
        double sum = 0.0;
        for (int32_t v = 0; v < V; v++) {
            const float r = p[v] - qd[v];
            p[v] = r > 0.0f ? r : 0.0f;
            sum += p[v];
        }
        if (sum <= 0.0) { /* p == q: the residual is empty, p itself is the right distribution */
            if ((st = vwn_sampler_probs(sampler, row, V, row))) goto fail;
        } else {
            for (int32_t v = 0; v < V; v++) p[v] = (float)(p[v] / sum);
        }
        if ((st = vwn_sampler_draw(sampler, p, V, &final_tok))) goto fail;
        break;
    }
    if (!greedy) vwn_sampler_accept(sampler, final_tok);

    /* keep t and the accepted drafts in the caches; the final token is not decoded yet */
    const int32_t n_keep = n0 + 1 + accepted;
    if (!greedy) {
        /* the logits rows were overwritten by probabilities: the host gets the target row from
         * before the overwrite only in the greedy case; recompute nothing, expose no logits */
        ctx->logits_count = 0;
    } else {
        memcpy(ctx->logits, ctx->verify_logits + (size_t)accepted * V, (size_t)V * sizeof(float));
        ctx->logits_first = n_keep - 1;
        ctx->logits_count = 1;
    }
    if ((st = vwn_context_truncate_internal(ctx, n_keep))) goto fail;
    for (int32_t j = 0; j < ctx->n_mtp; j++) ctx->mtp_count[j] = 0;
    /* the MTP modules catch up on the kept tokens in the next draft, in the batch of its own
     * positions (one pass over each module's weights per cycle instead of two); anything that
     * needs them earlier (a decode, vwn_get_mtp_logits) catches up first */

    memcpy(out_tokens, seq, (size_t)(1 + accepted) * sizeof(int32_t));
    out_tokens[1 + accepted] = final_tok;
    *out_n = accepted + 2;
    ctx->draft_n = 0;
    ctx->perf.n_eval_tokens += (uint64_t)(k + 1);
    ctx->perf.n_eval_calls++;
    ctx->perf.t_eval_us += vwn_time_us() - t0;
    return VWN_OK;

fail:
    vwn_context_truncate_internal(ctx, n0);
    ctx->logits_count = 0;
    return st;
}

/* ---- public entry points: handle check, thread budget ---------------------------------------- */

static vwn_status draft_entry(vwn_context *ctx, int32_t next_token, int32_t depth, vwn_sampler *sampler,
                              int32_t *out_drafts, float *out_draft_probs, int32_t *out_n_drafts, bool fast) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    vwn_ctx_begin(ctx);
    st = draft(ctx, next_token, depth, sampler, out_drafts, out_draft_probs, out_n_drafts, fast);
    vwn_ctx_end(ctx);
    return st;
}

vwn_status vwn_draft(vwn_context *ctx, int32_t next_token, int32_t depth, vwn_sampler *sampler,
                     int32_t *out_drafts, float *out_draft_probs, int32_t *out_n_drafts) {
    return draft_entry(ctx, next_token, depth, sampler, out_drafts, out_draft_probs, out_n_drafts, false);
}

vwn_status vwn_draft_fast(vwn_context *ctx, int32_t next_token, int32_t depth, vwn_sampler *sampler,
                          int32_t *out_drafts, float *out_draft_probs, int32_t *out_n_drafts) {
    return draft_entry(ctx, next_token, depth, sampler, out_drafts, out_draft_probs, out_n_drafts, true);
}

vwn_status vwn_verify(vwn_context *ctx, vwn_sampler *sampler, int32_t *out_tokens, int32_t *out_n) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    vwn_ctx_begin(ctx);
    st = verify(ctx, sampler, out_tokens, out_n);
    vwn_ctx_end(ctx);
    return st;
}

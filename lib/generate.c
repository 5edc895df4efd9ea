/* generate.c -- the generation loop: prompt -> decode -> sample -> stream text, until a stop.
 *
 * Plain:       decode(prompt); loop { t = sample(logits); emit t; decode([t]) }
 * Speculative: decode(prompt); t = sample(logits); loop { emit t; draft d1..dk from the MTP
 *              modules; verify [t, d1..dk] -> accepted drafts + one target token; emit them }
 *
 * Text is streamed through the callback in whole UTF-8 characters, and text that could be the
 * start of a stop string is held back until it is known not to be one. After the loop the context
 * holds the prompt and the emitted tokens, except that the last emitted token may not be decoded
 * yet -- the same in both modes. */
#include "context.h"
#include "common.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

vwn_generate_params vwn_generate_default_params(void) {
    vwn_generate_params p;
    memset(&p, 0, sizeof p);
    p.n_predict = 128;
    p.stop_at_eog = true;
    p.add_special = true;
    p.parse_special = false;
    p.spec_depth = 0;
    return p;
}

/* ---- the text stream: UTF-8 completion and stop strings ------------------------------------- */

typedef struct stream {
    char *buf;          /* generated text not yet emitted (whole or partial characters) */
    size_t len, cap;
    const vwn_generate_params *gp;
    size_t max_stop;    /* longest stop string */
    bool stopped;       /* a stop string was found */
} stream;

static bool stream_append(stream *s, const char *p, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->cap ? s->cap * 2 : 256);
        while (cap < s->len + n + 1) cap *= 2;
        char *nb = vwn_realloc(s->buf, cap);
        if (!nb) return false;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return true;
}

/* Bytes at the end of buf[0..len) that form an incomplete UTF-8 character (0 if none). */
static size_t utf8_incomplete_tail(const char *buf, size_t len) {
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        const unsigned char c = (unsigned char)buf[len - back];
        if ((c & 0xC0) == 0x80) continue;          /* continuation byte: keep looking */
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        return need > back ? back : 0;
    }
    return 0; /* only continuation bytes (invalid UTF-8): emit them as they are */
}

/* Length of the longest suffix of buf[0..len) that is a proper prefix of a stop string. */
static size_t stop_prefix_tail(const stream *s, size_t len) {
    size_t best = 0;
    for (int32_t i = 0; i < s->gp->n_stop; i++) {
        const char *st = s->gp->stop[i];
        if (!st) continue;
        const size_t sl = strlen(st);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > best; k--)
            if (k <= len && memcmp(s->buf + len - k, st, k) == 0) { best = k; break; }
    }
    return best;
}

/* Emits what can be emitted for a kept token; returns false if the callback asked to stop. */
static bool stream_emit(stream *s, int32_t token, bool flush) {
    size_t emit = s->len;
    /* a stop string anywhere in the pending text ends the generation before it */
    for (int32_t i = 0; i < s->gp->n_stop; i++) {
        const char *st = s->gp->stop[i];
        if (!st || !st[0]) continue;
        const char *hit = strstr(s->buf, st);
        if (hit && (size_t)(hit - s->buf) < emit) { emit = (size_t)(hit - s->buf); s->stopped = true; }
    }
    if (!s->stopped && !flush) {
        size_t hold = stop_prefix_tail(s, emit);
        const size_t inc = utf8_incomplete_tail(s->buf, emit);
        if (inc > hold) hold = inc;
        emit -= hold;
    }
    bool go = true;
    if (s->gp->callback) go = s->gp->callback(token, s->buf, (int32_t)emit, s->gp->user_data);
    memmove(s->buf, s->buf + emit, s->len - emit);
    s->len -= emit;
    if (s->buf) s->buf[s->len] = '\0';
    if (s->stopped) s->len = 0;
    return go;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static vwn_status pick(vwn_context *ctx, vwn_sampler *smpl, int32_t *tok) {
    const float *logits;
    vwn_status st = vwn_get_logits(ctx, -1, &logits);
    if (st) return st;
    if (!smpl) {
        *tok = argmax(logits, ctx->model->hp.n_vocab);
        return VWN_OK;
    }
    if ((st = vwn_sampler_sample(smpl, logits, ctx->model->hp.n_vocab, tok))) return st;
    return vwn_sampler_accept(smpl, *tok);
}

/* Decodes tokens in chunks of n_batch (so logits_all contexts accept long prompts too). */
static vwn_status decode_chunks(vwn_context *ctx, const int32_t *toks, int32_t n) {
    for (int32_t i = 0; i < n;) {
        int32_t c = n - i;
        if (c > ctx->params.n_batch) c = ctx->params.n_batch;
        vwn_status st = vwn_decode(ctx, toks + i, c);
        if (st) return st;
        i += c;
    }
    return VWN_OK;
}

/* Adaptive draft depth: running acceptance rate a[d] at each depth; go one deeper while the
 * chance of reaching and accepting it stays above a quarter. */
static int32_t adaptive_depth(const double *rate, int32_t max_depth) {
    double reach = 1.0;
    int32_t d = 1;
    for (int32_t i = 0; i < max_depth; i++) {
        reach *= rate[i];
        if (i > 0 && reach < 0.25) break;
        d = i + 1;
    }
    return d;
}

/* ---- the loop ------------------------------------------------------------------------------- */

vwn_status vwn_generate_tokens(vwn_context *ctx, const int32_t *prompt, int32_t n_prompt,
                               const vwn_generate_params *params, vwn_generate_stats *stats) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    vwn_generate_params gp = params ? *params : vwn_generate_default_params();
    vwn_generate_stats local;
    vwn_generate_stats *S = stats ? stats : &local;
    memset(S, 0, sizeof *S);
    if (n_prompt < 0 || (n_prompt > 0 && !prompt)) return vwn_fail(VWN_ERR_INVALID_ARG, "bad prompt (NULL or negative length)");
    if (gp.n_stop < 0 || (gp.n_stop > 0 && !gp.stop)) return vwn_fail(VWN_ERR_INVALID_ARG, "bad stop strings");
    if (gp.sampler && (st = vwn_check_handle(gp.sampler, VWN_MAGIC_SAMPLER, "sampler"))) return st;
    if (gp.spec_depth < -1) return vwn_fail(VWN_ERR_INVALID_ARG, "spec_depth = %d (use -1, 0 or 1..mtp_depth)", gp.spec_depth);
    if (gp.spec_depth != 0) {
        if (ctx->model->hp.mtp_depth == 0) return vwn_fail(VWN_ERR_NO_MTP, "speculative decoding needs a model with MTP modules");
        if (ctx->n_mtp == 0) return vwn_fail(VWN_ERR_NO_MTP, "speculative decoding needs a context with params.mtp on");
        if (gp.spec_depth > ctx->n_mtp)
            return vwn_fail(VWN_ERR_INVALID_ARG, "spec_depth = %d exceeds the model's MTP depth %d", gp.spec_depth, ctx->n_mtp);
    }
    if (n_prompt == 0 && ctx->n_past == 0) return vwn_fail(VWN_ERR_INVALID_ARG, "empty prompt and empty context: nothing to continue");
    const int32_t budget = gp.n_predict < 0 ? INT32_MAX : gp.n_predict;
    const vwn_model *m = ctx->model;

    /* prompt */
    double t0 = vwn_time_us();
    if (n_prompt > 0) {
        /* check the whole prompt first, and undo the chunks already decoded if a later one fails,
         * so a failed call leaves the context as it was */
        for (int32_t i = 0; i < n_prompt; i++)
            if (prompt[i] < 0 || prompt[i] >= m->hp.n_vocab)
                return vwn_fail(VWN_ERR_TOKEN_OUT_OF_RANGE, "prompt token %d at index %d is outside the vocabulary [0, %d)",
                                prompt[i], i, m->hp.n_vocab);
        if (n_prompt > ctx->params.n_ctx - ctx->n_past)
            return vwn_fail(VWN_ERR_CONTEXT_FULL, "the prompt's %d tokens do not fit: the context holds %d of %d positions",
                            n_prompt, ctx->n_past, ctx->params.n_ctx);
        const int32_t n_before = ctx->n_past;
        if ((st = decode_chunks(ctx, prompt, n_prompt))) {
            if (ctx->n_past > n_before) {
                vwn_context_truncate_internal(ctx, n_before);
                ctx->logits_count = 0;
                for (int32_t j = 0; j < ctx->n_mtp; j++) ctx->mtp_count[j] = 0;
            }
            return st;
        }
    } else if (ctx->logits_count == 0 || ctx->logits_first + ctx->logits_count != ctx->n_past) {
        /* continue the context: re-evaluate its last token to get its logits */
        int32_t last = ctx->tokens[ctx->n_past - 1];
        if ((st = vwn_context_truncate(ctx, ctx->n_past - 1))) return st;
        if ((st = vwn_decode(ctx, &last, 1))) return st;
    }
    const int32_t base = ctx->n_past;
    S->n_prompt = n_prompt;
    S->t_prompt_us = vwn_time_us() - t0;
    t0 = vwn_time_us();

    stream out = {0};
    out.gp = &gp;
    int32_t n_gen = 0, tok = -1, stop = VWN_STOP_NONE;
    double rate[16];
    for (int i = 0; i < 16; i++) rate[i] = 0.7;
    int32_t pending[18];
    int32_t n_pending = 0;   /* tokens kept but not yet emitted */

    if (budget == 0) { stop = VWN_STOP_BUDGET; goto done; }
    if ((st = pick(ctx, gp.sampler, &tok))) goto fail;
    pending[n_pending++] = tok;

    for (;;) {
        /* emit every pending token, checking the stop conditions one token at a time */
        for (int32_t i = 0; i < n_pending; i++) {
            const int32_t t = pending[i];
            if (gp.stop_at_eog && vwn_token_is_eog(m, t)) { stop = VWN_STOP_EOG; break; }
            n_gen++;
            char piece[256];
            int32_t pl = vwn_token_to_piece(m, t, piece, sizeof piece, false);
            if (pl < 0) pl = 0;
            if (!stream_append(&out, piece, (size_t)pl)) { st = vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory"); goto fail; }
            if (!stream_emit(&out, t, false)) { stop = VWN_STOP_CALLBACK; break; }
            if (out.stopped) { stop = VWN_STOP_STRING; break; }
            if (n_gen >= budget) { stop = VWN_STOP_BUDGET; break; }
        }
        if (stop) break;
        const int32_t last = pending[n_pending - 1];
        n_pending = 0;
        if (ctx->n_past >= ctx->params.n_ctx) { stop = VWN_STOP_CONTEXT_FULL; break; }

        int32_t depth = gp.spec_depth == -1 ? adaptive_depth(rate, ctx->n_mtp) : gp.spec_depth;
        const int32_t room = ctx->params.n_ctx - ctx->n_past - 1; /* positions for drafts after `last` */
        if (depth > room) depth = room;
        if (depth > budget - n_gen) depth = budget - n_gen;
        if (depth > ctx->params.n_batch - 1) depth = ctx->params.n_batch - 1;

        if (depth >= 1) {
            /* speculative step: draft, then verify in one batch */
            int32_t drafts[16], kept[18], n_kept;
            double ta = vwn_time_us();
            if ((st = vwn_draft_fast(ctx, last, depth, gp.sampler, drafts, NULL, NULL))) goto fail;
            double tb = vwn_time_us();
            if ((st = vwn_verify(ctx, gp.sampler, kept, &n_kept))) goto fail;
            S->t_draft_us += tb - ta;
            S->t_verify_us += vwn_time_us() - tb;
            const int32_t acc = n_kept - 2;
            S->n_verify++;
            S->n_drafted += depth;
            S->n_accepted += acc;
            for (int32_t d = 0; d < depth; d++) {
                S->drafted_at_depth[d]++;
                if (d < acc) S->accepted_at_depth[d]++;
                if (d <= acc) rate[d] = 0.9 * rate[d] + 0.1 * (d < acc ? 1.0 : 0.0);
            }
            memcpy(pending, kept + 1, (size_t)(n_kept - 1) * sizeof(int32_t));
            n_pending = n_kept - 1;
        } else {
            if ((st = vwn_decode(ctx, &last, 1))) goto fail;
            if ((st = pick(ctx, gp.sampler, &tok))) goto fail;
            pending[n_pending++] = tok;
        }
    }

done:
    if (stop != VWN_STOP_CALLBACK && out.len > 0) stream_emit(&out, -1, true); /* flush held-back text */
    /* speculation may have decoded accepted drafts past the stop: drop them */
    if (ctx->n_past > base + n_gen) vwn_context_truncate(ctx, base + n_gen);
    S->n_generated = n_gen;
    S->stop_reason = stop;
    S->t_generate_us = vwn_time_us() - t0;
    vwn_free(out.buf);
    return VWN_OK;

fail:
    vwn_free(out.buf);
    S->n_generated = n_gen;
    S->t_generate_us = vwn_time_us() - t0;
    return st;
}

vwn_status vwn_generate(vwn_context *ctx, const char *prompt, const vwn_generate_params *params,
                        vwn_generate_stats *stats) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!prompt) return vwn_fail(VWN_ERR_INVALID_ARG, "prompt is NULL");
    const vwn_generate_params gp = params ? *params : vwn_generate_default_params();
    const int32_t len = (int32_t)strnlen(prompt, INT32_MAX - 1);
    int32_t n = vwn_tokenize(ctx->model, prompt, len, NULL, 0, gp.add_special, gp.parse_special);
    if (n == INT32_MIN) return vwn_fail(VWN_ERR_INVALID_ARG, "cannot tokenize the prompt: %s", vwn_last_error());
    if (n < 0) n = -n;
    int32_t *toks = vwn_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!toks) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "cannot allocate %d prompt tokens", n);
    const int32_t got = vwn_tokenize(ctx->model, prompt, len, toks, n, gp.add_special, gp.parse_special);
    if (got < 0) {
        vwn_free(toks);
        return vwn_fail(VWN_ERR_INTERNAL, "tokenizer disagreed with itself on the prompt size");
    }
    st = vwn_generate_tokens(ctx, toks, got, &gp, stats);
    vwn_free(toks);
    return st;
}

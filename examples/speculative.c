/* speculative.c -- speculative decoding by hand with the low-level API: the model's own MTP modules
 * draft tokens (vwn_draft), the main model checks them in one batched call (vwn_verify). Greedy, so
 * the result must equal plain greedy decoding token for token; the program checks that and exits 1
 * if it does not.
 *
 *   usage: speculative MODEL.gguf "PROMPT" [N_TOKENS] [DEPTH]      (DEPTH: 1..mtp_depth)
 */
#include "vwn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, vwn_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, vwn_status_string(st), vwn_last_error());
    return 1;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The greedy choice after the latest vwn_decode / vwn_verify. */
static vwn_status next_token(vwn_context *ctx, int32_t n_vocab, int32_t *tok) {
    const float *logits;
    vwn_status st = vwn_get_logits(ctx, -1, &logits);
    if (!st) *tok = argmax(logits, n_vocab);
    return st;
}

static void print_token(const vwn_model *model, int32_t tok) {
    char piece[256];
    int32_t n = vwn_token_to_piece(model, tok, piece, sizeof piece, false);
    if (n > 0) fwrite(piece, 1, (size_t)n, stdout);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf \"PROMPT\" [N_TOKENS] [DEPTH]\n", argv[0]);
        return 2;
    }
    const int32_t n_gen = argc > 3 ? atoi(argv[3]) : 64;
    vwn_model *model = NULL;
    vwn_context *ctx = NULL;
    int32_t *prompt = NULL, *spec = NULL, *plain = NULL;
    vwn_status st;
    int rc = 1;

    if ((st = vwn_model_load(argv[1], NULL, &model))) return fail("load", st);
    vwn_model_info info;
    vwn_model_get_info(model, &info);
    const int32_t depth = argc > 4 ? atoi(argv[4]) : info.mtp_depth;
    if (info.mtp_depth == 0 || depth < 1 || depth > info.mtp_depth || depth > 16 || n_gen < 1) {
        fprintf(stderr, "need a model with MTP modules, 1 <= DEPTH <= %d and N_TOKENS >= 1\n", info.mtp_depth);
        goto done;
    }

    /* tokenize: the first call with no room returns -(tokens needed) */
    const int32_t len = (int32_t)strlen(argv[2]);
    const int32_t need = vwn_tokenize(model, argv[2], len, NULL, 0, true, false);
    if (need == INT32_MIN) { rc = fail("tokenize", VWN_ERR_INVALID_ARG); goto done; }
    const int32_t n_prompt = need < 0 ? -need : need;
    prompt = malloc(sizeof(int32_t) * (size_t)(n_prompt > 0 ? n_prompt : 1));
    spec = malloc(sizeof(int32_t) * (size_t)n_gen);
    plain = malloc(sizeof(int32_t) * (size_t)n_gen);
    if (!prompt || !spec || !plain) goto done;
    if (n_prompt <= 0 || vwn_tokenize(model, argv[2], len, prompt, n_prompt, true, false) != n_prompt) {
        fprintf(stderr, "the prompt gives no tokens\n");
        goto done;
    }

    vwn_context_params cp = vwn_context_default_params();
    cp.n_ctx = n_prompt + n_gen + depth + 2; /* room for the last verification's drafts */
    cp.mtp = true;
    if ((st = vwn_context_new(model, &cp, &ctx))) { rc = fail("context", st); goto done; }

    /* ---- speculative: t is the newest token, chosen but not yet decoded ---- */
    int32_t drafted[16] = {0}, accepted[16] = {0}, steps = 0, t, n = 0;
    if ((st = vwn_decode(ctx, prompt, n_prompt)) || (st = next_token(ctx, info.n_vocab, &t))) { rc = fail("prompt", st); goto done; }
    printf("%s", argv[2]);
    spec[n++] = t;
    print_token(model, t);
    while (n < n_gen) {
        int32_t d = n_gen - n - 1 < depth ? n_gen - n - 1 : depth; /* no drafts past the budget */
        if (d < 1) { /* one token left: a plain step */
            if ((st = vwn_decode(ctx, &t, 1)) || (st = next_token(ctx, info.n_vocab, &t))) { rc = fail("decode", st); goto done; }
            spec[n++] = t;
            print_token(model, t);
            continue;
        }
        int32_t drafts[16], kept[18], n_drafts, n_kept;
        if ((st = vwn_draft(ctx, t, d, NULL, drafts, NULL, &n_drafts))) { rc = fail("draft", st); goto done; }
        /* kept = t, the accepted drafts, then the target's own next token (not decoded yet) */
        if ((st = vwn_verify(ctx, NULL, kept, &n_kept))) { rc = fail("verify", st); goto done; }
        steps++;
        for (int32_t i = 0; i < n_drafts; i++) {
            drafted[i]++;
            if (i < n_kept - 2) accepted[i]++;
        }
        for (int32_t i = 1; i < n_kept && n < n_gen; i++) {
            spec[n++] = kept[i];
            print_token(model, kept[i]);
        }
        t = kept[n_kept - 1];
    }
    int32_t total_drafted = 0, total_accepted = 0;
    for (int32_t i = 0; i < depth; i++) total_drafted += drafted[i], total_accepted += accepted[i];
    fprintf(stderr, "\n\n%d tokens in %d verify steps; %d drafted, %d accepted; mean accepted length %.2f\n", n_gen,
            steps, total_drafted, total_accepted, steps ? (double)total_accepted / steps : 0.0);
    for (int32_t i = 0; i < depth; i++)
        if (drafted[i]) fprintf(stderr, "  depth %d: %d / %d accepted\n", i + 1, accepted[i], drafted[i]);

    /* ---- plain greedy decoding from the same prompt must give the same tokens ---- */
    if ((st = vwn_context_clear(ctx)) || (st = vwn_decode(ctx, prompt, n_prompt))) { rc = fail("plain prompt", st); goto done; }
    for (int32_t i = 0; i < n_gen; i++) {
        if ((st = next_token(ctx, info.n_vocab, &plain[i]))) { rc = fail("plain", st); goto done; }
        if (i + 1 < n_gen && (st = vwn_decode(ctx, &plain[i], 1))) { rc = fail("plain decode", st); goto done; }
    }
    for (int32_t i = 0; i < n_gen; i++)
        if (spec[i] != plain[i]) {
            fprintf(stderr, "MISMATCH at token %d: speculative %d, plain greedy %d\n", i, spec[i], plain[i]);
            goto done;
        }
    fprintf(stderr, "speculative output equals plain greedy decoding (%d tokens)\n", n_gen);
    rc = 0;

done:
    free(prompt);
    free(spec);
    free(plain);
    vwn_context_free(ctx);
    vwn_model_free(model);
    return rc;
}

/* main.c -- a C11 consumer of an installed libvwn, built with `pkg-config --cflags --libs vwn`.
 *
 * Loads a model, prints its shape, tokenizes the prompt, and greedily generates a few tokens with
 * vwn_generate, streaming the text through the token callback. Every failure prints the status and
 * the library's message; every handle is freed on every path.
 *
 * usage: vwn_c_example MODEL.gguf [PROMPT] [N_TOKENS] */
#include <vwn.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, vwn_status st) {
    fprintf(stderr, "error: %s: %s: %s\n", what, vwn_status_string(st), vwn_last_error());
    return 1;
}

/* Streams each piece of generated text to stdout; counts the bytes in *user_data. */
static bool on_token(int32_t token, const char *piece, int32_t piece_len, void *user_data) {
    (void)token;
    *(long *)user_data += piece_len;
    fwrite(piece, 1, (size_t)piece_len, stdout);
    fflush(stdout);
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [N_TOKENS]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "Hello";
    const int32_t n_predict = argc > 3 ? (int32_t)atoi(argv[3]) : 16;
    printf("libvwn %s (header %s)\n", vwn_version(), VWN_VERSION_STRING);

    vwn_model *model = NULL;
    vwn_status st = vwn_model_load(argv[1], NULL, &model);
    if (st) return fail("loading the model", st);

    int rc = 1;
    vwn_context *ctx = NULL;
    vwn_model_info info;
    if ((st = vwn_model_get_info(model, &info))) { fail("reading the model info", st); goto out; }
    printf("model: V=%d D=%d L=%d GHC m=%d n=%d mtp=%d params=%llu\n", info.n_vocab, info.n_embd,
           info.n_layer, info.ghc_m, info.ghc_n, info.mtp_depth, (unsigned long long)info.n_params);

    /* tokenize with the two-call convention: ask for the size (-needed), then fill */
    const int32_t text_len = (int32_t)strlen(prompt);
    int32_t n = vwn_tokenize(model, prompt, text_len, NULL, 0, true, false);
    if (n == INT32_MIN) { fprintf(stderr, "error: tokenizing: %s\n", vwn_last_error()); goto out; }
    if (n < 0) n = -n;
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!tokens) { fprintf(stderr, "error: out of memory\n"); goto out; }
    n = vwn_tokenize(model, prompt, text_len, tokens, n, true, false);
    printf("prompt tokens:");
    for (int32_t i = 0; i < n; i++) printf(" %d", tokens[i]);
    printf("\n");
    free(tokens);

    vwn_context_params cp = vwn_context_default_params();
    cp.n_ctx = 256;
    if ((st = vwn_context_new(model, &cp, &ctx))) { fail("creating a context", st); goto out; }

    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = n_predict;
    gp.sampler = NULL; /* NULL: greedy */
    long n_bytes = 0;
    gp.callback = on_token;
    gp.user_data = &n_bytes;
    vwn_generate_stats stats;
    printf("prompt: \"%s\"\n--- generated ---\n", prompt);
    if ((st = vwn_generate(ctx, prompt, &gp, &stats))) { fail("generating", st); goto out; }
    printf("\n--- end ---\nprompt tokens %d, generated %d (%ld bytes), stop reason %d\n",
           stats.n_prompt, stats.n_generated, n_bytes, stats.stop_reason);
    rc = 0;
out:
    vwn_context_free(ctx);
    vwn_model_free(model);
    return rc;
}

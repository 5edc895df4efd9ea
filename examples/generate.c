/* generate.c -- the smallest complete libvwn program: load a model, make a context and a sampler,
 * stream a continuation of a prompt to stdout, free everything. Copy it as a starting point.
 *
 *   usage: generate MODEL.gguf "PROMPT" [N_TOKENS]
 */
#include "vwn.h"

#include <stdio.h>
#include <stdlib.h>

/* Called with each piece of text as it is generated; return false to stop early. */
static bool on_piece(int32_t token, const char *piece, int32_t len, void *user_data) {
    (void)token;
    (void)user_data;
    fwrite(piece, 1, (size_t)len, stdout);
    fflush(stdout);
    return true;
}

static int fail(const char *what, vwn_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, vwn_status_string(st), vwn_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf \"PROMPT\" [N_TOKENS]\n", argv[0]);
        return 2;
    }
    vwn_model *model = NULL;
    vwn_context *ctx = NULL;
    vwn_sampler *sampler = NULL;
    vwn_status st;
    int rc = 1;

    if ((st = vwn_model_load(argv[1], NULL, &model))) return fail("load", st);
    if ((st = vwn_context_new(model, NULL, &ctx))) { rc = fail("context", st); goto done; }
    vwn_sampler_params sp = vwn_sampler_default_params(); /* temperature 0.8, top-k 40, top-p 0.95 */
    sp.seed = 42;
    if ((st = vwn_sampler_new(&sp, &sampler))) { rc = fail("sampler", st); goto done; }

    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = argc > 3 ? atoi(argv[3]) : 64;
    gp.sampler = sampler;
    gp.callback = on_piece;
    vwn_generate_stats stats;
    printf("%s", argv[2]);
    if ((st = vwn_generate(ctx, argv[2], &gp, &stats))) { rc = fail("generate", st); goto done; }
    fprintf(stderr, "\n[%d prompt tokens, %d generated at %.1f tok/s]\n", stats.n_prompt, stats.n_generated,
            stats.t_generate_us > 0 ? stats.n_generated * 1e6 / stats.t_generate_us : 0.0);
    rc = 0;

done:
    vwn_sampler_free(sampler);
    vwn_context_free(ctx);
    vwn_model_free(model);
    return rc;
}

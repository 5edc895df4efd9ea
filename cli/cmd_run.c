/* cmd_run.c -- `vwn run`: generate text from a prompt. The prompt is echoed to stdout, then the
 * continuation is streamed piece by piece (flushed after each) through vwn_generate_tokens' callback;
 * timing and, with --spec, the speculative-decoding statistics go to stderr at the end. */
#define _POSIX_C_SOURCE 200809L /* time() is C, but keep the POSIX names visible */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *CMD = "run";

#define MAX_STOP 64

static void usage(FILE *out) {
    fprintf(out,
            "usage: vwn run MODEL.gguf (--prompt TEXT | --file PROMPT_FILE) [options]\n"
            "\n"
            "Prints the prompt, then streams its continuation to stdout; timing goes to stderr.\n"
            "\n"
            "  --prompt TEXT          the prompt text\n"
            "  --file PATH            read the prompt from a file (verbatim, any bytes)\n"
            "  -n N                   tokens to generate (default 128; -1: until end of text or\n"
            "                         the context is full)\n"
            "  --temp T               temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K              keep the K most likely tokens (default 40; 0 = off)\n"
            "  --top-p P              nucleus sampling (default 0.95; 1 = off)\n"
            "  --min-p P              drop tokens below P x the top probability (default 0.05; 0 = off)\n"
            "  --repeat-penalty R     penalise the last 64 tokens (default 1 = off)\n"
            "  --seed S               sampling seed (default 0; -1: from the clock, printed)\n"
            "  --greedy               always take the most likely token (same as --temp 0)\n"
            "  -t N                   compute threads (default: the library's)\n"
            "  --spec K|auto          speculative decoding with the model's MTP modules, K drafts\n"
            "                         per step (1..mtp_depth) or an adaptive depth\n"
            "  --stop STR             stop when the output ends with STR (not printed); repeatable\n"
            "  --ctx N                context length (default: the model's max_seq_len)\n"
            "  --no-bos               do not add BOS to the prompt\n"
            "  --simd LEVEL           scalar|avx2|avx512|neon|auto (default auto)\n"
            "  --kv-type f32|f16|q8_0 KV cache element type (default f32; f16 halves its memory,\n"
            "                         q8_0 takes 0.27x)\n");
}

static bool print_piece(int32_t token, const char *piece, int32_t piece_len, void *user) {
    (void)token;
    (void)user;
    if (piece_len > 0) fwrite(piece, 1, (size_t)piece_len, stdout);
    fflush(stdout);
    return !ferror(stdout); /* stop if stdout went away (e.g. a closed pipe) */
}

static const char *stop_name(int32_t reason) {
    switch (reason) {
    case VWN_STOP_BUDGET: return "token budget (-n)";
    case VWN_STOP_EOG: return "end of text";
    case VWN_STOP_STRING: return "stop string";
    case VWN_STOP_CALLBACK: return "output closed";
    case VWN_STOP_CONTEXT_FULL: return "context full (--ctx)";
    default: return "none";
    }
}

static double per_s(double n, double us) { return us > 0 ? n * 1e6 / us : 0.0; }

static void print_stats(const vwn_generate_stats *s, int32_t spec) {
    fprintf(stderr, "\n\nprompt:    %6d tokens in %9.2f ms = %9.2f tok/s\n", s->n_prompt, s->t_prompt_us / 1e3,
            per_s(s->n_prompt, s->t_prompt_us));
    fprintf(stderr, "generated: %6d tokens in %9.2f ms = %9.2f tok/s (stopped by: %s)\n", s->n_generated,
            s->t_generate_us / 1e3, per_s(s->n_generated, s->t_generate_us), stop_name(s->stop_reason));
    if (spec == 0) return;
    char depth[32];
    if (spec < 0) snprintf(depth, sizeof depth, "adaptive");
    else snprintf(depth, sizeof depth, "%d", spec);
    fprintf(stderr, "speculative (depth %s): %d verify steps, %d drafted, %d accepted (%.1f%%)\n", depth, s->n_verify,
            s->n_drafted, s->n_accepted, s->n_drafted ? 100.0 * s->n_accepted / s->n_drafted : 0.0);
    /* each verify step keeps its accepted drafts plus one token from the target model */
    const double mean_acc = s->n_verify ? (double)s->n_accepted / s->n_verify : 0.0;
    fprintf(stderr, "  mean accepted length: %.2f drafts per step (%.2f tokens per verify step)\n", mean_acc,
            s->n_verify ? mean_acc + 1.0 : 0.0);
    for (int d = 0; d < 16; d++) {
        if (s->drafted_at_depth[d] == 0) continue;
        fprintf(stderr, "  depth %2d: %6d / %6d accepted (%.1f%%)\n", d + 1, s->accepted_at_depth[d],
                s->drafted_at_depth[d], 100.0 * s->accepted_at_depth[d] / s->drafted_at_depth[d]);
    }
    const double tot = s->t_draft_us + s->t_verify_us;
    fprintf(stderr, "  time: drafting %.2f ms (%.1f%%), verifying %.2f ms (%.1f%%)\n", s->t_draft_us / 1e3,
            tot > 0 ? 100.0 * s->t_draft_us / tot : 0.0, s->t_verify_us / 1e3,
            tot > 0 ? 100.0 * s->t_verify_us / tot : 0.0);
}

static int parse_seed(const char *s, uint64_t *out) {
    if (!strcmp(s, "-1")) {
        *out = (uint64_t)time(NULL);
        fprintf(stderr, "vwn %s: seed %llu\n", CMD, (unsigned long long)*out);
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno || s[0] == '-') {
        cli_usage_error(CMD, "--seed expects a non-negative integer or -1, got '%s'", s);
        return 1;
    }
    *out = v;
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt_arg = NULL, *file = NULL;
    const char *stops[MAX_STOP];
    int32_t n_stop = 0, n_predict = 128, n_threads = 0, spec = 0, n_ctx = 0, simd = VWN_SIMD_AUTO;
    int32_t kv_type = VWN_TYPE_F32;
    bool no_bos = false, greedy = false;
    vwn_sampler_params sp = vwn_sampler_default_params();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--greedy")) { greedy = true; continue; }
        if (!strcmp(a, "--no-bos")) { no_bos = true; continue; }
        if (a[0] != '-' || a[1] == '\0') {
            if (model_path) return cli_usage_error(CMD, "unexpected argument '%s'", a);
            model_path = a;
            continue;
        }
        /* every other option takes a value */
        static const char *const with_value[] = {"--prompt", "--file", "-n", "--temp", "--top-k", "--top-p",
                                                 "--min-p", "--repeat-penalty", "--seed", "-t", "--threads",
                                                 "--spec", "--stop", "--ctx", "--simd", "--kv-type"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) return cli_usage_error(CMD, "unknown option '%s'", a);
        if (!(v = cli_next_value(CMD, argc, argv, &i))) return 2;

        int bad = 0;
        if (!strcmp(a, "--prompt")) prompt_arg = v;
        else if (!strcmp(a, "--file")) file = v;
        else if (!strcmp(a, "-n")) bad = cli_parse_int(CMD, a, v, -1, INT32_MAX, &n_predict);
        else if (!strcmp(a, "--temp")) bad = cli_parse_float(CMD, a, v, 0.0, 1e6, &sp.temperature);
        else if (!strcmp(a, "--top-k")) bad = cli_parse_int(CMD, a, v, 0, INT32_MAX, &sp.top_k);
        else if (!strcmp(a, "--top-p")) bad = cli_parse_float(CMD, a, v, 0.0, 1.0, &sp.top_p);
        else if (!strcmp(a, "--min-p")) bad = cli_parse_float(CMD, a, v, 0.0, 1.0, &sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) bad = cli_parse_float(CMD, a, v, 0.0, 1e6, &sp.repeat_penalty);
        else if (!strcmp(a, "--seed")) bad = parse_seed(v, &sp.seed);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = cli_parse_int(CMD, a, v, 1, 256, &n_threads);
        else if (!strcmp(a, "--spec")) {
            if (!strcmp(v, "auto")) spec = -1;
            else bad = cli_parse_int(CMD, a, v, 0, 16, &spec);
        } else if (!strcmp(a, "--stop")) {
            if (n_stop == MAX_STOP) return cli_usage_error(CMD, "at most %d --stop strings", MAX_STOP);
            stops[n_stop++] = v;
        } else if (!strcmp(a, "--ctx")) bad = cli_parse_int(CMD, a, v, 1, 1 << 20, &n_ctx);
        else if (!strcmp(a, "--simd")) bad = cli_parse_simd(CMD, v, &simd);
        else if (!strcmp(a, "--kv-type")) bad = cli_parse_kv_type(CMD, v, &kv_type);
        if (bad) return 2;
    }
    if (!model_path) return cli_usage_error(CMD, "no model file given");
    if (!prompt_arg == !file) return cli_usage_error(CMD, "give exactly one of --prompt and --file");
    if (greedy) sp.temperature = 0.0f;

    int rc = 1;
    char *text = NULL;
    size_t text_len;
    int32_t *tokens = NULL;
    vwn_model *model = NULL;
    vwn_context *ctx = NULL;
    vwn_sampler *smpl = NULL;
    vwn_status st;

    if (file) {
        if (!(text = cli_read_file(file, &text_len))) {
            fprintf(stderr, "vwn %s: cannot read the prompt file '%s': %s\n", CMD, file, strerror(errno));
            return 1;
        }
    } else {
        text_len = strlen(prompt_arg);
    }
    const char *prompt = file ? text : prompt_arg;

    if ((st = vwn_model_load(model_path, NULL, &model))) {
        char what[1200];
        snprintf(what, sizeof what, "cannot load model '%s'", model_path);
        rc = cli_fail(CMD, what, st);
        goto done;
    }
    vwn_model_info info;
    if ((st = vwn_model_get_info(model, &info))) { rc = cli_fail(CMD, "model info", st); goto done; }
    if (spec != 0 && info.mtp_depth == 0) {
        fprintf(stderr, "vwn %s: --spec: the model '%s' has no MTP modules to draft with\n", CMD, model_path);
        goto done;
    }
    if (spec > info.mtp_depth) {
        fprintf(stderr, "vwn %s: --spec %d exceeds the model's MTP depth %d\n", CMD, spec, info.mtp_depth);
        goto done;
    }
    /* tokenized here (not by vwn_generate) so a prompt file may hold any bytes, NUL included */
    const int n_prompt = cli_tokenize(CMD, model, prompt, text_len, !no_bos, &tokens);
    if (n_prompt < 0) goto done;
    if (n_prompt == 0) {
        fprintf(stderr, "vwn %s: the prompt is empty (no tokens): there is nothing to continue\n", CMD);
        goto done;
    }

    vwn_context_params cp = vwn_context_default_params();
    cp.n_ctx = n_ctx;
    cp.mtp = spec != 0; /* the MTP modules only cost time when nothing drafts with them */
    cp.simd = simd;
    cp.kv_type = kv_type;
    if (n_threads > 0) cp.n_threads = n_threads;
    if ((st = vwn_context_new(model, &cp, &ctx))) { rc = cli_fail(CMD, "cannot create a context", st); goto done; }
    const int32_t ctx_len = vwn_context_get_params(ctx).n_ctx;
    if (n_prompt > ctx_len) {
        fprintf(stderr, "vwn %s: the prompt has %d tokens but the context holds %d (raise --ctx)\n", CMD, n_prompt,
                ctx_len);
        goto done;
    }
    if ((st = vwn_sampler_new(&sp, &smpl))) { rc = cli_fail(CMD, "cannot create the sampler", st); goto done; }

    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = n_predict;
    gp.sampler = smpl;
    gp.stop = stops;
    gp.n_stop = n_stop;
    gp.spec_depth = spec;
    gp.callback = print_piece;

    fwrite(prompt, 1, text_len, stdout); /* echo the prompt, as llama.cpp does */
    fflush(stdout);
    vwn_generate_stats stats;
    st = vwn_generate_tokens(ctx, tokens, n_prompt, &gp, &stats);
    fflush(stdout);
    if (st) { rc = cli_fail(CMD, "generation failed", st); goto done; }
    print_stats(&stats, spec);
    rc = 0;

done:
    vwn_sampler_free(smpl);
    vwn_context_free(ctx);
    vwn_model_free(model);
    free(tokens);
    free(text);
    return rc;
}

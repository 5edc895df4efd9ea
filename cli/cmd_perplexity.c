/* cmd_perplexity.c -- `vwn perplexity`: how well the model predicts a text, in bits per token and
 * bits per byte.
 *
 * The file is tokenized once (with BOS if the model asks for it). Windows of up to --ctx tokens start
 * at 0, S, 2S, ... (S = --stride, default --ctx: windows do not overlap). Each window is evaluated
 * from an empty context in one call with logits_all; a window starting at b scores every position p
 * in it with p > b (the first token of a window has no context inside it) that no earlier window has
 * scored: -log2 softmax(logits[p-1])[t[p]]. So every token but the first is scored exactly once when
 * S = --ctx, except the first token of each window; with S < --ctx, each window scores only the
 * tokens past the previous window's end, each then seeing at least ctx - S tokens of context.
 *
 * Bytes: a scored token is attributed the bytes of its piece (vwn_token_to_piece without special
 * tokens: control tokens count 0 bytes); bits per byte = total bits / sum of those lengths. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "perplexity";

static void usage(FILE *out) {
    fprintf(out,
            "usage: vwn perplexity MODEL.gguf --file TEXT [options]\n"
            "\n"
            "Scores a text with the model: bits per token, bits per byte and perplexity.\n"
            "\n"
            "  --file PATH        the text (read verbatim; BOS is added if the model asks for it)\n"
            "  --ctx N            window length in tokens (default: the model's max_seq_len)\n"
            "  --stride S         distance between window starts (default: --ctx, no overlap); with\n"
            "                     S < ctx each window scores only tokens no earlier window scored\n"
            "  --max-tokens N     use only the first N tokens of the text\n"
            "  -t N               compute threads (default: the library's)\n"
            "  --simd LEVEL       scalar|avx2|avx512|neon|auto (default auto)\n"
            "  --kv-type f32|f16|q8_0  KV cache element type (default f32)\n"
            "  --json             also print the results as one JSON object on the last line\n"
            "\n"
            "The first token of every window is context only (not scored). Bits per byte divide the\n"
            "total bits by the bytes of the scored tokens' pieces (control tokens count 0 bytes).\n");
}

/* -log2 of the softmax probability of `target` under logits x[0..V), computed in double. */
static double nll_bits(const float *x, int32_t V, int32_t target) {
    double mx = x[0];
    for (int32_t i = 1; i < V; i++) if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (int32_t i = 0; i < V; i++) sum += exp((double)x[i] - mx);
    return (mx + log(sum) - (double)x[target]) / log(2.0);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL;
    int32_t n_ctx = 0, stride = 0, max_tokens = 0, n_threads = 0, simd = VWN_SIMD_AUTO, kv_type = VWN_TYPE_F32;
    bool json = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--file")) { if (!(file = cli_next_value(CMD, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--ctx")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 2, 1 << 20, &n_ctx)) return 2;
        } else if (!strcmp(a, "--stride")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 1, 1 << 20, &stride)) return 2;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 2, INT32_MAX, &max_tokens)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_int(CMD, a, v, 1, 256, &n_threads)) return 2;
        } else if (!strcmp(a, "--simd")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_simd(CMD, v, &simd)) return 2;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = cli_next_value(CMD, argc, argv, &i)) || cli_parse_kv_type(CMD, v, &kv_type)) return 2;
        } else if (a[0] == '-' && a[1] != '\0') return cli_usage_error(CMD, "unknown option '%s'", a);
        else if (!model_path) model_path = a;
        else return cli_usage_error(CMD, "unexpected argument '%s'", a);
    }
    if (!model_path) return cli_usage_error(CMD, "no model file given");
    if (!file) return cli_usage_error(CMD, "no text given (--file TEXT)");

    int rc = 1;
    char *text = NULL;
    size_t text_len = 0;
    int32_t *tokens = NULL;
    vwn_model *model = NULL;
    vwn_context *ctx = NULL;
    vwn_status st;

    if (!(text = cli_read_file(file, &text_len))) {
        fprintf(stderr, "vwn %s: cannot read the text file '%s': %s\n", CMD, file, strerror(errno));
        return 1;
    }
    if ((st = vwn_model_load(model_path, NULL, &model))) {
        char what[1200];
        snprintf(what, sizeof what, "cannot load model '%s'", model_path);
        rc = cli_fail(CMD, what, st);
        goto done;
    }
    vwn_model_info info;
    if ((st = vwn_model_get_info(model, &info))) { rc = cli_fail(CMD, "model info", st); goto done; }
    if (n_ctx == 0) n_ctx = info.max_seq_len > 1 ? info.max_seq_len : 2;
    if (stride == 0) stride = n_ctx;
    if (stride > n_ctx) { rc = cli_usage_error(CMD, "--stride %d exceeds --ctx %d", stride, n_ctx); goto done; }

    int n = cli_tokenize(CMD, model, text, text_len, true, &tokens);
    if (n < 0) goto done;
    if (max_tokens > 0 && n > max_tokens) n = max_tokens;
    if (n < 2) {
        fprintf(stderr, "vwn %s: '%s' gives %d token(s); at least 2 are needed to score one\n", CMD, file, n);
        goto done;
    }

    vwn_context_params cp = vwn_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;       /* one call per window, every position kept */
    cp.logits_all = true;
    cp.mtp = false;
    cp.simd = simd;
    cp.kv_type = kv_type;
    if (n_threads > 0) cp.n_threads = n_threads;
    if ((st = vwn_context_new(model, &cp, &ctx))) { rc = cli_fail(CMD, "cannot create a context", st); goto done; }

    double bits = 0.0;
    int64_t n_scored = 0, n_bytes = 0, n_evaluated = 0;
    int32_t n_windows = 0, scored_end = 0; /* positions < scored_end have been scored (or are the first) */
    const double t0 = cli_time_us();
    for (int32_t b = 0;; b += stride) {
        const int32_t end = b + n_ctx < n ? b + n_ctx : n;
        const int32_t from = b + 1 > scored_end ? b + 1 : scored_end;
        if (from < end) {
            if ((st = vwn_context_clear(ctx)) || (st = vwn_decode(ctx, tokens + b, end - b))) {
                char what[96];
                snprintf(what, sizeof what, "evaluating the window of tokens %d..%d", b, end - 1);
                rc = cli_fail(CMD, what, st);
                goto done;
            }
            for (int32_t p = from; p < end; p++) {
                const float *logits;
                if ((st = vwn_get_logits(ctx, p - 1 - b, &logits))) { rc = cli_fail(CMD, "logits", st); goto done; }
                bits += nll_bits(logits, info.n_vocab, tokens[p]);
                char piece[256];
                int32_t pl = vwn_token_to_piece(model, tokens[p], piece, sizeof piece, false);
                if (pl < 0 && pl != INT32_MIN) pl = -pl; /* longer than the buffer: its length */
                if (pl > 0) n_bytes += pl;
            }
            n_scored += end - from;
            n_evaluated += end - b;
            n_windows++;
        }
        scored_end = end;
        if (end == n) break;
    }
    const double secs = (cli_time_us() - t0) / 1e6;

    const double bpt = bits / (double)n_scored;
    const double bpb = n_bytes > 0 ? bits / (double)n_bytes : 0.0;
    printf("file:            %s (%zu bytes)\n", file, text_len);
    printf("tokens:          %d (scored %lld in %d window%s of up to %d, stride %d)\n", n, (long long)n_scored,
           n_windows, n_windows == 1 ? "" : "s", n_ctx, stride);
    printf("scored bytes:    %lld\n", (long long)n_bytes);
    printf("bits per token:  %.6f\n", bpt);
    printf("bits per byte:   %.6f\n", bpb);
    printf("perplexity:      %.4f (per token)\n", exp2(bpt));
    printf("time:            %.2f s (%.1f tok/s)\n", secs, secs > 0 ? (double)n_evaluated / secs : 0.0);
    if (json) {
        printf("{\"file\": ");
        cli_json_string(stdout, file);
        printf(", \"tokens\": %d, \"scored_tokens\": %lld, \"scored_bytes\": %lld, \"windows\": %d, "
               "\"ctx\": %d, \"stride\": %d, \"bits\": %.10g, \"bits_per_token\": %.10g, "
               "\"bits_per_byte\": %.10g, \"perplexity\": %.10g, \"seconds\": %.6g}\n",
               n, (long long)n_scored, (long long)n_bytes, n_windows, n_ctx, stride, bits, bpt, bpb, exp2(bpt), secs);
    }
    rc = 0;

done:
    free(tokens);
    free(text);
    vwn_context_free(ctx);
    vwn_model_free(model);
    return rc;
}

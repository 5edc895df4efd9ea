/* cmd_logits.c -- `vwn logits`: run a prompt through the model and write its logits as float32
 * .npy files, exactly as the library computed them (for comparisons against a reference).
 *
 *   main logits:   OUT.npy        [T, V] with --all, else [V] (the last position)
 *   MTP module J:  OUT.mtpJ.npy   [T-J, V] with --all (rows are positions 0..T-1-J), else [V]
 *                                 (the last position module J reached, T-1-J)
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "logits";

static void usage(FILE *out) {
    fprintf(out,
            "usage: vwn logits MODEL.gguf (--prompt TEXT | --tokens 1,2,3) [options] -o OUT.npy\n"
            "\n"
            "Runs the tokens through the model in one call and writes the logits as float32 .npy.\n"
            "\n"
            "  --prompt TEXT     tokenize TEXT (with BOS if the model asks for it)\n"
            "  --tokens LIST     comma-separated token ids, used verbatim (no BOS is added)\n"
            "  --all             keep every position: OUT.npy is [T, V] (default: [V], the last)\n"
            "  --mtp             also write OUT.mtpJ.npy for every MTP module J = 1..k: [T-J, V]\n"
            "                    with --all (positions 0..T-1-J), else [V] (its last position)\n"
            "  --no-bos          with --prompt: do not add BOS\n"
            "  -t N              compute threads (default: the library's)\n"
            "  --simd LEVEL      scalar|avx2|avx512|neon|auto (default auto)\n"
            "  --kv-type f32|f16|q8_0 KV cache element type (default f32)\n"
            "  -o OUT.npy        output file (required); the MTP files are named after it,\n"
            "                    with a trailing .npy replaced: out.npy -> out.mtp1.npy\n");
}

/* OUT.npy -> OUT.mtpJ.npy (a name without .npy just gets .mtpJ.npy appended). */
static char *mtp_path(const char *out, int j) {
    size_t n = strlen(out);
    if (n >= 4 && strcmp(out + n - 4, ".npy") == 0) n -= 4;
    char *p = malloc(n + 32);
    if (p) snprintf(p, n + 32, "%.*s.mtp%d.npy", (int)n, out, j);
    return p;
}

/* Gathers rows [first, first+count) of the main model (j = 0) or MTP module j into buf. */
static vwn_status gather(vwn_context *ctx, int32_t j, int32_t first, int32_t count, int32_t V, float *buf) {
    for (int32_t i = 0; i < count; i++) {
        const float *row;
        vwn_status st = j == 0 ? vwn_get_logits(ctx, first + i, &row) : vwn_get_mtp_logits(ctx, j, first + i, &row);
        if (st) return st;
        memcpy(buf + (size_t)i * V, row, sizeof(float) * (size_t)V);
    }
    return VWN_OK;
}

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *tokens_arg = NULL, *out_path = NULL;
    bool all = false, mtp = false, no_bos = false;
    int32_t n_threads = 0, simd = VWN_SIMD_AUTO, kv_type = VWN_TYPE_F32;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--all")) all = true;
        else if (!strcmp(a, "--mtp")) mtp = true;
        else if (!strcmp(a, "--no-bos")) no_bos = true;
        else if (!strcmp(a, "--prompt")) { if (!(prompt = cli_next_value(CMD, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--tokens")) { if (!(tokens_arg = cli_next_value(CMD, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(out_path = cli_next_value(CMD, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
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
    if (!prompt == !tokens_arg) return cli_usage_error(CMD, "give exactly one of --prompt and --tokens");
    if (!out_path) return cli_usage_error(CMD, "no output file given (-o OUT.npy)");

    int rc = 1;
    vwn_model *model = NULL;
    vwn_context *ctx = NULL;
    int32_t *tokens = NULL;
    float *buf = NULL;
    char *mpath = NULL;

    vwn_status st = vwn_model_load(model_path, NULL, &model);
    if (st) {
        char what[1200];
        snprintf(what, sizeof what, "cannot load model '%s'", model_path);
        return cli_fail(CMD, what, st);
    }
    vwn_model_info info;
    if ((st = vwn_model_get_info(model, &info))) { rc = cli_fail(CMD, "model info", st); goto done; }
    const int32_t V = info.n_vocab;
    if (mtp && info.mtp_depth == 0) {
        fprintf(stderr, "vwn %s: --mtp: the model '%s' has no MTP modules\n", CMD, model_path);
        goto done;
    }

    int T;
    if (prompt) {
        T = cli_tokenize(CMD, model, prompt, strlen(prompt), !no_bos, &tokens);
        if (T < 0) goto done;
    } else {
        T = cli_parse_tokens(tokens_arg, &tokens);
        if (T < 0) { rc = cli_usage_error(CMD, "--tokens expects comma-separated integers, got '%s'", tokens_arg); goto done; }
    }
    if (T == 0) { fprintf(stderr, "vwn %s: no tokens to evaluate (the prompt is empty)\n", CMD); goto done; }

    vwn_context_params cp = vwn_context_default_params();
    cp.n_ctx = T;               /* exactly the tokens: positions beyond max_seq_len are allowed */
    cp.n_batch = T;             /* one call, so logits_all keeps every position */
    cp.logits_all = all;
    cp.mtp = mtp;
    cp.simd = simd;
    cp.kv_type = kv_type;
    if (n_threads > 0) cp.n_threads = n_threads;
    if ((st = vwn_context_new(model, &cp, &ctx))) { rc = cli_fail(CMD, "cannot create a context", st); goto done; }
    /* vwn_decode checks every id against the vocabulary and names the first bad one */
    if ((st = vwn_decode(ctx, tokens, T))) { rc = cli_fail(CMD, "cannot evaluate the tokens", st); goto done; }

    /* main logits */
    const int32_t rows = all ? T : 1;
    buf = malloc(sizeof(float) * (size_t)rows * (size_t)V);
    if (!buf) { fprintf(stderr, "vwn %s: out of memory for %d x %d logits\n", CMD, rows, V); goto done; }
    if ((st = gather(ctx, 0, all ? 0 : T - 1, rows, V, buf))) { rc = cli_fail(CMD, "logits", st); goto done; }
    int64_t shape[2] = {rows, V};
    if (all ? cli_write_npy(out_path, buf, 2, shape) : cli_write_npy(out_path, buf, 1, shape + 1)) {
        perror(out_path);
        fprintf(stderr, "vwn %s: cannot write '%s'\n", CMD, out_path);
        goto done;
    }
    fprintf(stderr, "vwn %s: wrote %s %s\n", CMD, out_path, all ? "[T, V]" : "[V]");

    /* MTP module J: positions 0..T-1-J */
    for (int32_t j = 1; mtp && j <= info.mtp_depth; j++) {
        const int32_t n_pos = T - j > 0 ? T - j : 0;
        if (!all && n_pos == 0) {
            fprintf(stderr, "vwn %s: MTP module %d has no position for %d token(s): it needs at least %d\n", CMD, j, T,
                    j + 1);
            goto done;
        }
        const int32_t mrows = all ? n_pos : 1;
        if (mrows > 0 && (st = gather(ctx, j, all ? 0 : n_pos - 1, mrows, V, buf))) {
            rc = cli_fail(CMD, "MTP logits", st);
            goto done;
        }
        free(mpath);
        if (!(mpath = mtp_path(out_path, j))) { fprintf(stderr, "vwn %s: out of memory\n", CMD); goto done; }
        int64_t mshape[2] = {mrows, V};
        if (all ? cli_write_npy(mpath, buf, 2, mshape) : cli_write_npy(mpath, buf, 1, mshape + 1)) {
            perror(mpath);
            fprintf(stderr, "vwn %s: cannot write '%s'\n", CMD, mpath);
            goto done;
        }
        fprintf(stderr, "vwn %s: wrote %s %s\n", CMD, mpath, all ? "[T-J, V]" : "[V]");
    }
    rc = 0;

done:
    free(mpath);
    free(buf);
    free(tokens);
    vwn_context_free(ctx);
    vwn_model_free(model);
    return rc;
}

/* cmd_info.c -- `vwn info MODEL.gguf [--tensors] [--meta]`: loads a model (which validates the
 * whole file) and prints its configuration, and on request its tensor table and metadata. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out,
            "usage: vwn info MODEL.gguf [--tensors] [--meta] [--verify] [--no-mmap]\n\n"
            "Loads the model (checking the whole file) and prints its configuration.\n\n"
            "  --tensors   also print every tensor: name, type, shape (GGUF order, innermost first),\n"
            "              file offset and size\n"
            "  --meta      also print every metadata key and its value\n"
            "  --verify    scan every weight for NaN/Inf while loading\n"
            "  --no-mmap   read the file into memory instead of mapping it\n"
            "  -h, --help  this text\n");
}

static const char *tokenizer_name(vwn_tokenizer_kind k) {
    switch (k) {
    case VWN_TOKENIZER_BYTES: return "bytes";
    case VWN_TOKENIZER_GPT2: return "gpt2 (byte-level BPE)";
    case VWN_TOKENIZER_LLAMA: return "llama (SentencePiece BPE)";
    default: return "?";
    }
}

/* "12.3 MiB" style. */
static const char *human_bytes(uint64_t b, char *buf, size_t size) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

static void print_config(const vwn_model *model, const char *path, const vwn_model_info *i) {
    char name[256], b1[32], b2[32];
    if (vwn_model_meta(model, "general.name", name, sizeof name) < 0) snprintf(name, sizeof name, "-");
    int s = i->n_embd / i->ghc_m;
    printf("model           %s\n", path);
    printf("name            %s\n", name);
    printf("file size       %s (%llu bytes)\n", human_bytes(i->file_size, b1, sizeof b1),
           (unsigned long long)i->file_size);
    printf("parameters      %llu (%.2f M)\n", (unsigned long long)i->n_params, (double)i->n_params / 1e6);
    printf("weights         %s; %s read per decoded token\n", vwn_type_name(i->weight_type),
           human_bytes(i->weight_bytes_per_token, b2, sizeof b2));
    printf("vocabulary      %d (tokenizer: %s)\n", i->n_vocab, tokenizer_name(vwn_tokenizer_get_kind(model)));
    printf("layers          %d\n", i->n_layer);
    printf("width           D = %d backbone, D' = %d virtual (r = n/m = %g)\n", i->n_embd, i->n_embd_wide,
           (double)i->ghc_n / i->ghc_m);
    printf("GHC             m = %d, n = %d, segment s = %d, %s\n", i->ghc_m, i->ghc_n, s,
           i->ghc_dynamic ? "dynamic" : "static");
    printf("attention       %d heads, %d KV heads, head_dim %d, rope_theta %g\n", i->n_head, i->n_head_kv,
           i->head_dim, (double)i->rope_theta);
    printf("FFN             SwiGLU, %d hidden\n", i->n_ff);
    printf("embedding       %s%s\n", i->wide_embedding ? "wide [V, D']" : "factorized [V, D]",
           i->tied_head ? ", tied with the head" : "");
    printf("output          %s%sRMSNorm, head [V, D]\n", i->output_group_norm ? "group norm, " : "",
           i->ghc_n != i->ghc_m ? "reduce D' -> D, " : "");
    printf("norm eps        rms %g, group %g\n", (double)i->rms_norm_eps, (double)i->group_norm_eps);
    printf("MTP modules     %d\n", i->mtp_depth);
    printf("context         %d tokens (trained)\n", i->max_seq_len);
}

static int print_tensors(const vwn_model *model) {
    int32_t n = vwn_model_tensor_count(model);
    printf("\n%5s  %-40s %-5s %-22s %12s %12s\n", "#", "tensor", "type", "shape (GGUF)", "offset", "bytes");
    for (int32_t i = 0; i < n; i++) {
        vwn_tensor_info t;
        vwn_status st = vwn_model_tensor_info(model, i, &t);
        if (st != VWN_OK) return cli_fail("info", "tensor info", st);
        char shape[64];
        int len = 0;
        for (int d = 0; d < t.n_dims && len < (int)sizeof shape; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld", d ? " x " : "", (long long)t.ne[d]);
        printf("%5d  %-40s %-5s %-22s %12llu %12llu\n", (int)i, t.name, vwn_type_name(t.type), shape,
               (unsigned long long)t.offset, (unsigned long long)t.n_bytes);
    }
    return 0;
}

static void print_meta(const vwn_model *model) {
    int32_t n = vwn_model_meta_count(model);
    printf("\n");
    for (int32_t i = 0; i < n; i++) {
        const char *key = vwn_model_meta_key(model, i);
        char value[120];
        int32_t len = vwn_model_meta(model, key, value, sizeof value);
        /* long values are cut; control characters are shown as '?' */
        for (char *c = value; *c; c++)
            if ((unsigned char)*c < 0x20) *c = '?';
        printf("%-40s %s%s\n", key, value, len >= (int32_t)sizeof value ? "..." : "");
    }
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool tensors = false, meta = false;
    vwn_model_params params = vwn_model_default_params();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tensors")) {
            tensors = true;
        } else if (!strcmp(argv[i], "--meta")) {
            meta = true;
        } else if (!strcmp(argv[i], "--verify")) {
            params.verify_tensors = true;
        } else if (!strcmp(argv[i], "--no-mmap")) {
            params.use_mmap = false;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "vwn info: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "vwn info: more than one model given ('%s', '%s')\n", path, argv[i]);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    vwn_model *model = NULL;
    vwn_status st = vwn_model_load(path, &params, &model);
    if (st != VWN_OK) return cli_fail("info", "cannot load the model", st); /* the message names the file */
    vwn_model_info info;
    st = vwn_model_get_info(model, &info);
    if (st != VWN_OK) {
        vwn_model_free(model);
        return cli_fail("info", "model info", st);
    }
    print_config(model, path, &info);
    int rc = 0;
    if (meta) print_meta(model);
    if (tensors) rc = print_tensors(model);
    vwn_model_free(model);
    return rc;
}

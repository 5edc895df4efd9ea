/* fuzz_gguf.c -- libFuzzer target: arbitrary bytes as a model file. The bytes go through the whole
 * loader (vwn_model_load_memory: GGUF parsing, VWN validation, tensor binding, the NaN/Inf scan,
 * the tokenizer); a model that loads is then used: every accessor, metadata as text, every
 * tensor dequantized, tokenize/detokenize, and a small context decoding a few tokens. Nothing may
 * crash, leak or read out of bounds, and every failure must be a documented status with a message.
 *
 * Seeds: tests/fuzz/make_corpus.sh (converter outputs of tiny configurations, every tensor type and
 * tokenizer kind). Run: tests/fuzz/run.sh fuzz_gguf SECONDS. */
#include "fuzz_common.h"
#include "gguf.h"

#include <stdbool.h>

/* Uses a model that loaded: everything must work and stay in bounds. */
static void gg_use_model(vwn_model *m) {
    vwn_model_info info;
    FUZZ_CHECK(vwn_model_get_info(m, &info) == VWN_OK);
    FUZZ_CHECK(info.n_vocab > 0 && info.n_layer > 0);

    const int32_t n_kv = vwn_model_meta_count(m);
    FUZZ_CHECK(n_kv >= 0);
    char text[256];
    for (int32_t i = 0; i < n_kv; i++) {
        const char *key = vwn_model_meta_key(m, i);
        FUZZ_CHECK(key != NULL);
        const int32_t len = vwn_model_meta(m, key, text, sizeof text);
        FUZZ_CHECK(len >= 0);
        /* NUL-terminated where the value (or the buffer) ends; string values may hold NUL bytes */
        FUZZ_CHECK(text[len < (int32_t)sizeof text ? len : (int32_t)sizeof text - 1] == '\0');
    }
    const int32_t n_t = vwn_model_tensor_count(m);
    FUZZ_CHECK(n_t > 0);
    float *buf = NULL;
    size_t cap = 0;
    for (int32_t i = 0; i < n_t; i++) {
        vwn_tensor_info ti;
        FUZZ_CHECK(vwn_model_tensor_info(m, i, &ti) == VWN_OK);
        uint64_t n = 1;
        for (int d = 0; d < ti.n_dims; d++) n *= (uint64_t)ti.ne[d];
        if (n > cap) {
            float *nb = realloc(buf, (size_t)n * sizeof(float));
            if (!nb) break;
            buf = nb;
            cap = (size_t)n;
        }
        FUZZ_CHECK(vwn_model_tensor_read_f32(m, ti.name, buf, cap) == VWN_OK);
    }
    free(buf);

    /* tokenizer */
    static const char sample[] = "Hello, world! <|endoftext|> <s> \xe2\x96\x81 caf\xc3\xa9 \xff\xfe";
    int32_t toks[256];
    const int32_t nt = vwn_tokenize(m, sample, (int32_t)sizeof sample - 1, toks, 256, true, true);
    FUZZ_CHECK(nt >= 0 && nt <= 256);
    for (int32_t i = 0; i < nt; i++) FUZZ_CHECK(toks[i] >= 0 && toks[i] < info.n_vocab);
    char out[1024];
    const int32_t nd = vwn_detokenize(m, toks, nt, out, (int32_t)sizeof out, false);
    FUZZ_CHECK(nd >= 0 || nd == INT32_MIN || -nd > (int32_t)sizeof out);
    for (int32_t t = 0; t < info.n_vocab && t < 512; t++) {
        const int32_t np = vwn_token_to_piece(m, t, out, (int32_t)sizeof out, true);
        FUZZ_CHECK(np != INT32_MIN);
        (void)vwn_token_is_eog(m, t);
        (void)vwn_token_is_control(m, t);
    }

    /* a small context: the memory limit keeps hostile shapes from allocating much */
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = 8;
    p.n_batch = 4;
    p.n_threads = 1;
    p.logits_all = true;
    p.memory_limit = 64u << 20;
    vwn_context *ctx = NULL;
    vwn_status st = vwn_context_new(m, &p, &ctx);
    FUZZ_CHECK(st == VWN_OK || st == VWN_ERR_OUT_OF_MEMORY || st == VWN_ERR_UNSUPPORTED);
    if (st != VWN_OK) return;
    int32_t in[3] = {0, info.n_vocab - 1, info.n_vocab / 2};
    FUZZ_CHECK(vwn_decode(ctx, in, 3) == VWN_OK);
    const float *l;
    FUZZ_CHECK(vwn_get_logits(ctx, 1, &l) == VWN_OK);
    if (info.mtp_depth > 0) {
        int32_t drafts[16], kept[18], n = 0;
        FUZZ_CHECK(vwn_draft(ctx, 1, 1, NULL, drafts, NULL, &n) == VWN_OK && n == 1);
        FUZZ_CHECK(vwn_verify(ctx, NULL, kept, &n) == VWN_OK && n >= 2);
    }
    FUZZ_CHECK(vwn_context_truncate(ctx, 1) == VWN_OK);
    FUZZ_CHECK(vwn_decode(ctx, in, 1) == VWN_OK);
    vwn_context_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the GGUF layer alone */
    gguf_file *f = NULL;
    vwn_status st = gguf_open_memory(data, size, &f);
    FUZZ_CHECK((st == VWN_OK) == (f != NULL));
    FUZZ_CHECK(st == VWN_OK || vwn_last_error()[0] != '\0');
    if (f) {
        for (uint64_t i = 0; i < f->n_kv; i++) {
            char text[64];
            const int32_t len = gguf_kv_to_text(&f->kv[i], text, sizeof text);
            FUZZ_CHECK(len >= 0);
            FUZZ_CHECK(gguf_find_kv(f, f->kv[i].key) != NULL);
        }
        for (uint64_t i = 0; i < f->n_tensors; i++) FUZZ_CHECK(gguf_find_tensor(f, f->tensors[i].name) != NULL);
        gguf_close(f);
    }

    /* the whole loader */
    vwn_model *m = NULL;
    st = vwn_model_load_memory(data, size, &m);
    FUZZ_CHECK((st == VWN_OK) == (m != NULL));
    if (st != VWN_OK) {
        FUZZ_CHECK(st > VWN_OK && st < VWN_STATUS_COUNT_ && st != VWN_ERR_INTERNAL);
        FUZZ_CHECK(vwn_last_error()[0] != '\0');
        return 0;
    }
    gg_use_model(m);
    vwn_model_free(m);
    return 0;
}

/* fuzz_state.c -- libFuzzer target: arbitrary bytes as a saved context state (vwn_state_load).
 *
 * Input: byte 0 holds flags, the rest is the state. Flag bit 0: recompute the checksum trailer
 * before loading (so mutations reach the body checks instead of all stopping at CHECKSUM); bits
 * 1-2 pick the target context (MTP on n_batch 8, MTP on n_batch 1 with logits_all, MTP off, a
 * small n_ctx with an fp16 KV cache, which rounds the state's fp32 keys and values as it loads). The model is gguf_writer.h's default configuration, built in memory.
 * Invariants: no crash; a failed load leaves the context exactly as it was (compared through
 * vwn_state_save); a successful one leaves a context that decodes, drafts and verifies, and saves
 * to a state that loads back.
 *
 * Seeds: `VWN_FUZZ_WRITE_SEEDS=DIR fuzz_state` writes valid states of this model (various lengths,
 * after truncation, speculative steps, logits_all) into DIR and exits; tests/fuzz/make_corpus.sh
 * does that. Run: tests/fuzz/run.sh fuzz_state SECONDS. */
#include "fuzz_common.h"
#include "state.h"

#include <stdbool.h>

#define ST_CTXS 4

static vwn_model *st_model;
static vwn_context *st_ctx[ST_CTXS];
static uint8_t *st_start[ST_CTXS];   /* each context's starting point: 5 tokens decoded */
static uint64_t st_start_n[ST_CTXS];
static uint8_t *st_before, *st_after;
static uint64_t st_cap;

static vwn_context *st_new_context(int32_t n_ctx, int32_t n_batch, bool mtp, bool logits_all, int32_t kv_type) {
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 1;
    p.mtp = mtp;
    p.logits_all = logits_all;
    p.kv_type = kv_type;
    vwn_context *ctx = NULL;
    FUZZ_CHECK(vwn_context_new(st_model, &p, &ctx) == VWN_OK);
    return ctx;
}

/* The context's state into *buf (grown as needed); its size. */
static uint64_t st_save(vwn_context *ctx, uint8_t **buf) {
    uint64_t n = 0, w = 0;
    FUZZ_CHECK(vwn_state_size(ctx, &n) == VWN_OK);
    if (n > st_cap) {
        uint8_t *a = realloc(st_before, (size_t)n), *b = realloc(st_after, (size_t)n);
        FUZZ_CHECK(a && b);
        st_before = a;
        st_after = b;
        st_cap = n;
    }
    FUZZ_CHECK(vwn_state_save(ctx, *buf, st_cap, &w) == VWN_OK && w == n);
    return n;
}

static void st_write_seeds(const char *dir);

static void st_setup(void) {
    if (st_model) return;
    st_model = fuzz_default_model();
    FUZZ_CHECK(st_model != NULL);
    st_ctx[0] = st_new_context(64, 8, true, false, VWN_TYPE_F32);
    st_ctx[1] = st_new_context(64, 1, true, true, VWN_TYPE_F32);
    st_ctx[2] = st_new_context(64, 8, false, false, VWN_TYPE_F32);
    st_ctx[3] = st_new_context(12, 4, true, false, VWN_TYPE_F16);
    const int32_t start[5] = {3, 1, 4, 1, 5};
    for (int i = 0; i < ST_CTXS; i++) {
        for (int k = 0; k < 5; k++) FUZZ_CHECK(vwn_decode(st_ctx[i], start + k, 1) == VWN_OK); /* n_batch may be 1 */
        st_start_n[i] = st_save(st_ctx[i], &st_before);
        st_start[i] = malloc((size_t)st_start_n[i]);
        FUZZ_CHECK(st_start[i] != NULL);
        memcpy(st_start[i], st_before, (size_t)st_start_n[i]);
    }
    const char *seeds = getenv("VWN_FUZZ_WRITE_SEEDS");
    if (seeds && *seeds) {
        st_write_seeds(seeds);
        exit(0);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    st_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_setup();
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    const int which = (flags >> 1) & 3;
    vwn_context *ctx = st_ctx[which];
    const uint8_t *state = data + 1;
    const size_t n = size - 1;
    uint8_t *copy = NULL;
    if ((flags & 1) && n >= VWN_STATE_HEADER_BYTES + VWN_STATE_TRAILER_BYTES) {
        copy = malloc(n);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, state, n);
        const uint64_t sum = vwn_state_checksum(copy, n - VWN_STATE_TRAILER_BYTES);
        memcpy(copy + n - VWN_STATE_TRAILER_BYTES, &sum, 8);
        state = copy;
    }

    /* a known starting point: the 5 tokens of the setup */
    FUZZ_CHECK(vwn_state_load(ctx, st_start[which], st_start_n[which]) == VWN_OK);
    const uint64_t nb = st_start_n[which];

    const vwn_status st = vwn_state_load(ctx, state, n);
    if (st != VWN_OK) {
        FUZZ_CHECK(st == VWN_ERR_BAD_FORMAT || st == VWN_ERR_BAD_VERSION || st == VWN_ERR_TRUNCATED ||
                   st == VWN_ERR_STATE_MISMATCH || st == VWN_ERR_CHECKSUM || st == VWN_ERR_CONTEXT_FULL ||
                   st == VWN_ERR_OUT_OF_MEMORY);
        FUZZ_CHECK(vwn_last_error()[0] != '\0');
        const uint64_t na = st_save(ctx, &st_after);
        FUZZ_CHECK(na == nb && memcmp(st_start[which], st_after, (size_t)nb) == 0);
    } else {
        /* loaded: the context must work, and its state must save and load back unchanged */
        const uint64_t na = st_save(ctx, &st_after);
        FUZZ_CHECK(vwn_state_load(ctx, st_after, na) == VWN_OK);
        const uint64_t n2 = st_save(ctx, &st_before);
        FUZZ_CHECK(n2 == na && memcmp(st_before, st_after, (size_t)na) == 0);
        const vwn_context_params p = vwn_context_get_params(ctx);
        const int32_t len = vwn_context_length(ctx);
        FUZZ_CHECK(len >= 0 && len <= p.n_ctx);
        const float *l;
        if (len < p.n_ctx) {
            const int32_t t = 7;
            FUZZ_CHECK(vwn_decode(ctx, &t, 1) == VWN_OK);
            FUZZ_CHECK(vwn_get_logits(ctx, -1, &l) == VWN_OK);
        }
        if (p.mtp && vwn_context_length(ctx) + 3 <= p.n_ctx && p.n_batch >= 3) {
            int32_t drafts[2], kept[4], nd = 0;
            FUZZ_CHECK(vwn_draft(ctx, 2, 2, NULL, drafts, NULL, &nd) == VWN_OK);
            FUZZ_CHECK(vwn_verify(ctx, NULL, kept, &nd) == VWN_OK);
        }
        if (vwn_context_length(ctx) > 0) {
            FUZZ_CHECK(vwn_context_truncate(ctx, vwn_context_length(ctx) / 2) == VWN_OK);
            const int32_t t = 9;
            FUZZ_CHECK(vwn_decode(ctx, &t, 1) == VWN_OK);
        }
    }
    free(copy);
    return 0;
}

/* ---- seeds ---------------------------------------------------------------------------------- */

static void st_write(const char *dir, const char *name, uint8_t flags, vwn_context *ctx) {
    uint8_t *buf = NULL;
    const uint64_t n = st_save(ctx, &st_before);
    buf = malloc((size_t)n + 1);
    FUZZ_CHECK(buf != NULL);
    buf[0] = flags;
    memcpy(buf + 1, st_before, (size_t)n);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        free(buf);
        return;
    }
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(buf, 1, (size_t)n + 1, fp);
        fclose(fp);
    }
    free(buf);
}

static void st_write_seeds(const char *dir) {
    int32_t t[40];
    for (int i = 0; i < 40; i++) t[i] = (i * 37 + 11) % 256;
    vwn_context *c = st_ctx[0];
    FUZZ_CHECK(vwn_context_clear(c) == VWN_OK);
    st_write(dir, "empty", 0, c);
    st_write(dir, "empty_sealed", 1, c);
    FUZZ_CHECK(vwn_decode(c, t, 3) == VWN_OK);
    st_write(dir, "len3", 1, c);
    FUZZ_CHECK(vwn_decode(c, t + 3, 20) == VWN_OK);
    st_write(dir, "len23", 1, c);
    st_write(dir, "len23_to_batch1", 3, c);
    st_write(dir, "len23_to_mtp_off", 5, c);
    st_write(dir, "len23_to_small", 7, c);
    FUZZ_CHECK(vwn_context_truncate(c, 9) == VWN_OK);
    st_write(dir, "truncated9", 1, c);
    int32_t drafts[2], kept[4], n;
    FUZZ_CHECK(vwn_draft(c, 5, 2, NULL, drafts, NULL, &n) == VWN_OK);
    FUZZ_CHECK(vwn_verify(c, NULL, kept, &n) == VWN_OK);
    st_write(dir, "after_verify", 1, c);
    vwn_context *a = st_ctx[1];
    FUZZ_CHECK(vwn_context_clear(a) == VWN_OK);
    FUZZ_CHECK(vwn_decode(a, t, 1) == VWN_OK);
    FUZZ_CHECK(vwn_decode(a, t + 1, 1) == VWN_OK);
    FUZZ_CHECK(vwn_decode(a, t + 2, 1) == VWN_OK);
    st_write(dir, "batch1_len3", 3, a);
    vwn_context *o = st_ctx[2];
    FUZZ_CHECK(vwn_context_clear(o) == VWN_OK);
    FUZZ_CHECK(vwn_decode(o, t, 6) == VWN_OK);
    st_write(dir, "mtp_off_len6", 5, o);
    st_write(dir, "mtp_off_into_mtp", 1, o);
    fprintf(stderr, "fuzz_state: seeds written to %s\n", dir);
}

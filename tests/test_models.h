/* test_models.h -- helpers the robustness tests share: load a random model made by gguf_writer.h,
 * make a context, compare logits bit for bit, snapshot a context through vwn_state_save.
 * Header-only; include after vwn.h and vt.h. */
#ifndef VWN_TEST_MODELS_H
#define VWN_TEST_MODELS_H

#include "vwn.h"
#include "gguf_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VWN_BINARY_DIR
#define VWN_BINARY_DIR "/tmp"
#endif

/* A random model of configuration c (seed), loaded through a temporary file (removed again: the
 * mapping keeps it alive). NULL on failure. */
static inline vwn_model *tm_model(const gw_config *c, uint64_t seed) {
    static int counter;
    char path[1024];
    snprintf(path, sizeof path, "%s/tm_%ld_%d_%llu.gguf", VWN_BINARY_DIR, (long)getpid(), counter++,
             (unsigned long long)seed);
    if (gw_write_file(c, seed, path) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return NULL;
    }
    vwn_model *m = NULL;
    vwn_status st = vwn_model_load(path, NULL, &m);
    remove(path);
    if (st != VWN_OK) {
        fprintf(stderr, "cannot load a test model: %s\n", vwn_last_error());
        return NULL;
    }
    return m;
}

/* Writes the model of c to path (kept); 0 on success. */
static inline int tm_model_file(const gw_config *c, uint64_t seed, const char *path) { return gw_write_file(c, seed, path); }

static inline vwn_context_params tm_params(int32_t n_ctx, int32_t n_batch, bool mtp, bool logits_all) {
    vwn_context_params p = vwn_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 1;
    p.mtp = mtp;
    p.logits_all = logits_all;
    return p;
}

static inline vwn_context *tm_context(const vwn_model *m, vwn_context_params p) {
    vwn_context *ctx = NULL;
    if (vwn_context_new(m, &p, &ctx) != VWN_OK) {
        fprintf(stderr, "cannot make a context: %s\n", vwn_last_error());
        return NULL;
    }
    return ctx;
}

static inline int32_t tm_vocab(const vwn_model *m) {
    vwn_model_info info;
    if (vwn_model_get_info(m, &info) != VWN_OK) return 0;
    return info.n_vocab;
}

/* True if both logits vectors exist and are bitwise equal. */
static inline bool tm_same(const float *a, const float *b, int32_t n) {
    return a && b && memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* The context's whole state (malloc'd), for "unchanged" checks; *n receives the size. */
static inline uint8_t *tm_snapshot(const vwn_context *ctx, uint64_t *n) {
    uint64_t size = 0;
    if (vwn_state_size(ctx, &size) != VWN_OK) return NULL;
    uint8_t *buf = (uint8_t *)malloc((size_t)size);
    if (!buf) return NULL;
    if (vwn_state_save(ctx, buf, size, n) != VWN_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* True if ctx's state equals the snapshot. */
static inline bool tm_unchanged(const vwn_context *ctx, const uint8_t *snap, uint64_t n) {
    uint64_t m = 0;
    uint8_t *now = tm_snapshot(ctx, &m);
    bool same = now && snap && m == n && memcmp(now, snap, (size_t)n) == 0;
    free(now);
    return same;
}

/* A deterministic token sequence. */
static inline void tm_tokens(int32_t *t, int32_t n, int32_t vocab, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int32_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (int32_t)((s >> 33) % (uint64_t)vocab);
    }
}

#endif

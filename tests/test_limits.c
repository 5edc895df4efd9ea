/* test_limits.c -- memory limits and the abort callback: vwn_context_estimate against
 * memory_limit (refused before anything is allocated), absurd context lengths, and aborting long
 * prefills, generations, verifications and rewinds at every point the callback is asked, each of
 * which must leave the context as it was before the call. */
#define _GNU_SOURCE
#include "vwn.h"
#include "vt.h"
#include "test_models.h"

#include <stdint.h>

static vwn_model *g_model;
static int32_t g_V;

/* ---- memory limits -------------------------------------------------------------------------- */

static void test_memory_limit(void) {
    vwn_context_params p = tm_params(128, 16, true, true);
    uint64_t need = 0;
    CHECK_OK(vwn_context_estimate(g_model, &p, &need));
    CHECK(need > 0);
    /* one byte short: refused with a message naming the limit */
    p.memory_limit = need - 1;
    vwn_context *ctx = (vwn_context *)&p;
    CHECK_STATUS(vwn_context_new(g_model, &p, &ctx), VWN_ERR_OUT_OF_MEMORY);
    CHECK(ctx == NULL);
    CHECK(strstr(vwn_last_error(), "memory_limit") != NULL);
    /* the estimate does not depend on the limit */
    uint64_t again = 0;
    CHECK_OK(vwn_context_estimate(g_model, &p, &again));
    CHECK(again == need);
    /* exactly enough: fine */
    p.memory_limit = need;
    CHECK_OK(vwn_context_new(g_model, &p, &ctx));
    int32_t t[4] = {1, 2, 3, 4};
    CHECK_OK(vwn_decode(ctx, t, 4));
    vwn_context_free(ctx);
    /* the estimate grows with every size parameter */
    const vwn_context_params base = tm_params(128, 16, true, false);
    uint64_t b0, b1;
    CHECK_OK(vwn_context_estimate(g_model, &base, &b0));
    vwn_context_params q = base;
    q.n_ctx = 256;
    CHECK_OK(vwn_context_estimate(g_model, &q, &b1));
    CHECK(b1 > b0);
    q = base;
    q.n_batch = 32;
    CHECK_OK(vwn_context_estimate(g_model, &q, &b1));
    CHECK(b1 > b0);
    q = base;
    q.mtp = false;
    CHECK_OK(vwn_context_estimate(g_model, &q, &b1));
    CHECK(b1 < b0);
}

/* n_ctx at the library's maximum: refused by a small limit before allocating; allowed by a large
 * enough one it either works or fails with OUT_OF_MEMORY, never crashes. Beyond it: INVALID_ARG. */
static void test_absurd_n_ctx(void) {
    gw_config c = gw_config_default();
    c.n_layer = 1;
    c.n_head_kv = 1;
    c.n_head = 2;
    c.mtp_depth = 0;
    vwn_model *m = tm_model(&c, 7);
    if (!m) { CHECK(false); return; }
    vwn_context_params p = tm_params(1 << 20, 64, false, false);
    uint64_t need = 0;
    CHECK_OK(vwn_context_estimate(m, &p, &need));
    CHECK(need > (uint64_t)(1 << 20) * 2 * 8 * 4); /* at least the KV cache */
    p.memory_limit = 64u << 20;
    vwn_context *ctx = NULL;
    CHECK_STATUS(vwn_context_new(m, &p, &ctx), VWN_ERR_OUT_OF_MEMORY);
    CHECK(ctx == NULL && strstr(vwn_last_error(), "memory_limit") != NULL);
    /* allowed (about 100 MB here) */
    p.memory_limit = need;
    vwn_status st = vwn_context_new(m, &p, &ctx);
    CHECK_MSG(st == VWN_OK || st == VWN_ERR_OUT_OF_MEMORY, "n_ctx 2^20: %s", vwn_status_string(st));
    if (st == VWN_OK) {
        int32_t t[8];
        tm_tokens(t, 8, g_V, 3);
        CHECK_OK(vwn_decode(ctx, t, 8));
        CHECK(vwn_context_length(ctx) == 8);
        vwn_context_free(ctx);
    } else {
        CHECK(ctx == NULL && vwn_last_error()[0] != '\0');
    }
    p.n_ctx = (1 << 20) + 1;
    p.memory_limit = 0;
    CHECK_STATUS(vwn_context_new(m, &p, &ctx), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_context_estimate(m, &p, &need), VWN_ERR_INVALID_ARG);
    vwn_model_free(m);
}

/* ---- abort ---------------------------------------------------------------------------------- */

typedef struct abort_state {
    int calls;      /* how often the callback was asked */
    int abort_at;   /* abort on this call (-1: never) */
} abort_state;

static bool abort_cb(void *user) {
    abort_state *a = user;
    return a->abort_at >= 0 && a->calls++ >= a->abort_at;
}
static bool count_cb(void *user) {
    ((abort_state *)user)->calls++;
    return false;
}

/* Checks ctx (aborted) and twin (untouched) hold the same tokens and give the same logits, main
 * and MTP, on the next decode (then both are truncated back). */
static bool same_as_twin(vwn_context *ctx, vwn_context *twin, int32_t next) {
    const int32_t n = vwn_context_length(ctx);
    if (n != vwn_context_length(twin)) return false;
    if (n && memcmp(vwn_context_tokens(ctx), vwn_context_tokens(twin), (size_t)n * sizeof(int32_t)) != 0) return false;
    const float *a, *b;
    if (vwn_decode(ctx, &next, 1) || vwn_decode(twin, &next, 1)) return false;
    if (vwn_get_logits(ctx, -1, &a) || vwn_get_logits(twin, -1, &b) || !tm_same(a, b, g_V)) return false;
    /* (after a far rollback the MTP modules may restart a little earlier); asking for their
     * logits brings both up to date, and then they must agree */
    for (int32_t j = 1; j <= 2; j++)
        if (vwn_get_mtp_logits(ctx, j, -1, &a) || vwn_get_mtp_logits(twin, j, -1, &b) || !tm_same(a, b, g_V))
            return false;
    for (int32_t j = 1; j <= 2; j++)
        if (vwn_context_mtp_length(ctx, j) != vwn_context_mtp_length(twin, j)) return false;
    return vwn_context_truncate(ctx, n) == VWN_OK && vwn_context_truncate(twin, n) == VWN_OK;
}

static void test_abort_prefill(void) {
    abort_state ab = {0, -1};
    vwn_context_params p = tm_params(256, 8, true, false);
    p.abort_callback = abort_cb;
    p.abort_user_data = &ab;
    vwn_context *twin = tm_context(g_model, tm_params(256, 8, true, false));
    int32_t t[80];
    tm_tokens(t, 80, g_V, 5);
    CHECK_OK(vwn_decode(twin, t, 10));

    /* how often a 64-token prefill asks the callback (on a context with the same history) */
    abort_state counter = {0, -1};
    vwn_context_params pc = tm_params(256, 8, true, false);
    pc.abort_callback = count_cb;
    pc.abort_user_data = &counter;
    vwn_context *probe = tm_context(g_model, pc);
    CHECK_OK(vwn_decode(probe, t, 10));
    counter.calls = 0;
    CHECK_OK(vwn_decode(probe, t + 10, 64));
    const int total = counter.calls;
    CHECK(total >= 8 * 2); /* 8 chunks x 2 layers at least */
    vwn_context_free(probe);

    /* abort at every one of those points, each time on a context with that same history */
    int bad = 0;
    for (int k = 0; k < total; k++) {
        vwn_context *ctx = tm_context(g_model, p);
        ab.abort_at = -1;
        if (vwn_decode(ctx, t, 10)) bad++;
        ab.calls = 0;
        ab.abort_at = k;
        vwn_status st = vwn_decode(ctx, t + 10, 64);
        ab.abort_at = -1;
        if (st != VWN_ERR_ABORTED || vwn_last_error()[0] == '\0') bad++;
        if (vwn_context_length(ctx) != 10) bad++;
        const float *l;
        if (vwn_get_logits(ctx, -1, &l) != VWN_ERR_NOT_KEPT) bad++; /* the call's outputs are gone */
        if (!same_as_twin(ctx, twin, t[70 + k % 10])) bad++;
        /* no abort: the call completes */
        if (vwn_decode(ctx, t + 10, 64) != VWN_OK || vwn_context_length(ctx) != 74) bad++;
        vwn_context_free(ctx);
    }
    CHECK_MSG(bad == 0, "%d problems over %d abort points", bad, total);
    vwn_context_free(twin);
}

static void test_abort_generate(void) {
    abort_state ab = {0, -1};
    vwn_context_params p = tm_params(256, 8, true, false);
    p.abort_callback = abort_cb;
    p.abort_user_data = &ab;
    vwn_context *ctx = tm_context(g_model, p);
    vwn_context *twin = tm_context(g_model, tm_params(256, 8, true, false));
    int32_t t[40];
    tm_tokens(t, 40, g_V, 6);
    CHECK_OK(vwn_decode(ctx, t, 5));
    CHECK_OK(vwn_decode(twin, t, 5));
    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = 4;
    /* aborted in the second chunk of a 30-token prompt: nothing of the prompt stays */
    for (int k = 2; k < 12; k += 3) {
        ab.calls = 0;
        ab.abort_at = k;
        CHECK_STATUS(vwn_generate_tokens(ctx, t + 5, 30, &gp, NULL), VWN_ERR_ABORTED);
        ab.abort_at = -1;
        CHECK(vwn_context_length(ctx) == 5);
        CHECK_MSG(same_as_twin(ctx, twin, t[36]), "generate aborted at %d: context differs", k);
    }
    /* speculative verification aborted: rolled back to before the verify */
    int32_t drafts[2], kept[4], n;
    CHECK_OK(vwn_draft(ctx, 9, 2, NULL, drafts, NULL, &n));
    ab.calls = 0;
    ab.abort_at = 0;
    CHECK_STATUS(vwn_verify(ctx, NULL, kept, &n), VWN_ERR_ABORTED);
    ab.abort_at = -1;
    CHECK(vwn_context_length(ctx) == 5);
    CHECK_MSG(same_as_twin(ctx, twin, t[37]), "verify aborted: context differs");
    vwn_context_free(ctx);
    vwn_context_free(twin);
}

/* A far rewind recomputes states with the main model; an abort request must not cut it short
 * (truncation cannot be undone and does not report ABORTED). */
static void test_abort_rewind(void) {
    abort_state ab = {0, -1};
    vwn_context_params p = tm_params(256, 4, true, false);
    p.abort_callback = abort_cb;
    p.abort_user_data = &ab;
    vwn_context *ctx = tm_context(g_model, p);
    vwn_context *twin = tm_context(g_model, tm_params(256, 4, true, false));
    int32_t t[60];
    tm_tokens(t, 60, g_V, 8);
    CHECK_OK(vwn_decode(ctx, t, 50));
    CHECK_OK(vwn_decode(twin, t, 30));
    ab.calls = 0;
    ab.abort_at = 0;
    CHECK_OK(vwn_context_truncate(ctx, 30)); /* the ring no longer holds 28..29: recomputed */
    ab.abort_at = -1;
    CHECK(vwn_context_length(ctx) == 30);
    CHECK_MSG(same_as_twin(ctx, twin, t[55]), "rewind with an abort request: context differs");
    vwn_context_free(ctx);
    vwn_context_free(twin);
}

int main(void) {
    gw_config c = gw_config_default();
    g_model = tm_model(&c, 1);
    if (!g_model) return 1;
    g_V = tm_vocab(g_model);
    test_memory_limit();
    test_absurd_n_ctx();
    test_abort_prefill();
    test_abort_generate();
    test_abort_rewind();
    vwn_model_free(g_model);
    return vt_finish("test_limits");
}

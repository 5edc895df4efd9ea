/* test_state.c -- saved context state (lib/state.c): round trips in memory and through files whose
 * continuation is bit-identical (main and MTP logits) to the uninterrupted context, restores into
 * contexts of other shapes, and every class of damage reported with its status while the target
 * context stays exactly as it was. Models come from tests/gguf_writer.h (no files needed). */
#define _GNU_SOURCE
#include "vwn.h"
#include "vt.h"
#include "test_models.h"
#include "state.h"

#include <stdint.h>

static vwn_model *g_model;      /* MTP 2 */
static vwn_model *g_other;      /* same configuration, another seed */
static vwn_model *g_plain;      /* MTP 0, another configuration */
static int32_t g_V;

/* ---- helpers -------------------------------------------------------------------------------- */

/* Decodes the same tokens in a and b (one call each of n tokens) and checks that the main logits
 * and every MTP module's last logits are bitwise equal. */
static bool same_step(vwn_context *a, vwn_context *b, const int32_t *t, int32_t n) {
    if (vwn_decode(a, t, n) != VWN_OK || vwn_decode(b, t, n) != VWN_OK) {
        fprintf(stderr, "decode failed: %s\n", vwn_last_error());
        return false;
    }
    const float *la = NULL, *lb = NULL;
    if (vwn_get_logits(a, -1, &la) || vwn_get_logits(b, -1, &lb) || !tm_same(la, lb, g_V)) return false;
    if (vwn_context_length(a) != vwn_context_length(b)) return false;
    const vwn_context_params pa = vwn_context_get_params(a), pb = vwn_context_get_params(b);
    vwn_model_info info;
    vwn_model_get_info(vwn_context_model(a), &info);
    if (pa.mtp && pb.mtp)
        for (int32_t j = 1; j <= info.mtp_depth; j++) {
            /* (MTP logits are computed when first asked for: ask before comparing lengths) */
            const vwn_status sa = vwn_get_mtp_logits(a, j, -1, &la), sb = vwn_get_mtp_logits(b, j, -1, &lb);
            if (sa != sb || (sa == VWN_OK && !tm_same(la, lb, g_V))) return false;
            if (vwn_context_mtp_length(a, j) != vwn_context_mtp_length(b, j)) return false;
        }
    return true;
}

/* Continues both contexts with the same 12 tokens (singles and a batch of 4) and checks each step. */
static bool same_continuation(vwn_context *a, vwn_context *b, uint64_t seed) {
    int32_t t[12];
    tm_tokens(t, 12, g_V, seed);
    bool ok = true;
    for (int i = 0; i < 8 && ok; i++) ok = same_step(a, b, t + i, 1);
    if (ok) ok = same_step(a, b, t + 8, 4);
    return ok;
}

static uint8_t *save(vwn_context *ctx, uint64_t *n) {
    uint8_t *buf = tm_snapshot(ctx, n);
    CHECK(buf != NULL);
    return buf;
}

/* A state whose body was edited: the checksum is recomputed so the edit reaches the body checks. */
static void reseal(uint8_t *buf, uint64_t n) {
    uint64_t sum = vwn_state_checksum(buf, (size_t)(n - VWN_STATE_TRAILER_BYTES));
    memcpy(buf + n - VWN_STATE_TRAILER_BYTES, &sum, 8);
}

/* ---- round trips ---------------------------------------------------------------------------- */

static void test_round_trip_memory(void) {
    vwn_context *a = tm_context(g_model, tm_params(128, 16, true, false));
    vwn_context *b = tm_context(g_model, tm_params(128, 16, true, false));
    CHECK(a && b);
    if (!a || !b) return;
    int32_t prompt[23];
    tm_tokens(prompt, 23, g_V, 1);
    CHECK_OK(vwn_decode(a, prompt, 23));

    /* two-call convention */
    uint64_t size = 0, written = 0;
    CHECK_OK(vwn_state_size(a, &size));
    CHECK(size > VWN_STATE_HEADER_BYTES + VWN_STATE_TRAILER_BYTES);
    uint8_t *buf = malloc((size_t)size);
    CHECK_STATUS(vwn_state_save(a, buf, size - 1, &written), VWN_ERR_BUFFER_TOO_SMALL);
    CHECK(written == 0);
    CHECK(strstr(vwn_last_error(), "needs") != NULL);
    CHECK_OK(vwn_state_save(a, buf, size, &written));
    CHECK(written == size);
    CHECK(memcmp(buf, "VWNS", 4) == 0);
    /* saving twice gives the same bytes */
    uint64_t n2;
    uint8_t *again = save(a, &n2);
    CHECK(n2 == size && memcmp(again, buf, (size_t)size) == 0);
    free(again);

    CHECK_OK(vwn_state_load(b, buf, size));
    CHECK(vwn_context_length(b) == 23);
    CHECK(memcmp(vwn_context_tokens(b), prompt, sizeof prompt) == 0);
    CHECK(vwn_context_mtp_length(b, 1) == vwn_context_mtp_length(a, 1));
    CHECK(vwn_context_mtp_length(b, 2) == vwn_context_mtp_length(a, 2));
    /* the outputs of the latest call come back too */
    const float *la, *lb;
    CHECK_OK(vwn_get_logits(a, -1, &la));
    CHECK_OK(vwn_get_logits(b, -1, &lb));
    CHECK(tm_same(la, lb, g_V));
    CHECK_OK(vwn_get_logits(b, 22, &lb));
    for (int32_t j = 1; j <= 2; j++) {
        CHECK_OK(vwn_get_mtp_logits(a, j, -1, &la));
        CHECK_OK(vwn_get_mtp_logits(b, j, -1, &lb));
        CHECK(tm_same(la, lb, g_V));
    }
    /* the restored state saves to the same bytes as the original (both have now computed their
     * MTP logits, which are computed when first asked for) */
    uint64_t n3;
    uint8_t *re = save(b, &n2), *orig = save(a, &n3);
    CHECK(n2 == n3 && re && orig && memcmp(re, orig, (size_t)n2) == 0);
    free(re);
    free(orig);
    CHECK_MSG(same_continuation(a, b, 2), "restored context diverges from the original");

    /* restore an earlier state into a context that moved on, then continue both ways */
    vwn_context *c = tm_context(g_model, tm_params(128, 16, true, false));
    CHECK_OK(vwn_state_load(c, buf, size));
    CHECK_OK(vwn_state_load(a, buf, size));
    CHECK(vwn_context_length(a) == 23);
    CHECK_MSG(same_continuation(a, c, 3), "re-restored context diverges");
    vwn_context_free(c);
    free(buf);
    vwn_context_free(a);
    vwn_context_free(b);
}

static void test_round_trip_file(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/test_state_%ld.vwns", VWN_BINARY_DIR, (long)getpid());
    vwn_context *a = tm_context(g_model, tm_params(96, 8, true, false));
    vwn_context *b = tm_context(g_model, tm_params(96, 8, true, false));
    if (!a || !b) { CHECK(false); return; }
    int32_t prompt[30];
    tm_tokens(prompt, 30, g_V, 4);
    CHECK_OK(vwn_decode(a, prompt, 30)); /* 4 internal batches of n_batch 8 */
    CHECK_OK(vwn_state_save_file(a, path));
    CHECK_OK(vwn_state_load_file(b, path));
    CHECK_MSG(same_continuation(a, b, 5), "file-restored context diverges");

    /* a truncated file and a missing one */
    FILE *fp = fopen(path, "r+b");
    if (fp) {
        CHECK(ftruncate(fileno(fp), 100) == 0);
        fclose(fp);
    }
    uint64_t n;
    uint8_t *snap = save(b, &n);
    CHECK_STATUS(vwn_state_load_file(b, path), VWN_ERR_TRUNCATED);
    CHECK(strstr(vwn_last_error(), path) != NULL);
    remove(path);
    CHECK_STATUS(vwn_state_load_file(b, path), VWN_ERR_IO);
    CHECK_STATUS(vwn_state_load_file(b, VWN_BINARY_DIR), VWN_ERR_IO); /* a directory */
    CHECK_STATUS(vwn_state_save_file(a, "/nonexistent-dir/x/state.vwns"), VWN_ERR_IO);
    CHECK(tm_unchanged(b, snap, n));
    free(snap);
    vwn_context_free(a);
    vwn_context_free(b);
}

/* Empty contexts, states after truncation, after logits_all calls and after speculative steps. */
static void test_round_trip_states(void) {
    vwn_context *a = tm_context(g_model, tm_params(128, 16, true, true));
    vwn_context *b = tm_context(g_model, tm_params(128, 16, true, true));
    if (!a || !b) { CHECK(false); return; }
    uint64_t n;
    /* empty */
    uint8_t *buf = save(a, &n);
    CHECK_OK(vwn_state_load(b, buf, n));
    CHECK(vwn_context_length(b) == 0);
    const float *l;
    CHECK_STATUS(vwn_get_logits(b, -1, &l), VWN_ERR_NOT_KEPT);
    free(buf);
    CHECK_MSG(same_continuation(a, b, 6), "empty restore diverges");

    /* logits_all: every row of the latest call is restored */
    int32_t t[10];
    tm_tokens(t, 10, g_V, 7);
    CHECK_OK(vwn_decode(a, t, 10));
    buf = save(a, &n);
    CHECK_OK(vwn_context_clear(b));
    CHECK_OK(vwn_state_load(b, buf, n));
    free(buf);
    int32_t base = vwn_context_length(a) - 10;
    for (int32_t p = base; p < base + 10; p++) {
        const float *x, *y;
        CHECK_OK(vwn_get_logits(a, p, &x));
        CHECK_OK(vwn_get_logits(b, p, &y));
        CHECK(tm_same(x, y, g_V));
    }
    /* after a truncation (near and far) */
    CHECK_OK(vwn_context_truncate(a, vwn_context_length(a) - 3));
    buf = save(a, &n);
    CHECK_OK(vwn_state_load(b, buf, n));
    free(buf);
    CHECK_MSG(same_continuation(a, b, 8), "restore after truncate diverges");
    CHECK_OK(vwn_context_truncate(a, 2));
    buf = save(a, &n);
    CHECK_OK(vwn_state_load(b, buf, n));
    free(buf);
    CHECK_MSG(same_continuation(a, b, 9), "restore after far truncate diverges");

    /* after a greedy draft + verify */
    int32_t drafts[2], kept[4], n_kept = 0, n_drafts = 0;
    CHECK_OK(vwn_draft(a, 5, 2, NULL, drafts, NULL, &n_drafts));
    CHECK_OK(vwn_verify(a, NULL, kept, &n_kept));
    buf = save(a, &n);
    CHECK_OK(vwn_state_load(b, buf, n));
    free(buf);
    CHECK_MSG(same_continuation(a, b, 10), "restore after verify diverges");
    /* a pending draft is not part of the state */
    CHECK_OK(vwn_draft(a, 6, 2, NULL, drafts, NULL, &n_drafts));
    buf = save(a, &n);
    CHECK_OK(vwn_state_load(b, buf, n));
    free(buf);
    CHECK_STATUS(vwn_verify(b, NULL, kept, &n_kept), VWN_ERR_NO_DRAFT);
    vwn_context_free(a);
    vwn_context_free(b);
}

/* Targets of other shapes: n_ctx, n_batch (ring size), logits_all, MTP off. */
static void test_other_shapes(void) {
    vwn_context *a = tm_context(g_model, tm_params(128, 16, true, true));
    if (!a) { CHECK(false); return; }
    int32_t t[40];
    tm_tokens(t, 40, g_V, 11);
    CHECK_OK(vwn_decode(a, t, 16));
    CHECK_OK(vwn_decode(a, t + 16, 16));
    CHECK_OK(vwn_decode(a, t + 32, 8));
    uint64_t n;
    uint8_t *buf = save(a, &n);

    const vwn_context_params shapes[] = {
        tm_params(40, 16, true, true),   /* exactly n_past */
        tm_params(512, 16, true, true),  /* larger n_ctx */
        tm_params(128, 1, true, true),   /* smallest ring */
        tm_params(128, 64, true, true),  /* larger ring */
        tm_params(128, 4, true, false),  /* one output row */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        vwn_context *b = tm_context(g_model, shapes[i]);
        if (!b) { CHECK(false); continue; }
        CHECK_OK(vwn_state_load(b, buf, n));
        const float *x, *y;
        CHECK_OK(vwn_get_logits(a, -1, &x));
        CHECK_OK(vwn_get_logits(b, -1, &y));
        CHECK(tm_same(x, y, g_V));
        if (shapes[i].n_ctx >= 60) {
            /* continue a copy of a (restored into a twin of a) and b one token at a time */
            vwn_context *a2 = tm_context(g_model, tm_params(128, 16, true, true));
            CHECK_OK(vwn_state_load(a2, buf, n));
            bool ok = true;
            for (int k = 0; k < 6 && ok; k++) ok = same_step(a2, b, t + k, 1);
            CHECK_MSG(ok, "shape %zu: continuation diverges", i);
            /* a far rewind needs the states again: both recompute or reuse them alike */
            CHECK_OK(vwn_context_truncate(a2, 5));
            CHECK_OK(vwn_context_truncate(b, 5));
            for (int k = 0; k < 3 && ok; k++) ok = same_step(a2, b, t + 20 + k, 1);
            CHECK_MSG(ok, "shape %zu: continuation after rewind diverges", i);
            vwn_context_free(a2);
        } else {
            CHECK_STATUS(vwn_decode(b, t, 1), VWN_ERR_CONTEXT_FULL);
        }
        vwn_context_free(b);
    }

    /* MTP saved, MTP off in the target: the main model continues identically */
    vwn_context *off = tm_context(g_model, tm_params(128, 16, false, false));
    vwn_context *a2 = tm_context(g_model, tm_params(128, 16, true, false));
    CHECK_OK(vwn_state_load(off, buf, n));
    CHECK_OK(vwn_state_load(a2, buf, n));
    bool ok = true;
    for (int k = 0; k < 5 && ok; k++) ok = same_step(a2, off, t + k, 1);
    CHECK_MSG(ok, "MTP-off restore diverges");
    const float *l;
    CHECK_STATUS(vwn_get_mtp_logits(off, 1, -1, &l), VWN_ERR_NO_MTP);

    /* MTP off saved, MTP on in the target: refused */
    uint64_t n_off;
    uint8_t *buf_off = save(off, &n_off);
    uint64_t n_snap;
    uint8_t *snap = save(a2, &n_snap);
    CHECK_STATUS(vwn_state_load(a2, buf_off, n_off), VWN_ERR_STATE_MISMATCH);
    CHECK(tm_unchanged(a2, snap, n_snap));
    /* but fine into another MTP-off context */
    vwn_context *off2 = tm_context(g_model, tm_params(128, 16, false, false));
    CHECK_OK(vwn_state_load(off2, buf_off, n_off));
    ok = true;
    for (int k = 0; k < 3 && ok; k++) ok = same_step(off, off2, t + 10 + k, 1);
    CHECK_MSG(ok, "MTP-off to MTP-off restore diverges");
    free(buf_off);
    free(snap);
    vwn_context_free(off2);
    vwn_context_free(off);
    vwn_context_free(a2);
    free(buf);
    vwn_context_free(a);
}

/* ---- damage: every class with its status; the context stays as it was -------------------- */

static vwn_context *g_victim;
static uint8_t *g_victim_snap;
static uint64_t g_victim_n;

/* Loads buf into the victim, expects the status, and checks the victim is unchanged. */
static void expect_load(const char *what, const uint8_t *buf, uint64_t n, vwn_status want) {
    vwn_status st = vwn_state_load(g_victim, buf, n);
    CHECK_MSG(st == want, "%s: got %s (%s), expected %s", what, vwn_status_string(st), vwn_last_error(),
              vwn_status_string(want));
    CHECK_MSG(vwn_last_error()[0] != '\0', "%s: empty error message", what);
    CHECK_MSG(tm_unchanged(g_victim, g_victim_snap, g_victim_n), "%s: the context changed", what);
}

static void test_damage(void) {
    vwn_context *a = tm_context(g_model, tm_params(64, 8, true, false));
    g_victim = tm_context(g_model, tm_params(64, 8, true, false));
    if (!a || !g_victim) { CHECK(false); return; }
    int32_t t[20];
    tm_tokens(t, 20, g_V, 12);
    CHECK_OK(vwn_decode(a, t, 20));
    /* MTP logits are computed when first asked for: ask, so that the state holds them too */
    const float *l;
    for (int32_t j = 1; j <= 2; j++) CHECK_OK(vwn_get_mtp_logits(a, j, -1, &l));
    CHECK_OK(vwn_decode(g_victim, t + 3, 7)); /* the victim holds something else */
    g_victim_snap = save(g_victim, &g_victim_n);
    uint64_t n;
    uint8_t *good = save(a, &n);
    uint8_t *buf = malloc((size_t)n + 16);

    /* truncated at every length */
    int bad_trunc = 0;
    for (uint64_t len = 0; len < n; len++) {
        vwn_status st = vwn_state_load(g_victim, good, len);
        if (st != VWN_ERR_TRUNCATED) bad_trunc++;
    }
    CHECK_MSG(bad_trunc == 0, "%d truncated lengths did not give TRUNCATED", bad_trunc);
    CHECK(tm_unchanged(g_victim, g_victim_snap, g_victim_n));

    /* trailing bytes */
    memcpy(buf, good, (size_t)n);
    buf[n] = 0;
    expect_load("one extra byte", buf, n + 1, VWN_ERR_BAD_FORMAT);

    /* magic and version */
    memcpy(buf, good, (size_t)n);
    buf[0] = 'X';
    expect_load("bad magic", buf, n, VWN_ERR_BAD_FORMAT);
    expect_load("bad magic, 2 bytes", buf, 2, VWN_ERR_BAD_FORMAT);
    expect_load("a GGUF file", (const uint8_t *)"GGUF\3\0\0\0\0\0\0\0\0\0\0\0", 16, VWN_ERR_BAD_FORMAT);
    memcpy(buf, good, (size_t)n);
    buf[4] = 2;
    expect_load("version 2", buf, n, VWN_ERR_BAD_VERSION);
    buf[4] = 0;
    expect_load("version 0", buf, n, VWN_ERR_BAD_VERSION);
    memcpy(buf, good, (size_t)n);
    buf[7] = 0x80;
    expect_load("huge version", buf, n, VWN_ERR_BAD_VERSION);

    /* the stated size */
    memcpy(buf, good, (size_t)n);
    uint64_t body;
    memcpy(&body, buf + 8, 8);
    uint64_t v = body + 1;
    memcpy(buf + 8, &v, 8);
    expect_load("body size + 1", buf, n, VWN_ERR_TRUNCATED);
    v = body - 1;
    memcpy(buf + 8, &v, 8);
    expect_load("body size - 1", buf, n, VWN_ERR_BAD_FORMAT);
    v = UINT64_MAX - 3;
    memcpy(buf + 8, &v, 8);
    expect_load("body size overflow", buf, n, VWN_ERR_BAD_FORMAT);

    /* one flipped bit anywhere after the header: CHECKSUM */
    int bad_flip = 0, flips = 0;
    for (uint64_t pos = VWN_STATE_HEADER_BYTES; pos < n; pos += (pos < 256 ? 1 : 97)) {
        memcpy(buf, good, (size_t)n);
        buf[pos] ^= (uint8_t)(1u << (pos % 8));
        flips++;
        if (vwn_state_load(g_victim, buf, n) != VWN_ERR_CHECKSUM) bad_flip++;
    }
    CHECK_MSG(bad_flip == 0, "%d of %d flipped bits were not caught by the checksum", bad_flip, flips);
    CHECK(tm_unchanged(g_victim, g_victim_snap, g_victim_n));

    /* another model, another configuration */
    vwn_context *other = tm_context(g_other, tm_params(64, 8, true, false));
    vwn_context *plain = tm_context(g_plain, tm_params(64, 8, true, false));
    CHECK_OK(vwn_decode(other, t, 20));
    CHECK_OK(vwn_decode(plain, t, 20));
    uint64_t n_other, n_plain;
    uint8_t *s_other = save(other, &n_other), *s_plain = save(plain, &n_plain);
    expect_load("same config, other weights", s_other, n_other, VWN_ERR_STATE_MISMATCH);
    expect_load("other config", s_plain, n_plain, VWN_ERR_STATE_MISMATCH);
    uint64_t n_snap;
    uint8_t *snap = save(plain, &n_snap);
    CHECK_STATUS(vwn_state_load(plain, good, n), VWN_ERR_STATE_MISMATCH);
    CHECK(tm_unchanged(plain, snap, n_snap));
    free(snap);
    free(s_other);
    free(s_plain);
    vwn_context_free(other);
    vwn_context_free(plain);

    /* a context too small */
    vwn_context *small = tm_context(g_model, tm_params(19, 8, true, false));
    snap = save(small, &n_snap);
    CHECK_STATUS(vwn_state_load(small, good, n), VWN_ERR_CONTEXT_FULL);
    CHECK(vwn_last_error()[0] != '\0');
    CHECK(tm_unchanged(small, snap, n_snap));
    free(snap);
    vwn_context_free(small);

    /* forged bodies with a valid checksum reach the body checks: BAD_FORMAT, never a crash */
    const size_t H = VWN_STATE_HEADER_BYTES;
    const size_t off_nmtp = H + 8 + 7 * 4, off_npast = off_nmtp + 4, off_mtplen = off_npast + 4;
    const size_t off_tokens = off_mtplen + 2 * 4;
    struct { const char *what; size_t off; int32_t value; vwn_status want; } forge[] = {
        {"n_past -1", off_npast, -1, VWN_ERR_BAD_FORMAT},
        {"n_past 21", off_npast, 21, VWN_ERR_BAD_FORMAT},
        {"n_past 19", off_npast, 19, VWN_ERR_BAD_FORMAT},
        {"n_past huge", off_npast, 1 << 30, VWN_ERR_CONTEXT_FULL},
        {"n_mtp 1", off_nmtp, 1, VWN_ERR_BAD_FORMAT},
        {"n_mtp 0", off_nmtp, 0, VWN_ERR_STATE_MISMATCH},
        {"n_mtp huge", off_nmtp, 0x7fffffff, VWN_ERR_BAD_FORMAT},
        {"mtp_len[0] -1", off_mtplen, -1, VWN_ERR_BAD_FORMAT},
        {"mtp_len[0] 20", off_mtplen, 20, VWN_ERR_BAD_FORMAT},
        {"mtp_len[1] > mtp_len[0]", off_mtplen + 4, 19, VWN_ERR_BAD_FORMAT},
        {"mtp_len[0] 3", off_mtplen, 3, VWN_ERR_BAD_FORMAT},
        {"token -1", off_tokens + 4 * 5, -1, VWN_ERR_BAD_FORMAT},
        {"token V", off_tokens, 256, VWN_ERR_BAD_FORMAT},
        {"identity", H, 12345, VWN_ERR_STATE_MISMATCH},
        {"n_vocab", H + 8, 255, VWN_ERR_STATE_MISMATCH},
        {"n_layer", H + 12, 3, VWN_ERR_STATE_MISMATCH},
        {"kv_dim", H + 16, 1, VWN_ERR_STATE_MISMATCH},
        {"n_wide", H + 20, 1, VWN_ERR_STATE_MISMATCH},
    };
    for (size_t i = 0; i < sizeof forge / sizeof forge[0]; i++) {
        memcpy(buf, good, (size_t)n);
        memcpy(buf + forge[i].off, &forge[i].value, 4);
        reseal(buf, n);
        expect_load(forge[i].what, buf, n, forge[i].want);
    }
    /* the sections at the end: ring counts, positions, logits ranges */
    const uint64_t kv_dim = 2 * 8, Dw = 64;
    const size_t off_ring = off_tokens + 20 * 4 + (size_t)(2 * 2 * 20 * kv_dim * 4);
    int32_t len1, len2;
    memcpy(&len1, good + off_mtplen, 4);
    memcpy(&len2, good + off_mtplen + 4, 4);
    const size_t off_ring0 = off_ring + (size_t)((len1 + len2) * 2 * kv_dim * 4);
    uint32_t count0;
    memcpy(&count0, good + off_ring0, 4);
    CHECK(count0 >= 1 && count0 <= 11);
    struct { const char *what; size_t off; int32_t value; } forge2[] = {
        {"ring count 0", off_ring0, 0},
        {"ring count huge", off_ring0, 0x7fffffff},
        {"ring count +1", off_ring0, (int32_t)count0 + 1},
        {"ring pos -1", off_ring0 + 4, -1},
        {"ring pos n_past", off_ring0 + 4, 20},
    };
    for (size_t i = 0; i < sizeof forge2 / sizeof forge2[0]; i++) {
        memcpy(buf, good, (size_t)n);
        memcpy(buf + forge2[i].off, &forge2[i].value, 4);
        reseal(buf, n);
        expect_load(forge2[i].what, buf, n, VWN_ERR_BAD_FORMAT);
    }
    /* duplicate ring position: copy entry 0's position into entry 1 */
    if (count0 >= 2) {
        memcpy(buf, good, (size_t)n);
        memcpy(buf + off_ring0 + 4 + 4 + Dw * 4, good + off_ring0 + 4, 4);
        reseal(buf, n);
        expect_load("duplicate ring position", buf, n, VWN_ERR_BAD_FORMAT);
    }
    /* the logits section is last but for the MTP logits: walk from the end */
    const size_t off_mtp_logits2 = (size_t)n - 8 - (4 + 4 + (size_t)g_V * 4);
    const size_t off_mtp_logits1 = off_mtp_logits2 - (4 + 4 + (size_t)g_V * 4);
    const size_t off_logits = off_mtp_logits1 - (4 + 4 + (size_t)g_V * 4);
    int32_t lf;
    memcpy(&lf, good + off_logits, 4);
    CHECK(lf == 19);
    struct { const char *what; size_t off; int32_t value; } forge3[] = {
        {"logits first 20", off_logits, 20},
        {"logits first -1", off_logits, -1},
        {"logits count 2", off_logits + 4, 2},
        {"logits count -1", off_logits + 4, -1},
        {"logits count 0 (bytes left over)", off_logits + 4, 0},
        {"mtp logits first beyond its length", off_mtp_logits1, 19},
        {"mtp logits count huge", off_mtp_logits2 + 4, 0x40000000},
    };
    for (size_t i = 0; i < sizeof forge3 / sizeof forge3[0]; i++) {
        memcpy(buf, good, (size_t)n);
        memcpy(buf + forge3[i].off, &forge3[i].value, 4);
        reseal(buf, n);
        expect_load(forge3[i].what, buf, n, VWN_ERR_BAD_FORMAT);
    }

    printf("test_state: damaged states tried: %llu truncations (every length), %d single-bit flips, "
           "%zu forged bodies with a valid checksum, 8 header edits, 3 foreign states\n",
           (unsigned long long)n, flips,
           sizeof forge / sizeof forge[0] + sizeof forge2 / sizeof forge2[0] + sizeof forge3 / sizeof forge3[0] + 1);
    /* after all of that, the victim decodes like a fresh context with the same tokens */
    vwn_context *fresh = tm_context(g_model, tm_params(64, 8, true, false));
    CHECK_OK(vwn_decode(fresh, t + 3, 7));
    CHECK_MSG(same_continuation(g_victim, fresh, 13), "the victim diverges after failed loads");
    vwn_context_free(fresh);

    /* argument errors */
    CHECK_STATUS(vwn_state_load(g_victim, NULL, 10), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_state_load(NULL, good, n), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_state_save(a, NULL, n, NULL), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_state_size(a, NULL), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_state_save_file(a, NULL), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_state_load_file(a, NULL), VWN_ERR_INVALID_ARG);

    free(buf);
    free(good);
    free(g_victim_snap);
    vwn_context_free(g_victim);
    vwn_context_free(a);
}

/* The identity is stable across loads of the same bytes and differs between seeds. */
static void test_identity(void) {
    gw_config c = gw_config_default();
    vwn_model *m2 = tm_model(&c, 1);
    CHECK(m2 != NULL);
    if (!m2) return;
    CHECK(vwn_model_identity(m2) == vwn_model_identity(g_model));
    CHECK(vwn_model_identity(g_other) != vwn_model_identity(g_model));
    CHECK(vwn_model_identity(g_plain) != vwn_model_identity(g_model));
    /* a state moves between two loads of the same file */
    vwn_context *a = tm_context(g_model, tm_params(64, 8, true, false));
    vwn_context *b = tm_context(m2, tm_params(64, 8, true, false));
    int32_t t[9];
    tm_tokens(t, 9, g_V, 14);
    CHECK_OK(vwn_decode(a, t, 9));
    uint64_t n;
    uint8_t *buf = save(a, &n);
    CHECK_OK(vwn_state_load(b, buf, n));
    CHECK_MSG(same_continuation(a, b, 15), "state moved between model loads diverges");
    free(buf);
    vwn_context_free(a);
    vwn_context_free(b);
    vwn_model_free(m2);
}

int main(void) {
    gw_config c = gw_config_default();
    g_model = tm_model(&c, 1);
    g_other = tm_model(&c, 2);
    gw_config p = gw_config_default();
    p.mtp_depth = 0;
    p.ghc_n = 2;
    g_plain = tm_model(&p, 3);
    if (!g_model || !g_other || !g_plain) {
        fprintf(stderr, "cannot make the test models\n");
        return 1;
    }
    g_V = tm_vocab(g_model);

    test_round_trip_memory();
    test_round_trip_file();
    test_round_trip_states();
    test_other_shapes();
    test_damage();
    test_identity();

    vwn_model_free(g_model);
    vwn_model_free(g_other);
    vwn_model_free(g_plain);
    return vt_finish("test_state");
}

/* test_misuse.c -- the misuse matrix: every public function of vwn.h called with NULL, freed-looking
 * and foreign handles, wrong-sized, out-of-range and inconsistent arguments. Each case asserts the
 * specific status (or the documented sentinel return) and a non-empty vwn_last_error; calls on a
 * context must leave it exactly as it was (compared through a saved state), and it must decode
 * afterwards exactly like a fresh context. Two-call conventions (size query, then fill) are checked
 * for every function that has one. Finally the whole matrix runs again with stdout and stderr
 * redirected to files, which must stay empty: the library never prints. */
#define _GNU_SOURCE
#include "vwn.h"
#include "vt.h"
#include "test_models.h"
#include "common.h"  /* VWN_MAGIC_DEAD */

#include <fcntl.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

static vwn_model *g_model;   /* MTP 2, V 256 */
static vwn_model *g_plain;   /* MTP 0 */
static int32_t g_V;
static void *g_dead;         /* looks like a freed object: VWN_MAGIC_DEAD, then zeros */
static void *g_foreign;      /* not an object of ours at all */

static int g_cases; /* misuse calls made (EXPECT*), for the summary line */

/* The call fails with status st and leaves a message. */
#define EXPECT(expr, st) do { \
    g_cases++; \
    CHECK_STATUS(expr, st); \
    CHECK_MSG(vwn_last_error()[0] != '\0', "%s: no error message", #expr); \
} while (0)

/* A call returning a sentinel value v (not a status) on failure, with a message. */
#define EXPECT_VAL(expr, v) do { \
    g_cases++; \
    CHECK_MSG((expr) == (v), "%s did not return %s", #expr, #v); \
    CHECK_MSG(vwn_last_error()[0] != '\0', "%s: no error message", #expr); \
} while (0)

/* EXPECT, and the context is unchanged afterwards. */
#define EXPECT_CTX(ctx, expr, st) do { \
    uint64_t n_snap_; \
    uint8_t *snap_ = tm_snapshot(ctx, &n_snap_); \
    EXPECT(expr, st); \
    CHECK_MSG(snap_ && tm_unchanged(ctx, snap_, n_snap_), "%s changed the context", #expr); \
    free(snap_); \
} while (0)

#define DEAD_MODEL ((vwn_model *)g_dead)
#define DEAD_CTX ((vwn_context *)g_dead)
#define DEAD_SMPL ((vwn_sampler *)g_dead)
#define FOREIGN_MODEL ((vwn_model *)g_foreign)
#define FOREIGN_CTX ((vwn_context *)g_foreign)
#define FOREIGN_SMPL ((vwn_sampler *)g_foreign)

/* Decodes the same tokens in ctx and in a fresh context of the same params; true if every step's
 * main logits are bitwise equal. ctx must hold `held` (the tokens it already has). */
static bool decodes_like_fresh(vwn_context *ctx, const int32_t *held, int32_t n_held) {
    vwn_context_params p = vwn_context_get_params(ctx);
    vwn_context *fresh = tm_context(vwn_context_model(ctx), p);
    if (!fresh) return false;
    bool ok = true;
    for (int32_t i = 0; i < n_held && ok; i += p.n_batch) /* in n_batch chunks: logits_all contexts */
        ok = vwn_decode(fresh, held + i, n_held - i < p.n_batch ? n_held - i : p.n_batch) == VWN_OK;
    int32_t t[6];
    tm_tokens(t, 6, g_V, 99);
    for (int i = 0; i < 6 && ok; i++) {
        const float *a = NULL, *b = NULL;
        ok = vwn_decode(ctx, t + i, 1) == VWN_OK && vwn_decode(fresh, t + i, 1) == VWN_OK &&
             vwn_get_logits(ctx, -1, &a) == VWN_OK && vwn_get_logits(fresh, -1, &b) == VWN_OK &&
             tm_same(a, b, g_V);
    }
    vwn_context_free(fresh);
    return ok;
}

/* ---- version, status, types, SIMD ----------------------------------------------------------- */

static void test_basics(void) {
    CHECK(strcmp(vwn_version(), VWN_VERSION_STRING) == 0);
    CHECK(vwn_version_number() == ((VWN_VERSION_MAJOR << 16) | (VWN_VERSION_MINOR << 8) | VWN_VERSION_PATCH));
    for (int s = 0; s < VWN_STATUS_COUNT_; s++) {
        const char *t = vwn_status_string((vwn_status)s);
        CHECK(t != NULL && strncmp(t, "VWN_", 4) == 0 && strchr(t, '?') == NULL);
    }
    const int bad_status[] = {-1, VWN_STATUS_COUNT_, 1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad_status / sizeof bad_status[0]; i++) {
        const char *t = vwn_status_string((vwn_status)bad_status[i]);
        CHECK(t != NULL && strchr(t, '?') != NULL);
    }
    const int32_t bad_type[] = {-1, 3, 7, 29, 31, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_type / sizeof bad_type[0]; i++) CHECK(strcmp(vwn_type_name(bad_type[i]), "?") == 0);
    CHECK(strcmp(vwn_type_name(VWN_TYPE_Q8_0), "q8_0") == 0 && strcmp(vwn_type_name(VWN_TYPE_Q4_0), "q4_0") == 0);
    const int bad_simd[] = {-2, 4, 99, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad_simd / sizeof bad_simd[0]; i++) {
        CHECK(!vwn_simd_supported((vwn_simd)bad_simd[i]));
        CHECK(strcmp(vwn_simd_name((vwn_simd)bad_simd[i]), "?") == 0);
    }
    CHECK(vwn_simd_supported(vwn_simd_best()));
    CHECK(vwn_simd_supported(VWN_SIMD_SCALAR));
    /* a successful call clears the message */
    vwn_model_info info;
    EXPECT(vwn_model_get_info(NULL, &info), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_model_get_info(g_model, &info));
    CHECK(vwn_last_error()[0] == '\0');
}

/* ---- model loading -------------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (fp) {
        if (n) CHECK(fwrite(p, 1, n, fp) == n);
        fclose(fp);
    }
}

static void test_model_load(void) {
    char path[1024];
    vwn_model *m = (vwn_model *)g_foreign;
    EXPECT(vwn_model_load(NULL, NULL, &m), VWN_ERR_INVALID_ARG);
    CHECK(m == NULL);
    EXPECT(vwn_model_load("x.gguf", NULL, NULL), VWN_ERR_INVALID_ARG);
    m = (vwn_model *)g_foreign;
    EXPECT(vwn_model_load("/nonexistent/dir/model.gguf", NULL, &m), VWN_ERR_IO);
    CHECK(m == NULL);
    EXPECT(vwn_model_load(VWN_BINARY_DIR, NULL, &m), VWN_ERR_IO); /* a directory */
    EXPECT(vwn_model_load("", NULL, &m), VWN_ERR_IO);

    snprintf(path, sizeof path, "%s/misuse_%ld.gguf", VWN_BINARY_DIR, (long)getpid());
    write_bytes(path, "", 0);
    EXPECT(vwn_model_load(path, NULL, &m), VWN_ERR_TRUNCATED);
    write_bytes(path, "GGU", 3);
    EXPECT(vwn_model_load(path, NULL, &m), VWN_ERR_TRUNCATED);
    write_bytes(path, "not a model file at all", 23);
    EXPECT(vwn_model_load(path, NULL, &m), VWN_ERR_BAD_MAGIC);
    write_bytes(path, "GGUF\2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24);
    EXPECT(vwn_model_load(path, NULL, &m), VWN_ERR_BAD_VERSION);
    CHECK(m == NULL);

    /* a good file through every parameter combination */
    gw_config c = gw_config_default();
    CHECK(tm_model_file(&c, 1, path) == 0);
    const bool flags[2] = {false, true};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            vwn_model_params p = vwn_model_default_params();
            p.use_mmap = flags[a];
            p.verify_tensors = flags[b];
            m = NULL;
            CHECK_OK(vwn_model_load(path, &p, &m));
            CHECK(m != NULL);
            vwn_model_free(m);
        }
    remove(path);

    vwn_model_free(NULL);
    vwn_model_free(DEAD_MODEL);
    vwn_model_free(FOREIGN_MODEL);
    vwn_model_free((vwn_model *)g_foreign);
}

/* ---- model accessors ------------------------------------------------------------------------ */

static void test_model_accessors(void) {
    vwn_model_info info;
    vwn_context *ctx = tm_context(g_model, tm_params(16, 4, true, false));
    EXPECT(vwn_model_get_info(NULL, &info), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_get_info(DEAD_MODEL, &info), VWN_ERR_BAD_HANDLE);
    CHECK(strstr(vwn_last_error(), "freed") != NULL);
    EXPECT(vwn_model_get_info(FOREIGN_MODEL, &info), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_model_get_info((const vwn_model *)ctx, &info), VWN_ERR_BAD_HANDLE); /* a context */
    EXPECT(vwn_model_get_info(g_model, NULL), VWN_ERR_INVALID_ARG);

    /* metadata, with the two-call convention */
    char buf[64];
    EXPECT_VAL(vwn_model_meta(NULL, "general.architecture", buf, sizeof buf), -1);
    EXPECT_VAL(vwn_model_meta(DEAD_MODEL, "general.architecture", buf, sizeof buf), -1);
    EXPECT_VAL(vwn_model_meta(FOREIGN_MODEL, "general.architecture", buf, sizeof buf), -1);
    EXPECT_VAL(vwn_model_meta(g_model, NULL, buf, sizeof buf), -1);
    EXPECT_VAL(vwn_model_meta(g_model, "general.architecture", NULL, 5), -1);
    EXPECT_VAL(vwn_model_meta(g_model, "no.such.key", buf, sizeof buf), -1);
    EXPECT_VAL(vwn_model_meta(g_model, "", buf, sizeof buf), -1);
    CHECK(vwn_model_meta(g_model, "general.architecture", NULL, 0) == 3);
    memset(buf, 'x', sizeof buf);
    CHECK(vwn_model_meta(g_model, "general.architecture", buf, 2) == 3);
    CHECK(buf[0] == 'v' && buf[1] == '\0' && buf[2] == 'x');
    CHECK(vwn_model_meta(g_model, "general.architecture", buf, 1) == 3 && buf[0] == '\0');
    CHECK(vwn_model_meta(g_model, "general.architecture", buf, 4) == 3 && strcmp(buf, "vwn") == 0);
    CHECK(vwn_model_meta(g_model, "vwn.hidden_size", buf, sizeof buf) == 2 && strcmp(buf, "32") == 0);

    EXPECT_VAL(vwn_model_meta_count(NULL), -1);
    EXPECT_VAL(vwn_model_meta_count(DEAD_MODEL), -1);
    const int32_t n_kv = vwn_model_meta_count(g_model);
    CHECK(n_kv > 0);
    EXPECT_VAL(vwn_model_meta_key(NULL, 0), NULL);
    EXPECT_VAL(vwn_model_meta_key(DEAD_MODEL, 0), NULL);
    EXPECT_VAL(vwn_model_meta_key(g_model, -1), NULL);
    EXPECT_VAL(vwn_model_meta_key(g_model, n_kv), NULL);
    EXPECT_VAL(vwn_model_meta_key(g_model, INT32_MAX), NULL);
    EXPECT_VAL(vwn_model_meta_key(g_model, INT32_MIN), NULL);
    CHECK(vwn_model_meta_key(g_model, n_kv - 1) != NULL);

    /* tensors */
    EXPECT_VAL(vwn_model_tensor_count(NULL), -1);
    EXPECT_VAL(vwn_model_tensor_count(DEAD_MODEL), -1);
    const int32_t n_t = vwn_model_tensor_count(g_model);
    CHECK(n_t > 10);
    vwn_tensor_info ti;
    EXPECT(vwn_model_tensor_info(NULL, 0, &ti), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_info(DEAD_MODEL, 0, &ti), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_model_tensor_info(g_model, -1, &ti), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_info(g_model, n_t, &ti), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_info(g_model, INT32_MIN, &ti), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_info(g_model, 0, NULL), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_model_tensor_info(g_model, n_t - 1, &ti));
    float small[4];
    EXPECT(vwn_model_tensor_read_f32(NULL, "final_norm.weight", small, 4), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_read_f32(DEAD_MODEL, "final_norm.weight", small, 4), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_model_tensor_read_f32(g_model, NULL, small, 4), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_read_f32(g_model, "no.such.tensor", small, 4), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_model_tensor_read_f32(g_model, "final_norm.weight", small, 4), VWN_ERR_BUFFER_TOO_SMALL);
    EXPECT(vwn_model_tensor_read_f32(g_model, "final_norm.weight", NULL, 32), VWN_ERR_INVALID_ARG);
    float norm[32];
    CHECK_OK(vwn_model_tensor_read_f32(g_model, "final_norm.weight", norm, 32));
    vwn_context_free(ctx);
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

static void test_tokenizer(void) {
    EXPECT_VAL(vwn_tokenizer_get_kind(NULL), (vwn_tokenizer_kind)-1);
    EXPECT_VAL(vwn_tokenizer_get_kind(DEAD_MODEL), (vwn_tokenizer_kind)-1);
    CHECK(vwn_tokenizer_get_kind(g_model) == VWN_TOKENIZER_BYTES);
    EXPECT_VAL(vwn_token_bos(NULL), -1);
    EXPECT_VAL(vwn_token_eos(DEAD_MODEL), -1);
    EXPECT_VAL(vwn_token_bos(FOREIGN_MODEL), -1);
    EXPECT_VAL(vwn_token_is_eog(NULL, 0), false);
    EXPECT_VAL(vwn_token_is_control(DEAD_MODEL, 0), false);
    CHECK(!vwn_token_is_eog(g_model, -1) && !vwn_token_is_eog(g_model, g_V) && !vwn_token_is_eog(g_model, INT32_MIN));
    CHECK(!vwn_token_is_control(g_model, -1) && !vwn_token_is_control(g_model, g_V));

    int32_t toks[8];
    EXPECT_VAL(vwn_tokenize(NULL, "abc", 3, toks, 8, false, false), INT32_MIN);
    EXPECT_VAL(vwn_tokenize(DEAD_MODEL, "abc", 3, toks, 8, false, false), INT32_MIN);
    EXPECT_VAL(vwn_tokenize(g_model, NULL, 3, toks, 8, false, false), INT32_MIN);
    EXPECT_VAL(vwn_tokenize(g_model, "abc", -1, toks, 8, false, false), INT32_MIN);
    EXPECT_VAL(vwn_tokenize(g_model, "abc", INT32_MIN, toks, 8, false, false), INT32_MIN);
    EXPECT_VAL(vwn_tokenize(g_model, "abc", 3, NULL, 8, false, false), INT32_MIN);
    EXPECT_VAL(vwn_tokenize(g_model, "abc", 3, toks, -1, false, false), INT32_MIN);
    /* two-call: the count first, then the tokens */
    CHECK(vwn_tokenize(g_model, "hello", 5, NULL, 0, false, false) == -5);
    CHECK(vwn_tokenize(g_model, "hello", 5, toks, 2, false, false) == -5);
    CHECK(vwn_tokenize(g_model, "hello", 5, toks, 5, false, false) == 5 && toks[0] == 'h' && toks[4] == 'o');
    CHECK(vwn_tokenize(g_model, NULL, 0, NULL, 0, false, false) == 0);
    CHECK(vwn_tokenize(g_model, "\xff\xfe\x00z", 4, toks, 8, true, true) == 4); /* any bytes */

    char text[8];
    const int32_t good[3] = {'a', 'b', 'c'}, bad[2] = {'a', 256}, neg[1] = {-1};
    EXPECT_VAL(vwn_detokenize(NULL, good, 3, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(DEAD_MODEL, good, 3, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(g_model, bad, 2, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(g_model, neg, 1, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(g_model, NULL, 3, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(g_model, good, -1, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(g_model, good, 3, NULL, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_detokenize(g_model, good, 3, text, -1, false), INT32_MIN);
    CHECK(vwn_detokenize(g_model, good, 3, NULL, 0, false) == -3);
    CHECK(vwn_detokenize(g_model, good, 3, text, 2, false) == -3);
    CHECK(vwn_detokenize(g_model, good, 3, text, 3, false) == 3 && memcmp(text, "abc", 3) == 0);
    CHECK(vwn_detokenize(g_model, NULL, 0, NULL, 0, true) == 0);

    EXPECT_VAL(vwn_token_to_piece(NULL, 'a', text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_token_to_piece(DEAD_MODEL, 'a', text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_token_to_piece(g_model, -1, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_token_to_piece(g_model, g_V, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_token_to_piece(g_model, INT32_MAX, text, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_token_to_piece(g_model, 'a', NULL, 8, false), INT32_MIN);
    EXPECT_VAL(vwn_token_to_piece(g_model, 'a', text, -1, false), INT32_MIN);
    CHECK(vwn_token_to_piece(g_model, 'a', NULL, 0, false) == -1);
    CHECK(vwn_token_to_piece(g_model, 'a', text, 1, true) == 1 && text[0] == 'a');
}

/* ---- context creation and accessors --------------------------------------------------------- */

static void test_context_params(void) {
    uint64_t bytes = 0;
    vwn_context_params p = vwn_context_default_params();
    EXPECT(vwn_context_estimate(NULL, &p, &bytes), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_context_estimate(DEAD_MODEL, &p, &bytes), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_estimate(FOREIGN_MODEL, &p, &bytes), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_estimate(g_model, &p, NULL), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_context_estimate(g_model, NULL, &bytes));
    CHECK(bytes > 0);

    struct { const char *what; int32_t n_ctx, n_batch, n_threads, simd; } bad[] = {
        {"n_ctx -1", -1, 8, 1, VWN_SIMD_AUTO},
        {"n_ctx INT32_MIN", INT32_MIN, 8, 1, VWN_SIMD_AUTO},
        {"n_ctx 2^20+1", (1 << 20) + 1, 8, 1, VWN_SIMD_AUTO},
        {"n_ctx INT32_MAX", INT32_MAX, 8, 1, VWN_SIMD_AUTO},
        {"n_batch -1", 16, -1, 1, VWN_SIMD_AUTO},
        {"n_batch INT32_MIN", 16, INT32_MIN, 1, VWN_SIMD_AUTO},
        {"n_threads -1", 16, 8, -1, VWN_SIMD_AUTO},
        {"n_threads 257", 16, 8, 257, VWN_SIMD_AUTO},
        {"simd 99", 16, 8, 1, 99},
        {"simd -2", 16, 8, 1, -2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = vwn_context_default_params();
        p.n_ctx = bad[i].n_ctx;
        p.n_batch = bad[i].n_batch;
        p.n_threads = bad[i].n_threads;
        p.simd = bad[i].simd;
        vwn_context *ctx = (vwn_context *)g_foreign;
        g_cases += 2;
        vwn_status st = vwn_context_estimate(g_model, &p, &bytes);
        CHECK_MSG(st == VWN_ERR_INVALID_ARG, "estimate with %s: %s", bad[i].what, vwn_status_string(st));
        st = vwn_context_new(g_model, &p, &ctx);
        CHECK_MSG(st == VWN_ERR_INVALID_ARG, "new with %s: %s", bad[i].what, vwn_status_string(st));
        CHECK_MSG(vwn_last_error()[0] != '\0', "new with %s: no message", bad[i].what);
        CHECK(ctx == NULL);
    }
    /* a level this machine lacks */
    const vwn_simd levels[] = {VWN_SIMD_AVX2, VWN_SIMD_AVX512, VWN_SIMD_NEON};
    for (size_t i = 0; i < 3; i++)
        if (!vwn_simd_supported(levels[i])) {
            p = vwn_context_default_params();
            p.simd = levels[i];
            vwn_context *ctx = NULL;
            EXPECT(vwn_context_new(g_model, &p, &ctx), VWN_ERR_UNSUPPORTED);
            CHECK(ctx == NULL);
        }
    vwn_context *ctx = (vwn_context *)g_foreign;
    EXPECT(vwn_context_new(NULL, NULL, &ctx), VWN_ERR_INVALID_ARG);
    CHECK(ctx == NULL);
    EXPECT(vwn_context_new(DEAD_MODEL, NULL, &ctx), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_new(g_model, NULL, NULL), VWN_ERR_INVALID_ARG);
    /* zeros mean defaults */
    p = vwn_context_default_params();
    p.n_ctx = 0;
    p.n_batch = 0;
    p.n_threads = 0;
    CHECK_OK(vwn_context_new(g_model, &p, &ctx));
    vwn_context_params got = vwn_context_get_params(ctx);
    CHECK(got.n_ctx == 256 && got.n_batch >= 1 && got.n_threads >= 1);
    vwn_context_free(ctx);
    /* n_batch larger than n_ctx is clamped */
    p = tm_params(8, 100, true, false);
    CHECK_OK(vwn_context_new(g_model, &p, &ctx));
    CHECK(vwn_context_get_params(ctx).n_batch == 8);
    vwn_context_free(ctx);

    vwn_context_free(NULL);
    vwn_context_free(DEAD_CTX);
    vwn_context_free(FOREIGN_CTX);
    EXPECT_VAL(vwn_context_model(NULL), NULL);
    EXPECT_VAL(vwn_context_model(DEAD_CTX), NULL);
    EXPECT_VAL(vwn_context_model((const vwn_context *)g_model), NULL);
    got = vwn_context_get_params(NULL);
    CHECK(vwn_last_error()[0] != '\0');
    got = vwn_context_get_params(DEAD_CTX);
    CHECK(vwn_last_error()[0] != '\0');
    EXPECT_VAL(vwn_context_length(NULL), -1);
    EXPECT_VAL(vwn_context_length(DEAD_CTX), -1);
    EXPECT_VAL(vwn_context_mtp_length(NULL, 1), -1);
    EXPECT_VAL(vwn_context_tokens(NULL), NULL);
    EXPECT_VAL(vwn_context_tokens(FOREIGN_CTX), NULL);
    vwn_perf perf;
    EXPECT(vwn_context_get_perf(NULL, &perf), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_context_get_perf(DEAD_CTX, &perf), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_reset_perf(NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_context_reset_perf(DEAD_CTX), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_set_threads(NULL, 1), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_context_set_threads(DEAD_CTX, 1), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_truncate(NULL, 0), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_context_truncate(DEAD_CTX, 0), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_context_clear(NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_context_clear(FOREIGN_CTX), VWN_ERR_BAD_HANDLE);
}

/* ---- decode and outputs: every failure leaves the context as it was ------------------------ */

static void test_decode(void) {
    vwn_context *ctx = tm_context(g_model, tm_params(32, 8, true, false));
    vwn_context *all = tm_context(g_model, tm_params(32, 8, true, true));
    if (!ctx || !all) { CHECK(false); return; }
    const float *l = (const float *)g_foreign;

    /* before any decode */
    EXPECT_CTX(ctx, vwn_get_logits(ctx, -1, &l), VWN_ERR_NOT_KEPT);
    CHECK(l == NULL);
    EXPECT_CTX(ctx, vwn_get_mtp_logits(ctx, 1, -1, &l), VWN_ERR_NOT_KEPT);
    EXPECT_CTX(ctx, vwn_context_truncate(ctx, 1), VWN_ERR_INVALID_ARG);

    int32_t t[40];
    tm_tokens(t, 40, g_V, 5);
    CHECK_OK(vwn_decode(ctx, t, 10));
    CHECK_OK(vwn_decode(all, t, 8));

    const int32_t bad_tokens[][3] = {{1, 2, -1}, {256, 1, 2}, {INT32_MIN, 0, 0}, {INT32_MAX, 0, 0}, {0, 257, 0}};
    for (size_t i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++)
        EXPECT_CTX(ctx, vwn_decode(ctx, bad_tokens[i], 3), VWN_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT_CTX(ctx, vwn_decode(NULL, t, 1), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_decode(DEAD_CTX, t, 1), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_decode(FOREIGN_CTX, t, 1), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_decode((vwn_context *)g_model, t, 1), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_decode(ctx, NULL, 1), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_decode(ctx, t, 0), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_decode(ctx, t, -1), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_decode(ctx, t, INT32_MIN), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_decode(ctx, t, 23), VWN_ERR_CONTEXT_FULL);          /* 10 + 23 > 32 */
    EXPECT_CTX(all, vwn_decode(all, t, 9), VWN_ERR_BATCH_TOO_LARGE);       /* logits_all, n_batch 8 */

    /* outputs */
    EXPECT_CTX(ctx, vwn_get_logits(ctx, -1, NULL), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_get_logits(NULL, -1, &l), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_get_logits(DEAD_CTX, -1, &l), VWN_ERR_BAD_HANDLE);
    const int32_t bad_pos[] = {-2, 8, 10, 11, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_pos / sizeof bad_pos[0]; i++) {
        EXPECT_CTX(ctx, vwn_get_logits(ctx, bad_pos[i], &l), VWN_ERR_NOT_KEPT);
        CHECK(l == NULL);
    }
    CHECK_OK(vwn_get_logits(ctx, 9, &l));
    CHECK_OK(vwn_get_logits(all, 0, &l));
    CHECK_OK(vwn_get_logits(all, 7, &l));
    EXPECT_CTX(all, vwn_get_logits(all, 8, &l), VWN_ERR_NOT_KEPT);
    EXPECT_CTX(ctx, vwn_get_mtp_logits(ctx, 1, -1, NULL), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_get_mtp_logits(NULL, 1, -1, &l), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_get_mtp_logits(DEAD_CTX, 1, -1, &l), VWN_ERR_BAD_HANDLE);
    const int32_t bad_j[] = {0, -1, 3, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_j / sizeof bad_j[0]; i++)
        EXPECT_CTX(ctx, vwn_get_mtp_logits(ctx, bad_j[i], -1, &l), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_get_mtp_logits(ctx, 1, 9, &l), VWN_ERR_NOT_KEPT);   /* module 1 reached 8 */
    EXPECT_CTX(ctx, vwn_get_mtp_logits(ctx, 2, 8, &l), VWN_ERR_NOT_KEPT);
    EXPECT_CTX(ctx, vwn_get_mtp_logits(ctx, 1, INT32_MIN, &l), VWN_ERR_NOT_KEPT);
    CHECK_OK(vwn_get_mtp_logits(ctx, 1, 8, &l));
    CHECK_OK(vwn_get_mtp_logits(ctx, 2, 7, &l));
    EXPECT_VAL(vwn_context_mtp_length(ctx, 0), -1);
    EXPECT_VAL(vwn_context_mtp_length(ctx, 3), -1);
    EXPECT_VAL(vwn_context_mtp_length(ctx, INT32_MIN), -1);
    CHECK(vwn_context_mtp_length(ctx, 1) == 9 && vwn_context_mtp_length(ctx, 2) == 8);

    /* MTP absent or off */
    vwn_context *plain = tm_context(g_plain, tm_params(16, 4, true, false));
    vwn_context *off = tm_context(g_model, tm_params(16, 4, false, false));
    CHECK_OK(vwn_decode(plain, t, 3));
    CHECK_OK(vwn_decode(off, t, 3));
    EXPECT_CTX(plain, vwn_get_mtp_logits(plain, 1, -1, &l), VWN_ERR_NO_MTP);
    EXPECT_CTX(off, vwn_get_mtp_logits(off, 1, -1, &l), VWN_ERR_NO_MTP);
    EXPECT_VAL(vwn_context_mtp_length(plain, 1), -1);
    CHECK(!vwn_context_get_params(plain).mtp); /* resolved: the model has none */

    /* truncate, threads */
    EXPECT_CTX(ctx, vwn_context_truncate(ctx, -1), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_context_truncate(ctx, 11), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_context_truncate(ctx, INT32_MIN), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_context_set_threads(ctx, 0), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_context_set_threads(ctx, -1), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_context_set_threads(ctx, 257), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_context_set_threads(ctx, 2), VWN_ERR_INVALID_ARG);  /* made with 1 */
    EXPECT_CTX(ctx, vwn_context_get_perf(ctx, NULL), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_context_set_threads(ctx, 1));

    /* after all that, it decodes like a fresh context that saw the same 10 tokens */
    CHECK_MSG(decodes_like_fresh(ctx, t, 10), "the context diverges after failed calls");
    vwn_context_free(plain);
    vwn_context_free(off);
    vwn_context_free(all);
    vwn_context_free(ctx);
}

/* ---- samplers ------------------------------------------------------------------------------- */

static int g_custom_freed;
static vwn_status custom_fail(void *user, const float *logits, int32_t n, float *probs) {
    (void)user; (void)logits; (void)n; (void)probs;
    return VWN_ERR_INVALID_ARG;
}
static vwn_status custom_uniform(void *user, const float *logits, int32_t n, float *probs) {
    (void)user; (void)logits;
    for (int32_t i = 0; i < n; i++) probs[i] = 1.0f / (float)n;
    return VWN_OK;
}
static void custom_free(void *user) { (void)user; g_custom_freed++; }

static void test_sampler(void) {
    vwn_sampler *s = (vwn_sampler *)g_foreign;
    EXPECT(vwn_sampler_new(NULL, NULL), VWN_ERR_INVALID_ARG);
    struct { const char *what; vwn_sampler_params p; } bad[16];
    size_t nb = 0;
    const vwn_sampler_params d = vwn_sampler_default_params();
    bad[nb].what = "temperature NaN"; bad[nb].p = d; bad[nb++].p.temperature = NAN;
    bad[nb].what = "temperature Inf"; bad[nb].p = d; bad[nb++].p.temperature = INFINITY;
    bad[nb].what = "top_p NaN"; bad[nb].p = d; bad[nb++].p.top_p = NAN;
    bad[nb].what = "min_p 2"; bad[nb].p = d; bad[nb++].p.min_p = 2.0f;
    bad[nb].what = "min_p NaN"; bad[nb].p = d; bad[nb++].p.min_p = NAN;
    bad[nb].what = "repeat_penalty 0"; bad[nb].p = d; bad[nb++].p.repeat_penalty = 0.0f;
    bad[nb].what = "repeat_penalty -1"; bad[nb].p = d; bad[nb++].p.repeat_penalty = -1.0f;
    bad[nb].what = "repeat_penalty NaN"; bad[nb].p = d; bad[nb++].p.repeat_penalty = NAN;
    bad[nb].what = "frequency_penalty Inf"; bad[nb].p = d; bad[nb++].p.frequency_penalty = INFINITY;
    bad[nb].what = "presence_penalty NaN"; bad[nb].p = d; bad[nb++].p.presence_penalty = NAN;
    bad[nb].what = "penalty_last_n -1"; bad[nb].p = d; bad[nb++].p.penalty_last_n = -1;
    bad[nb].what = "penalty_last_n INT32_MAX"; bad[nb].p = d; bad[nb++].p.penalty_last_n = INT32_MAX;
    for (size_t i = 0; i < nb; i++) {
        s = (vwn_sampler *)g_foreign;
        g_cases++;
        vwn_status st = vwn_sampler_new(&bad[i].p, &s);
        CHECK_MSG(st == VWN_ERR_INVALID_ARG, "sampler with %s: %s", bad[i].what, vwn_status_string(st));
        CHECK_MSG(vwn_last_error()[0] != '\0', "sampler with %s: no message", bad[i].what);
        CHECK(s == NULL);
    }
    vwn_sampler_iface none = {0};
    EXPECT(vwn_sampler_new_custom(NULL, NULL, 1, &s), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_new_custom(&none, NULL, 1, &s), VWN_ERR_INVALID_ARG);
    none.probs = custom_uniform;
    EXPECT(vwn_sampler_new_custom(&none, NULL, 1, NULL), VWN_ERR_INVALID_ARG);

    vwn_sampler_free(NULL);
    vwn_sampler_free(DEAD_SMPL);
    vwn_sampler_free(FOREIGN_SMPL);
    CHECK(!vwn_sampler_is_greedy(NULL));
    CHECK(!vwn_sampler_is_greedy(DEAD_SMPL));

    CHECK_OK(vwn_sampler_new(NULL, &s));
    float logits[4] = {1, 2, 3, 4}, probs[4];
    int32_t tok;
    double u;
    vwn_sampler *handles[] = {NULL, DEAD_SMPL, FOREIGN_SMPL};
    const vwn_status want[] = {VWN_ERR_INVALID_ARG, VWN_ERR_BAD_HANDLE, VWN_ERR_BAD_HANDLE};
    for (int i = 0; i < 3; i++) {
        EXPECT(vwn_sampler_probs(handles[i], logits, 4, probs), want[i]);
        EXPECT(vwn_sampler_sample(handles[i], logits, 4, &tok), want[i]);
        EXPECT(vwn_sampler_draw(handles[i], probs, 4, &tok), want[i]);
        EXPECT(vwn_sampler_uniform(handles[i], &u), want[i]);
        EXPECT(vwn_sampler_accept(handles[i], 1), want[i]);
        EXPECT(vwn_sampler_reset(handles[i]), want[i]);
    }
    EXPECT(vwn_sampler_probs((vwn_sampler *)g_model, logits, 4, probs), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_sampler_probs(s, NULL, 4, probs), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_probs(s, logits, 0, probs), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_probs(s, logits, -1, probs), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_probs(s, logits, INT32_MIN, probs), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_probs(s, logits, 4, NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_sample(s, NULL, 4, &tok), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_sample(s, logits, 0, &tok), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_sample(s, logits, 4, NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_draw(s, NULL, 4, &tok), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_draw(s, probs, 4, NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_uniform(s, NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_accept(s, -1), VWN_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(vwn_sampler_accept(s, INT32_MIN), VWN_ERR_TOKEN_OUT_OF_RANGE);
    /* distributions that are not distributions */
    const float bad_probs[][4] = {{0, 0, 0, 0}, {0.5f, -0.1f, 0.3f, 0.3f}, {NAN, 0.5f, 0.5f, 0},
                                  {INFINITY, 0, 0, 0}, {-0.0f, 0, 0, 0}};
    for (size_t i = 0; i < sizeof bad_probs / sizeof bad_probs[0]; i++)
        EXPECT(vwn_sampler_draw(s, bad_probs[i], 4, &tok), VWN_ERR_INVALID_ARG);
    /* logits the chain cannot use must fail cleanly or give a token in range, never crash */
    const float odd_logits[][4] = {{NAN, NAN, NAN, NAN}, {-INFINITY, -INFINITY, -INFINITY, -INFINITY},
                                   {INFINITY, 1, 2, 3}, {INFINITY, INFINITY, 0, 0}, {NAN, 1, 2, 3},
                                   {-FLT_MAX, FLT_MAX, 0, 0}};
    for (size_t i = 0; i < sizeof odd_logits / sizeof odd_logits[0]; i++) {
        tok = -7;
        g_cases += 2;
        vwn_status st = vwn_sampler_sample(s, odd_logits[i], 4, &tok);
        CHECK_MSG((st == VWN_OK && tok >= 0 && tok < 4) || (st != VWN_OK && vwn_last_error()[0] != '\0'),
                  "odd logits %zu: status %s token %d", i, vwn_status_string(st), tok);
        st = vwn_sampler_probs(s, odd_logits[i], 4, probs);
        CHECK_MSG(st == VWN_OK || vwn_last_error()[0] != '\0', "odd logits %zu: probs without message", i);
    }
    vwn_sampler_free(s);

    /* custom samplers: an error from the callback comes back with a message; free_user runs once */
    vwn_sampler_iface it = {custom_fail, NULL, NULL, custom_free};
    CHECK_OK(vwn_sampler_new_custom(&it, NULL, 1, &s));
    EXPECT(vwn_sampler_probs(s, logits, 4, probs), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_sampler_sample(s, logits, 4, &tok), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_sampler_accept(s, 3));
    CHECK_OK(vwn_sampler_reset(s));
    CHECK(!vwn_sampler_is_greedy(s));
    g_custom_freed = 0;
    vwn_sampler_free(s);
    CHECK(g_custom_freed == 1);
}

/* ---- generation and speculative decoding ---------------------------------------------------- */

static bool stop_now(int32_t token, const char *piece, int32_t len, void *user) {
    (void)token; (void)piece; (void)len; (void)user;
    return false;
}

static void test_generate(void) {
    vwn_context *ctx = tm_context(g_model, tm_params(48, 8, true, false));
    vwn_context *plain = tm_context(g_plain, tm_params(48, 8, true, false));
    vwn_context *off = tm_context(g_model, tm_params(48, 8, false, false));
    if (!ctx || !plain || !off) { CHECK(false); return; }
    vwn_generate_params gp = vwn_generate_default_params();
    gp.n_predict = 2;
    vwn_generate_stats stats;

    EXPECT(vwn_generate(NULL, "hi", &gp, &stats), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_generate(DEAD_CTX, "hi", &gp, &stats), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_generate_tokens(NULL, NULL, 0, &gp, &stats), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_generate_tokens(FOREIGN_CTX, NULL, 0, &gp, &stats), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_generate(ctx, NULL, &gp, &stats), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_generate_tokens(ctx, NULL, 3, &gp, &stats), VWN_ERR_INVALID_ARG);
    int32_t p3[3] = {1, 2, 3};
    EXPECT_CTX(ctx, vwn_generate_tokens(ctx, p3, -1, &gp, &stats), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_generate_tokens(ctx, NULL, 0, &gp, &stats), VWN_ERR_INVALID_ARG); /* nothing to continue */

    vwn_generate_params b = gp;
    b.n_stop = 2;
    b.stop = NULL;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_INVALID_ARG);
    b = gp;
    b.n_stop = -1;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_INVALID_ARG);
    b = gp;
    b.spec_depth = -2;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_INVALID_ARG);
    b.spec_depth = 3;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_INVALID_ARG);
    b.spec_depth = INT32_MIN;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_INVALID_ARG);
    b.spec_depth = 1;
    EXPECT_CTX(plain, vwn_generate(plain, "hi", &b, &stats), VWN_ERR_NO_MTP);
    EXPECT_CTX(off, vwn_generate(off, "hi", &b, &stats), VWN_ERR_NO_MTP);
    b = gp;
    b.sampler = DEAD_SMPL;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_BAD_HANDLE);
    b.sampler = FOREIGN_SMPL;
    EXPECT_CTX(ctx, vwn_generate(ctx, "hi", &b, &stats), VWN_ERR_BAD_HANDLE);

    /* prompts that cannot be decoded: nothing of them may stay in the context */
    int32_t t[60];
    tm_tokens(t, 60, g_V, 21);
    CHECK_OK(vwn_decode(ctx, t, 5));
    int32_t badp[20];
    memcpy(badp, t, sizeof badp);
    badp[15] = 999; /* in the second n_batch chunk */
    EXPECT_CTX(ctx, vwn_generate_tokens(ctx, badp, 20, &gp, &stats), VWN_ERR_TOKEN_OUT_OF_RANGE);
    badp[15] = -1;
    EXPECT_CTX(ctx, vwn_generate_tokens(ctx, badp, 20, &gp, &stats), VWN_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT_CTX(ctx, vwn_generate_tokens(ctx, t, 44, &gp, &stats), VWN_ERR_CONTEXT_FULL); /* 5 + 44 > 48 */
    char longp[64];
    memset(longp, 'a', sizeof longp - 1);
    longp[63] = '\0';
    EXPECT_CTX(ctx, vwn_generate(ctx, longp, &gp, &stats), VWN_ERR_CONTEXT_FULL);
    CHECK_MSG(decodes_like_fresh(ctx, t, 5), "the context diverges after failed generations");

    /* valid edge cases */
    CHECK_OK(vwn_context_clear(ctx));
    EXPECT_CTX(ctx, vwn_generate(ctx, "", &gp, NULL), VWN_ERR_INVALID_ARG); /* bytes: no BOS: nothing at all */
    b = gp;
    b.n_predict = 0;
    CHECK_OK(vwn_generate(ctx, "abc", &b, &stats));
    CHECK(stats.n_generated == 0 && stats.stop_reason == VWN_STOP_BUDGET);
    b = gp;
    b.callback = stop_now;
    CHECK_OK(vwn_generate(ctx, "abc", &b, &stats));
    CHECK(stats.stop_reason == VWN_STOP_CALLBACK);
    const char *stops[2] = {NULL, ""};
    b = gp;
    b.stop = stops;
    b.n_stop = 2;
    CHECK_OK(vwn_generate(ctx, "x", &b, &stats)); /* NULL and empty stop strings are ignored */

    vwn_context_free(ctx);
    vwn_context_free(plain);
    vwn_context_free(off);
}

static void test_speculative(void) {
    vwn_context *ctx = tm_context(g_model, tm_params(32, 8, true, false));
    vwn_context *plain = tm_context(g_plain, tm_params(32, 8, true, false));
    vwn_context *off = tm_context(g_model, tm_params(32, 8, false, false));
    vwn_context *narrow = tm_context(g_model, tm_params(32, 2, true, false));
    if (!ctx || !plain || !off || !narrow) { CHECK(false); return; }
    int32_t drafts[4], kept[6], n = -5;
    float dp[4];
    EXPECT(vwn_draft(NULL, 1, 1, NULL, drafts, dp, &n), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_draft(DEAD_CTX, 1, 1, NULL, drafts, dp, &n), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_draft(ctx, 1, 1, NULL, drafts, dp, &n), VWN_ERR_INVALID_ARG); /* empty */
    int32_t t[10];
    tm_tokens(t, 10, g_V, 31);
    CHECK_OK(vwn_decode(ctx, t, 6));
    CHECK_OK(vwn_decode(plain, t, 6));
    CHECK_OK(vwn_decode(off, t, 6));
    CHECK_OK(vwn_decode(narrow, t, 6));
    EXPECT_CTX(plain, vwn_draft(plain, 1, 1, NULL, drafts, dp, &n), VWN_ERR_NO_MTP);
    EXPECT_CTX(off, vwn_draft(off, 1, 1, NULL, drafts, dp, &n), VWN_ERR_NO_MTP);
    const int32_t bad_depth[] = {0, -1, 3, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_depth / sizeof bad_depth[0]; i++)
        EXPECT_CTX(ctx, vwn_draft(ctx, 1, bad_depth[i], NULL, drafts, dp, &n), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_draft(ctx, 1, 1, NULL, NULL, dp, &n), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_draft(ctx, -1, 1, NULL, drafts, dp, &n), VWN_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT_CTX(ctx, vwn_draft(ctx, 256, 1, NULL, drafts, dp, &n), VWN_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT_CTX(ctx, vwn_draft(ctx, 1, 1, DEAD_SMPL, drafts, dp, &n), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(narrow, vwn_draft(narrow, 1, 2, NULL, drafts, dp, &n), VWN_ERR_INVALID_ARG); /* n_batch 2 */

    EXPECT(vwn_verify(NULL, NULL, kept, &n), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_verify(DEAD_CTX, NULL, kept, &n), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_verify(ctx, NULL, kept, &n), VWN_ERR_NO_DRAFT);
    EXPECT_CTX(ctx, vwn_verify(ctx, NULL, NULL, &n), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_verify(ctx, NULL, kept, NULL), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(plain, vwn_verify(plain, NULL, kept, &n), VWN_ERR_NO_DRAFT);

    /* a greedy draft verified with a sampling sampler, and the reverse */
    CHECK_OK(vwn_draft(ctx, 7, 2, NULL, drafts, dp, &n));
    CHECK(n == 2);
    vwn_sampler *s = NULL;
    vwn_sampler_params sp = vwn_sampler_default_params();
    CHECK_OK(vwn_sampler_new(&sp, &s));
    EXPECT(vwn_verify(ctx, s, kept, &n), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_verify(ctx, DEAD_SMPL, kept, &n), VWN_ERR_BAD_HANDLE);
    CHECK_OK(vwn_verify(ctx, NULL, kept, &n));
    CHECK(n >= 2 && n <= 4 && kept[0] == 7);
    CHECK_OK(vwn_draft(ctx, kept[n - 1], 1, s, drafts, dp, &n));
    EXPECT(vwn_verify(ctx, NULL, kept, &n), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_verify(ctx, s, kept, &n));
    vwn_sampler_free(s);

    /* a context one position from full: verify cannot fit the draft */
    vwn_context *tight = tm_context(g_model, tm_params(8, 8, true, false));
    CHECK_OK(vwn_decode(tight, t, 6));
    CHECK_OK(vwn_draft(tight, 1, 2, NULL, drafts, dp, &n));
    EXPECT_CTX(tight, vwn_verify(tight, NULL, kept, &n), VWN_ERR_CONTEXT_FULL);
    vwn_context_free(tight);

    vwn_context_free(ctx);
    vwn_context_free(plain);
    vwn_context_free(off);
    vwn_context_free(narrow);
}

/* ---- saved state: handles and arguments (the damage classes are in test_state.c) ------------ */

static void test_state_args(void) {
    vwn_context *ctx = tm_context(g_model, tm_params(16, 4, true, false));
    uint64_t n = 0;
    uint8_t buf[64];
    EXPECT(vwn_state_size(NULL, &n), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_state_size(DEAD_CTX, &n), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_state_size(ctx, NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_state_save(NULL, buf, sizeof buf, &n), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_state_save(FOREIGN_CTX, buf, sizeof buf, &n), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_state_save(ctx, NULL, 1000, &n), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_state_save(ctx, buf, 0, &n), VWN_ERR_BUFFER_TOO_SMALL);
    EXPECT(vwn_state_save(ctx, buf, sizeof buf, NULL), VWN_ERR_BUFFER_TOO_SMALL);
    EXPECT_CTX(ctx, vwn_state_load(NULL, buf, sizeof buf), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_state_load(DEAD_CTX, buf, sizeof buf), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_state_load(ctx, NULL, 0), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_state_load(ctx, buf, 0), VWN_ERR_TRUNCATED);
    EXPECT_CTX(ctx, vwn_state_load(ctx, buf, UINT64_MAX), VWN_ERR_BAD_FORMAT); /* zeros: no magic */
    EXPECT(vwn_state_save_file(NULL, "x"), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_state_save_file(DEAD_CTX, "x"), VWN_ERR_BAD_HANDLE);
    EXPECT(vwn_state_save_file(ctx, NULL), VWN_ERR_INVALID_ARG);
    EXPECT(vwn_state_save_file(ctx, ""), VWN_ERR_IO);
    EXPECT_CTX(ctx, vwn_state_load_file(NULL, "x"), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_state_load_file(DEAD_CTX, "x"), VWN_ERR_BAD_HANDLE);
    EXPECT_CTX(ctx, vwn_state_load_file(ctx, NULL), VWN_ERR_INVALID_ARG);
    EXPECT_CTX(ctx, vwn_state_load_file(ctx, ""), VWN_ERR_IO);
    EXPECT_CTX(ctx, vwn_state_load_file(ctx, "/nonexistent/state"), VWN_ERR_IO);
    EXPECT_CTX(ctx, vwn_state_load_file(ctx, "/dev/null"), VWN_ERR_IO); /* not a regular file */
    vwn_context_free(ctx);
}

/* ---- the context stays usable after a failed decode ---------------------------------------- */

static void test_usable_after_failure(void) {
    vwn_context *ctx = tm_context(g_model, tm_params(32, 4, true, true));
    if (!ctx) { CHECK(false); return; }
    int32_t t[12];
    tm_tokens(t, 12, g_V, 41);
    const int32_t bad[2] = {t[0], -5};
    EXPECT_CTX(ctx, vwn_decode(ctx, bad, 2), VWN_ERR_TOKEN_OUT_OF_RANGE);
    CHECK_MSG(decodes_like_fresh(ctx, NULL, 0), "diverges after a bad first token");
    /* a bad token after some good ones, in batches */
    CHECK_OK(vwn_decode(ctx, t, 4));
    const int32_t bad2[4] = {t[4], t[5], 300, t[6]};
    EXPECT_CTX(ctx, vwn_decode(ctx, bad2, 4), VWN_ERR_TOKEN_OUT_OF_RANGE);
    const float *l;
    /* the outputs of the previous successful call are still there */
    CHECK_OK(vwn_get_logits(ctx, -1, &l));
    int32_t held[10];
    memcpy(held, vwn_context_tokens(ctx), sizeof(int32_t) * (size_t)vwn_context_length(ctx));
    CHECK_MSG(decodes_like_fresh(ctx, held, vwn_context_length(ctx)), "diverges after a bad token in a batch");
    vwn_context_free(ctx);
}

/* ---- nothing is printed --------------------------------------------------------------------- */

static void run_matrix(void) {
    test_basics();
    test_model_load();
    test_model_accessors();
    test_tokenizer();
    test_context_params();
    test_decode();
    test_sampler();
    test_generate();
    test_speculative();
    test_state_args();
    test_usable_after_failure();
}

/* Runs the matrix again with stdout and stderr going to files, which must stay empty. (A failing
 * CHECK also writes there; its text is shown, so the two cases are told apart.) */
static void test_no_printing(void) {
    char out_path[1024], err_path[1024];
    snprintf(out_path, sizeof out_path, "%s/misuse_stdout_%ld.txt", VWN_BINARY_DIR, (long)getpid());
    snprintf(err_path, sizeof err_path, "%s/misuse_stderr_%ld.txt", VWN_BINARY_DIR, (long)getpid());
    fflush(stdout);
    fflush(stderr);
    const int saved_out = dup(1), saved_err = dup(2);
    if (!freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr)) {
        CHECK(false);
        return;
    }
    const int failed_before = vt_failed;
    run_matrix();
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    clearerr(stdout);
    clearerr(stderr);
    const char *paths[2] = {out_path, err_path};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        CHECK(stat(paths[i], &sb) == 0);
        if (sb.st_size > 0) {
            fprintf(stderr, "---- %s (%lld bytes) ----\n", paths[i], (long long)sb.st_size);
            FILE *fp = fopen(paths[i], "r");
            char line[512];
            while (fp && fgets(line, sizeof line, fp)) fputs(line, stderr);
            if (fp) fclose(fp);
        }
        CHECK_MSG(sb.st_size == 0, "something was printed to %s during the quiet run (%d checks failed in it)",
                  i ? "stderr" : "stdout", vt_failed - failed_before);
        remove(paths[i]);
    }
}

int main(void) {
    gw_config c = gw_config_default();
    g_model = tm_model(&c, 1);
    gw_config p = gw_config_default();
    p.mtp_depth = 0;
    g_plain = tm_model(&p, 2);
    g_dead = calloc(1, 4096);
    g_foreign = calloc(1, 4096);
    if (!g_model || !g_plain || !g_dead || !g_foreign) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    const uint64_t dead = VWN_MAGIC_DEAD, junk = 0x0123456789abcdefULL;
    memcpy(g_dead, &dead, 8);
    memcpy(g_foreign, &junk, 8);
    g_V = tm_vocab(g_model);

    run_matrix();
    const int cases = g_cases;
    test_no_printing();
    printf("test_misuse: %d misuse calls with a checked status or sentinel (and again with output redirected)\n",
           cases);

    vwn_model_free(g_model);
    vwn_model_free(g_plain);
    free(g_dead);
    free(g_foreign);
    return vt_finish("test_misuse");
}

/* test_stress.c -- many threads, one model: 8 threads, each with its own context, run a seeded
 * random mix of prefill / decode / truncate / free+recreate / state save+restore / generate
 * (plain and speculative) and check every logits vector they see, main and MTP, bit for bit against
 * references computed alone before the threads start. Odd-numbered threads use fp16 KV caches
 * (context param kv_type), with references computed the same way.
 *
 * Each thread owns a master sequence M: a random prompt followed by the model's greedy
 * continuation. Every operation keeps the thread's context holding a prefix of M (generation is
 * greedy, so it extends the prefix with M's own next tokens), so the reference logits of position
 * p are those of M at p, computed once by a single-threaded batched decode.
 *
 * Run under ThreadSanitizer by scripts/tsan.sh (an OpenMP-free, libc-malloc build, so the report
 * has no false positives from libomp or mimalloc). Environment: VWN_STRESS_OPS (operations per
 * thread, default 40), VWN_STRESS_THREADS (default 8), VWN_STRESS_SEED (default 1),
 * VWN_STRESS_CTX_THREADS (compute threads of each context, default 2; an OpenMP-free build ignores
 * it). */
#define _GNU_SOURCE
#include "vwn.h"
#include "vt.h"
#include "test_models.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#define SEQ_LEN 96     /* master sequence length = n_ctx of every context */
#define PROMPT_LEN 12
#define MAX_THREADS 64
#define MTP_DEPTH 2

static vwn_model *g_model;
static int32_t g_V;
static int32_t g_ctx_threads; /* compute threads of every context */

typedef struct reference {
    int32_t kv_type;               /* the KV cache type of this thread's contexts */
    int32_t seq[SEQ_LEN];
    float *logits;                 /* [SEQ_LEN][V]             */
    float *mtp[MTP_DEPTH];         /* [SEQ_LEN][V] per module  */
    bool mtp_ok[MTP_DEPTH][SEQ_LEN];
} reference;

typedef struct worker {
    int id;
    uint64_t rng;
    int n_ops;
    const reference *ref;
    /* results, merged after the join (vt's counters are not thread-safe) */
    int passed, failed;
    int ops_done[8];
    /* generation callback */
    int32_t gen[SEQ_LEN];
    int32_t n_gen;
} worker;

static const char *op_names[8] = {"prefill", "decode", "truncate", "recreate", "save", "restore", "generate", "clear"};

static void wcheck(worker *w, bool cond, const char *fmt, ...) {
    if (cond) {
        w->passed++;
        return;
    }
    w->failed++;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL thread %d: %s (last error: %s)\n", w->id, msg, vwn_last_error());
}

static uint32_t wrand(worker *w, uint32_t n) {
    w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((w->rng >> 33) % n);
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ---- references (single-threaded, before the threads) --------------------------------------- */

static vwn_context_params ref_params(const reference *r, int32_t n_batch, bool mtp, bool logits_all) {
    vwn_context_params p = tm_params(SEQ_LEN, n_batch, mtp, logits_all);
    p.kv_type = r->kv_type;
    return p;
}

static bool make_reference(reference *r, uint64_t seed, int32_t kv_type) {
    r->kv_type = kv_type;
    tm_tokens(r->seq, PROMPT_LEN, g_V, seed);
    /* the greedy continuation, one token at a time */
    vwn_context *ctx = tm_context(g_model, ref_params(r, 16, false, false));
    if (!ctx || vwn_decode(ctx, r->seq, PROMPT_LEN) != VWN_OK) return false;
    for (int32_t p = PROMPT_LEN; p < SEQ_LEN; p++) {
        const float *l;
        if (vwn_get_logits(ctx, -1, &l) != VWN_OK) return false;
        r->seq[p] = argmax(l, g_V);
        if (p + 1 < SEQ_LEN && vwn_decode(ctx, &r->seq[p], 1) != VWN_OK) return false;
    }
    vwn_context_free(ctx);
    /* every logits vector of M in one batched call */
    ctx = tm_context(g_model, ref_params(r, SEQ_LEN, true, true));
    if (!ctx || vwn_decode(ctx, r->seq, SEQ_LEN) != VWN_OK) return false;
    r->logits = malloc(sizeof(float) * SEQ_LEN * (size_t)g_V);
    for (int j = 0; j < MTP_DEPTH; j++) r->mtp[j] = malloc(sizeof(float) * SEQ_LEN * (size_t)g_V);
    for (int32_t p = 0; p < SEQ_LEN; p++) {
        const float *l;
        if (vwn_get_logits(ctx, p, &l) != VWN_OK) return false;
        memcpy(r->logits + (size_t)p * g_V, l, sizeof(float) * (size_t)g_V);
        for (int j = 0; j < MTP_DEPTH; j++) {
            r->mtp_ok[j][p] = vwn_get_mtp_logits(ctx, j + 1, p, &l) == VWN_OK;
            if (r->mtp_ok[j][p]) memcpy(r->mtp[j] + (size_t)p * g_V, l, sizeof(float) * (size_t)g_V);
        }
    }
    vwn_context_free(ctx);
    return true;
}

/* ---- checks --------------------------------------------------------------------------------- */

static void check_prefix(worker *w, vwn_context *ctx) {
    const int32_t n = vwn_context_length(ctx);
    wcheck(w, n >= 0 && n <= SEQ_LEN, "length %d", n);
    if (n > 0) wcheck(w, memcmp(vwn_context_tokens(ctx), w->ref->seq, sizeof(int32_t) * (size_t)n) == 0,
                      "the context is not a prefix of the master sequence");
}

/* The main logits of position pos (if kept) equal the reference. */
static void check_main(worker *w, vwn_context *ctx, int32_t pos, bool required) {
    const float *l = NULL;
    vwn_status st = vwn_get_logits(ctx, pos, &l);
    if (st == VWN_ERR_NOT_KEPT && !required) return;
    wcheck(w, st == VWN_OK, "logits at %d: %s", pos, vwn_status_string(st));
    if (st == VWN_OK)
        wcheck(w, tm_same(l, w->ref->logits + (size_t)pos * g_V, g_V), "main logits at %d differ from the reference", pos);
}

/* The last MTP logits of every module (and all kept ones with logits_all) equal the reference. */
static void check_mtp(worker *w, vwn_context *ctx, bool all) {
    if (!vwn_context_get_params(ctx).mtp) return;
    for (int32_t j = 1; j <= MTP_DEPTH; j++) {
        const int32_t len = vwn_context_mtp_length(ctx, j);
        for (int32_t pos = len - 1; pos >= 0; pos--) {
            const float *l = NULL;
            if (vwn_get_mtp_logits(ctx, j, pos, &l) != VWN_OK) break;
            wcheck(w, w->ref->mtp_ok[j - 1][pos] && tm_same(l, w->ref->mtp[j - 1] + (size_t)pos * g_V, g_V),
                   "MTP %d logits at %d differ from the reference", j, pos);
            if (!all) break;
        }
    }
}

static bool collect(int32_t token, const char *piece, int32_t len, void *user) {
    (void)piece; (void)len;
    worker *w = user;
    if (token >= 0 && w->n_gen < SEQ_LEN) w->gen[w->n_gen++] = token; /* -1: the final flush of held-back text */
    return true;
}

/* ---- the worker ----------------------------------------------------------------------------- */

static vwn_context *new_context(worker *w) {
    static const int32_t batches[3] = {1, 4, 16};
    vwn_context_params p = ref_params(w->ref, batches[wrand(w, 3)], wrand(w, 4) != 0, wrand(w, 2) != 0);
    p.n_threads = g_ctx_threads;
    vwn_context *ctx = NULL;
    vwn_status st = vwn_context_new(g_model, &p, &ctx);
    wcheck(w, st == VWN_OK, "context_new: %s", vwn_status_string(st));
    return ctx;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    const reference *ref = w->ref;
    vwn_context *ctx = new_context(w);
    uint8_t *saved = NULL;
    uint64_t saved_n = 0;
    int32_t saved_len = 0;
    bool saved_mtp = false;

    for (int op_i = 0; op_i < w->n_ops && ctx; op_i++) {
        const vwn_context_params p = vwn_context_get_params(ctx);
        const int32_t len = vwn_context_length(ctx);
        const int32_t room = SEQ_LEN - len;
        /* weights: prefill 3, decode 2, truncate 2, recreate 1, save 1, restore 1, generate 3, clear 1 */
        static const int pick[14] = {0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 6, 6, 7};
        int op = pick[wrand(w, 14)];
        if ((op == 0 || op == 1 || op == 6) && room < 2) op = 2; /* full: rewind instead */
        w->ops_done[op]++;
        switch (op) {
        case 0: { /* prefill: several tokens in one call */
            int32_t n = 1 + (int32_t)wrand(w, 24);
            if (n > room) n = room;
            if (p.logits_all && n > p.n_batch) n = p.n_batch;
            vwn_status st = vwn_decode(ctx, ref->seq + len, n);
            wcheck(w, st == VWN_OK, "prefill of %d at %d: %s", n, len, vwn_status_string(st));
            for (int32_t q = p.logits_all ? len : len + n - 1; q < len + n; q++) check_main(w, ctx, q, true);
            check_mtp(w, ctx, p.logits_all);
            break;
        }
        case 1: { /* decode one */
            vwn_status st = vwn_decode(ctx, ref->seq + len, 1);
            wcheck(w, st == VWN_OK, "decode at %d: %s", len, vwn_status_string(st));
            check_main(w, ctx, len, true);
            check_mtp(w, ctx, false);
            break;
        }
        case 2: { /* truncate, near or far */
            const int32_t keep = len ? (int32_t)wrand(w, (uint32_t)len + 1) : 0;
            vwn_status st = vwn_context_truncate(ctx, keep);
            wcheck(w, st == VWN_OK && vwn_context_length(ctx) == keep, "truncate to %d: %s", keep,
                   vwn_status_string(st));
            break;
        }
        case 3: /* free and recreate */
            vwn_context_free(ctx);
            ctx = new_context(w);
            break;
        case 4: { /* save */
            uint64_t n = 0, written = 0;
            vwn_status st = vwn_state_size(ctx, &n);
            free(saved);
            saved = malloc((size_t)n);
            if (st == VWN_OK && saved) st = vwn_state_save(ctx, saved, n, &written);
            wcheck(w, st == VWN_OK && written == n, "save: %s", vwn_status_string(st));
            saved_n = n;
            saved_len = len;
            saved_mtp = p.mtp;
            break;
        }
        case 5: { /* restore the last save (made by this or an earlier context of this thread) */
            if (!saved) break;
            vwn_status st = vwn_state_load(ctx, saved, saved_n);
            if (!saved_mtp && p.mtp) {
                wcheck(w, st == VWN_ERR_STATE_MISMATCH, "restore without MTP into MTP: %s", vwn_status_string(st));
                wcheck(w, vwn_context_length(ctx) == len, "a refused restore changed the length");
                break;
            }
            wcheck(w, st == VWN_OK && vwn_context_length(ctx) == saved_len, "restore of %d tokens: %s", saved_len,
                   vwn_status_string(st));
            if (saved_len > 0) check_main(w, ctx, saved_len - 1, false);
            check_mtp(w, ctx, false);
            break;
        }
        case 6: { /* greedy generation continuing the context, plain or speculative */
            if (len < PROMPT_LEN) { /* generation follows M only after its prompt: decode the rest first */
                vwn_status st = vwn_decode(ctx, ref->seq + len, p.logits_all && PROMPT_LEN - len > p.n_batch ?
                                           p.n_batch : PROMPT_LEN - len);
                wcheck(w, st == VWN_OK, "prompt before generate: %s", vwn_status_string(st));
                check_prefix(w, ctx);
                break;
            }
            vwn_generate_params gp = vwn_generate_default_params();
            gp.n_predict = 1 + (int32_t)wrand(w, 8);
            if (gp.n_predict > room - 1) gp.n_predict = room - 1;
            static const int32_t depths[4] = {0, 1, 2, -1};
            gp.spec_depth = p.mtp ? depths[wrand(w, 4)] : 0;
            gp.callback = collect;
            gp.user_data = w;
            w->n_gen = 0;
            vwn_generate_stats stats;
            vwn_status st = vwn_generate_tokens(ctx, NULL, 0, &gp, &stats);
            wcheck(w, st == VWN_OK, "generate %d from %d (spec %d): %s", gp.n_predict, len, gp.spec_depth,
                   vwn_status_string(st));
            wcheck(w, stats.n_generated == gp.n_predict && w->n_gen == gp.n_predict,
                   "generated %d of %d", stats.n_generated, gp.n_predict);
            wcheck(w, memcmp(w->gen, ref->seq + len, sizeof(int32_t) * (size_t)w->n_gen) == 0,
                   "generation from %d (spec %d) left the greedy path", len, gp.spec_depth);
            const int32_t now = vwn_context_length(ctx);
            wcheck(w, now == len + w->n_gen || now == len + w->n_gen - 1, "length %d after generating %d from %d",
                   now, w->n_gen, len);
            if (now > 0) check_main(w, ctx, now - 1, false);
            break;
        }
        case 7: /* clear */
            wcheck(w, vwn_context_clear(ctx) == VWN_OK && vwn_context_length(ctx) == 0, "clear");
            break;
        }
        check_prefix(w, ctx);
    }
    free(saved);
    vwn_context_free(ctx);
    return NULL;
}

static int env_int(const char *name, int def) {
    const char *s = getenv(name);
    return s && *s ? atoi(s) : def;
}

int main(void) {
    const int n_threads = env_int("VWN_STRESS_THREADS", 8);
    const int n_ops = env_int("VWN_STRESS_OPS", 40);
    const uint64_t seed = (uint64_t)env_int("VWN_STRESS_SEED", 1);
    g_ctx_threads = env_int("VWN_STRESS_CTX_THREADS", 2);
    if (n_threads < 1 || n_threads > MAX_THREADS) return 1;
    gw_config c = gw_config_default(); /* MTP 2 */
    g_model = tm_model(&c, 1);
    if (!g_model) return 1;
    g_V = tm_vocab(g_model);

    static reference refs[MAX_THREADS];
    static worker workers[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < n_threads; i++) {
        /* odd threads keep fp16 KV caches (their own references: bit-identical again) */
        CHECK_MSG(make_reference(&refs[i], seed * 1000 + (uint64_t)i, i % 2 ? VWN_TYPE_F16 : VWN_TYPE_F32),
                  "reference %d", i);
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].id = i;
        workers[i].rng = seed * 7919 + (uint64_t)i * 104729 + 1;
        workers[i].n_ops = n_ops;
        workers[i].ref = &refs[i];
    }
    for (int i = 0; i < n_threads; i++) CHECK(pthread_create(&th[i], NULL, worker_main, &workers[i]) == 0);
    int ops[8] = {0}, total = 0;
    for (int i = 0; i < n_threads; i++) {
        pthread_join(th[i], NULL);
        vt_passed += workers[i].passed;
        vt_failed += workers[i].failed;
        for (int k = 0; k < 8; k++) {
            ops[k] += workers[i].ops_done[k];
            total += workers[i].ops_done[k];
        }
    }
    printf("test_stress: %d threads x %d operations (seed %llu):", n_threads, n_ops, (unsigned long long)seed);
    for (int k = 0; k < 8; k++) printf(" %s %d", op_names[k], ops[k]);
    printf("; %d operations in all\n", total);
    for (int i = 0; i < n_threads; i++) {
        free(refs[i].logits);
        for (int j = 0; j < MTP_DEPTH; j++) free(refs[i].mtp[j]);
    }
    vwn_model_free(g_model);
    return vt_finish("test_stress");
}

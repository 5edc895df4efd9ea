/* test_sampler.c -- lib/sampler.c against the formulas of docs/sampling.md, computed here in double:
 * exact masks and probabilities of top-k / temperature / top-p / min-p and their chain, the
 * penalties, greedy ties, the RNG's first outputs (xoshiro256** seeded by splitmix64, values from an
 * independent implementation), seeded reproducibility, a chi-square test of 20000 draws at a fixed
 * seed, inverse-CDF draws in token-id order, a caller-defined sampler and the errors. */
#include "vt.h"

#include "common.h"
#include "vwn.h"

#include <math.h>
#include <stdint.h>

#define V 10

static const float base_logits[V] = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f, 3.0f, -1.0f, 1.5f, 2.0f, 0.5f};

static vwn_sampler_params plain(float temperature) {
    vwn_sampler_params p = vwn_sampler_default_params();
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static vwn_sampler *make(const vwn_sampler_params *p) {
    vwn_sampler *s = NULL;
    CHECK_OK(vwn_sampler_new(p, &s));
    return s;
}

/* softmax of logits/T over the tokens in mask (double), renormalised; probs of others 0 */
static void expected_softmax(const float *logits, const bool *mask, double T, double *out) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++)
        if (mask[i] && logits[i] > max) max = logits[i];
    for (int i = 0; i < V; i++) {
        out[i] = mask[i] ? exp(((double)logits[i] - max) / T) : 0.0;
        sum += out[i];
    }
    for (int i = 0; i < V; i++) out[i] /= sum;
}

static bool probs_match(vwn_sampler *s, const float *logits, const double *want, const char *what) {
    float got[V];
    vwn_status st = vwn_sampler_probs(s, logits, V, got);
    bool ok = st == VWN_OK;
    for (int i = 0; i < V && ok; i++)
        if (fabs((double)got[i] - want[i]) > 1e-6 || ((got[i] == 0) != (want[i] == 0))) ok = false;
    if (!ok) {
        fprintf(stderr, "%s: status %d\n  got ", what, (int)st);
        for (int i = 0; i < V; i++) fprintf(stderr, " %.6f", (double)got[i]);
        fprintf(stderr, "\n want ");
        for (int i = 0; i < V; i++) fprintf(stderr, " %.6f", want[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static void test_masks(void) {
    bool all[V];
    for (int i = 0; i < V; i++) all[i] = true;
    double want[V];

    /* temperature alone */
    vwn_sampler_params p = plain(0.7f);
    vwn_sampler *s = make(&p);
    expected_softmax(base_logits, all, 0.7f, want);
    CHECK(probs_match(s, base_logits, want, "temperature 0.7"));
    CHECK(!vwn_sampler_is_greedy(s));
    vwn_sampler_free(s);

    /* top-k 3: logits 3 (ids 1, 5), 2.5 (id 3); top-k 2 with the tie 3.0/3.0 */
    p = plain(1.0f);
    p.top_k = 3;
    s = make(&p);
    bool k3[V] = {0};
    k3[1] = k3[5] = k3[3] = true;
    expected_softmax(base_logits, k3, 1.0, want);
    CHECK(probs_match(s, base_logits, want, "top-k 3"));
    vwn_sampler_free(s);
    /* ties at the cut: ids 1 and 5 both 3.0 -> top-k 1 keeps the lower id */
    p.top_k = 1;
    s = make(&p);
    for (int i = 0; i < V; i++) want[i] = i == 1;
    CHECK(probs_match(s, base_logits, want, "top-k 1 tie"));
    vwn_sampler_free(s);
    /* top-k >= V is off */
    p.top_k = 50;
    s = make(&p);
    expected_softmax(base_logits, all, 1.0, want);
    CHECK(probs_match(s, base_logits, want, "top-k 50"));
    vwn_sampler_free(s);

    /* top-p: sort by prob desc (ties lower id first), smallest prefix with cumsum >= p */
    for (int pi = 0; pi < 4; pi++) {
        const float ps[4] = {0.3f, 0.6f, 0.9f, 0.999f};
        p = plain(1.0f);
        p.top_p = ps[pi];
        s = make(&p);
        double full[V];
        expected_softmax(base_logits, all, 1.0, full);
        int order[V];
        for (int i = 0; i < V; i++) order[i] = i;
        for (int i = 0; i < V; i++)             /* selection sort: prob desc, id asc */
            for (int j = i + 1; j < V; j++)
                if (full[order[j]] > full[order[i]] ||
                    (full[order[j]] == full[order[i]] && order[j] < order[i])) {
                    int t = order[i]; order[i] = order[j]; order[j] = t;
                }
        bool mask[V] = {0};
        double cum = 0;
        for (int i = 0; i < V; i++) {
            mask[order[i]] = true;
            cum += full[order[i]];
            if (cum >= ps[pi]) break;
        }
        expected_softmax(base_logits, mask, 1.0, want);
        char what[32];
        snprintf(what, sizeof what, "top-p %.3f", (double)ps[pi]);
        CHECK(probs_match(s, base_logits, want, what));
        vwn_sampler_free(s);
    }
    /* top-p 0.3 keeps exactly the two tied 3.0 logits? p(1) = p(5) ~ 0.26 each: {1, 5} */
    p = plain(1.0f);
    p.top_p = 0.3f;
    s = make(&p);
    float got[V];
    CHECK_OK(vwn_sampler_probs(s, base_logits, V, got));
    CHECK(got[1] > 0 && got[5] > 0 && fabsf(got[1] - 0.5f) < 1e-6f && got[3] == 0);
    vwn_sampler_free(s);

    /* min-p: keep p >= min_p * p_max */
    p = plain(1.0f);
    p.min_p = 0.2f;
    s = make(&p);
    double full[V];
    expected_softmax(base_logits, all, 1.0, full);
    bool mask[V];
    for (int i = 0; i < V; i++) mask[i] = full[i] >= 0.2 * full[1];
    expected_softmax(base_logits, mask, 1.0, want);
    CHECK(probs_match(s, base_logits, want, "min-p 0.2"));
    vwn_sampler_free(s);

    /* the whole chain: top-k 6 -> T 0.8 -> top-p 0.85 -> min-p 0.15 */
    p = plain(0.8f);
    p.top_k = 6;
    p.top_p = 0.85f;
    p.min_p = 0.15f;
    s = make(&p);
    {
        bool m6[V] = {0};
        int order[V];
        for (int i = 0; i < V; i++) order[i] = i;
        for (int i = 0; i < V; i++)             /* logit desc, id asc */
            for (int j = i + 1; j < V; j++)
                if (base_logits[order[j]] > base_logits[order[i]] ||
                    (base_logits[order[j]] == base_logits[order[i]] && order[j] < order[i])) {
                    int t = order[i]; order[i] = order[j]; order[j] = t;
                }
        for (int i = 0; i < 6; i++) m6[order[i]] = true;
        double q[V];
        expected_softmax(base_logits, m6, 0.8f, q);
        bool mp[V] = {0};
        double cum = 0, pmax = q[order[0]];
        for (int i = 0; i < 6; i++) {        /* probs follow the logit order */
            mp[order[i]] = true;
            cum += q[order[i]];
            if (cum >= 0.85f) break;
        }
        for (int i = 0; i < V; i++) mp[i] = mp[i] && q[i] >= (double)0.15f * pmax;
        expected_softmax(base_logits, mp, 0.8f, want);
        CHECK(probs_match(s, base_logits, want, "chain"));
    }
    vwn_sampler_free(s);

    /* -inf logits never get probability */
    float l2[V];
    memcpy(l2, base_logits, sizeof l2);
    l2[1] = -INFINITY;
    p = plain(1.0f);
    s = make(&p);
    bool m2[V];
    for (int i = 0; i < V; i++) m2[i] = i != 1;
    expected_softmax(l2, m2, 1.0, want);
    CHECK(probs_match(s, l2, want, "-inf logit"));
    /* in place: logits and probs the same buffer */
    memcpy(l2, base_logits, sizeof l2);
    expected_softmax(base_logits, all, 1.0, want);
    CHECK_OK(vwn_sampler_probs(s, l2, V, l2));
    bool same = true;
    for (int i = 0; i < V; i++) same &= fabs((double)l2[i] - want[i]) < 1e-6;
    CHECK(same);
    vwn_sampler_free(s);
}


/* top-p on a large vocabulary (the library sorts only blocks of the best candidates, 64 then
 * doubling): the kept set and probabilities must equal a full sort's, computed here with the
 * library's own double arithmetic (softmax summed in id order, prefix summed in sorted order).
 * Logits on a 0.25 grid make many ties (broken by id); high temperatures keep thousands of
 * tokens, so several blocks are needed. */
#define BIG_V 5000
static const double *big_p;
static int cmp_big(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (big_p[x] != big_p[y]) return big_p[x] > big_p[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void test_top_p_large(void) {
    static float logits[BIG_V];
    static double e[BIG_V], pr[BIG_V];
    static int order[BIG_V];
    static float got[BIG_V];
    uint64_t r = 12345;
    for (int i = 0; i < BIG_V; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((int)(r >> 40) % 41 - 20) * 0.25f; /* -5 .. 5 in steps of 0.25 */
    }
    const float temps[3] = {0.5f, 1.0f, 4.0f};
    const float tops[4] = {0.5f, 0.9f, 0.99f, 0.999999f};
    int blocks_needed = 0;
    for (int ti = 0; ti < 3; ti++)
        for (int pi = 0; pi < 4; pi++) {
            vwn_sampler_params p = plain(temps[ti]);
            p.top_p = tops[pi];
            vwn_sampler *s = make(&p);
            double max = -INFINITY, sum = 0.0;
            for (int i = 0; i < BIG_V; i++)
                if (logits[i] > max) max = logits[i];
            for (int i = 0; i < BIG_V; i++) {
                e[i] = exp(((double)logits[i] - max) / (double)temps[ti]);
                sum += e[i];
            }
            for (int i = 0; i < BIG_V; i++) {
                pr[i] = e[i] / sum;
                order[i] = i;
            }
            big_p = pr;
            qsort(order, BIG_V, sizeof *order, cmp_big);
            double cum = 0.0;
            int keep = BIG_V;
            for (int i = 0; i < BIG_V; i++) {
                cum += pr[order[i]];
                if (cum >= (double)tops[pi]) { keep = i + 1; break; }
            }
            if (keep > 64) blocks_needed++;
            double kept = 0.0;
            for (int i = 0; i < keep; i++) kept += pr[order[i]];
            CHECK_OK(vwn_sampler_probs(s, logits, BIG_V, got));
            int bad = 0, n_kept = 0;
            static bool in[BIG_V];
            memset(in, 0, sizeof in);
            for (int i = 0; i < keep; i++) in[order[i]] = true;
            for (int i = 0; i < BIG_V; i++) {
                float want = in[i] ? (float)(pr[i] / kept) : 0.0f;
                n_kept += got[i] > 0;
                if (got[i] != want) bad++;
            }
            if (bad) fprintf(stderr, "top-p %g at T %g: %d of %d probabilities differ (kept %d, want %d)\n",
                             (double)tops[pi], (double)temps[ti], bad, BIG_V, n_kept, keep);
            CHECK(bad == 0);
            vwn_sampler_free(s);
        }
    CHECK(blocks_needed >= 3); /* the cases do reach past the first block */
}

static void test_greedy(void) {
    vwn_sampler_params p = plain(0.0f);
    vwn_sampler *s = make(&p);
    CHECK(vwn_sampler_is_greedy(s));
    float probs[V];
    CHECK_OK(vwn_sampler_probs(s, base_logits, V, probs));
    bool onehot = true;
    for (int i = 0; i < V; i++) onehot &= probs[i] == (i == 1 ? 1.0f : 0.0f);   /* tie 1/5: lower id */
    CHECK(onehot);
    int32_t tok = -1;
    for (int k = 0; k < 5; k++) {
        CHECK_OK(vwn_sampler_sample(s, base_logits, V, &tok));
        CHECK(tok == 1);
    }
    vwn_sampler_free(s);
    p.temperature = -1.0f;                              /* any temperature <= 0 */
    s = make(&p);
    CHECK(vwn_sampler_is_greedy(s));
    const float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    CHECK_OK(vwn_sampler_sample(s, flat, 4, &tok));
    CHECK(tok == 0);
    vwn_sampler_free(s);
}

static void test_penalties(void) {
    vwn_sampler_params p = plain(1.0f);
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = 0.2f;
    p.presence_penalty = 0.5f;
    p.penalty_last_n = 64;
    vwn_sampler *s = make(&p);
    /* history: 1, 1, 2, 9, 1 -> counts 1:3, 2:1, 9:1 */
    const int32_t hist[] = {1, 1, 2, 9, 1};
    for (int i = 0; i < 5; i++) CHECK_OK(vwn_sampler_accept(s, hist[i]));
    float pen[V];
    memcpy(pen, base_logits, sizeof pen);
    int count[V] = {0};
    for (int i = 0; i < 5; i++) count[hist[i]]++;
    for (int i = 0; i < V; i++) {
        if (!count[i]) continue;
        pen[i] = pen[i] > 0 ? pen[i] / 1.3f : pen[i] * 1.3f;
        pen[i] -= (float)count[i] * 0.2f + 0.5f;
    }
    bool all[V];
    for (int i = 0; i < V; i++) all[i] = true;
    double want[V];
    expected_softmax(pen, all, 1.0, want);
    CHECK(probs_match(s, base_logits, want, "penalties"));

    /* greedy sees the penalised logits: id 5 (3.0, unseen) now beats id 1 */
    vwn_sampler_params g = p;
    g.temperature = 0;
    vwn_sampler *sg = make(&g);
    for (int i = 0; i < 5; i++) vwn_sampler_accept(sg, hist[i]);
    int32_t tok;
    CHECK_OK(vwn_sampler_sample(sg, base_logits, V, &tok));
    CHECK(tok == 5);
    /* reset forgets the history */
    CHECK_OK(vwn_sampler_reset(sg));
    CHECK_OK(vwn_sampler_sample(sg, base_logits, V, &tok));
    CHECK(tok == 1);
    vwn_sampler_free(sg);
    vwn_sampler_free(s);

    /* the window: only the last 2 accepted tokens (9, 1) count */
    p.penalty_last_n = 2;
    s = make(&p);
    for (int i = 0; i < 5; i++) vwn_sampler_accept(s, hist[i]);
    memcpy(pen, base_logits, sizeof pen);
    pen[9] = pen[9] / 1.3f - (0.2f + 0.5f);
    pen[1] = pen[1] / 1.3f - (0.2f + 0.5f);
    expected_softmax(pen, all, 1.0, want);
    CHECK(probs_match(s, base_logits, want, "penalty window"));
    vwn_sampler_free(s);

    /* negative logits are multiplied */
    p.penalty_last_n = 8;
    p.frequency_penalty = p.presence_penalty = 0;
    s = make(&p);
    vwn_sampler_accept(s, 2);
    memcpy(pen, base_logits, sizeof pen);
    pen[2] = -2.0f * 1.3f;
    expected_softmax(pen, all, 1.0, want);
    CHECK(probs_match(s, base_logits, want, "repeat negative"));
    /* history tokens outside the vocabulary are ignored */
    vwn_sampler_accept(s, 1000);
    CHECK(probs_match(s, base_logits, want, "out-of-vocabulary history"));
    vwn_sampler_free(s);
}

static void test_rng(void) {
    /* xoshiro256**, state = 4 outputs of splitmix64 from the seed; u = (x >> 11) * 2^-53 */
    static const struct { uint64_t seed; double u[4]; } known[] = {
        {0, {0x1.33d8be6d96ebep-1, 0x1.7edc3ef092ac8p-1, 0x1.a5f849d4933e0p-4, 0x1.aa9653c498b4ap-2}},
        {12345, {0x1.7cd46c6e82c1ap-1, 0x1.0a555031bd344p-3, 0x1.ed3a2dbd32a9ap-1, 0x1.8c009189d2dc0p-5}},
        {UINT64_MAX, {0x1.1eaa41aa54fd5p-1, 0x1.88ed403195430p-1, 0x1.03bc6381a4c08p-1, 0x1.7ecb1afc0cbe7p-1}},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        vwn_sampler_params p = plain(1.0f);
        p.seed = known[k].seed;
        vwn_sampler *s = make(&p);
        for (int i = 0; i < 4; i++) {
            double u = -1;
            CHECK_OK(vwn_sampler_uniform(s, &u));
            CHECK_MSG(u == known[k].u[i], "seed %llu draw %d: %a", (unsigned long long)known[k].seed, i, u);
        }
        /* reset reseeds */
        CHECK_OK(vwn_sampler_reset(s));
        double u;
        CHECK_OK(vwn_sampler_uniform(s, &u));
        CHECK(u == known[k].u[0]);
        vwn_sampler_free(s);
    }

    /* a draw is the inverse CDF in id order at the next uniform */
    vwn_sampler_params p = plain(1.0f);
    p.seed = 12345;
    vwn_sampler *s = make(&p);
    const float probs[5] = {0.1f, 0.0f, 0.25f, 0.4f, 0.25f};
    for (int k = 0; k < 4; k++) {
        int32_t tok;
        CHECK_OK(vwn_sampler_draw(s, probs, 5, &tok));
        double u = known[1].u[k], cum = 0, total = 0;
        for (int i = 0; i < 5; i++) total += probs[i];
        int32_t want = -1;
        for (int i = 0; i < 5 && want < 0; i++) {
            cum += probs[i];
            if (probs[i] > 0 && u * total < cum) want = i;
        }
        CHECK_MSG(tok == want, "draw %d: got %d want %d", k, (int)tok, (int)want);
    }
    vwn_sampler_free(s);

    /* same seed, same sequence; another seed, another sequence */
    p = vwn_sampler_default_params();
    p.seed = 99;
    vwn_sampler *a = make(&p), *b = make(&p);
    p.seed = 100;
    vwn_sampler *c = make(&p);
    bool same = true, differ = false;
    for (int i = 0; i < 200; i++) {
        int32_t ta, tb, tc;
        vwn_sampler_sample(a, base_logits, V, &ta);
        vwn_sampler_sample(b, base_logits, V, &tb);
        vwn_sampler_sample(c, base_logits, V, &tc);
        same &= ta == tb;
        differ |= ta != tc;
    }
    CHECK(same && differ);
    vwn_sampler_free(a);
    vwn_sampler_free(b);
    vwn_sampler_free(c);
}

static void test_chi_square(void) {
    /* 20000 draws at a fixed seed against the distribution: deterministic; threshold at p = 1e-4 */
    vwn_sampler_params p = plain(1.0f);
    p.seed = 2024;
    vwn_sampler *s = make(&p);
    float probs[V];
    CHECK_OK(vwn_sampler_probs(s, base_logits, V, probs));
    int counts[V] = {0};
    const int N = 20000;
    int failures = 0;
    for (int i = 0; i < N; i++) {
        int32_t tok = -1;
        failures += vwn_sampler_sample(s, base_logits, V, &tok) != VWN_OK;
        if (tok >= 0 && tok < V) counts[tok]++;
    }
    CHECK(failures == 0);
    double chi2 = 0;
    for (int i = 0; i < V; i++) {
        double e = N * (double)probs[i];
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    /* 9 degrees of freedom: P(chi2 > 33.72) = 1e-4 */
    CHECK_MSG(chi2 < 33.72, "chi2 = %.2f", chi2);
    printf("chi-square of %d draws over %d tokens: %.2f (threshold 33.72)\n", N, V, chi2);

    /* the same with a truncated distribution (top-k 4): the rest is never drawn */
    vwn_sampler_free(s);
    p.top_k = 4;
    s = make(&p);
    CHECK_OK(vwn_sampler_probs(s, base_logits, V, probs));
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < N; i++) {
        int32_t tok = -1;
        vwn_sampler_sample(s, base_logits, V, &tok);
        if (tok >= 0 && tok < V) counts[tok]++;
    }
    chi2 = 0;
    bool outside = false;
    for (int i = 0; i < V; i++) {
        if (probs[i] == 0) { outside |= counts[i] != 0; continue; }
        double e = N * (double)probs[i];
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    CHECK(!outside);
    CHECK_MSG(chi2 < 21.11, "chi2 = %.2f", chi2);        /* 3 dof: P(chi2 > 21.11) = 1e-4 */
    vwn_sampler_free(s);
}

/* ---- a caller-defined sampler ---- */

typedef struct user_state {
    int accepted, resets, freed;
    int32_t last;
    bool fail;
} user_state;

static vwn_status user_probs(void *user, const float *logits, int32_t n_vocab, float *out) {
    user_state *u = user;
    if (u->fail) return VWN_ERR_ABORTED;
    for (int32_t i = 0; i < n_vocab; i++) out[i] = 0;
    out[n_vocab - 1] = 0.25f;                          /* the last token 1/4, the best logit 3/4 */
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = i;
    out[best] += 0.75f;
    return VWN_OK;
}
static void user_accept(void *user, int32_t token) { ((user_state *)user)->accepted++; ((user_state *)user)->last = token; }
static void user_reset(void *user) { ((user_state *)user)->resets++; }
static void user_free(void *user) { ((user_state *)user)->freed++; }

static void test_custom(void) {
    user_state u = {0};
    vwn_sampler_iface iface = {user_probs, user_accept, user_reset, user_free};
    vwn_sampler *s = NULL;
    CHECK_OK(vwn_sampler_new_custom(&iface, &u, 5, &s));
    if (!s) return;
    CHECK(!vwn_sampler_is_greedy(s));
    float probs[V];
    CHECK_OK(vwn_sampler_probs(s, base_logits, V, probs));
    CHECK(probs[1] == 0.75f && probs[V - 1] == 0.25f);
    int n_best = 0, n_last = 0, n_other = 0;
    for (int i = 0; i < 4000; i++) {
        int32_t tok = -1;
        vwn_sampler_sample(s, base_logits, V, &tok);
        if (tok == 1) n_best++;
        else if (tok == V - 1) n_last++;
        else n_other++;
    }
    CHECK(n_other == 0 && n_best > 2800 && n_best < 3200);
    CHECK_OK(vwn_sampler_accept(s, 7));
    CHECK(u.accepted == 1 && u.last == 7);
    CHECK_OK(vwn_sampler_reset(s));
    CHECK(u.resets == 1);
    /* in place works for custom samplers too */
    float buf[V];
    memcpy(buf, base_logits, sizeof buf);
    CHECK_OK(vwn_sampler_probs(s, buf, V, buf));
    CHECK(buf[1] == 0.75f);
    /* the callback's failure is passed on */
    u.fail = true;
    int32_t tok;
    CHECK_STATUS(vwn_sampler_sample(s, base_logits, V, &tok), VWN_ERR_ABORTED);
    CHECK(strstr(vwn_last_error(), "custom") != NULL);
    vwn_sampler_free(s);
    CHECK(u.freed == 1);
    /* same seed: same draws as a standard sampler's RNG */
    vwn_sampler_params p = plain(1.0f);
    p.seed = 5;
    vwn_sampler *std = make(&p);
    CHECK_OK(vwn_sampler_new_custom(&iface, &u, 5, &s));
    double x, y;
    vwn_sampler_uniform(s, &x);
    vwn_sampler_uniform(std, &y);
    CHECK(x == y);
    vwn_sampler_free(std);
    vwn_sampler_free(s);
    vwn_sampler_iface no_probs = {NULL, NULL, NULL, NULL};
    CHECK_STATUS(vwn_sampler_new_custom(&no_probs, NULL, 0, &s), VWN_ERR_INVALID_ARG);
    CHECK(s == NULL);
}

static void test_errors(void) {
    vwn_sampler *s = NULL;
    vwn_sampler_params p = vwn_sampler_default_params();
    CHECK(p.seed == 0 && p.temperature == 0.8f && p.top_k == 40 && p.top_p == 0.95f &&
          p.min_p == 0.05f && p.repeat_penalty == 1.0f && p.penalty_last_n == 64);
    p.top_p = NAN;
    CHECK_STATUS(vwn_sampler_new(&p, &s), VWN_ERR_INVALID_ARG);
    p = vwn_sampler_default_params();
    p.repeat_penalty = 0;
    CHECK_STATUS(vwn_sampler_new(&p, &s), VWN_ERR_INVALID_ARG);
    CHECK(strstr(vwn_last_error(), "repeat_penalty") != NULL);
    p = vwn_sampler_default_params();
    p.penalty_last_n = -1;
    CHECK_STATUS(vwn_sampler_new(&p, &s), VWN_ERR_INVALID_ARG);
    p = vwn_sampler_default_params();
    p.temperature = INFINITY;
    CHECK_STATUS(vwn_sampler_new(&p, &s), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_new(NULL, NULL), VWN_ERR_INVALID_ARG);
    CHECK_OK(vwn_sampler_new(NULL, &s));                  /* NULL params: the defaults */

    float l[V], probs[V];
    memcpy(l, base_logits, sizeof l);
    l[4] = NAN;
    int32_t tok;
    CHECK_STATUS(vwn_sampler_probs(s, l, V, probs), VWN_ERR_INVALID_ARG);
    CHECK(strstr(vwn_last_error(), "logit 4 is NaN") != NULL);
    for (int i = 0; i < V; i++) l[i] = -INFINITY;
    CHECK_STATUS(vwn_sampler_sample(s, l, V, &tok), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_probs(s, base_logits, 0, probs), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_probs(s, NULL, V, probs), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_sample(s, base_logits, V, NULL), VWN_ERR_INVALID_ARG);
    const float neg[3] = {0.5f, -0.1f, 0.6f}, zero[3] = {0, 0, 0};
    CHECK_STATUS(vwn_sampler_draw(s, neg, 3, &tok), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_draw(s, zero, 3, &tok), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_accept(s, -1), VWN_ERR_TOKEN_OUT_OF_RANGE);
    CHECK_STATUS(vwn_sampler_uniform(s, NULL), VWN_ERR_INVALID_ARG);
    vwn_sampler_free(s);

    CHECK_STATUS(vwn_sampler_sample(NULL, base_logits, V, &tok), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_accept(NULL, 1), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_sampler_reset(NULL), VWN_ERR_INVALID_ARG);
    uint64_t fake[8] = {VWN_MAGIC_CONTEXT};
    CHECK_STATUS(vwn_sampler_probs((vwn_sampler *)fake, base_logits, V, probs), VWN_ERR_BAD_HANDLE);
    CHECK(!vwn_sampler_is_greedy(NULL));
    vwn_sampler_free(NULL);
}

int main(void) {
    test_masks();
    test_top_p_large();
    test_greedy();
    test_penalties();
    test_rng();
    test_chi_square();
    test_custom();
    test_errors();
    return vt_finish("test_sampler");
}

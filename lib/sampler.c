/* sampler.c -- turning logits into a token: the standard chain (penalties -> top-k -> temperature ->
 * softmax -> top-p -> min-p -> renormalise -> draw), greedy argmax, caller-defined samplers, and the
 * seeded, platform-independent RNG. The exact order and formulas are in docs/sampling.md.
 *
 * RNG: xoshiro256** whose four state words are the first four outputs of splitmix64 started at the
 * seed; a uniform double in [0, 1) is (next() >> 11) * 2^-53. A draw is an inverse CDF over the
 * probabilities in token-id order, so the same seed gives the same tokens on every platform. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PENALTY_LAST_N (1 << 20)

struct vwn_sampler {
    uint64_t magic;                 /* VWN_MAGIC_SAMPLER */
    bool custom;
    vwn_sampler_params params;      /* standard chain */
    vwn_sampler_iface iface;        /* custom */
    void *user;
    uint64_t seed;
    uint64_t rng[4];

    int32_t *history;               /* ring of the last penalty_last_n accepted tokens */
    int32_t *window;                /* scratch copy of the history (penalty counts)    */
    int32_t hist_cap, hist_n, hist_pos;

    /* scratch, grown to n_vocab */
    float *logits;
    struct cand *cand;
    float *probs;
    int32_t scratch_cap;
};

typedef struct cand {
    float logit;
    int32_t id;
    double p;
} cand;

/* ---- RNG ---------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(vwn_sampler *s) {
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(vwn_sampler *s) {          /* xoshiro256** */
    uint64_t *r = s->rng;
    uint64_t result = rotl(r[1] * 5, 7) * 9;
    uint64_t t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return result;
}

static double rng_uniform(vwn_sampler *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---- creation ----------------------------------------------------------------------------- */

vwn_sampler_params vwn_sampler_default_params(void) {
    vwn_sampler_params p;
    memset(&p, 0, sizeof p);
    p.seed = 0;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    p.penalty_last_n = 64;
    return p;
}

static vwn_status check_params(const vwn_sampler_params *p) {
    if (isnan(p->temperature) || isinf(p->temperature))
        return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: temperature must be a finite number");
    if (isnan(p->top_p)) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: top_p is NaN");
    if (isnan(p->min_p) || p->min_p > 1.0f)
        return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: min_p must be <= 1 (got %g)", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: repeat_penalty must be a positive number (got %g)",
                        (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
        return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: frequency and presence penalties must be finite");
    if (p->penalty_last_n < 0 || p->penalty_last_n > MAX_PENALTY_LAST_N)
        return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: penalty_last_n must be in 0..%d (got %d)",
                        MAX_PENALTY_LAST_N, (int)p->penalty_last_n);
    return VWN_OK;
}

static bool penalties_on(const vwn_sampler_params *p) {
    return p->penalty_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

vwn_status vwn_sampler_new(const vwn_sampler_params *params, vwn_sampler **out) {
    vwn_clear_error();
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_new: out is NULL");
    *out = NULL;
    vwn_sampler_params p = params ? *params : vwn_sampler_default_params();
    vwn_status st = check_params(&p);
    if (st) return st;
    vwn_sampler *s = vwn_calloc(1, sizeof *s);
    if (!s) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "sampler_new: out of memory");
    s->params = p;
    s->seed = p.seed;
    s->hist_cap = p.penalty_last_n;
    if (s->hist_cap > 0) {
        s->history = vwn_malloc((size_t)s->hist_cap * sizeof *s->history);
        s->window = vwn_malloc((size_t)s->hist_cap * sizeof *s->window);
        if (!s->history || !s->window) {
            vwn_free(s->history);
            vwn_free(s->window);
            vwn_free(s);
            return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "sampler_new: out of memory for the history");
        }
    }
    rng_seed(s);
    s->magic = VWN_MAGIC_SAMPLER;
    *out = s;
    return VWN_OK;
}

vwn_status vwn_sampler_new_custom(const vwn_sampler_iface *iface, void *user, uint64_t seed,
                                  vwn_sampler **out) {
    vwn_clear_error();
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_new_custom: out is NULL");
    *out = NULL;
    if (!iface || !iface->probs)
        return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_new_custom: the interface needs a probs function");
    vwn_sampler *s = vwn_calloc(1, sizeof *s);
    if (!s) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "sampler_new_custom: out of memory");
    s->custom = true;
    s->iface = *iface;
    s->user = user;
    s->seed = seed;
    s->params = vwn_sampler_default_params();
    s->params.seed = seed;
    rng_seed(s);
    s->magic = VWN_MAGIC_SAMPLER;
    *out = s;
    return VWN_OK;
}

void vwn_sampler_free(vwn_sampler *smpl) {
    if (!smpl || smpl->magic != VWN_MAGIC_SAMPLER) return;
    if (smpl->custom && smpl->iface.free_user) smpl->iface.free_user(smpl->user);
    smpl->magic = VWN_MAGIC_DEAD;
    vwn_free(smpl->history);
    vwn_free(smpl->window);
    vwn_free(smpl->logits);
    vwn_free(smpl->cand);
    vwn_free(smpl->probs);
    vwn_free(smpl);
}

static vwn_status reserve(vwn_sampler *s, int32_t n_vocab) {
    if (n_vocab <= s->scratch_cap) return VWN_OK;
    float *l = vwn_realloc(s->logits, (size_t)n_vocab * sizeof *l);
    if (l) s->logits = l;
    cand *c = vwn_realloc(s->cand, (size_t)n_vocab * sizeof *c);
    if (c) s->cand = c;
    float *p = vwn_realloc(s->probs, (size_t)n_vocab * sizeof *p);
    if (p) s->probs = p;
    if (!l || !c || !p)
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "sampler: out of memory for %d tokens", (int)n_vocab);
    s->scratch_cap = n_vocab;
    return VWN_OK;
}

/* ---- the standard chain ------------------------------------------------------------------- */

static int cmp_int32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Repetition (llama.cpp), frequency and presence (OpenAI) penalties over the history window. */
static void apply_penalties(vwn_sampler *s, float *logits, int32_t n_vocab) {
    const vwn_sampler_params *p = &s->params;
    if (!penalties_on(p) || s->hist_n == 0) return;
    int32_t *w = s->window;
    int32_t n = s->hist_n;
    memcpy(w, s->history, (size_t)n * sizeof *w);   /* order does not matter: counts only */
    qsort(w, (size_t)n, sizeof *w, cmp_int32);
    for (int32_t i = 0; i < n;) {
        int32_t tok = w[i], count = 0;
        while (i < n && w[i] == tok) { i++; count++; }
        if (tok < 0 || tok >= n_vocab) continue;
        float l = logits[tok];
        if (l > 0.0f) l /= p->repeat_penalty;
        else l *= p->repeat_penalty;
        l -= (float)count * p->frequency_penalty + (count > 0 ? p->presence_penalty : 0.0f);
        logits[tok] = l;
    }
}

/* Order: higher logit first, then lower id. */
static bool logit_before(const cand *a, const cand *b) {
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

/* Order: higher probability first, then lower id. */
static bool prob_before(const cand *a, const cand *b) {
    if (a->p != b->p) return a->p > b->p;
    return a->id < b->id;
}

/* The same order as a qsort comparator. */
static int cmp_prob_desc(const void *a, const void *b) {
    return prob_before(a, b) ? -1 : prob_before(b, a) ? 1 : 0;
}

/* Keeps the k best candidates of c[0..n) by `before` (a strict order) at the front, in heap order:
 * a heap of size k whose root is the worst of the kept; most candidates are turned away by one
 * comparison with the root. */
static void select_best(cand *c, int32_t n, int32_t k, bool (*before)(const cand *, const cand *)) {
    for (int32_t i = 1; i < k; i++) {            /* sift up */
        int32_t j = i;
        while (j > 0) {
            int32_t parent = (j - 1) / 2;
            if (!before(&c[parent], &c[j])) break;
            cand t = c[parent]; c[parent] = c[j]; c[j] = t;
            j = parent;
        }
    }
    for (int32_t i = k; i < n; i++) {
        if (!before(&c[i], &c[0])) continue;
        cand t = c[0]; c[0] = c[i]; c[i] = t;     /* the evicted one stays in c[k..n) */
        int32_t j = 0;                           /* sift down */
        for (;;) {
            int32_t l = 2 * j + 1, r = l + 1, worst = j;
            if (l < k && before(&c[worst], &c[l])) worst = l;
            if (r < k && before(&c[worst], &c[r])) worst = r;
            if (worst == j) break;
            t = c[worst]; c[worst] = c[j]; c[j] = t;
            j = worst;
        }
    }
}

/* top-k: the k best by logit (desc, id asc) at the front of c[0..n). */
static void select_top_k(cand *c, int32_t n, int32_t k) { select_best(c, n, k, logit_before); }

/* How many of the best candidates top-p will keep, from above: candidates binned by the binary
 * exponent of p (bin b holds p in [2^-(b+1), 2^-b)), bins taken from the top until their mass
 * passes top_p with a margin far above any rounding of the sums. O(n), no sorting. */
static int32_t top_p_estimate(const cand *c, int32_t n, double top_p) {
    enum { BINS = 64 };
    double mass[BINS] = {0};
    int32_t count[BINS] = {0};
    for (int32_t i = 0; i < n; i++) {
        int e = 0;
        (void)frexp(c[i].p, &e);                 /* p = m 2^e, m in [0.5, 1); e <= 0 for p < 1 */
        int b = c[i].p > 0.0 ? -e : BINS - 1;
        if (b < 0) b = 0;
        if (b > BINS - 1) b = BINS - 1;
        mass[b] += c[i].p;
        count[b]++;
    }
    double cum = 0.0;
    int32_t k = 0;
    for (int b = 0; b < BINS; b++) {
        cum += mass[b];
        k += count[b];
        if (cum >= top_p + 1e-9) return k;
    }
    return n;
}

/* top-p: sorts the smallest prefix of c[0..n) in (prob desc, id asc) order whose cumulative
 * probability reaches top_p, and returns its length (n if none does). The same prefix and the same
 * summation order as sorting all n, without sorting all n: the best candidates are selected in
 * blocks -- the first as large as top_p_estimate says, at least 64, then twice as large each time
 * (should the estimate fall short) -- and each block is sorted and summed in turn. With top-k off
 * on a 32,000-token vocabulary a full sort cost ~5 ms a token, more than decoding. */
static int32_t top_p_prefix(cand *c, int32_t n, double top_p) {
    int32_t block = top_p_estimate(c, n, top_p);
    if (block < 64) block = 64;
    double cum = 0.0;
    for (int32_t lo = 0; lo < n; lo += block, block = block > INT32_MAX / 2 ? INT32_MAX : 2 * block) {
        if (block > (n - lo) / 2) block = n - lo; /* most of the rest: sort it all */
        if (block < n - lo) select_best(c + lo, n - lo, block, prob_before);
        qsort(c + lo, (size_t)block, sizeof *c, cmp_prob_desc);
        for (int32_t i = lo; i < lo + block; i++) {
            cum += c[i].p;
            if (cum >= top_p) return i + 1;
        }
    }
    return n;
}

static vwn_status standard_probs(vwn_sampler *s, const float *logits_in, int32_t n_vocab, float *out) {
    const vwn_sampler_params *p = &s->params;
    float *l = s->logits;
    memcpy(l, logits_in, (size_t)n_vocab * sizeof *l);   /* logits_in may be out */
    for (int32_t i = 0; i < n_vocab; i++)
        if (isnan(l[i]) || (isinf(l[i]) && l[i] > 0))
            return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: logit %d is %s", (int)i,
                            isnan(l[i]) ? "NaN" : "+inf");
    apply_penalties(s, l, n_vocab);

    /* candidates: every token whose logit is not -inf */
    cand *c = s->cand;
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++)
        if (l[i] > -INFINITY) c[n++] = (cand){l[i], i, 0.0};
    if (n == 0) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: every logit is -inf");

    memset(out, 0, (size_t)n_vocab * sizeof *out);
    if (p->temperature <= 0.0f) {                /* greedy: argmax, ties to the lowest id */
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        out[c[best].id] = 1.0f;
        return VWN_OK;
    }

    /* top-k */
    if (p->top_k > 0 && p->top_k < n) {
        select_top_k(c, n, p->top_k);
        n = p->top_k;
    }

    /* temperature and softmax (in double) */
    float max = c[0].logit;
    for (int32_t i = 1; i < n; i++)
        if (c[i].logit > max) max = c[i].logit;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = exp(((double)c[i].logit - (double)max) / (double)p->temperature);
        sum += c[i].p;
    }
    double p_max = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p /= sum;
        if (c[i].p > p_max) p_max = c[i].p;
    }

    /* top-p: the smallest prefix (prob desc, id asc) whose cumulative probability is >= top_p */
    if (p->top_p < 1.0f) n = top_p_prefix(c, n, (double)p->top_p);

    /* min-p: keep p >= min_p * p_max (p_max survives every step above) */
    if (p->min_p > 0.0f) {
        double threshold = (double)p->min_p * p_max;
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++)
            if (c[i].p >= threshold) c[m++] = c[i];
        n = m;
    }

    /* renormalise */
    double kept = 0.0;
    for (int32_t i = 0; i < n; i++) kept += c[i].p;
    for (int32_t i = 0; i < n; i++) out[c[i].id] = (float)(c[i].p / kept);
    return VWN_OK;
}

/* ---- the API ------------------------------------------------------------------------------ */

static vwn_status check_vocab(const void *ptr, int32_t n_vocab, const char *fn, const char *what) {
    if (n_vocab <= 0) return vwn_fail(VWN_ERR_INVALID_ARG, "%s: n_vocab must be positive (got %d)", fn, (int)n_vocab);
    if (!ptr) return vwn_fail(VWN_ERR_INVALID_ARG, "%s: %s is NULL", fn, what);
    return VWN_OK;
}

static vwn_status probs_impl(vwn_sampler *smpl, const float *logits, int32_t n_vocab, float *probs_out) {
    vwn_status st = reserve(smpl, n_vocab);
    if (st) return st;
    if (!smpl->custom) return standard_probs(smpl, logits, n_vocab, probs_out);
    if (logits == probs_out) {                   /* the callback gets distinct buffers */
        memcpy(smpl->logits, logits, (size_t)n_vocab * sizeof *logits);
        logits = smpl->logits;
    }
    st = smpl->iface.probs(smpl->user, logits, n_vocab, probs_out);
    if (st != VWN_OK) {
        if (vwn_last_error()[0] == '\0')
            return vwn_fail(st, "sampler: the custom probs function failed (%s)", vwn_status_string(st));
        return st;
    }
    return VWN_OK;
}

vwn_status vwn_sampler_probs(vwn_sampler *smpl, const float *logits, int32_t n_vocab, float *probs_out) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler");
    if (st) return st;
    if ((st = check_vocab(logits, n_vocab, "sampler_probs", "logits"))) return st;
    if (!probs_out) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_probs: probs_out is NULL");
    return probs_impl(smpl, logits, n_vocab, probs_out);
}

/* Inverse CDF in token-id order: the first token whose cumulative probability exceeds u * total. */
static vwn_status draw_impl(vwn_sampler *smpl, const float *probs, int32_t n_vocab, int32_t *out) {
    double total = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n_vocab; i++) {
        float q = probs[i];
        if (!(q >= 0.0f) || isinf(q))
            return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: probability %d is %g; probabilities must be "
                            "finite and >= 0", (int)i, (double)q);
        if (q > 0.0f) { total += q; last = i; }
    }
    if (last < 0) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler: every probability is 0");
    double target = rng_uniform(smpl) * total;
    double cum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (probs[i] <= 0.0f) continue;
        cum += probs[i];
        if (target < cum) { *out = i; return VWN_OK; }
    }
    *out = last;                                 /* rounding: u * total reached the sum */
    return VWN_OK;
}

vwn_status vwn_sampler_draw(vwn_sampler *smpl, const float *probs, int32_t n_vocab, int32_t *out_token) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler");
    if (st) return st;
    if ((st = check_vocab(probs, n_vocab, "sampler_draw", "probs"))) return st;
    if (!out_token) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_draw: out_token is NULL");
    return draw_impl(smpl, probs, n_vocab, out_token);
}

vwn_status vwn_sampler_sample(vwn_sampler *smpl, const float *logits, int32_t n_vocab, int32_t *out_token) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler");
    if (st) return st;
    if ((st = check_vocab(logits, n_vocab, "sampler_sample", "logits"))) return st;
    if (!out_token) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_sample: out_token is NULL");
    if ((st = reserve(smpl, n_vocab))) return st;
    float *probs = smpl->probs;
    if ((st = probs_impl(smpl, logits, n_vocab, probs))) return st;
    if (!smpl->custom && smpl->params.temperature <= 0.0f) {   /* greedy: no random draw */
        for (int32_t i = 0; i < n_vocab; i++)
            if (probs[i] > 0.0f) { *out_token = i; return VWN_OK; }
    }
    return draw_impl(smpl, probs, n_vocab, out_token);
}

vwn_status vwn_sampler_uniform(vwn_sampler *smpl, double *out) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler");
    if (st) return st;
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "sampler_uniform: out is NULL");
    *out = rng_uniform(smpl);
    return VWN_OK;
}

vwn_status vwn_sampler_accept(vwn_sampler *smpl, int32_t token) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler");
    if (st) return st;
    if (token < 0) return vwn_fail(VWN_ERR_TOKEN_OUT_OF_RANGE, "sampler_accept: token %d is negative", (int)token);
    if (smpl->custom) {
        if (smpl->iface.accept) smpl->iface.accept(smpl->user, token);
        return VWN_OK;
    }
    if (smpl->hist_cap == 0) return VWN_OK;
    smpl->history[smpl->hist_pos] = token;
    smpl->hist_pos = (smpl->hist_pos + 1) % smpl->hist_cap;
    if (smpl->hist_n < smpl->hist_cap) smpl->hist_n++;
    return VWN_OK;
}

vwn_status vwn_sampler_reset(vwn_sampler *smpl) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler");
    if (st) return st;
    smpl->hist_n = smpl->hist_pos = 0;
    if (smpl->custom && smpl->iface.reset) smpl->iface.reset(smpl->user);
    rng_seed(smpl);
    return VWN_OK;
}

bool vwn_sampler_is_greedy(const vwn_sampler *smpl) {
    vwn_clear_error();
    if (vwn_check_handle(smpl, VWN_MAGIC_SAMPLER, "sampler")) return false;
    return !smpl->custom && smpl->params.temperature <= 0.0f;
}

/* test_ghc.c -- the GHC passes (lib/ghc.c) against a plain double-precision transcription of
 * spec §2, at every SIMD level, for static and dynamic GHC over shapes from (1,1) to (8,64) with
 * segment widths that are not multiples of a vector; and the same results, bit for bit, whatever
 * the thread count and whatever the number of tokens per call (decoding splits one token's work
 * between the threads, prefill gives whole tokens to each thread).
 *
 * The model keeps the routing projection transposed with the norm gain folded in (lib/model.c,
 * prepare_ghc); this test builds that layout itself from W [K, s] and g [s], as the loader does. */
#include "ghc.h"
#include "vt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rnd_unit(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

typedef struct shape {
    int m, n, s;
    bool dynamic;
} shape;

typedef struct ghc_case {
    vwn_hparams hp;
    vwn_ghc_weights g;
    float *statc, *scale, *W, *norm, *proj_t; /* W [K, s] as in the file; proj_t as the model keeps it */
} ghc_case;

static void make_case(ghc_case *c, shape sh) {
    memset(c, 0, sizeof *c);
    vwn_hparams *hp = &c->hp;
    hp->ghc_m = sh.m, hp->ghc_n = sh.n, hp->seg = sh.s;
    hp->n_embd = sh.m * sh.s, hp->n_wide = sh.n * sh.s, hp->n_coef = 2 * sh.m + sh.n;
    hp->ghc_dynamic = sh.dynamic, hp->rms_eps = 1e-5f;
    const int K = hp->n_coef, n = sh.n, s = sh.s;
    c->statc = malloc(sizeof(float) * (size_t)(n * K));
    c->scale = malloc(sizeof(float) * (size_t)(n * K));
    c->W = malloc(sizeof(float) * (size_t)(K * s));
    c->norm = malloc(sizeof(float) * (size_t)s);
    c->proj_t = malloc(sizeof(float) * (size_t)(K * s));
    for (int i = 0; i < n * K; i++) c->statc[i] = rnd_unit() * 0.5f, c->scale[i] = rnd_unit() * 0.3f;
    for (int i = 0; i < K * s; i++) c->W[i] = rnd_unit() * 2.0f; /* large enough to reach tanh's tails */
    for (int e = 0; e < s; e++) c->norm[e] = 1.0f + 0.5f * rnd_unit();
    for (int k = 0; k < K; k++)
        for (int e = 0; e < s; e++) c->proj_t[e * K + k] = c->W[k * s + e] * c->norm[e];
    c->g.statc = c->statc;
    c->g.scale = sh.dynamic ? c->scale : NULL;
    c->g.proj = sh.dynamic ? c->proj_t : NULL;
    c->g.norm = sh.dynamic ? c->norm : NULL;
}

static void free_case(ghc_case *c) {
    free(c->statc), free(c->scale), free(c->W), free(c->norm), free(c->proj_t);
}

/* Spec §2 in double: coefficients, read, carry, write, for one token. */
static void reference(const ghc_case *c, const float *H, const float *y, double *C, double *x, double *G) {
    const int m = c->hp.ghc_m, n = c->hp.ghc_n, s = c->hp.seg, K = c->hp.n_coef;
    for (int i = 0; i < n; i++) {
        const float *h = H + i * s;
        if (!c->hp.ghc_dynamic) {
            for (int k = 0; k < K; k++) C[i * K + k] = c->statc[i * K + k];
            continue;
        }
        double ss = 0;
        for (int e = 0; e < s; e++) ss += (double)h[e] * h[e];
        const double inv = 1.0 / sqrt(ss / s + (double)c->hp.rms_eps);
        for (int k = 0; k < K; k++) {
            double d = 0;
            for (int e = 0; e < s; e++) d += (double)h[e] * inv * c->norm[e] * c->W[k * s + e];
            C[i * K + k] = c->statc[i * K + k] + c->scale[i * K + k] * tanh(d / sqrt((double)s));
        }
    }
    for (int o = 0; o < m; o++)
        for (int e = 0; e < s; e++) {
            double a = 0;
            for (int i = 0; i < n; i++) a += C[i * K + o] * H[i * s + e];
            x[o * s + e] = a;
        }
    for (int j = 0; j < n; j++)
        for (int e = 0; e < s; e++) {
            double a = 0;
            for (int i = 0; i < n; i++) a += C[i * K + m + j] * H[i * s + e];
            for (int k = 0; k < m; k++) a += C[j * K + m + n + k] * y[k * s + e];
            G[j * s + e] = a;
        }
}

/* One module's `before` over T tokens on nt threads, on a copy of H: coefficients into C (kept),
 * read into x, carry into G. y_prev: a pending write, whose write coefficients W holds on entry;
 * on return W holds this module's. */
static void before(const ghc_case *c, const vwn_ops *ops, const float *y_prev, const float *H, int T, int nt,
                   float *C, float *W, float *x, float *G) {
    const size_t Dw = (size_t)c->hp.n_wide, nk = (size_t)c->hp.ghc_n * (size_t)c->hp.n_coef;
    float *Hw = malloc(sizeof(float) * (size_t)T * Dw), *Gw = malloc(sizeof(float) * (size_t)T * Dw);
    float *rows = malloc(sizeof(float) * (size_t)T * (size_t)c->hp.ghc_n);
    float *tmp = malloc(sizeof(float) * (size_t)nt * (nk + Dw));
    memcpy(Hw, H, sizeof(float) * (size_t)T * Dw);
    const vwn_ghc_scratch sc = {C, W, rows, tmp, true};
    const float *carry = vwn_ghc_before(&c->hp, &c->g, ops, y_prev, Hw, T, x, Gw, &sc, nt);
    CHECK_MSG(carry == Hw || carry == Gw, "[%s] the carry is neither in H nor in G", ops->name);
    memcpy(G, carry, sizeof(float) * (size_t)T * Dw);
    free(Hw), free(Gw), free(rows), free(tmp);
}

/* One call of the two passes over T tokens with nt threads; outputs into C, x, G. */
static void run(const ghc_case *c, const vwn_ops *ops, const float *H, const float *y, int T, int nt,
                float *C, float *x, float *G) {
    float *W = malloc(sizeof(float) * (size_t)T * (size_t)c->hp.ghc_n * (size_t)c->hp.ghc_m);
    before(c, ops, NULL, H, T, nt, C, W, x, G);
    vwn_ghc_after(&c->hp, ops, W, y, T, G, nt);
    free(W);
}

static void test_shape(const vwn_ops *ops, shape sh) {
    ghc_case c;
    make_case(&c, sh);
    const int Tmax = 20, n = sh.n, K = c.hp.n_coef;
    const size_t Dw = (size_t)c.hp.n_wide, D = (size_t)c.hp.n_embd, nk = (size_t)n * K;
    float *H = malloc(sizeof(float) * Tmax * Dw), *y = malloc(sizeof(float) * Tmax * D);
    for (size_t i = 0; i < Tmax * Dw; i++) H[i] = rnd_unit() * (1.0f + (float)(i % 7));
    for (size_t i = 0; i < Tmax * D; i++) y[i] = rnd_unit();
    float *C1 = malloc(sizeof(float) * Tmax * nk), *x1 = malloc(sizeof(float) * Tmax * D), *G1 = malloc(sizeof(float) * Tmax * Dw);
    float *C2 = malloc(sizeof(float) * Tmax * nk), *x2 = malloc(sizeof(float) * Tmax * D), *G2 = malloc(sizeof(float) * Tmax * Dw);
    double *Cr = malloc(sizeof(double) * nk), *xr = malloc(sizeof(double) * D), *Gr = malloc(sizeof(double) * Dw);

    /* against the reference: all Tmax tokens in one call, 1 thread */
    run(&c, ops, H, y, Tmax, 1, C1, x1, G1);
    int bad = 0;
    double worst = 0;
    for (int t = 0; t < Tmax; t++) {
        reference(&c, H + t * Dw, y + t * D, Cr, xr, Gr);
        /* fp32 sums of n products of values up to ~7 with coefficients ~1: relative 1e-5 of the
         * sum of magnitudes is a few ulps per product */
        for (size_t i = 0; i < nk; i++) {
            const double e = fabs(C1[t * nk + i] - Cr[i]);
            worst = e > worst ? e : worst;
            bad += e > 2e-5 * (1.0 + fabs(Cr[i]));
        }
        for (size_t i = 0; i < D; i++) bad += fabs(x1[t * D + i] - xr[i]) > 1e-4 * (double)n * 8.0;
        for (size_t i = 0; i < Dw; i++) bad += fabs(G1[t * Dw + i] - Gr[i]) > 1e-4 * (double)(n + sh.m) * 8.0;
    }
    CHECK_MSG(bad == 0, "[%s] (m,n,s) = (%d,%d,%d) %s: %d values off the reference (worst coefficient error %.2g)",
              ops->name, sh.m, sh.n, sh.s, sh.dynamic ? "dynamic" : "static", bad, worst);

    /* identical bits: 2 and 3 threads, and the same tokens fed 1, 2, 3 or 7 at a time */
    static const int threads[] = {2, 3}, chunks[] = {1, 2, 3, 7};
    for (int a = 0; a < 2; a++) {
        run(&c, ops, H, y, Tmax, threads[a], C2, x2, G2);
        CHECK_MSG(!memcmp(C1, C2, sizeof(float) * Tmax * nk) && !memcmp(x1, x2, sizeof(float) * Tmax * D) &&
                      !memcmp(G1, G2, sizeof(float) * Tmax * Dw),
                  "[%s] (%d,%d,%d): %d threads change the result", ops->name, sh.m, sh.n, sh.s, threads[a]);
    }
    for (int b = 0; b < 4; b++)
        for (int nt = 1; nt <= 2; nt++) {
            for (int t0 = 0; t0 < Tmax; t0 += chunks[b]) {
                const int T = Tmax - t0 < chunks[b] ? Tmax - t0 : chunks[b];
                run(&c, ops, H + t0 * Dw, y + t0 * D, T, nt, C2 + t0 * nk, x2 + t0 * D, G2 + t0 * Dw);
            }
            CHECK_MSG(!memcmp(C1, C2, sizeof(float) * Tmax * nk) && !memcmp(x1, x2, sizeof(float) * Tmax * D) &&
                          !memcmp(G1, G2, sizeof(float) * Tmax * Dw),
                      "[%s] (%d,%d,%d): %d tokens per call on %d threads change the result", ops->name, sh.m,
                      sh.n, sh.s, chunks[b], nt);
        }

    /* the write folded into the next module's pass (y_prev) is the same as after + before, for
     * every thread count and number of tokens per call */
    {
        const size_t nm = (size_t)n * (size_t)sh.m;
        float *W1 = malloc(sizeof(float) * Tmax * nm), *Wb = malloc(sizeof(float) * Tmax * nm);
        float *S1 = malloc(sizeof(float) * Tmax * Dw), *Sb = malloc(sizeof(float) * Tmax * Dw);
        float *Cb = malloc(sizeof(float) * Tmax * nk), *xb = malloc(sizeof(float) * Tmax * D), *Gb = malloc(sizeof(float) * Tmax * Dw);
        /* A: the module, its write, then the next module (here: the same weights again) */
        run(&c, ops, H, y, Tmax, 1, C1, x1, S1); /* S1 = state after the write */
        before(&c, ops, NULL, S1, Tmax, 1, C1, W1, x1, G1);
        for (int b = 0; b < 4; b++)
            for (int nt = 1; nt <= 2; nt++) {
                for (int t0 = 0; t0 < Tmax; t0 += chunks[b]) {
                    const int T = Tmax - t0 < chunks[b] ? Tmax - t0 : chunks[b];
                    before(&c, ops, NULL, H + t0 * Dw, T, nt, Cb + t0 * nk, Wb + t0 * nm, xb + t0 * D, Sb + t0 * Dw);
                    before(&c, ops, y + t0 * D, Sb + t0 * Dw, T, nt, Cb + t0 * nk, Wb + t0 * nm, xb + t0 * D,
                           Gb + t0 * Dw);
                }
                CHECK_MSG(!memcmp(C1, Cb, sizeof(float) * Tmax * nk) && !memcmp(W1, Wb, sizeof(float) * Tmax * nm) &&
                              !memcmp(x1, xb, sizeof(float) * Tmax * D) && !memcmp(G1, Gb, sizeof(float) * Tmax * Dw),
                          "[%s] (%d,%d,%d): the folded write differs (%d tokens per call, %d threads)", ops->name,
                          sh.m, sh.n, sh.s, chunks[b], nt);
            }
        free(W1), free(Wb), free(S1), free(Sb), free(Cb), free(xb), free(Gb);
    }

    free(H), free(y), free(C1), free(x1), free(G1), free(C2), free(x2), free(G2), free(Cr), free(xr), free(Gr);
    free_case(&c);
}

int main(void) {
    static const shape shapes[] = {
        {1, 1, 33, true},  {1, 4, 17, true},  {2, 3, 40, true},  {2, 8, 384, true}, {4, 16, 24, false},
        {2, 8, 96, false}, {8, 64, 96, true}, {8, 64, 13, true}, {3, 7, 50, true},
    };
    for (int level = 0; level <= VWN_SIMD_NEON; level++) {
        const vwn_ops *ops = vwn_ops_get(level);
        if (!ops) continue;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) test_shape(ops, shapes[i]);
    }
    return vt_finish("test_ghc");
}

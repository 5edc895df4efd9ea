/* gguf_writer.h -- a minimal GGUF v3 writer for the C tests and fuzz targets: a complete random VWN
 * model (every tensor of spec §7 for the configuration, f32, bytes tokenizer, V = 256) built in
 * memory or written to a file, so tests need no Python. Values follow tools/random_checkpoint.py's
 * families (GHC = spec init + noise, gains 1 +- 0.2, Linear N(0, 1/sqrt(in)), head N(0, 3/sqrt(D)))
 * with a splitmix64 generator: the same seed gives the same file on every platform.
 *
 *   gw_config c = gw_config_default();            // D 32, L 2, m 2, n 4, MTP 2 ...
 *   size_t n; uint8_t *img = gw_build(&c, seed, &n);   // malloc'd GGUF image (free())
 *   gw_write_file(&c, seed, "m.gguf");                // 0 on success
 *
 * Header-only; every function is static. */
#ifndef VWN_TESTS_GGUF_WRITER_H
#define VWN_TESTS_GGUF_WRITER_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gw_config {
    int32_t n_vocab;      /* must be 256 (bytes tokenizer) */
    int32_t n_embd, n_layer, ghc_m, ghc_n, n_head, n_head_kv, head_dim, n_ff, mtp_depth, max_seq_len;
    bool ghc_dynamic, wide_embedding, tied_head, output_group_norm;
    float rope_theta, rms_eps, gn_eps;
} gw_config;

/* A small configuration touching every part: dynamic GHC m=2 n=4, factorized embedding with
 * expand, group norm, GQA 4/2, two MTP modules. */
static inline gw_config gw_config_default(void) {
    gw_config c;
    memset(&c, 0, sizeof c);
    c.n_vocab = 256;
    c.n_embd = 32;
    c.n_layer = 2;
    c.ghc_m = 2;
    c.ghc_n = 4;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.head_dim = 8;
    c.n_ff = 64;
    c.mtp_depth = 2;
    c.max_seq_len = 256;
    c.ghc_dynamic = true;
    c.wide_embedding = false;
    c.tied_head = false;
    c.output_group_norm = true;
    c.rope_theta = 10000.0f;
    c.rms_eps = 1e-5f;
    c.gn_eps = 1e-5f;
    return c;
}

/* ---- byte buffer ---- */

typedef struct gw_buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} gw_buf;

static inline void gw_put(gw_buf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = (uint8_t *)realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gw_u32(gw_buf *b, uint32_t v) { gw_put(b, &v, 4); }
static inline void gw_u64(gw_buf *b, uint64_t v) { gw_put(b, &v, 8); }
static inline void gw_str(gw_buf *b, const char *s) {
    gw_u64(b, (uint64_t)strlen(s));
    gw_put(b, s, strlen(s));
}
static inline void gw_pad(gw_buf *b, size_t align) {
    static const uint8_t z[64];
    while (b->n % align) gw_put(b, z, align - b->n % align < 64 ? align - b->n % align : 64);
}

/* ---- random numbers ---- */

typedef struct gw_rng {
    uint64_t s;
} gw_rng;

static inline uint64_t gw_next(gw_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double gw_uniform(gw_rng *r, double lo, double hi) {
    return lo + (hi - lo) * ((double)(gw_next(r) >> 11) * (1.0 / 9007199254740992.0));
}
static inline double gw_normal(gw_rng *r, double std) {
    double u1 = gw_uniform(r, 0.0, 1.0), u2 = gw_uniform(r, 0.0, 1.0);
    if (u1 < 1e-300) u1 = 1e-300;
    return std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- tensors ---- */

typedef struct gw_tensor {
    char name[96];
    int64_t rows, cols;   /* torch [rows, cols]; rows 0 for a vector of cols */
    float *data;
} gw_tensor;

typedef struct gw_model {
    gw_tensor *t;
    size_t n, cap;
    bool oom;
    gw_rng rng;
    const gw_config *c;
} gw_model;

static inline float *gw_add(gw_model *g, const char *prefix, const char *name, int64_t rows, int64_t cols) {
    if (g->oom) return NULL;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        gw_tensor *t = (gw_tensor *)realloc(g->t, cap * sizeof *t);
        if (!t) {
            g->oom = true;
            return NULL;
        }
        g->t = t;
        g->cap = cap;
    }
    gw_tensor *t = &g->t[g->n];
    snprintf(t->name, sizeof t->name, "%s%s", prefix, name);
    t->rows = rows;
    t->cols = cols;
    t->data = (float *)calloc((size_t)(rows ? rows : 1) * (size_t)cols, sizeof(float));
    if (!t->data) {
        g->oom = true;
        return NULL;
    }
    g->n++;
    return t->data;
}

static inline void gw_normal_t(gw_model *g, const char *p, const char *name, int64_t rows, int64_t cols, double std) {
    float *d = gw_add(g, p, name, rows, cols);
    if (d)
        for (int64_t i = 0; i < rows * cols; i++) d[i] = (float)gw_normal(&g->rng, std);
}
static inline void gw_linear(gw_model *g, const char *p, const char *name, int64_t out_f, int64_t in_f) {
    gw_normal_t(g, p, name, out_f, in_f, 1.0 / sqrt((double)in_f));
}
static inline void gw_gain(gw_model *g, const char *p, const char *name, int64_t width) {
    float *d = gw_add(g, p, name, 0, width);
    if (d)
        for (int64_t i = 0; i < width; i++) d[i] = (float)gw_uniform(&g->rng, 0.8, 1.2);
}

static inline void gw_ghc(gw_model *g, const char *p) {
    const gw_config *c = g->c;
    const int m = c->ghc_m, n = c->ghc_n, s = c->n_embd / c->ghc_m, K = 2 * m + n;
    char name[96];
    snprintf(name, sizeof name, "%s.static", p);
    float *st = gw_add(g, "", name, n, K);
    if (!st) return;
    for (int j = 0; j < n; j++)
        for (int k = 0; k < K; k++) {
            double init = 0.0;
            if (k < m && j == k) init = 1.0;                    /* read [I_m; 0]  */
            if (k >= m && k < m + n && k - m == j) init = 1.0;  /* carry I_n      */
            if (k >= m + n && k - m - n == j % m) init = 1.0;   /* write          */
            const double block = (k >= m && k < m + n) ? 1.0 / sqrt((double)n) : 1.0;
            st[j * K + k] = (float)(init + gw_normal(&g->rng, 0.2) * block);
        }
    if (!c->ghc_dynamic) return;
    snprintf(name, sizeof name, "%s.scale", p);
    float *sc = gw_add(g, "", name, n, K);
    if (!sc) return;
    for (int j = 0; j < n; j++)
        for (int k = 0; k < K; k++)
            sc[j * K + k] = (float)(gw_uniform(&g->rng, 0.7, 1.3) * ((k >= m && k < m + n) ? 1.0 / sqrt((double)n) : 1.0));
    snprintf(name, sizeof name, "%s.proj.weight", p);
    gw_normal_t(g, "", name, K, s, 0.5);
    snprintf(name, sizeof name, "%s.norm.weight", p);
    gw_gain(g, "", name, s);
}

static inline void gw_layer(gw_model *g, const char *p) {
    const gw_config *c = g->c;
    const int64_t D = c->n_embd, F = c->n_ff, q = (int64_t)c->n_head * c->head_dim,
                  kv = (int64_t)c->n_head_kv * c->head_dim;
    char sub[96];
    snprintf(sub, sizeof sub, "%s.attn_ghc", p);
    gw_ghc(g, sub);
    gw_gain(g, p, ".attn_norm.weight", D);
    gw_linear(g, p, ".attn.q_proj.weight", q, D);
    gw_linear(g, p, ".attn.k_proj.weight", kv, D);
    gw_linear(g, p, ".attn.v_proj.weight", kv, D);
    gw_linear(g, p, ".attn.o_proj.weight", D, q);
    snprintf(sub, sizeof sub, "%s.ffn_ghc", p);
    gw_ghc(g, sub);
    gw_gain(g, p, ".ffn_norm.weight", D);
    gw_linear(g, p, ".ffn.gate_proj.weight", F, D);
    gw_linear(g, p, ".ffn.up_proj.weight", F, D);
    gw_linear(g, p, ".ffn.down_proj.weight", D, F);
}

static inline void gw_group_norm(gw_model *g, const char *p, int64_t Dw) {
    gw_gain(g, p, ".weight", Dw);
    float *b = gw_add(g, p, ".bias", 0, Dw);
    if (b)
        for (int64_t i = 0; i < Dw; i++) b[i] = (float)gw_uniform(&g->rng, -0.1, 0.1);
}

static inline void gw_tensors(gw_model *g) {
    const gw_config *c = g->c;
    const int64_t V = c->n_vocab, D = c->n_embd, s = D / c->ghc_m, Dw = (int64_t)c->ghc_n * s;
    const double head_std = 3.0 / sqrt((double)D);
    char p[64];
    if (c->wide_embedding) {
        gw_normal_t(g, "", "embed.weight", V, Dw, 1.0);
    } else {
        const double emb_std = c->tied_head ? head_std : 1.0;
        gw_normal_t(g, "", "embed.weight", V, D, emb_std);
        if (c->ghc_n != c->ghc_m) gw_normal_t(g, "", "embed_expand.weight", Dw, D, 1.0 / (sqrt((double)D) * emb_std));
    }
    for (int i = 0; i < c->n_layer; i++) {
        snprintf(p, sizeof p, "layers.%d", i);
        gw_layer(g, p);
    }
    if (c->output_group_norm) gw_group_norm(g, "out_norm", Dw);
    if (c->ghc_n != c->ghc_m) gw_linear(g, "", "reduce.weight", D, Dw);
    gw_gain(g, "", "final_norm.weight", D);
    if (!c->tied_head) gw_normal_t(g, "", "lm_head.weight", V, D, head_std);
    for (int j = 0; j < c->mtp_depth; j++) {
        snprintf(p, sizeof p, "mtp.%d", j);
        gw_gain(g, p, ".enorm.weight", Dw);
        gw_gain(g, p, ".hnorm.weight", Dw);
        gw_linear(g, p, ".proj.weight", s, 2 * s);
        char lp[80];
        snprintf(lp, sizeof lp, "%s.layer", p);
        gw_layer(g, lp);
        if (c->output_group_norm) {
            char gp[80];
            snprintf(gp, sizeof gp, "%s.out_norm", p);
            gw_group_norm(g, gp, Dw);
        }
        gw_gain(g, p, ".final_norm.weight", D);
    }
}

/* ---- the file ---- */

enum { GW_T_U32 = 4, GW_T_F32 = 6, GW_T_BOOL = 7, GW_T_STR = 8 };

static inline void gw_kv_u32(gw_buf *b, const char *k, uint32_t v) { gw_str(b, k); gw_u32(b, GW_T_U32); gw_u32(b, v); }
static inline void gw_kv_f32(gw_buf *b, const char *k, float v) { gw_str(b, k); gw_u32(b, GW_T_F32); gw_put(b, &v, 4); }
static inline void gw_kv_bool(gw_buf *b, const char *k, bool v) {
    uint8_t x = v ? 1 : 0;
    gw_str(b, k);
    gw_u32(b, GW_T_BOOL);
    gw_put(b, &x, 1);
}
static inline void gw_kv_str(gw_buf *b, const char *k, const char *v) { gw_str(b, k); gw_u32(b, GW_T_STR); gw_str(b, v); }

/* The GGUF image of a random model (malloc'd; free() it), or NULL if out of memory. */
static inline uint8_t *gw_build(const gw_config *c, uint64_t seed, size_t *out_size) {
    gw_model g;
    memset(&g, 0, sizeof g);
    g.c = c;
    g.rng.s = seed * 0x2545F4914F6CDD1DULL + 1;
    gw_tensors(&g);
    gw_buf b;
    memset(&b, 0, sizeof b);
    const uint32_t n_kv = 23;
    gw_put(&b, "GGUF", 4);
    gw_u32(&b, 3);
    gw_u64(&b, (uint64_t)g.n);
    gw_u64(&b, n_kv);
    gw_kv_str(&b, "general.architecture", "vwn");
    gw_kv_str(&b, "general.name", "gguf_writer random model");
    gw_kv_u32(&b, "general.alignment", 32);
    gw_kv_u32(&b, "vwn.spec_version", 1);
    gw_kv_u32(&b, "vwn.vocab_size", (uint32_t)c->n_vocab);
    gw_kv_u32(&b, "vwn.hidden_size", (uint32_t)c->n_embd);
    gw_kv_u32(&b, "vwn.num_layers", (uint32_t)c->n_layer);
    gw_kv_u32(&b, "vwn.ghc_m", (uint32_t)c->ghc_m);
    gw_kv_u32(&b, "vwn.ghc_n", (uint32_t)c->ghc_n);
    gw_kv_u32(&b, "vwn.num_heads", (uint32_t)c->n_head);
    gw_kv_u32(&b, "vwn.num_kv_heads", (uint32_t)c->n_head_kv);
    gw_kv_u32(&b, "vwn.head_dim", (uint32_t)c->head_dim);
    gw_kv_u32(&b, "vwn.ffn_hidden_size", (uint32_t)c->n_ff);
    gw_kv_u32(&b, "vwn.mtp_depth", (uint32_t)c->mtp_depth);
    gw_kv_u32(&b, "vwn.max_seq_len", (uint32_t)c->max_seq_len);
    gw_kv_bool(&b, "vwn.ghc_dynamic", c->ghc_dynamic);
    gw_kv_str(&b, "vwn.embedding", c->wide_embedding ? "wide" : "factorized");
    gw_kv_bool(&b, "vwn.tie_word_embeddings", c->tied_head);
    gw_kv_bool(&b, "vwn.output_group_norm", c->output_group_norm);
    gw_kv_f32(&b, "vwn.rope_theta", c->rope_theta);
    gw_kv_f32(&b, "vwn.rms_norm_eps", c->rms_eps);
    gw_kv_f32(&b, "vwn.group_norm_eps", c->gn_eps);
    gw_kv_str(&b, "tokenizer.ggml.model", "bytes");
    uint64_t off = 0;
    for (size_t i = 0; i < g.n; i++) {
        const gw_tensor *t = &g.t[i];
        gw_str(&b, t->name);
        if (t->rows) {
            gw_u32(&b, 2);
            gw_u64(&b, (uint64_t)t->cols);
            gw_u64(&b, (uint64_t)t->rows);
        } else {
            gw_u32(&b, 1);
            gw_u64(&b, (uint64_t)t->cols);
        }
        gw_u32(&b, 0); /* f32 */
        gw_u64(&b, off);
        off += ((uint64_t)(t->rows ? t->rows : 1) * (uint64_t)t->cols * 4 + 31) / 32 * 32;
    }
    gw_pad(&b, 32);
    for (size_t i = 0; i < g.n; i++) {
        const gw_tensor *t = &g.t[i];
        gw_put(&b, t->data, (size_t)(t->rows ? t->rows : 1) * (size_t)t->cols * 4);
        gw_pad(&b, 32);
    }
    for (size_t i = 0; i < g.n; i++) free(g.t[i].data);
    free(g.t);
    if (b.oom || g.oom) {
        free(b.p);
        return NULL;
    }
    *out_size = b.n;
    return b.p;
}

/* Writes the model to path; 0 on success. */
static inline int gw_write_file(const gw_config *c, uint64_t seed, const char *path) {
    size_t n = 0;
    uint8_t *img = gw_build(c, seed, &n);
    if (!img) return -1;
    FILE *fp = fopen(path, "wb");
    int rc = -1;
    if (fp) {
        rc = fwrite(img, 1, n, fp) == n ? 0 : -1;
        if (fclose(fp) != 0) rc = -1;
    }
    free(img);
    return rc;
}

#endif

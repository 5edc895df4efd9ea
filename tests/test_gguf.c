/* test_gguf.c -- the hardened loader (lib/gguf.c, lib/model.c) against a valid tiny VWN model and
 * many damaged variants of it.
 *
 * The test writes its GGUF files itself: a model is described as two editable lists (metadata
 * pairs and tensor infos, build_model), a case edits the lists or patches the serialized bytes, and
 * the result is loaded through vwn_model_load (mmap and read paths) or gguf_open_memory. Every case
 * asserts the exact status and that the message names the culprit. Run it under the ASan build
 * (-DVWN_SANITIZE=ON -DVWN_USE_MIMALLOC=OFF) so LeakSanitizer sees every allocation; the test also
 * counts its own mappings and file descriptors before and after the damaged cases. */
#include "vt.h"
#include "vwn.h"
#include "common.h"
#include "gguf.h"
#include "model.h"
#include "ops/ops.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a growable byte buffer -------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) { fprintf(stderr, "test: out of memory\n"); exit(2); }
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void put_zeros(buf *b, size_t n) { static const uint8_t z[64]; while (n) { size_t k = n < 64 ? n : 64; put(b, z, k); n -= k; } }
static void patch_u32(buf *b, size_t at, uint32_t v) { memcpy(b->p + at, &v, 4); }
static void patch_u64(buf *b, size_t at, uint64_t v) { memcpy(b->p + at, &v, 8); }

/* ---- an editable GGUF file --------------------------------------------------------------- */

enum { T_U8 = 0, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 };

typedef struct wkv {
    char key[64];
    uint32_t type;
    uint64_t u;           /* integer / bool bits             */
    double f;             /* floats                          */
    char s[64];           /* strings                         */
    uint32_t arr_type;    /* arrays: elements are 0, 1, 2... (strings "s0", "s1"...) */
    uint64_t arr_len;
} wkv;

typedef struct wt {
    char name[96];
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    bool offset_set;      /* keep `offset` as given instead of laying the data out */
    uint64_t offset;
    bool nan;             /* put a NaN in element 0 */
} wt;

#define MAX_KV 64
#define MAX_T 128

typedef struct gfile {
    char magic[4];
    uint32_t version;
    int64_t n_kv_override, n_tensors_override; /* -1: the real counts */
    wkv kv[MAX_KV];
    int n_kv;
    wt t[MAX_T];
    int n_t;
    uint32_t alignment;   /* layout alignment (the key is separate) */
    /* where things landed in the last serialization */
    size_t kv_pos[MAX_KV], kv_val_pos[MAX_KV], t_pos[MAX_T], data_pos;
} gfile;

static wkv *add_kv(gfile *g, const char *key, uint32_t type) {
    wkv *k = &g->kv[g->n_kv++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    k->type = type;
    return k;
}
static void kv_u32(gfile *g, const char *key, uint32_t v) { add_kv(g, key, T_U32)->u = v; }
static void kv_bool(gfile *g, const char *key, bool v) { add_kv(g, key, T_BOOL)->u = v; }
static void kv_f32(gfile *g, const char *key, double v) { add_kv(g, key, T_F32)->f = v; }
static void kv_str(gfile *g, const char *key, const char *v) { snprintf(add_kv(g, key, T_STR)->s, 64, "%s", v); }

static int find_kv(gfile *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++) if (!strcmp(g->kv[i].key, key)) return i;
    fprintf(stderr, "test bug: no key %s\n", key);
    exit(2);
}
static void del_kv(gfile *g, const char *key) {
    int i = find_kv(g, key);
    memmove(&g->kv[i], &g->kv[i + 1], (size_t)(g->n_kv - i - 1) * sizeof g->kv[0]);
    g->n_kv--;
}
static int find_t(gfile *g, const char *name) {
    for (int i = 0; i < g->n_t; i++) if (!strcmp(g->t[i].name, name)) return i;
    fprintf(stderr, "test bug: no tensor %s\n", name);
    exit(2);
}
static void del_t(gfile *g, const char *name) {
    int i = find_t(g, name);
    memmove(&g->t[i], &g->t[i + 1], (size_t)(g->n_t - i - 1) * sizeof g->t[0]);
    g->n_t--;
}

/* A tensor of torch shape [d1, d0] (or [d0] when d1 == 0): GGUF ne = [d0, d1]. */
static wt *add_t(gfile *g, const char *prefix, const char *name, uint64_t d1, uint64_t d0, uint32_t type) {
    wt *t = &g->t[g->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s%s", prefix, name);
    t->n_dims = d1 ? 2 : 1;
    t->ne[0] = d0;
    t->ne[1] = d1 ? d1 : 1;
    t->ne[2] = t->ne[3] = 1;
    t->type = type;
    return t;
}

/* ---- a tiny VWN model -------------------------------------------------------------------- */

typedef struct cfg {
    uint32_t V, D, L, m, n, Hq, Hkv, hd, F, mtp;
    bool dynamic, wide, tied, gn;
    bool mixed_types;     /* matrices cycle f32/f16/bf16/q8_0/q4_0, some small tensors f16/bf16 */
} cfg;

static cfg default_cfg(void) {
    cfg c = {256, 32, 1, 1, 2, 4, 2, 8, 64, 1, true, false, false, true, false};
    return c;
}

static uint32_t mat_type(const cfg *c, uint64_t cols, int *counter) {
    static const uint32_t cycle[] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_BF16, VWN_TYPE_Q8_0, VWN_TYPE_Q4_0};
    if (!c->mixed_types) return VWN_TYPE_F32;
    uint32_t t = cycle[(*counter)++ % 5];
    if ((t == VWN_TYPE_Q8_0 || t == VWN_TYPE_Q4_0) && cols % 32) t = VWN_TYPE_F16;
    return t;
}

static void add_ghc(gfile *g, const cfg *c, const char *p, int *k) {
    uint64_t n = c->n, K = 2 * c->m + c->n, s = c->D / (c->m ? c->m : 1);
    add_t(g, p, ".static", n, K, VWN_TYPE_F32);
    if (!c->dynamic) return;
    add_t(g, p, ".scale", n, K, c->mixed_types ? VWN_TYPE_F16 : VWN_TYPE_F32);
    add_t(g, p, ".proj.weight", K, s, c->mixed_types ? VWN_TYPE_BF16 : VWN_TYPE_F32);
    add_t(g, p, ".norm.weight", 0, s, mat_type(c, s, k));
}

static void add_layer(gfile *g, const cfg *c, const char *p, int *k) {
    char q[96];
    uint64_t D = c->D, qd = (uint64_t)c->Hq * c->hd, kvd = (uint64_t)c->Hkv * c->hd;
    snprintf(q, sizeof q, "%s.attn_ghc", p);
    add_ghc(g, c, q, k);
    add_t(g, p, ".attn_norm.weight", 0, D, VWN_TYPE_F32);
    add_t(g, p, ".attn.q_proj.weight", qd, D, mat_type(c, D, k));
    add_t(g, p, ".attn.k_proj.weight", kvd, D, mat_type(c, D, k));
    add_t(g, p, ".attn.v_proj.weight", kvd, D, mat_type(c, D, k));
    add_t(g, p, ".attn.o_proj.weight", D, qd, mat_type(c, qd, k));
    snprintf(q, sizeof q, "%s.ffn_ghc", p);
    add_ghc(g, c, q, k);
    add_t(g, p, ".ffn_norm.weight", 0, D, VWN_TYPE_F32);
    add_t(g, p, ".ffn.gate_proj.weight", c->F, D, mat_type(c, D, k));
    add_t(g, p, ".ffn.up_proj.weight", c->F, D, mat_type(c, D, k));
    add_t(g, p, ".ffn.down_proj.weight", D, c->F, mat_type(c, c->F, k));
}

static void build_model(gfile *g, const cfg *c) {
    memset(g, 0, sizeof *g);
    memcpy(g->magic, "GGUF", 4);
    g->version = 3;
    g->n_kv_override = g->n_tensors_override = -1;
    g->alignment = 32;

    kv_str(g, "general.architecture", "vwn");
    kv_str(g, "general.name", "tiny test model");
    kv_u32(g, "general.alignment", 32);
    kv_u32(g, "vwn.spec_version", 1);
    kv_u32(g, "vwn.vocab_size", c->V);
    kv_u32(g, "vwn.hidden_size", c->D);
    kv_u32(g, "vwn.num_layers", c->L);
    kv_u32(g, "vwn.ghc_m", c->m);
    kv_u32(g, "vwn.ghc_n", c->n);
    kv_u32(g, "vwn.num_heads", c->Hq);
    kv_u32(g, "vwn.num_kv_heads", c->Hkv);
    kv_u32(g, "vwn.head_dim", c->hd);
    kv_u32(g, "vwn.ffn_hidden_size", c->F);
    kv_u32(g, "vwn.mtp_depth", c->mtp);
    kv_u32(g, "vwn.max_seq_len", 128);
    kv_bool(g, "vwn.ghc_dynamic", c->dynamic);
    kv_str(g, "vwn.embedding", c->wide ? "wide" : "factorized");
    kv_bool(g, "vwn.tie_word_embeddings", c->tied);
    kv_bool(g, "vwn.output_group_norm", c->gn);
    kv_f32(g, "vwn.rope_theta", 10000.0);
    kv_f32(g, "vwn.rms_norm_eps", 1e-5);
    kv_f32(g, "vwn.group_norm_eps", 1e-5);
    kv_str(g, "tokenizer.ggml.model", "bytes");
    wkv *a = add_kv(g, "test.array", T_ARR);   /* an extra (ignored) array key */
    a->arr_type = T_I32;
    a->arr_len = 5;
    a = add_kv(g, "test.strings", T_ARR);
    a->arr_type = T_STR;
    a->arr_len = 3;

    int k = 0;
    uint64_t V = c->V, D = c->D, s = c->D / (c->m ? c->m : 1), Dw = c->n * s;
    add_t(g, "", "embed.weight", V, c->wide ? Dw : D, mat_type(c, c->wide ? Dw : D, &k));
    if (!c->wide && c->n != c->m) add_t(g, "", "embed_expand.weight", Dw, D, mat_type(c, D, &k));
    for (uint32_t i = 0; i < c->L; i++) {
        char p[32];
        snprintf(p, sizeof p, "layers.%u", i);
        add_layer(g, c, p, &k);
    }
    if (c->gn) {
        add_t(g, "", "out_norm.weight", 0, Dw, VWN_TYPE_F32);
        add_t(g, "", "out_norm.bias", 0, Dw, c->mixed_types ? VWN_TYPE_F16 : VWN_TYPE_F32);
    }
    if (c->n != c->m) add_t(g, "", "reduce.weight", D, Dw, mat_type(c, Dw, &k));
    add_t(g, "", "final_norm.weight", 0, D, VWN_TYPE_F32);
    if (!c->tied) add_t(g, "", "lm_head.weight", V, D, mat_type(c, D, &k));
    for (uint32_t j = 0; j < c->mtp; j++) {
        char p[32], lp[48];
        snprintf(p, sizeof p, "mtp.%u", j);
        add_t(g, p, ".enorm.weight", 0, Dw, VWN_TYPE_F32);
        add_t(g, p, ".hnorm.weight", 0, Dw, VWN_TYPE_F32);
        add_t(g, p, ".proj.weight", s, 2 * s, mat_type(c, 2 * s, &k));
        snprintf(lp, sizeof lp, "%s.layer", p);
        add_layer(g, c, lp, &k);
        if (c->gn) {
            add_t(g, p, ".out_norm.weight", 0, Dw, VWN_TYPE_F32);
            add_t(g, p, ".out_norm.bias", 0, Dw, VWN_TYPE_F32);
        }
        add_t(g, p, ".final_norm.weight", 0, D, VWN_TYPE_F32);
    }
}

/* ---- serialization ----------------------------------------------------------------------- */

/* The value of element i of tensor k: multiples of 1/8 in [-1, 1], exact in every type. */
static float tval(int k, uint64_t i) { return (float)((int)((i * 7 + (uint64_t)k * 3) % 17) - 8) / 8.0f; }

/* Byte size of a tensor, or 0 when its shape or type is one the test damaged. */
static uint64_t t_bytes(const wt *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims && d < 4; d++) {
        if (t->ne[d] == 0 || t->ne[d] > (1u << 24)) return 0;
        n *= t->ne[d];
    }
    if (t->n_dims < 1 || t->n_dims > 4) return 0;
    switch (t->type) {
    case VWN_TYPE_F32: return n * 4;
    case VWN_TYPE_F16: case VWN_TYPE_BF16: return n * 2;
    case VWN_TYPE_Q8_0: return t->ne[0] % 32 ? 0 : n / 32 * 34;
    case VWN_TYPE_Q4_0: return t->ne[0] % 32 ? 0 : n / 32 * 18;
    default: return 0;
    }
}

static void put_tensor_data(buf *b, const wt *t, int k) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d];
    for (uint64_t i = 0; i < n; i++) {
        float v = (i == 0 && t->nan) ? NAN : tval(k, i);
        if (t->type == VWN_TYPE_F32) {
            put(b, &v, 4);
        } else if (t->type == VWN_TYPE_F16 || t->type == VWN_TYPE_BF16) {
            uint16_t h = t->type == VWN_TYPE_F16 ? vwn_fp32_to_fp16(v) : vwn_fp32_to_bf16(v);
            put(b, &h, 2);
        } else if (t->type == VWN_TYPE_Q8_0) {
            if (i % 32 == 0) {
                uint16_t d = t->nan && i == 0 ? 0x7e00 : vwn_fp32_to_fp16(0.125f);
                put(b, &d, 2);
            }
            int8_t q = (int8_t)(tval(k, i) * 8.0f);
            put(b, &q, 1);
        } else if (t->type == VWN_TYPE_Q4_0) { /* d = 1/8: nibble = 8 v + 8 (v in -1..1 -> 0..15) */
            if (i % 32 == 0) {
                uint16_t d = t->nan && i == 0 ? 0x7e00 : vwn_fp32_to_fp16(0.125f);
                put(b, &d, 2);
                uint8_t qs[16];
                for (int j = 0; j < 16; j++) {
                    int lo = (int)(tval(k, i + j) * 8.0f) + 8, hi = (int)(tval(k, i + j + 16) * 8.0f) + 8;
                    qs[j] = (uint8_t)((lo > 15 ? 15 : lo) | (hi > 15 ? 15 : hi) << 4);
                }
                put(b, qs, 16);
            }
        }
    }
}

static void put_value(buf *b, const wkv *k) {
    switch (k->type) {
    case T_U8: case T_I8: case T_BOOL: { uint8_t v = (uint8_t)k->u; put(b, &v, 1); break; }
    case T_U16: case T_I16: { uint16_t v = (uint16_t)k->u; put(b, &v, 2); break; }
    case T_U32: case T_I32: put_u32(b, (uint32_t)k->u); break;
    case T_U64: case T_I64: put_u64(b, k->u); break;
    case T_F32: { float v = (float)k->f; put(b, &v, 4); break; }
    case T_F64: put(b, &k->f, 8); break;
    case T_STR: put_str(b, k->s); break;
    case T_ARR:
        put_u32(b, k->arr_type);
        put_u64(b, k->arr_len);
        for (uint64_t i = 0; i < k->arr_len; i++) {
            wkv e;
            memset(&e, 0, sizeof e);
            e.type = k->arr_type;
            e.u = i;
            e.f = (double)i;
            snprintf(e.s, sizeof e.s, "s%llu", (unsigned long long)i);
            if (e.type == T_BOOL) e.u = i & 1;
            if (e.type == T_ARR) { e.arr_type = T_U8; e.arr_len = 1; }
            put_value(b, &e);
        }
        break;
    default: break; /* unknown types: no value */
    }
}

/* Serializes g into b (a fresh buffer), recording positions in g. */
static void serialize(gfile *g, buf *b) {
    b->n = 0;
    put(b, g->magic, 4);
    put_u32(b, g->version);
    put_u64(b, g->n_tensors_override >= 0 ? (uint64_t)g->n_tensors_override : (uint64_t)g->n_t);
    put_u64(b, g->n_kv_override >= 0 ? (uint64_t)g->n_kv_override : (uint64_t)g->n_kv);
    for (int i = 0; i < g->n_kv; i++) {
        g->kv_pos[i] = b->n;
        put_str(b, g->kv[i].key);
        put_u32(b, g->kv[i].type);
        g->kv_val_pos[i] = b->n;
        put_value(b, &g->kv[i]);
    }
    /* lay the data out: each tensor at the next aligned offset, unless the case fixed it */
    uint64_t off = 0, offs[MAX_T];
    for (int i = 0; i < g->n_t; i++) {
        offs[i] = g->t[i].offset_set ? g->t[i].offset : off;
        off = (off + t_bytes(&g->t[i]) + g->alignment - 1) / g->alignment * g->alignment;
    }
    for (int i = 0; i < g->n_t; i++) {
        const wt *t = &g->t[i];
        g->t_pos[i] = b->n;
        put_str(b, t->name);
        put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && d < 8; d++) put_u64(b, t->ne[d < 4 ? d : 3]);
        put_u32(b, t->type);
        put_u64(b, offs[i]);
    }
    put_zeros(b, (g->alignment - b->n % g->alignment) % g->alignment);
    g->data_pos = b->n;
    /* the data, in layout order (fixed offsets of damaged tensors are not written) */
    off = 0;
    for (int i = 0; i < g->n_t; i++) {
        uint64_t nb = t_bytes(&g->t[i]);
        size_t at = g->data_pos + off;
        if (b->n < at) put_zeros(b, at - b->n);
        if (nb) put_tensor_data(b, &g->t[i], i);
        off = (off + nb + g->alignment - 1) / g->alignment * g->alignment;
    }
    if (b->n < g->data_pos + off) put_zeros(b, g->data_pos + off - b->n);
}

/* ---- loading helpers --------------------------------------------------------------------- */

static const char *tmp_path = "test_gguf_tmp.gguf";

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "test: cannot write %s\n", path);
        exit(2);
    }
}

/* Loads the first n bytes of b as a model file (mmap or read); the model is freed. */
static vwn_status load_bytes(const buf *b, size_t n, bool use_mmap, bool verify) {
    write_file(tmp_path, b->p, n);
    vwn_model_params p = vwn_model_default_params();
    p.use_mmap = use_mmap;
    p.verify_tensors = verify;
    vwn_model *m = (vwn_model *)0x1;
    vwn_status st = vwn_model_load(tmp_path, &p, &m);
    if (st != VWN_OK && m != NULL) {
        fprintf(stderr, "FAIL: out_model not NULL after a failed load\n");
        vt_failed++;
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", vwn_last_error());
    vwn_model_free(m);
    CHECK(strcmp(msg, vwn_last_error()) == 0); /* free keeps the last error */
    return st;
}

static int n_cases;

/* Serializes g, loads it through both paths and checks the status and that the message holds
 * `needle` (when not NULL). */
static void expect_bytes(const char *name, const buf *b, size_t n, vwn_status want, const char *needle) {
    n_cases++;
    for (int path = 0; path < 2; path++) {
        vwn_status st = load_bytes(b, n, path == 0, false);
        const char *msg = vwn_last_error();
        if (path == 0 && getenv("VT_VERBOSE")) printf("%-34s %-22.22s %s\n", name, vwn_status_string(st), msg);
        CHECK_MSG(st == want, "case '%s' (%s): got %s (%s), expected %s", name, path ? "read" : "mmap",
                  vwn_status_string(st), msg, vwn_status_string(want));
        if (want != VWN_OK) {
            CHECK_MSG(msg[0] != '\0', "case '%s': empty message", name);
            if (needle) CHECK_MSG(strstr(msg, needle) != NULL, "case '%s': message '%s' lacks '%s'", name, msg, needle);
        }
    }
}

static void expect_file(const char *name, gfile *g, vwn_status want, const char *needle) {
    buf b = {0};
    serialize(g, &b);
    expect_bytes(name, &b, b.n, want, needle);
    free(b.p);
}

/* ---- resource counting (mappings and descriptors must come back to where they were) ------ */

/* Mappings of the test's model file (a leaked mmap would stay listed). */
static int count_file_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) n += strstr(line, tmp_path) != NULL;
    fclose(f);
    return n;
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* ---- the valid model --------------------------------------------------------------------- */

static void test_good_model(bool mixed, bool use_mmap) {
    cfg c = default_cfg();
    c.mixed_types = mixed;
    gfile *g = calloc(1, sizeof *g);
    build_model(g, &c);
    buf b = {0};
    serialize(g, &b);
    write_file(tmp_path, b.p, b.n);

    vwn_model_params p = vwn_model_default_params();
    CHECK(p.use_mmap && !p.verify_tensors);
    p.use_mmap = use_mmap;
    p.verify_tensors = true;
    vwn_model *m = NULL;
    CHECK_OK(vwn_model_load(tmp_path, &p, &m));
    if (!m) { free(b.p); free(g); return; }
    CHECK(m->gguf->mapped == use_mmap);
    CHECK(use_mmap ? count_file_maps() >= 1 : count_file_maps() == 0);

    /* the embedding table (factorized, untied here) is advised out of 2 MiB pages when mapped:
     * the recorded range is whole pages that cover it, inside the mapping; an image read into
     * memory records nothing; a pointer outside the image is ignored */
    {
        const gguf_file *gf = m->gguf;
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        const size_t e0 = (size_t)((const uint8_t *)m->embed.data - gf->image);
        const size_t e1 = e0 + (size_t)m->embed.rows * m->embed.row_bytes;
        bool thp = access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
        if (!use_mmap) {
            CHECK(gf->sparse_lo == 0 && gf->sparse_hi == 0);
        } else if (thp) {
            CHECK_MSG(gf->sparse_lo <= e0 && gf->sparse_hi >= e1 && gf->sparse_lo % page == 0 &&
                          gf->sparse_hi % page == 0 && gf->sparse_hi - gf->sparse_lo < e1 - e0 + 2 * page &&
                          gf->sparse_hi <= ((size_t)gf->size + page - 1) / page * page,
                      "sparse range [%zu, %zu) for the embedding at [%zu, %zu)", gf->sparse_lo, gf->sparse_hi, e0, e1);
        }
        const size_t lo = gf->sparse_lo, hi = gf->sparse_hi;
        uint8_t outside[64];
        gguf_advise_sparse(m->gguf, outside, sizeof outside);
        gguf_advise_sparse(m->gguf, NULL, 10);
        gguf_advise_sparse(NULL, outside, 10);
        gguf_prefault(NULL);
        gguf_prefault(m->gguf); /* again: harmless */
        CHECK(gf->sparse_lo == lo && gf->sparse_hi == hi);
    }

    vwn_model_info info;
    CHECK_OK(vwn_model_get_info(m, &info));
    CHECK(info.n_vocab == 256 && info.n_embd == 32 && info.n_layer == 1 && info.ghc_m == 1 && info.ghc_n == 2);
    CHECK(info.n_embd_wide == 64 && info.n_head == 4 && info.n_head_kv == 2 && info.head_dim == 8);
    CHECK(info.n_ff == 64 && info.mtp_depth == 1 && info.max_seq_len == 128);
    CHECK(info.ghc_dynamic && !info.wide_embedding && !info.tied_head && info.output_group_norm);
    CHECK(info.rope_theta == 10000.0f && info.rms_norm_eps == 1e-5f && info.group_norm_eps == 1e-5f);
    CHECK(info.file_size == b.n);
    CHECK(m->hp.seg == 32 && m->hp.n_coef == 4);

    /* n_params, bytes per token and the weight type, computed independently */
    uint64_t n_params = 0, wbytes = 0;
    for (int i = 0; i < g->n_t; i++) {
        const wt *t = &g->t[i];
        n_params += t->ne[0] * t->ne[1];
        bool layer_mat = !strncmp(t->name, "layers.", 7) && t->n_dims == 2 && !strstr(t->name, "_ghc");
        if (layer_mat || !strcmp(t->name, "reduce.weight") || !strcmp(t->name, "lm_head.weight") ||
            !strcmp(t->name, "embed_expand.weight"))
            wbytes += t_bytes(t);
        if (!strcmp(t->name, "embed.weight")) wbytes += t_bytes(t) / t->ne[1];
        /* the small tensors, read as fp32 copies (the routing norm is folded into the projection) */
        bool layer_small = !strncmp(t->name, "layers.", 7) && (t->n_dims == 1 || strstr(t->name, "_ghc.")) &&
                           !strstr(t->name, "_ghc.norm.");
        if (layer_small || !strncmp(t->name, "out_norm.", 9) || !strcmp(t->name, "final_norm.weight"))
            wbytes += 4 * t->ne[0] * t->ne[1];
    }
    CHECK(info.n_params == n_params);
    CHECK_MSG(info.weight_bytes_per_token == wbytes, "%llu vs %llu", (unsigned long long)info.weight_bytes_per_token,
              (unsigned long long)wbytes);
    /* weight_type: the type holding the most matrix elements, the lower number on a tie (vwn.h) */
    uint64_t per_type[32] = {0};
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].n_dims == 2) per_type[g->t[i].type] += g->t[i].ne[0] * g->t[i].ne[1];
    int32_t want_type = 0;
    for (int32_t ty = 0; ty < 32; ty++)
        if (per_type[ty] > per_type[want_type]) want_type = ty;
    CHECK_MSG(info.weight_type == want_type, "weight_type %d, want %d", info.weight_type, want_type);
    if (!mixed) CHECK(info.weight_type == VWN_TYPE_F32);

    /* metadata as text */
    char text[64];
    CHECK(vwn_model_meta_count(m) == g->n_kv);
    CHECK(vwn_model_meta(m, "vwn.hidden_size", text, sizeof text) == 2 && !strcmp(text, "32"));
    CHECK(vwn_model_meta(m, "general.architecture", text, sizeof text) == 3 && !strcmp(text, "vwn"));
    CHECK(vwn_model_meta(m, "general.name", text, 5) == 15 && !strcmp(text, "tiny"));
    CHECK(vwn_model_meta(m, "general.name", NULL, 0) == 15);
    CHECK(vwn_model_meta(m, "vwn.rope_theta", text, sizeof text) == 5 && !strcmp(text, "10000"));
    CHECK(vwn_model_meta(m, "vwn.rms_norm_eps", text, sizeof text) > 0 && strtof(text, NULL) == 1e-5f);
    CHECK(vwn_model_meta(m, "vwn.ghc_dynamic", text, sizeof text) == 4 && !strcmp(text, "true"));
    CHECK(vwn_model_meta(m, "vwn.tie_word_embeddings", text, sizeof text) == 5 && !strcmp(text, "false"));
    CHECK(vwn_model_meta(m, "test.array", text, sizeof text) > 0 && !strcmp(text, "[array of 5 i32]"));
    CHECK(vwn_model_meta(m, "test.strings", text, sizeof text) > 0 && !strcmp(text, "[array of 3 string]"));
    CHECK(vwn_model_meta(m, "no.such.key", text, sizeof text) == -1);
    CHECK(vwn_model_meta(m, NULL, text, sizeof text) == -1);
    CHECK(vwn_model_meta(m, "general.name", NULL, 4) == -1);
    for (int i = 0; i < g->n_kv; i++) {
        const char *key = vwn_model_meta_key(m, i);
        CHECK(key && !strcmp(key, g->kv[i].key));
    }
    CHECK(vwn_model_meta_key(m, -1) == NULL && vwn_model_meta_key(m, g->n_kv) == NULL);

    /* the typed getters of the gguf layer */
    uint32_t u;
    float fl;
    const int32_t *ai;
    const gguf_str *as;
    const float *af;
    uint64_t an;
    CHECK_OK(gguf_get_u32(m->gguf, "vwn.num_layers", &u));
    CHECK(u == 1);
    CHECK_STATUS(gguf_get_u32(m->gguf, "general.name", &u), VWN_ERR_BAD_MODEL);
    CHECK_STATUS(gguf_get_u32(m->gguf, "absent", &u), VWN_ERR_BAD_MODEL);
    CHECK(strstr(vwn_last_error(), "absent") != NULL);
    u = 7;
    CHECK_OK(gguf_get_u32_opt(m->gguf, "absent", &u));
    CHECK(u == 7);
    CHECK_OK(gguf_get_f32(m->gguf, "vwn.rope_theta", &fl));
    CHECK(fl == 10000.0f);
    CHECK_OK(gguf_get_arr_i32(m->gguf, "test.array", &ai, &an));
    CHECK(an == 5 && ai[4] == 4 && ((uintptr_t)ai % 4) == 0);
    CHECK_OK(gguf_get_arr_str(m->gguf, "test.strings", &as, &an));
    CHECK(an == 3 && as[2].len == 2 && !memcmp(as[2].data, "s2", 2));
    CHECK_STATUS(gguf_get_arr_f32(m->gguf, "test.array", &af, &an), VWN_ERR_BAD_MODEL);
    CHECK_STATUS(gguf_get_arr_str(m->gguf, "vwn.hidden_size", &as, &an), VWN_ERR_BAD_MODEL);

    /* tensors: infos and values */
    CHECK(vwn_model_tensor_count(m) == g->n_t);
    float *vals = malloc(256 * 64 * sizeof(float));
    for (int i = 0; i < g->n_t; i++) {
        vwn_tensor_info ti;
        CHECK_OK(vwn_model_tensor_info(m, i, &ti));
        const wt *t = &g->t[i];
        CHECK(!strcmp(ti.name, t->name) && ti.type == (int32_t)t->type && ti.n_dims == (int32_t)t->n_dims);
        CHECK(ti.ne[0] == (int64_t)t->ne[0] && ti.ne[1] == (int64_t)t->ne[1] && ti.ne[2] == 1 && ti.ne[3] == 1);
        CHECK(ti.n_bytes == t_bytes(t) && ti.offset >= g->data_pos && ti.offset + ti.n_bytes <= b.n);
        CHECK(ti.offset % 32 == 0);
        uint64_t n = t->ne[0] * t->ne[1];
        CHECK_OK(vwn_model_tensor_read_f32(m, t->name, vals, n));
        int bad = 0;
        for (uint64_t e = 0; e < n; e++) { /* Q4_0 holds -8/8..7/8: the writer clamps 1 to 7/8 */
            const float want = t->type == VWN_TYPE_Q4_0 && tval(i, e) > 0.875f ? 0.875f : tval(i, e);
            bad += vals[e] != want;
        }
        CHECK_MSG(bad == 0, "tensor %s (%s): %d values differ", t->name, vwn_type_name((int32_t)t->type), bad);
        if (n > 1) CHECK_STATUS(vwn_model_tensor_read_f32(m, t->name, vals, n - 1), VWN_ERR_BUFFER_TOO_SMALL);
    }
    CHECK_STATUS(vwn_model_tensor_read_f32(m, "nope", vals, 10), VWN_ERR_INVALID_ARG);
    CHECK(strstr(vwn_last_error(), "nope") != NULL);
    vwn_tensor_info ti;
    CHECK_STATUS(vwn_model_tensor_info(m, g->n_t, &ti), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_model_tensor_info(m, 0, NULL), VWN_ERR_INVALID_ARG);

    /* small tensors are fp32 copies with the file's values; matrices point into the image */
    int ki = find_t(g, "layers.0.attn_ghc.static");
    CHECK(m->layers[0].attn_ghc.statc[3] == tval(ki, 3));
    ki = find_t(g, "layers.0.ffn_ghc.scale");
    CHECK(m->layers[0].ffn_ghc.scale[5] == tval(ki, 5));
    /* the routing projection is kept transposed, [s, K], with the routing-norm gain folded into
     * its rows (lib/model.c, prepare_ghc) */
    ki = find_t(g, "layers.0.attn_ghc.proj.weight");
    int ni = find_t(g, "layers.0.attn_ghc.norm.weight"), bad_proj = 0;
    const int64_t nK = m->hp.n_coef, ns = m->hp.seg;
    for (int64_t k = 0; k < nK; k++)
        for (int64_t e = 0; e < ns; e++)
            bad_proj += m->layers[0].attn_ghc.proj[e * nK + k] != tval(ki, (uint64_t)(k * ns + e)) * tval(ni, (uint64_t)e);
    CHECK_MSG(bad_proj == 0, "%d projection values differ", bad_proj);
    ki = find_t(g, "out_norm.bias");
    CHECK(m->out_norm_b[63] == tval(ki, 63));
    ki = find_t(g, "mtp.0.hnorm.weight");
    CHECK(m->mtp[0].hnorm[7] == tval(ki, 7));
    CHECK(m->mtp[0].final_norm && m->mtp[0].out_norm_w && m->mtp[0].layer.ffn_ghc.norm);
    CHECK(((uintptr_t)m->final_norm % 64) == 0);
    CHECK(m->lm_head.rows == 256 && m->lm_head.cols == 32 && m->lm_head.data != m->embed.data);
    CHECK(m->layers[0].wo.rows == 32 && m->layers[0].wo.cols == 32 && m->layers[0].wk.rows == 16);
    CHECK(m->mtp[0].proj.rows == 32 && m->mtp[0].proj.cols == 64);
    CHECK(m->embed_expand.data != NULL && m->embed_expand.rows == 64 && m->reduce.rows == 32 && m->reduce.cols == 64);
    CHECK((const uint8_t *)m->embed.data >= m->gguf->image &&
          (const uint8_t *)m->embed.data < m->gguf->image + m->gguf->size);
    CHECK(m->tokenizer != NULL);
    free(vals);

    /* handles */
    CHECK_STATUS(vwn_model_get_info(NULL, &info), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_model_get_info(m, NULL), VWN_ERR_INVALID_ARG);
    uint64_t fake[4] = {0x1234, 0, 0, 0};
    CHECK_STATUS(vwn_model_get_info((const vwn_model *)fake, &info), VWN_ERR_BAD_HANDLE);
    fake[0] = VWN_MAGIC_DEAD;
    CHECK_STATUS(vwn_model_get_info((const vwn_model *)fake, &info), VWN_ERR_BAD_HANDLE);
    CHECK(strstr(vwn_last_error(), "freed") != NULL);
    CHECK(vwn_model_meta_count((const vwn_model *)fake) == -1);
    CHECK(vwn_model_tensor_count(NULL) == -1);
    vwn_model_free((vwn_model *)fake); /* refused, no crash */
    vwn_model_free(NULL);

    vwn_model_free(m);
    free(b.p);
    free(g);
}

static void test_variants_ok(void) {
    /* tied factorized, wide, static GHC without group norm, n == m, no MTP, bigger alignment */
    cfg c = default_cfg();
    gfile *g = calloc(1, sizeof *g);
    c.tied = true;
    build_model(g, &c);
    expect_file("tied", g, VWN_OK, NULL);
    c = default_cfg();
    c.wide = true;
    c.mixed_types = true;
    build_model(g, &c);
    expect_file("wide mixed", g, VWN_OK, NULL);
    c = default_cfg();
    c.dynamic = false;
    c.gn = false;
    c.m = 2;
    c.n = 3;
    c.mtp = 2;
    build_model(g, &c);
    expect_file("static m2n3 mtp2", g, VWN_OK, NULL);
    c = default_cfg();
    c.n = 1;
    c.mtp = 0;
    c.L = 3;
    build_model(g, &c);
    expect_file("n == m (no reduce, no expand)", g, VWN_OK, NULL);
    c = default_cfg();
    build_model(g, &c);
    g->alignment = 64;
    g->kv[find_kv(g, "general.alignment")].u = 64;
    expect_file("alignment 64", g, VWN_OK, NULL);
    g->alignment = 8;
    g->kv[find_kv(g, "general.alignment")].u = 8;
    expect_file("alignment 8", g, VWN_OK, NULL);
    build_model(g, &c);
    del_kv(g, "general.alignment");
    expect_file("default alignment", g, VWN_OK, NULL);
    build_model(g, &c);
    g->kv[find_kv(g, "vwn.hidden_size")].type = T_U64;  /* any integer type is accepted */
    g->kv[find_kv(g, "vwn.num_layers")].type = T_U8;
    g->kv[find_kv(g, "vwn.ghc_n")].type = T_I32;
    g->kv[find_kv(g, "vwn.rope_theta")].type = T_F64;
    expect_file("other integer/float types", g, VWN_OK, NULL);
    free(g);
}

/* ---- damaged files ----------------------------------------------------------------------- */

static void test_truncation(void) {
    cfg c = default_cfg();
    c.mixed_types = true;
    gfile *g = calloc(1, sizeof *g);
    build_model(g, &c);
    buf b = {0};
    serialize(g, &b);

    /* every byte boundary of the header (and the padding before the data): in memory */
    int bad = 0;
    for (size_t cut = 0; cut <= g->data_pos; cut++) {
        gguf_file *f = (gguf_file *)0x1;
        vwn_status st = gguf_open_memory(b.p, cut, &f);
        if (st != VWN_ERR_TRUNCATED || f != NULL || !vwn_last_error()[0]) {
            if (bad++ < 5)
                fprintf(stderr, "cut at %zu: %s (%s)\n", cut, vwn_status_string(st), vwn_last_error());
        }
        if (st == VWN_OK) gguf_close(f);
    }
    CHECK_MSG(bad == 0, "%d of %zu header cuts did not give TRUNCATED", bad, g->data_pos + 1);
    /* several points in the data, and one byte short */
    size_t data = b.n - g->data_pos;
    for (int i = 1; i <= 16; i++) {
        size_t cut = g->data_pos + data * (size_t)i / 17;
        gguf_file *f = NULL;
        CHECK_STATUS(gguf_open_memory(b.p, cut, &f), VWN_ERR_TRUNCATED);
        CHECK(f == NULL && strstr(vwn_last_error(), "tensor '") != NULL);
    }
    gguf_file *f = NULL;
    CHECK_STATUS(gguf_open_memory(b.p, b.n - 1, &f), VWN_ERR_TRUNCATED);
    CHECK_OK(gguf_open_memory(b.p, b.n, &f));
    CHECK(f && f->n_tensors == (uint64_t)g->n_t && f->data_offset == g->data_pos);
    gguf_close(f);

    /* through the model loader and both file paths: a few cuts */
    size_t cuts[] = {0, 3, 4, 7, 8, 20, 24, g->kv_pos[3] + 5, g->kv_val_pos[20] + 2, g->t_pos[5] + 9,
                     g->data_pos - 1, g->data_pos, g->data_pos + 100, b.n - 34, b.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[48];
        snprintf(name, sizeof name, "truncated at %zu", cuts[i]);
        expect_bytes(name, &b, cuts[i], VWN_ERR_TRUNCATED, cuts[i] ? "truncated" : "empty");
    }
    free(b.p);
    free(g);
}

/* Serializes the default model, lets `edit` patch the bytes, and expects the status. */
typedef void (*patch_fn)(gfile *g, buf *b);

static void expect_patched(const char *name, patch_fn edit, vwn_status want, const char *needle) {
    cfg c = default_cfg();
    gfile *g = calloc(1, sizeof *g);
    build_model(g, &c);
    buf b = {0};
    serialize(g, &b);
    edit(g, &b);
    expect_bytes(name, &b, b.n, want, needle);
    free(b.p);
    free(g);
}

static void p_magic(gfile *g, buf *b) { (void)g; memcpy(b->p, "GGML", 4); }
static void p_version2(gfile *g, buf *b) { (void)g; patch_u32(b, 4, 2); }
static void p_version4(gfile *g, buf *b) { (void)g; patch_u32(b, 4, 4); }
static void p_big_endian(gfile *g, buf *b) { (void)g; patch_u32(b, 4, 0x03000000u); }
static void p_n_kv_absurd(gfile *g, buf *b) { (void)g; patch_u64(b, 16, 1ull << 60); }
static void p_n_t_absurd(gfile *g, buf *b) { (void)g; patch_u64(b, 8, 1ull << 60); }
static void p_n_kv_large(gfile *g, buf *b) { (void)g; patch_u64(b, 16, 100000); }
static void p_n_t_large(gfile *g, buf *b) { (void)g; patch_u64(b, 8, 100000); }
static void p_key_len_absurd(gfile *g, buf *b) { patch_u64(b, g->kv_pos[0], 1ull << 62); }
static void p_key_len_long(gfile *g, buf *b) { patch_u64(b, g->kv_pos[1], 65536); }
static void p_empty_key(gfile *g, buf *b) { patch_u64(b, g->kv_pos[0], 0); }
static void p_nul_key(gfile *g, buf *b) { b->p[g->kv_pos[1] + 8 + 3] = 0; }
static void p_str_len_absurd(gfile *g, buf *b) { patch_u64(b, g->kv_val_pos[find_kv(g, "general.name")], 1ull << 62); }
static void p_str_len_large(gfile *g, buf *b) { patch_u64(b, g->kv_val_pos[find_kv(g, "general.name")], 1ull << 29); }
static void p_arr_len_absurd(gfile *g, buf *b) { patch_u64(b, g->kv_val_pos[find_kv(g, "test.array")] + 4, 1ull << 60); }
static void p_arr_len_large(gfile *g, buf *b) { patch_u64(b, g->kv_val_pos[find_kv(g, "test.array")] + 4, 1ull << 24); }
static void p_str_arr_len_large(gfile *g, buf *b) { patch_u64(b, g->kv_val_pos[find_kv(g, "test.strings")] + 4, 1ull << 20); }
static void p_str_arr_elem_absurd(gfile *g, buf *b) { patch_u64(b, g->kv_val_pos[find_kv(g, "test.strings")] + 12, 1ull << 40); }
static void p_value_type(gfile *g, buf *b) { patch_u32(b, g->kv_val_pos[find_kv(g, "vwn.num_layers")] - 4, 13); }
static void p_arr_elem_type(gfile *g, buf *b) { patch_u32(b, g->kv_val_pos[find_kv(g, "test.array")], 99); }
static void p_bool_value(gfile *g, buf *b) { b->p[g->kv_val_pos[find_kv(g, "vwn.ghc_dynamic")]] = 2; }
static void p_tensor_type_q4_1(gfile *g, buf *b) { patch_u32(b, g->t_pos[1] + 8 + strlen(g->t[1].name) + 4 + 16, 3); }
static void p_tensor_type_99(gfile *g, buf *b) { patch_u32(b, g->t_pos[1] + 8 + strlen(g->t[1].name) + 4 + 16, 99); }
static void p_tensor_name_empty(gfile *g, buf *b) { patch_u64(b, g->t_pos[2], 0); }

static void test_patched(void) {
    expect_patched("wrong magic", p_magic, VWN_ERR_BAD_MAGIC, "GGUF");
    expect_patched("version 2", p_version2, VWN_ERR_BAD_VERSION, "version 2");
    expect_patched("version 4", p_version4, VWN_ERR_BAD_VERSION, "version 4");
    expect_patched("big-endian", p_big_endian, VWN_ERR_BAD_VERSION, "big-endian");
    expect_patched("absurd n_kv", p_n_kv_absurd, VWN_ERR_BAD_FORMAT, "n_kv");
    expect_patched("absurd n_tensors", p_n_t_absurd, VWN_ERR_BAD_FORMAT, "n_tensors");
    expect_patched("n_kv beyond the file", p_n_kv_large, VWN_ERR_TRUNCATED, "100000");
    expect_patched("n_tensors beyond the file", p_n_t_large, VWN_ERR_TRUNCATED, "100000 tensor");
    expect_patched("absurd key length", p_key_len_absurd, VWN_ERR_BAD_FORMAT, "key of metadata pair 0");
    expect_patched("key longer than 65535", p_key_len_long, VWN_ERR_BAD_FORMAT, "key of metadata pair 1");
    expect_patched("empty key", p_empty_key, VWN_ERR_BAD_FORMAT, "empty");
    expect_patched("NUL in key", p_nul_key, VWN_ERR_BAD_FORMAT, "NUL");
    expect_patched("absurd string length", p_str_len_absurd, VWN_ERR_BAD_FORMAT, "general.name");
    expect_patched("string beyond the file", p_str_len_large, VWN_ERR_TRUNCATED, "general.name");
    expect_patched("absurd array length", p_arr_len_absurd, VWN_ERR_BAD_FORMAT, "test.array");
    expect_patched("array beyond the file", p_arr_len_large, VWN_ERR_TRUNCATED, "test.array");
    expect_patched("string array beyond the file", p_str_arr_len_large, VWN_ERR_TRUNCATED, "test.strings");
    expect_patched("absurd string in array", p_str_arr_elem_absurd, VWN_ERR_BAD_FORMAT, "element 0 of key 'test.strings'");
    expect_patched("unknown value type", p_value_type, VWN_ERR_BAD_FORMAT, "vwn.num_layers");
    expect_patched("unknown array element type", p_arr_elem_type, VWN_ERR_BAD_FORMAT, "test.array");
    expect_patched("bool value 2", p_bool_value, VWN_ERR_BAD_FORMAT, "vwn.ghc_dynamic");
    expect_patched("tensor type q4_1", p_tensor_type_q4_1, VWN_ERR_UNSUPPORTED, "q4_1");
    expect_patched("tensor type 99", p_tensor_type_99, VWN_ERR_UNSUPPORTED, "99");
    expect_patched("empty tensor name", p_tensor_name_empty, VWN_ERR_BAD_FORMAT, "tensor 2");
}

/* Cases that edit the lists before serializing. */
static void test_edited(void) {
    cfg c0 = default_cfg();
    gfile *g = calloc(1, sizeof *g);
    wt *t;
    wkv *k;

#define FRESH() build_model(g, &c0)

    /* container: arrays, alignment, duplicates */
    FRESH();
    k = &g->kv[find_kv(g, "test.array")];
    k->arr_type = T_ARR;
    k->arr_len = 2;
    expect_file("nested array", g, VWN_ERR_BAD_FORMAT, "array of arrays");
    uint32_t bad_align[] = {0, 3, 4, 48, 131072};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        FRESH();
        g->kv[find_kv(g, "general.alignment")].u = bad_align[i];
        char name[32];
        snprintf(name, sizeof name, "alignment %u", bad_align[i]);
        expect_file(name, g, VWN_ERR_BAD_FORMAT, "general.alignment");
    }
    FRESH();
    g->kv[find_kv(g, "general.alignment")].type = T_U64;
    expect_file("alignment as u64", g, VWN_ERR_BAD_FORMAT, "general.alignment");
    FRESH();
    kv_u32(g, "vwn.hidden_size", 32);
    expect_file("duplicate key", g, VWN_ERR_BAD_FORMAT, "vwn.hidden_size");
    FRESH();
    g->t[g->n_t] = g->t[3];
    g->n_t++;
    expect_file("duplicate tensor", g, VWN_ERR_BAD_FORMAT, g->t[3].name);

    /* tensor infos */
    FRESH();
    g->t[4].n_dims = 0;
    expect_file("n_dims 0", g, VWN_ERR_BAD_FORMAT, g->t[4].name);
    FRESH();
    g->t[4].n_dims = 5;
    expect_file("n_dims 5", g, VWN_ERR_BAD_FORMAT, "5 dimensions");
    FRESH();
    g->t[find_t(g, "layers.0.attn.q_proj.weight")].ne[1] = 0;
    expect_file("zero dimension", g, VWN_ERR_BAD_FORMAT, "layers.0.attn.q_proj.weight");
    FRESH();
    g->t[5].ne[0] = (uint64_t)-32;
    expect_file("negative dimension", g, VWN_ERR_BAD_FORMAT, g->t[5].name);
    FRESH();
    t = &g->t[6];
    t->n_dims = 3;
    t->ne[0] = 1ull << 32;
    t->ne[1] = 1ull << 32;
    t->ne[2] = 4;
    expect_file("element count overflow", g, VWN_ERR_BAD_FORMAT, "overflow");
    FRESH();
    t = &g->t[find_t(g, "layers.0.ffn.up_proj.weight")];
    t->ne[0] = 1ull << 40;
    t->ne[1] = 1ull << 22;
    expect_file("byte size overflow", g, VWN_ERR_BAD_FORMAT, "overflow");
    FRESH();
    t = &g->t[find_t(g, "final_norm.weight")];
    t->type = VWN_TYPE_Q8_0;
    t->ne[0] = 48;
    expect_file("q8_0 row not a multiple of 32", g, VWN_ERR_BAD_FORMAT, "multiple of 32");
    FRESH();
    t = &g->t[find_t(g, "final_norm.weight")];
    t->type = VWN_TYPE_Q4_0;
    t->ne[0] = 40;
    expect_file("q4_0 row not a multiple of 32", g, VWN_ERR_BAD_FORMAT, "q4_0 but its rows have 40");
    FRESH();
    t = &g->t[7];
    t->offset_set = true;
    t->offset = 16;
    expect_file("misaligned offset", g, VWN_ERR_BAD_FORMAT, "alignment");
    FRESH();
    t = &g->t[g->n_t - 1];
    t->offset_set = true;
    t->offset = 1ull << 30;
    expect_file("offset past the end", g, VWN_ERR_TRUNCATED, t->name);
    FRESH();
    t = &g->t[8];
    t->offset_set = true;
    t->offset = UINT64_MAX - 31;
    expect_file("offset overflow", g, VWN_ERR_BAD_FORMAT, t->name);
    FRESH();
    t = &g->t[find_t(g, "lm_head.weight")];
    t->offset_set = true;
    t->offset = 0;   /* on top of embed.weight */
    expect_file("overlapping tensors", g, VWN_ERR_BAD_FORMAT, "overlap");
    FRESH();
    t = &g->t[find_t(g, "final_norm.weight")];
    t->offset_set = true;
    t->offset = 32;  /* inside embed.weight */
    expect_file("tensor inside another", g, VWN_ERR_BAD_FORMAT, "final_norm.weight");

    /* counts that disagree with the content */
    FRESH();
    g->n_kv_override = g->n_kv + 1;
    expect_file("n_kv one too many", g, VWN_ERR_BAD_FORMAT, NULL); /* reads a tensor name as a key */
    FRESH();
    g->n_tensors_override = 0;
    expect_file("n_tensors 0", g, VWN_ERR_BAD_MODEL, "missing tensor 'embed.weight'");

    /* VWN metadata */
    FRESH();
    del_kv(g, "vwn.hidden_size");
    expect_file("missing vwn.hidden_size", g, VWN_ERR_BAD_MODEL, "vwn.hidden_size");
    FRESH();
    del_kv(g, "general.architecture");
    expect_file("missing general.architecture", g, VWN_ERR_BAD_MODEL, "general.architecture");
    FRESH();
    del_kv(g, "vwn.group_norm_eps");
    expect_file("missing vwn.group_norm_eps", g, VWN_ERR_BAD_MODEL, "vwn.group_norm_eps");
    FRESH();
    del_kv(g, "vwn.ghc_dynamic");
    expect_file("missing vwn.ghc_dynamic", g, VWN_ERR_BAD_MODEL, "vwn.ghc_dynamic");
    FRESH();
    k = &g->kv[find_kv(g, "vwn.hidden_size")];
    k->type = T_STR;
    snprintf(k->s, sizeof k->s, "32");
    expect_file("vwn.hidden_size as string", g, VWN_ERR_BAD_MODEL, "vwn.hidden_size");
    FRESH();
    g->kv[find_kv(g, "vwn.ghc_dynamic")].type = T_U32;
    expect_file("vwn.ghc_dynamic as u32", g, VWN_ERR_BAD_MODEL, "vwn.ghc_dynamic");
    FRESH();
    g->kv[find_kv(g, "vwn.rope_theta")].type = T_U32;
    g->kv[find_kv(g, "vwn.rope_theta")].u = 10000;
    expect_file("vwn.rope_theta as u32", g, VWN_ERR_BAD_MODEL, "vwn.rope_theta");
    FRESH();
    k = &g->kv[find_kv(g, "vwn.num_layers")];
    k->type = T_I32;
    k->u = (uint32_t)-1;
    expect_file("negative vwn.num_layers", g, VWN_ERR_BAD_MODEL, "vwn.num_layers");
    FRESH();
    k = &g->kv[find_kv(g, "vwn.vocab_size")];
    k->type = T_U64;
    k->u = 1ull << 40;
    expect_file("vwn.vocab_size above 32 bits", g, VWN_ERR_BAD_MODEL, "vwn.vocab_size");
    FRESH();
    snprintf(g->kv[find_kv(g, "general.architecture")].s, 64, "llama");
    expect_file("architecture llama", g, VWN_ERR_UNSUPPORTED, "llama");
    FRESH();
    g->kv[find_kv(g, "vwn.spec_version")].u = 2;
    expect_file("spec version 2", g, VWN_ERR_UNSUPPORTED, "vwn.spec_version");
    FRESH();
    snprintf(g->kv[find_kv(g, "vwn.embedding")].s, 64, "narrow");
    expect_file("embedding narrow", g, VWN_ERR_BAD_MODEL, "narrow");

    struct { const char *key; uint32_t v; const char *needle; } ranges[] = {
        {"vwn.vocab_size", 0, "vwn.vocab_size"},      {"vwn.hidden_size", 0, "vwn.hidden_size"},
        {"vwn.hidden_size", 1u << 17, "vwn.hidden_size"}, {"vwn.num_layers", 0, "vwn.num_layers"},
        {"vwn.ghc_m", 0, "vwn.ghc_m"},                {"vwn.num_heads", 0, "vwn.num_heads"},
        {"vwn.num_kv_heads", 0, "vwn.num_kv_heads"},  {"vwn.head_dim", 0, "vwn.head_dim"},
        {"vwn.mtp_depth", 17, "vwn.mtp_depth"},       {"vwn.max_seq_len", 0, "vwn.max_seq_len"},
        {"vwn.ffn_hidden_size", 0, "vwn.ffn_hidden_size"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        FRESH();
        g->kv[find_kv(g, ranges[i].key)].u = ranges[i].v;
        char name[64];
        snprintf(name, sizeof name, "%s = %u", ranges[i].key, ranges[i].v);
        expect_file(name, g, VWN_ERR_BAD_MODEL, ranges[i].needle);
    }
    struct { const char *key; double v; } floats[] = {
        {"vwn.rms_norm_eps", 0.0}, {"vwn.rms_norm_eps", NAN}, {"vwn.group_norm_eps", -1e-5},
        {"vwn.rope_theta", -10000.0}, {"vwn.rope_theta", INFINITY},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        FRESH();
        g->kv[find_kv(g, floats[i].key)].f = floats[i].v;
        char name[64];
        snprintf(name, sizeof name, "%s = %g", floats[i].key, floats[i].v);
        expect_file(name, g, VWN_ERR_BAD_MODEL, floats[i].key);
    }

    /* inconsistent combinations (the tensors follow the damaged configuration) */
    cfg c = c0;
    c.D = 30;
    c.m = 4;
    build_model(g, &c);
    expect_file("D % m != 0", g, VWN_ERR_BAD_MODEL, "divisible");
    c = c0;
    c.m = 2;
    c.n = 1;
    build_model(g, &c);
    expect_file("n < m", g, VWN_ERR_BAD_MODEL, "vwn.ghc_n");
    c = c0;
    c.m = 2;
    c.n = 3;
    build_model(g, &c);
    expect_file("group norm with n % m != 0", g, VWN_ERR_BAD_MODEL, "output_group_norm");
    c = c0;
    c.Hkv = 3;
    build_model(g, &c);
    expect_file("Hq % Hkv != 0", g, VWN_ERR_BAD_MODEL, "num_kv_heads");
    c = c0;
    c.hd = 7;
    build_model(g, &c);
    expect_file("odd head_dim", g, VWN_ERR_BAD_MODEL, "head_dim");
    c = c0;
    c.wide = true;
    c.tied = true;
    build_model(g, &c);
    expect_file("tied with wide embedding", g, VWN_ERR_BAD_MODEL, "tie_word_embeddings");
    c = c0;
    c.V = 300;
    build_model(g, &c);
    expect_file("bytes tokenizer with V 300", g, VWN_ERR_BAD_MODEL, "256");

    /* tensors against the configuration */
    FRESH();
    del_t(g, "layers.0.attn.k_proj.weight");
    expect_file("missing tensor", g, VWN_ERR_BAD_MODEL, "missing tensor 'layers.0.attn.k_proj.weight'");
    FRESH();
    del_t(g, "mtp.0.out_norm.bias");
    expect_file("missing mtp tensor", g, VWN_ERR_BAD_MODEL, "mtp.0.out_norm.bias");
    FRESH();
    add_t(g, "", "layers.1.attn_norm.weight", 0, 32, VWN_TYPE_F32);
    expect_file("extra tensor", g, VWN_ERR_BAD_MODEL, "unexpected tensor 'layers.1.attn_norm.weight'");
    FRESH();
    add_t(g, "", "mtp.1.enorm.weight", 0, 64, VWN_TYPE_F32);
    expect_file("extra mtp tensor", g, VWN_ERR_BAD_MODEL, "mtp.1.enorm.weight");
    FRESH();
    t = &g->t[find_t(g, "layers.0.attn.q_proj.weight")];
    t->ne[0] = 16;
    t->ne[1] = 64;
    expect_file("transposed shape", g, VWN_ERR_BAD_MODEL, "has shape [16, 64], expected [32, 32]");
    FRESH();
    t = &g->t[find_t(g, "layers.0.ffn_ghc.static")];
    t->ne[0] = 5;
    expect_file("wrong GHC shape", g, VWN_ERR_BAD_MODEL, "layers.0.ffn_ghc.static");
    FRESH();
    t = &g->t[find_t(g, "out_norm.weight")];
    t->n_dims = 2;
    t->ne[1] = 2;
    expect_file("1-D tensor stored 2-D", g, VWN_ERR_BAD_MODEL, "out_norm.weight");
    c = c0;
    c.dynamic = false;
    build_model(g, &c);
    add_t(g, "", "layers.0.attn_ghc.scale", 2, 4, VWN_TYPE_F32);
    expect_file("scale in a static model", g, VWN_ERR_BAD_MODEL, "layers.0.attn_ghc.scale");
    c = c0;
    c.tied = true;
    build_model(g, &c);
    add_t(g, "", "lm_head.weight", 256, 32, VWN_TYPE_F32);
    expect_file("lm_head in a tied model", g, VWN_ERR_BAD_MODEL, "lm_head.weight");

    /* NaN/Inf are caught only when asked */
    c = c0;
    c.mixed_types = true;
    const uint32_t types[] = {VWN_TYPE_F32, VWN_TYPE_F16, VWN_TYPE_BF16, VWN_TYPE_Q8_0, VWN_TYPE_Q4_0};
    for (int i = 0; i < 5; i++) {
        build_model(g, &c);
        int ti = find_t(g, "lm_head.weight");
        g->t[ti].type = types[i];
        g->t[ti].nan = true;
        buf b = {0};
        serialize(g, &b);
        CHECK_OK(load_bytes(&b, b.n, true, false));
        vwn_status st = load_bytes(&b, b.n, i % 2 == 0, true);
        CHECK_MSG(st == VWN_ERR_BAD_MODEL && strstr(vwn_last_error(), "lm_head.weight"),
                  "NaN in %s lm_head: %s (%s)", vwn_type_name((int32_t)types[i]), vwn_status_string(st), vwn_last_error());
        n_cases++;
        free(b.p);
    }
#undef FRESH
    free(g);
}

/* Random damage: deterministic byte mutations of the header (1-4 bytes each, some set to 0x00 or
 * 0xff, some random). Every outcome must be a loader status with a message -- never a crash, a leak,
 * a sanitizer report or VWN_ERR_INTERNAL. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static bool loader_status(vwn_status st) {
    return st == VWN_OK || st == VWN_ERR_IO || st == VWN_ERR_BAD_MAGIC || st == VWN_ERR_BAD_VERSION ||
           st == VWN_ERR_TRUNCATED || st == VWN_ERR_BAD_FORMAT || st == VWN_ERR_UNSUPPORTED ||
           st == VWN_ERR_BAD_MODEL || st == VWN_ERR_OUT_OF_MEMORY;
}

static void test_mutations(void) {
    cfg c = default_cfg();
    c.mixed_types = true;
    gfile *g = calloc(1, sizeof *g);
    build_model(g, &c);
    buf b = {0};
    serialize(g, &b);
    uint8_t *orig = malloc(b.n);
    memcpy(orig, b.p, b.n);
    int bad = 0, n_ok = 0, counts[VWN_STATUS_COUNT_] = {0};
    for (int i = 0; i < 3000; i++) {
        memcpy(b.p, orig, b.n);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(rng() % g->data_pos);
            uint64_t how = rng() % 4;
            b.p[at] = how == 0 ? 0x00 : how == 1 ? 0xff : (uint8_t)rng();
        }
        vwn_status st;
        if (i % 10 == 0) {
            st = load_bytes(&b, b.n, i % 20 == 0, true); /* the whole loader, both paths */
        } else {
            gguf_file *f = NULL;
            st = gguf_open_memory(b.p, b.n, &f);
            gguf_close(f);
        }
        if (!loader_status(st) || (st != VWN_OK && !vwn_last_error()[0])) {
            if (bad++ < 5) fprintf(stderr, "mutation %d: %s (%s)\n", i, vwn_status_string(st), vwn_last_error());
        }
        n_ok += st == VWN_OK;
        if ((int)st >= 0 && st < VWN_STATUS_COUNT_) counts[st]++;
    }
    CHECK_MSG(bad == 0, "%d of 3000 mutations gave a wrong status or no message", bad);
    CHECK(n_ok < 3000); /* the mutations did damage */
    if (getenv("VT_VERBOSE"))
        for (int s = 0; s < VWN_STATUS_COUNT_; s++)
            if (counts[s]) printf("mutations: %4d %s\n", counts[s], vwn_status_string((vwn_status)s));
    free(orig);
    free(b.p);
    free(g);
}

static void test_io(void) {
    vwn_model *m = (vwn_model *)0x1;
    CHECK_STATUS(vwn_model_load("/nonexistent/dir/model.gguf", NULL, &m), VWN_ERR_IO);
    CHECK(m == NULL && strstr(vwn_last_error(), "/nonexistent/dir/model.gguf"));
    CHECK_STATUS(vwn_model_load(".", NULL, &m), VWN_ERR_IO);
    CHECK_STATUS(vwn_model_load(NULL, NULL, &m), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(vwn_model_load(tmp_path, NULL, NULL), VWN_ERR_INVALID_ARG);
    write_file(tmp_path, (const uint8_t *)"", 0);
    CHECK_STATUS(vwn_model_load(tmp_path, NULL, &m), VWN_ERR_TRUNCATED);
    write_file(tmp_path, (const uint8_t *)"GG", 2);
    CHECK_STATUS(vwn_model_load(tmp_path, NULL, &m), VWN_ERR_TRUNCATED);
    write_file(tmp_path, (const uint8_t *)"PK", 2);
    CHECK_STATUS(vwn_model_load(tmp_path, NULL, &m), VWN_ERR_BAD_MAGIC);
    write_file(tmp_path, (const uint8_t *)"{\"not\": \"gguf\"}", 15);
    CHECK_STATUS(vwn_model_load(tmp_path, NULL, &m), VWN_ERR_BAD_MAGIC);
    gguf_file *f = NULL;
    CHECK_STATUS(gguf_open_memory(NULL, 10, &f), VWN_ERR_INVALID_ARG);
    CHECK_STATUS(gguf_open(NULL, true, &f), VWN_ERR_INVALID_ARG);
    n_cases += 4;
}

int main(void) {
    test_good_model(false, true);
    test_good_model(true, false);
    test_good_model(true, true);
    test_variants_ok();

    int maps0 = count_file_maps(), fds0 = count_fds();
    test_truncation();
    test_patched();
    test_edited();
    test_mutations();
    test_io();
    int maps1 = count_file_maps(), fds1 = count_fds();
    CHECK_MSG(fds1 == fds0, "file descriptors: %d before, %d after the damaged cases", fds0, fds1);
    CHECK_MSG(maps0 == 0 && maps1 == 0, "mappings of %s: %d before, %d after the damaged cases", tmp_path, maps0, maps1);
    printf("%d damaged or edited files checked\n", n_cases);
    CHECK(n_cases >= 40);
    unlink(tmp_path);
    return vt_finish("test_gguf");
}

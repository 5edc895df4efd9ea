/* model.c -- loading a VWN model from a GGUF file: vwn_model_load, vwn_model_free and the model
 * accessors of vwn.h.
 *
 * Loading is a sequence of checks, each failing with a message that names the key or tensor:
 *   1. gguf_open parses and validates the container (lib/gguf.c);
 *   2. the vwn.* metadata is read and checked for consistency (read_hparams);
 *   3. the list of tensors the configuration requires is built with their shapes (build_catalogue),
 *      and the file must hold exactly those: none missing, none extra, every shape exact;
 *   4. small tensors (norm gains, GHC coefficients, group norms) are dequantized into one owned fp32
 *      block; matrices are bound in place (vwn_mat pointing into the file image);
 *   5. optionally every float is scanned for NaN/Inf; then the tokenizer is built. */
#include "model.h"
#include "common.h"
#include "gguf.h"
#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* Sane upper limits of the hyperparameters (a larger value is a corrupt or hostile file). */
#define MAX_VOCAB   (1 << 24)
#define MAX_EMBD    (1 << 16)
#define MAX_LAYERS  (1 << 12)
#define MAX_GHC_N   (1 << 12)
#define MAX_WIDE    (1 << 20)   /* D' */
#define MAX_HEADS   (1 << 12)
#define MAX_HEADDIM (1 << 12)
#define MAX_QDIM    (1 << 20)   /* Hq * hd */
#define MAX_FF      (1 << 20)
#define MAX_SEQ     (1 << 24)

/* ---- hyperparameters --------------------------------------------------------------------- */

/* A required integer key within [lo, hi]. */
static vwn_status get_int(const gguf_file *f, const char *key, int64_t lo, int64_t hi, int32_t *out) {
    uint32_t v;
    vwn_status st = gguf_get_u32(f, key, &v);
    if (st) return st;
    if ((int64_t)v < lo || (int64_t)v > hi)
        return vwn_fail(VWN_ERR_BAD_MODEL, "metadata %s = %u is out of range (%lld..%lld)", key, v,
                        (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return VWN_OK;
}

/* A required float key, finite and > 0. */
static vwn_status get_positive(const gguf_file *f, const char *key, float *out) {
    vwn_status st = gguf_get_f32(f, key, out);
    if (st) return st;
    if (!isfinite(*out) || !(*out > 0.0f))
        return vwn_fail(VWN_ERR_BAD_MODEL, "metadata %s = %g must be finite and > 0", key, (double)*out);
    return VWN_OK;
}

static bool str_is(gguf_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.data, lit, (size_t)s.len) == 0;
}

static vwn_status read_hparams(const gguf_file *f, vwn_hparams *hp) {
    vwn_status st;
    gguf_str arch;
    if ((st = gguf_get_str(f, "general.architecture", &arch))) return st;
    if (!str_is(arch, "vwn"))
        return vwn_fail(VWN_ERR_UNSUPPORTED, "general.architecture is \"%.*s\"; libvwn runs only \"vwn\" models",
                        (int)(arch.len > 64 ? 64 : arch.len), arch.data);

    uint32_t spec;
    if ((st = gguf_get_u32(f, "vwn.spec_version", &spec))) return st;
    if (spec != 1)
        return vwn_fail(VWN_ERR_UNSUPPORTED, "vwn.spec_version = %u is not supported (this libvwn reads version 1)", spec);

    if ((st = get_int(f, "vwn.vocab_size", 1, MAX_VOCAB, &hp->n_vocab)) ||
        (st = get_int(f, "vwn.hidden_size", 1, MAX_EMBD, &hp->n_embd)) ||
        (st = get_int(f, "vwn.num_layers", 1, MAX_LAYERS, &hp->n_layer)) ||
        (st = get_int(f, "vwn.ghc_m", 1, MAX_EMBD, &hp->ghc_m)) ||
        (st = get_int(f, "vwn.ghc_n", 1, MAX_GHC_N, &hp->ghc_n)) ||
        (st = get_int(f, "vwn.num_heads", 1, MAX_HEADS, &hp->n_head)) ||
        (st = get_int(f, "vwn.num_kv_heads", 1, MAX_HEADS, &hp->n_head_kv)) ||
        (st = get_int(f, "vwn.head_dim", 2, MAX_HEADDIM, &hp->head_dim)) ||
        (st = get_int(f, "vwn.ffn_hidden_size", 1, MAX_FF, &hp->n_ff)) ||
        (st = get_int(f, "vwn.mtp_depth", 0, VWN_MAX_MTP, &hp->mtp_depth)) ||
        (st = get_int(f, "vwn.max_seq_len", 1, MAX_SEQ, &hp->max_seq_len)))
        return st;
    if ((st = gguf_get_bool(f, "vwn.ghc_dynamic", &hp->ghc_dynamic)) ||
        (st = gguf_get_bool(f, "vwn.tie_word_embeddings", &hp->tied_head)) ||
        (st = gguf_get_bool(f, "vwn.output_group_norm", &hp->output_group_norm)))
        return st;
    gguf_str emb;
    if ((st = gguf_get_str(f, "vwn.embedding", &emb))) return st;
    if (str_is(emb, "wide"))
        hp->wide_embedding = true;
    else if (str_is(emb, "factorized"))
        hp->wide_embedding = false;
    else
        return vwn_fail(VWN_ERR_BAD_MODEL, "metadata vwn.embedding = \"%.*s\" (expected \"wide\" or \"factorized\")",
                        (int)(emb.len > 64 ? 64 : emb.len), emb.data);
    if ((st = get_positive(f, "vwn.rope_theta", &hp->rope_theta)) ||
        (st = get_positive(f, "vwn.rms_norm_eps", &hp->rms_eps)) ||
        (st = get_positive(f, "vwn.group_norm_eps", &hp->gn_eps)))
        return st;

    /* consistency (spec §1, §4, §5) */
    int32_t D = hp->n_embd, m = hp->ghc_m, n = hp->ghc_n;
    if (D % m != 0)
        return vwn_fail(VWN_ERR_BAD_MODEL, "vwn.hidden_size = %d is not divisible by vwn.ghc_m = %d", D, m);
    if (n < m)
        return vwn_fail(VWN_ERR_BAD_MODEL, "vwn.ghc_n = %d is smaller than vwn.ghc_m = %d", n, m);
    if (hp->output_group_norm && n % m != 0)
        return vwn_fail(VWN_ERR_BAD_MODEL,
                        "vwn.output_group_norm needs vwn.ghc_n (%d) to be a multiple of vwn.ghc_m (%d)", n, m);
    hp->seg = D / m;
    if ((int64_t)n * hp->seg > MAX_WIDE)
        return vwn_fail(VWN_ERR_BAD_MODEL, "the virtual width D' = ghc_n * hidden_size / ghc_m = %lld is too large (limit %d)",
                        (long long)n * hp->seg, MAX_WIDE);
    hp->n_wide = n * hp->seg;
    hp->n_coef = 2 * m + n;
    if (hp->n_head % hp->n_head_kv != 0)
        return vwn_fail(VWN_ERR_BAD_MODEL, "vwn.num_heads = %d is not a multiple of vwn.num_kv_heads = %d",
                        hp->n_head, hp->n_head_kv);
    if (hp->head_dim % 2 != 0)
        return vwn_fail(VWN_ERR_BAD_MODEL, "vwn.head_dim = %d is odd (RoPE needs an even head width)", hp->head_dim);
    if ((int64_t)hp->n_head * hp->head_dim > MAX_QDIM)
        return vwn_fail(VWN_ERR_BAD_MODEL, "num_heads * head_dim = %lld is too large (limit %d)",
                        (long long)hp->n_head * hp->head_dim, MAX_QDIM);
    if (hp->tied_head && hp->wide_embedding)
        return vwn_fail(VWN_ERR_BAD_MODEL,
                        "vwn.tie_word_embeddings is set with vwn.embedding = \"wide\" (tying needs the factorized embedding)");
    return VWN_OK;
}

/* ---- the tensors the configuration requires ---------------------------------------------- */

typedef struct expect {
    char name[96];
    int64_t ne[4];           /* GGUF order, unused dims 1        */
    int n_dims;
    const float **f32;       /* small tensor: its fp32 copy goes here */
    bool transpose;          /* small 2-D tensor: store it transposed */
    vwn_mat *mat;            /* matrix: bound in place here        */
} expect;

typedef struct catalogue {
    expect *e;
    size_t n, cap;
    bool oom;
} catalogue;

static expect *cat_add(catalogue *c, const char *prefix, const char *name) {
    if (c->oom) return NULL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        expect *e = vwn_realloc(c->e, cap * sizeof *e);
        if (!e) {
            c->oom = true;
            return NULL;
        }
        c->e = e;
        c->cap = cap;
    }
    expect *x = &c->e[c->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s%s", prefix, name);
    x->ne[0] = x->ne[1] = x->ne[2] = x->ne[3] = 1;
    return x;
}

/* A small fp32 tensor of torch shape [len] or [rows, cols]. */
static void want_vec(catalogue *c, const char *prefix, const char *name, int64_t len, const float **dst) {
    expect *x = cat_add(c, prefix, name);
    if (!x) return;
    x->n_dims = 1;
    x->ne[0] = len;
    x->f32 = dst;
}

static void want_small(catalogue *c, const char *prefix, const char *name, int64_t rows, int64_t cols,
                       const float **dst) {
    expect *x = cat_add(c, prefix, name);
    if (!x) return;
    x->n_dims = 2;
    x->ne[0] = cols;
    x->ne[1] = rows;
    x->f32 = dst;
}

/* A matrix of torch shape [rows, cols] (Linear [out, in]): GGUF ne = [cols, rows]. */
static void want_mat(catalogue *c, const char *prefix, const char *name, int64_t rows, int64_t cols, vwn_mat *dst) {
    expect *x = cat_add(c, prefix, name);
    if (!x) return;
    x->n_dims = 2;
    x->ne[0] = cols;
    x->ne[1] = rows;
    x->mat = dst;
}

static void want_ghc(catalogue *c, const vwn_hparams *hp, const char *prefix, vwn_ghc_weights *g) {
    want_small(c, prefix, ".static", hp->ghc_n, hp->n_coef, &g->statc);
    if (!hp->ghc_dynamic) return;
    want_small(c, prefix, ".scale", hp->ghc_n, hp->n_coef, &g->scale);
    want_small(c, prefix, ".proj.weight", hp->n_coef, hp->seg, &g->proj);
    if (c->n && !c->oom) c->e[c->n - 1].transpose = true; /* stored [s, K]: see prepare_ghc */
    want_vec(c, prefix, ".norm.weight", hp->seg, &g->norm);
}

static void want_layer(catalogue *c, const vwn_hparams *hp, const char *prefix, vwn_layer_weights *w) {
    char p[80];
    int64_t D = hp->n_embd, q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    snprintf(p, sizeof p, "%s.attn_ghc", prefix);
    want_ghc(c, hp, p, &w->attn_ghc);
    want_vec(c, prefix, ".attn_norm.weight", D, &w->attn_norm);
    want_mat(c, prefix, ".attn.q_proj.weight", q, D, &w->wq);
    want_mat(c, prefix, ".attn.k_proj.weight", kv, D, &w->wk);
    want_mat(c, prefix, ".attn.v_proj.weight", kv, D, &w->wv);
    want_mat(c, prefix, ".attn.o_proj.weight", D, q, &w->wo);
    snprintf(p, sizeof p, "%s.ffn_ghc", prefix);
    want_ghc(c, hp, p, &w->ffn_ghc);
    want_vec(c, prefix, ".ffn_norm.weight", D, &w->ffn_norm);
    want_mat(c, prefix, ".ffn.gate_proj.weight", hp->n_ff, D, &w->w_gate);
    want_mat(c, prefix, ".ffn.up_proj.weight", hp->n_ff, D, &w->w_up);
    want_mat(c, prefix, ".ffn.down_proj.weight", D, hp->n_ff, &w->w_down);
}

/* Every tensor of spec §7 that this configuration makes present, in file order. */
static void build_catalogue(catalogue *c, vwn_model *m) {
    const vwn_hparams *hp = &m->hp;
    int64_t V = hp->n_vocab, D = hp->n_embd, Dw = hp->n_wide, s = hp->seg;
    bool expand = hp->ghc_n != hp->ghc_m;
    char p[64];

    want_mat(c, "", "embed.weight", V, hp->wide_embedding ? Dw : D, &m->embed);
    if (!hp->wide_embedding && expand) want_mat(c, "", "embed_expand.weight", Dw, D, &m->embed_expand);
    for (int32_t i = 0; i < hp->n_layer; i++) {
        snprintf(p, sizeof p, "layers.%d", (int)i);
        want_layer(c, hp, p, &m->layers[i]);
    }
    if (hp->output_group_norm) {
        want_vec(c, "", "out_norm.weight", Dw, &m->out_norm_w);
        want_vec(c, "", "out_norm.bias", Dw, &m->out_norm_b);
    }
    if (expand) want_mat(c, "", "reduce.weight", D, Dw, &m->reduce);
    want_vec(c, "", "final_norm.weight", D, &m->final_norm);
    if (!hp->tied_head) want_mat(c, "", "lm_head.weight", V, D, &m->lm_head);
    for (int32_t j = 0; j < hp->mtp_depth; j++) {
        vwn_mtp_weights *w = &m->mtp[j];
        snprintf(p, sizeof p, "mtp.%d", (int)j);
        want_vec(c, p, ".enorm.weight", Dw, &w->enorm);
        want_vec(c, p, ".hnorm.weight", Dw, &w->hnorm);
        want_mat(c, p, ".proj.weight", s, 2 * s, &w->proj);
        char lp[80];
        snprintf(lp, sizeof lp, "%s.layer", p);
        want_layer(c, hp, lp, &w->layer);
        if (hp->output_group_norm) {
            want_vec(c, p, ".out_norm.weight", Dw, &w->out_norm_w);
            want_vec(c, p, ".out_norm.bias", Dw, &w->out_norm_b);
        }
        want_vec(c, p, ".final_norm.weight", D, &w->final_norm);
    }
}

/* "[a, b]" for messages; reversed: in torch order (outermost first). */
static void shape_text(char *buf, size_t size, const int64_t *ne, int n_dims, bool reversed) {
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < n_dims && used < size; d++) {
        int k = snprintf(buf + used, size - used, "%s%lld", d ? ", " : "[",
                         (long long)ne[reversed ? n_dims - 1 - d : d]);
        if (k < 0) return;
        used += (size_t)k;
    }
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* Matches the file's tensors against the catalogue: every expected tensor present with its exact
 * shape (unused trailing dims count as 1), and no other tensor. */
static vwn_status match_tensors(const gguf_file *f, const catalogue *c, const gguf_tensor **found) {
    bool *used = vwn_calloc((size_t)f->n_tensors, sizeof *used);
    if (!used) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory matching the tensors");
    vwn_status st = VWN_OK;
    for (size_t i = 0; i < c->n && st == VWN_OK; i++) {
        const expect *x = &c->e[i];
        char want[96], got[96], torch[96];
        shape_text(want, sizeof want, x->ne, x->n_dims, false);
        shape_text(torch, sizeof torch, x->ne, x->n_dims, true);
        const gguf_tensor *t = gguf_find_tensor(f, x->name);
        if (!t) {
            st = vwn_fail(VWN_ERR_BAD_MODEL, "missing tensor '%s' (expected GGUF shape %s, torch %s)", x->name,
                          want, torch);
            break;
        }
        if (memcmp(t->ne, x->ne, sizeof t->ne) != 0) {
            shape_text(got, sizeof got, t->ne, (int)t->n_dims, false);
            st = vwn_fail(VWN_ERR_BAD_MODEL,
                          "tensor '%s' has shape %s, expected %s (GGUF order, innermost first; torch %s)",
                          x->name, got, want, torch);
            break;
        }
        used[t - f->tensors] = true;
        found[i] = t;
    }
    for (uint64_t i = 0; i < f->n_tensors && st == VWN_OK; i++)
        if (!used[i])
            st = vwn_fail(VWN_ERR_BAD_MODEL, "unexpected tensor '%s': this configuration has no such tensor",
                          f->tensors[i].name);
    vwn_free(used);
    return st;
}

/* ---- binding ----------------------------------------------------------------------------- */

/* Dequantizes every small tensor into one block (each at a 64-byte boundary) and binds every matrix. */
static vwn_status bind_tensors(vwn_model *m, const catalogue *c, const gguf_tensor **found) {
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->e[i].f32) continue;
        size_t n = ((size_t)found[i]->n_elements + 15) / 16 * 16; /* small: < 2^44, checked by gguf */
        if (!vwn_add_size(total, n, &total))
            return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "the small tensors are too large");
    }
    size_t bytes;
    if (!vwn_mul_size(total, sizeof(float), &bytes))
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "the small tensors are too large");
    m->owned_f32 = vwn_aligned_alloc(bytes);
    if (!m->owned_f32) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of small tensors", bytes);

    float *dst = m->owned_f32;
    for (size_t i = 0; i < c->n; i++) {
        const expect *x = &c->e[i];
        const gguf_tensor *t = found[i];
        if (x->f32) {
            int64_t cols = t->ne[0], rows = (int64_t)(t->n_elements / (uint64_t)cols);
            size_t rb = vwn_row_bytes((int32_t)t->type, cols);
            for (int64_t r = 0; r < rows; r++)
                vwn_dequant_row((int32_t)t->type, (const char *)t->data + (size_t)r * rb, dst + r * cols, cols);
            if (x->transpose) { /* rows x cols -> cols x rows, through the padding after it */
                const size_t n = (size_t)t->n_elements;
                float *tr = vwn_malloc(n * sizeof *tr);
                if (!tr) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory transposing '%s'", t->name);
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t k = 0; k < cols; k++) tr[(size_t)k * (size_t)rows + (size_t)r] = dst[r * cols + k];
                memcpy(dst, tr, n * sizeof *tr);
                vwn_free(tr);
            }
            *x->f32 = dst;
            dst += ((size_t)t->n_elements + 15) / 16 * 16;
        } else {
            vwn_mat *mat = x->mat;
            mat->data = t->data;
            mat->type = (int32_t)t->type;
            mat->cols = t->ne[0];
            mat->rows = t->ne[1];
            mat->row_bytes = vwn_row_bytes(mat->type, mat->cols);
            if (mat->row_bytes == 0 || (uint64_t)mat->row_bytes * (uint64_t)mat->rows != t->n_bytes)
                return vwn_fail(VWN_ERR_INTERNAL, "tensor '%s': row size disagrees with the GGUF size", t->name);
        }
    }
    return VWN_OK;
}

/* ---- GHC preparation ------------------------------------------------------------------------ */

/* The routing projection of a dynamic GHC is used as rmsnorm(H_i) · Wᵀ = (H_i · (g ∘ Wᵀ)) / rms(H_i)
 * (spec §2, g the routing-norm gain): bind_tensors stored Wᵀ as [s, K]; this folds the gain into
 * its rows, so the forward pass needs only each row's rms (lib/ghc.c). The copy is the model's own
 * (owned_f32), written once here before the model is shared. */
static void prepare_ghc(const vwn_hparams *hp, vwn_ghc_weights *g) {
    if (!hp->ghc_dynamic || !g->proj || !g->norm) return;
    float *wt = (float *)g->proj; /* owned, see above */
    for (int32_t e = 0; e < hp->seg; e++)
        for (int32_t k = 0; k < hp->n_coef; k++) wt[(size_t)e * (size_t)hp->n_coef + (size_t)k] *= g->norm[e];
}

/* ---- NaN/Inf scan ------------------------------------------------------------------------ */

static vwn_status verify_tensor(const gguf_tensor *t) {
    uint64_t bad = UINT64_MAX;
    if (t->type == VWN_TYPE_F32) {
        const uint32_t *p = t->data;
        for (uint64_t i = 0; i < t->n_elements && bad == UINT64_MAX; i++)
            if ((p[i] & 0x7f800000u) == 0x7f800000u) bad = i;
    } else if (t->type == VWN_TYPE_F16 || t->type == VWN_TYPE_BF16) {
        const uint16_t *p = t->data;
        uint16_t mask = t->type == VWN_TYPE_F16 ? 0x7c00u : 0x7f80u;
        for (uint64_t i = 0; i < t->n_elements && bad == UINT64_MAX; i++)
            if ((p[i] & mask) == mask) bad = i;
    } else if (t->type == VWN_TYPE_Q8_0) {
        const vwn_block_q8_0 *b = t->data;
        for (uint64_t i = 0; i < t->n_elements / VWN_QK8_0 && bad == UINT64_MAX; i++)
            if ((b[i].d & 0x7c00u) == 0x7c00u) bad = i * VWN_QK8_0;
    } else if (t->type == VWN_TYPE_Q4_0) {
        const vwn_block_q4_0 *b = t->data;
        for (uint64_t i = 0; i < t->n_elements / VWN_QK4_0 && bad == UINT64_MAX; i++)
            if ((b[i].d & 0x7c00u) == 0x7c00u) bad = i * VWN_QK4_0;
    }
    if (bad != UINT64_MAX)
        return vwn_fail(VWN_ERR_BAD_MODEL, "tensor '%s' holds a NaN or Inf at element %llu", t->name,
                        (unsigned long long)bad);
    return VWN_OK;
}

/* ---- packed rows (ops.h) ------------------------------------------------------------------- */

/* Every matrix a matmul reads (the embedding table is read a row at a time by token, and stays as
 * it is; a tied output head is packed as lm_head). n: the count; out: room for it (or NULL). */
static int model_mats(vwn_model *m, vwn_mat **out) {
    int n = 0;
#define ADD(w) ((out ? (void)(out[n] = (w)) : (void)0), n++)
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        vwn_layer_weights *w = &m->layers[l];
        ADD(&w->wq), ADD(&w->wk), ADD(&w->wv), ADD(&w->wo), ADD(&w->w_gate), ADD(&w->w_up), ADD(&w->w_down);
    }
    for (int32_t j = 0; j < m->hp.mtp_depth; j++) {
        vwn_layer_weights *w = &m->mtp[j].layer;
        ADD(&m->mtp[j].proj);
        ADD(&w->wq), ADD(&w->wk), ADD(&w->wv), ADD(&w->wo), ADD(&w->w_gate), ADD(&w->w_up), ADD(&w->w_down);
    }
    ADD(&m->embed_expand), ADD(&m->reduce), ADD(&m->lm_head);
#undef ADD
    return n;
}

/* Whether the kernels this CPU runs (the best table, honouring VWN_SIMD) read a matrix of type and
 * cols packed. */
static bool packs(int32_t type, int64_t cols) {
    return type >= 0 && type < 32 && (vwn_ops_best()->packs >> type & 1u) && vwn_packable(type, cols);
}

/* Whether the loader packs (decided before the file is prefaulted: a file to be packed is not):
 * the file is mapped, VWN_REPACK is not 0, and the file holds a matrix pack_weights would pack --
 * one of model_mats (the embedding table only as the tied output head) that packs() takes: Q8_0
 * with whole octs on AVX-512 VNNI, F32, F16 and BF16 on AVX-512. A file without one is prefaulted
 * as on any other CPU. */
static bool pack_wanted(const vwn_model *m, const catalogue *c, const gguf_tensor **found) {
    const char *env = getenv("VWN_REPACK");
    if (!m->gguf->mapped || (env && strcmp(env, "0") == 0)) return false;
    for (size_t i = 0; i < c->n; i++) {
        const expect *x = &c->e[i];
        if (!x->mat || (x->mat == &m->embed && !m->hp.tied_head)) continue;
        if (packs((int32_t)found[i]->type, found[i]->ne[0])) return true;
    }
    return false;
}

/* A matrix's packed copy's bytes, rounded up to 64 (each copy starts on a cache line). */
static size_t packed_size(const vwn_mat *w) {
    return (vwn_packed_bytes(w->type, w->rows, w->cols) + 63) / 64 * 64;
}

/* The rows of one matrix into dst, in pieces of rows shared out over n_threads (the same bytes
 * whichever thread packs a piece). */
#define PACK_PIECE_ROWS 64
static void pack_matrix(const vwn_mat *w, char *dst, int n_threads) {
    const int64_t pieces = (w->rows + PACK_PIECE_ROWS - 1) / PACK_PIECE_ROWS;
    (void)n_threads;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads > 1 && pieces > 1 ? n_threads : 1) schedule(static)
#endif
    for (int64_t p = 0; p < pieces; p++) {
        const int64_t r0 = p * PACK_PIECE_ROWS, r1 = r0 + PACK_PIECE_ROWS < w->rows ? r0 + PACK_PIECE_ROWS : w->rows;
        vwn_pack_rows(w->type, (const char *)w->data + (size_t)r0 * w->row_bytes, dst + (size_t)r0 * w->row_bytes,
                      r1 - r0, w->cols);
    }
}

/* The matrices in the packed layouts the kernels this CPU runs read (packs(); the best table,
 * honouring VWN_SIMD), when the file is mapped: one copy in 2 MiB pages, and the mapped
 * pages it replaces are dropped, so resident memory stays about the file's size. Contexts of
 * other levels read the file's bytes, faulted back in. VWN_REPACK=0 in the environment keeps the
 * file's layout (for measuring). No memory for the copy is not an error: the kernels then read the
 * file's layout. (docs/design.md, "Packed Q8_0 rows") */
static void pack_weights(vwn_model *m) {
    vwn_mat *mats[3 + 8 * (VWN_MAX_MTP + 1)];
    vwn_mat **all = mats;
    const int n = model_mats(m, NULL);
    if ((size_t)n > sizeof mats / sizeof mats[0] && !(all = vwn_malloc((size_t)n * sizeof *all))) return;
    model_mats(m, all);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (all[i]->data && packs(all[i]->type, all[i]->cols))
            total += packed_size(all[i]); /* each about a tensor of the mapped file */
    char *dst = total ? vwn_big_alloc(total) : NULL;
    if (dst) {
        m->packed = dst;
        m->packed_bytes = total;
        /* the threads the budget grants now, as a context's would (up to 8) */
        const int nt = vwn_threads_acquire(8);
        /* the copy's pages faulted in first, each thread its stretch: the kernel zeroes a 2 MiB
         * page in its fault, on the faulting thread, so rows packed into one page would wait
         * for each other */
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(nt > 1 ? nt : 1) schedule(static)
#endif
        for (size_t off = 0; off < total; off += 4096) dst[off] = 0;
        for (int i = 0; i < n; i++) {
            vwn_mat *w = all[i];
            if (!w->data || !packs(w->type, w->cols)) continue;
            pack_matrix(w, dst, nt);
            w->packed = dst;
            dst += packed_size(w);
            if (w->data != m->embed.data) /* a tied table's rows are still read */
                gguf_release(m->gguf, w->data, (size_t)w->rows * w->row_bytes);
        }
        vwn_threads_release(nt);
    }
    if (all != mats) vwn_free(all);
}

/* ---- the draft head (model.h) ------------------------------------------------------------- */

static void draft_head_free(vwn_mat *h) {
    if (!h) return;
    vwn_big_free((void *)h->data);
    vwn_free(h);
}

/* W (F32, F16 or BF16) as Q8_0, 256 values at a time by the level's quantizer (whose bytes every
 * level shares), rows shared out over n_threads. */
static vwn_mat *draft_head_make(const vwn_mat *W, const vwn_ops *ops, int n_threads) {
    const size_t row_bytes = vwn_row_bytes(VWN_TYPE_Q8_0, W->cols);
    vwn_mat *h = vwn_malloc(sizeof *h);
    char *data = row_bytes && h ? vwn_big_alloc((size_t)W->rows * row_bytes) : NULL;
    if (!data) {
        vwn_free(h);
        return NULL;
    }
    const int64_t rows = W->rows, cols = W->cols;
    (void)n_threads;
#ifdef VWN_OPENMP
#pragma omp parallel for num_threads(n_threads > 1 ? n_threads : 1) schedule(static)
#endif
    for (int64_t r = 0; r < rows; r++) {
        float tmp[256];
        const char *src = (const char *)W->data + (size_t)r * W->row_bytes;
        vwn_block_q8_0 *dst = (vwn_block_q8_0 *)(data + (size_t)r * row_bytes);
        for (int64_t c0 = 0; c0 < cols; c0 += 256) {
            const int64_t n = cols - c0 < 256 ? cols - c0 : 256; /* a multiple of 32 */
            vwn_dequant_row(W->type, src + vwn_row_bytes(W->type, c0), tmp, n);
            ops->quantize_q8_0(tmp, dst + c0 / VWN_QK8_0, n);
        }
    }
    *h = (vwn_mat){data, VWN_TYPE_Q8_0, W->rows, W->cols, row_bytes, NULL};
    return h;
}

const vwn_mat *vwn_model_draft_head(const vwn_model *model, const vwn_ops *ops, int n_threads) {
    vwn_model *m = (vwn_model *)model; /* the copy is a cache: the model's weights do not change */
    vwn_mat *h = atomic_load_explicit(&m->draft_head, memory_order_acquire);
    if (h) return h;
    const vwn_mat *W = &m->lm_head;
    const bool is_float = W->type == VWN_TYPE_F32 || W->type == VWN_TYPE_F16 || W->type == VWN_TYPE_BF16;
    if (!is_float || W->cols % VWN_QK8_0 || !(h = draft_head_make(W, ops, n_threads))) return W;
    vwn_mat *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&m->draft_head, &none, h, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        draft_head_free(h); /* another thread made one first */
        h = none;
    }
    return h;
}

/* ---- load and free ----------------------------------------------------------------------- */

static void model_destroy(vwn_model *m) {
    if (!m) return;
    m->magic = VWN_MAGIC_DEAD;
    draft_head_free(atomic_load(&m->draft_head));
    vwn_tokenizer_free(m->tokenizer);
    gguf_close(m->gguf);
    vwn_free(m->layers);
    vwn_free(m->mtp);
    vwn_aligned_free(m->owned_f32);
    vwn_big_free(m->packed);
    vwn_free(m);
}

static uint64_t mat_bytes(const vwn_mat *w) { return w->data ? (uint64_t)w->rows * w->row_bytes : 0; }

/* n_params, weight_bytes_per_token, weight_type. */
static void compute_stats(vwn_model *m) {
    const gguf_file *f = m->gguf;
    m->n_params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) m->n_params += f->tensors[i].n_elements;

    uint64_t b = 0;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const vwn_layer_weights *w = &m->layers[l];
        b += mat_bytes(&w->wq) + mat_bytes(&w->wk) + mat_bytes(&w->wv) + mat_bytes(&w->wo);
        b += mat_bytes(&w->w_gate) + mat_bytes(&w->w_up) + mat_bytes(&w->w_down);
    }
    b += mat_bytes(&m->reduce) + mat_bytes(&m->lm_head) + m->embed.row_bytes + mat_bytes(&m->embed_expand);
    /* and the small tensors it reads, fp32 copies whatever the file's type (bind_tensors): each
     * layer's two norm gains and two GHC modules' coefficients (static; scale and projection when
     * dynamic -- the routing gain is folded into the projection, prepare_ghc), the group norm and
     * the final norm. At (m,n) = (8,64) a GHC module's are 71 KB: 1.7 MB, 1.3% of the 110M
     * model's bytes, read from memory every token (docs/performance.md, "Seventeenth session"). */
    const vwn_hparams *hp = &m->hp;
    const uint64_t K = (uint64_t)hp->n_coef, ghc = (uint64_t)hp->ghc_n * K * (hp->ghc_dynamic ? 2 : 1) +
                                                     (hp->ghc_dynamic ? (uint64_t)hp->seg * K : 0);
    uint64_t small = (uint64_t)hp->n_layer * (2 * (uint64_t)hp->n_embd + 2 * ghc) + (uint64_t)hp->n_embd;
    if (hp->output_group_norm) small += 2 * (uint64_t)hp->n_wide;
    m->weight_bytes_per_token = b + small * sizeof(float);

    /* the type that holds the most elements of the matrices (2-D tensors); a q4_0 file whose
     * output head is q8_0 (tools/convert.py) is a q4_0 model. Ties go to the lower type number. */
    uint64_t per_type[32] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (t->n_dims == 2 && t->type < 32) per_type[t->type] += t->n_elements;
    }
    m->weight_type = VWN_TYPE_F32;
    for (int32_t ty = 0; ty < 32; ty++)
        if (per_type[ty] > per_type[m->weight_type]) m->weight_type = ty;
}

/* Everything after the file is parsed: hyperparameters, the tensor catalogue, binding, checks,
 * statistics and the tokenizer. verify: scan every float tensor for NaN/Inf. */
static vwn_status load_parsed(vwn_model *m, bool verify) {
    const gguf_file *f = m->gguf;
    vwn_status st;
    m->file_size = f->size;
    if ((st = read_hparams(f, &m->hp))) return st;

    m->layers = vwn_calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    m->mtp = m->hp.mtp_depth ? vwn_calloc((size_t)m->hp.mtp_depth, sizeof *m->mtp) : NULL;
    if (!m->layers || (m->hp.mtp_depth && !m->mtp))
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory for the layer table");

    bool pack = false;
    catalogue c = {0};
    build_catalogue(&c, m);
    const gguf_tensor **found = c.oom ? NULL : vwn_calloc(c.n, sizeof *found);
    if (!found) {
        vwn_free(c.e);
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory for the tensor catalogue");
    }
    st = match_tensors(f, &c, found);
    if (st == VWN_OK) {
        /* The mapped weights in 2 MiB pages (lib/gguf.h): the embedding table, read a row per
         * token, is kept out of them (unless it is also the output head, streamed whole), and the
         * rest is faulted in now, in file order, before bind_tensors reads the small tensors
         * scattered between the matrices -- faults there first left ~16% of a file that was not
         * yet in the page cache in smaller folios. */
        const gguf_tensor *e = gguf_find_tensor(f, "embed.weight");
        if (e && !m->hp.tied_head) gguf_advise_sparse(m->gguf, e->data, (size_t)e->n_bytes);
        /* Not when the matrices are to be packed: packing reads them once, matrix by matrix,
         * releasing each as it goes, so the file and the copy are not resident together (the
         * peak stays about the file's size); the rest then faults in on first use. (Until the
         * eighteenth session files with nothing to pack were not prefaulted either, on CPUs that
         * read packed rows: ~17% of an F32 file stayed in small pages; docs/performance.md.) */
        pack = pack_wanted(m, &c, found);
        if (!pack) gguf_prefault(m->gguf);
        st = bind_tensors(m, &c, found);
    }
    vwn_free(found);
    vwn_free(c.e);
    if (st) return st;
    if (m->hp.tied_head) m->lm_head = m->embed;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        prepare_ghc(&m->hp, &m->layers[l].attn_ghc);
        prepare_ghc(&m->hp, &m->layers[l].ffn_ghc);
    }
    for (int32_t j = 0; j < m->hp.mtp_depth; j++) {
        prepare_ghc(&m->hp, &m->mtp[j].layer.attn_ghc);
        prepare_ghc(&m->hp, &m->mtp[j].layer.ffn_ghc);
    }

    if (verify)
        for (uint64_t i = 0; i < f->n_tensors; i++)
            if ((st = verify_tensor(&f->tensors[i]))) return st;

    compute_stats(m);
    if (pack) pack_weights(m);
    return vwn_tokenizer_load(f, m->hp.n_vocab, &m->tokenizer);
}

static vwn_status load(const char *path, const vwn_model_params *params, vwn_model *m) {
    vwn_status st = gguf_open(path, params->use_mmap, &m->gguf);
    if (st) return st;
    return load_parsed(m, params->verify_tensors);
}

vwn_model_params vwn_model_default_params(void) {
    vwn_model_params p;
    memset(&p, 0, sizeof p);
    p.use_mmap = true;
    p.verify_tensors = false;
    return p;
}

vwn_status vwn_model_load(const char *path, const vwn_model_params *params, vwn_model **out_model) {
    vwn_clear_error();
    if (!out_model) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_load: out_model is NULL");
    *out_model = NULL;
    if (!path) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_load: path is NULL");
    vwn_model_params defaults = vwn_model_default_params();
    if (!params) params = &defaults;

    vwn_model *m = vwn_calloc(1, sizeof *m);
    if (!m) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory loading '%s'", path);
    vwn_status st = load(path, params, m);
    if (st != VWN_OK) {
        /* the message names the key or tensor; add the file when it does not already say it */
        if (st != VWN_ERR_IO) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", vwn_last_error());
            vwn_fail(st, "%s: %s", path, msg);
        }
        model_destroy(m);
        return st;
    }
    m->magic = VWN_MAGIC_MODEL;
    *out_model = m;
    return VWN_OK;
}

/* Leaves the last error alone (a free can't fail, and callers often free before reporting). A
 * freed or foreign pointer is ignored. */
void vwn_model_free(vwn_model *model) {
    if (!model) return;
    uint64_t magic;
    memcpy(&magic, model, sizeof magic);
    if (magic != VWN_MAGIC_MODEL) return;
    model_destroy(model);
}

/* ---- accessors --------------------------------------------------------------------------- */

uint64_t vwn_model_packed_bytes(const vwn_model *model) {
    vwn_clear_error();
    if (vwn_check_handle(model, VWN_MAGIC_MODEL, "model") != VWN_OK) return 0;
    return model->packed_bytes;
}

vwn_status vwn_model_get_info(const vwn_model *model, vwn_model_info *info) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(model, VWN_MAGIC_MODEL, "model");
    if (st) return st;
    if (!info) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_get_info: info is NULL");
    const vwn_hparams *hp = &model->hp;
    memset(info, 0, sizeof *info);
    info->n_vocab = hp->n_vocab;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->ghc_m = hp->ghc_m;
    info->ghc_n = hp->ghc_n;
    info->n_embd_wide = hp->n_wide;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->head_dim = hp->head_dim;
    info->n_ff = hp->n_ff;
    info->mtp_depth = hp->mtp_depth;
    info->max_seq_len = hp->max_seq_len;
    info->ghc_dynamic = hp->ghc_dynamic;
    info->wide_embedding = hp->wide_embedding;
    info->tied_head = hp->tied_head;
    info->output_group_norm = hp->output_group_norm;
    info->rope_theta = hp->rope_theta;
    info->rms_norm_eps = hp->rms_eps;
    info->group_norm_eps = hp->gn_eps;
    info->weight_type = model->weight_type;
    info->n_params = model->n_params;
    info->file_size = model->file_size;
    info->weight_bytes_per_token = model->weight_bytes_per_token;
    return VWN_OK;
}

int32_t vwn_model_meta(const vwn_model *model, const char *key, char *buf, size_t buf_size) {
    vwn_clear_error();
    if (vwn_check_handle(model, VWN_MAGIC_MODEL, "model")) return -1;
    if (!key) {
        vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_meta: key is NULL");
        return -1;
    }
    if (!buf && buf_size > 0) {
        vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_meta: buf is NULL but buf_size is %zu", buf_size);
        return -1;
    }
    const gguf_kv *kv = gguf_find_kv(model->gguf, key);
    if (!kv) {
        vwn_fail(VWN_ERR_INVALID_ARG, "the model has no metadata key '%s'", key);
        return -1;
    }
    return gguf_kv_to_text(kv, buf, buf_size);
}

int32_t vwn_model_meta_count(const vwn_model *model) {
    vwn_clear_error();
    if (vwn_check_handle(model, VWN_MAGIC_MODEL, "model")) return -1;
    return (int32_t)model->gguf->n_kv;
}

const char *vwn_model_meta_key(const vwn_model *model, int32_t i) {
    vwn_clear_error();
    if (vwn_check_handle(model, VWN_MAGIC_MODEL, "model")) return NULL;
    if (i < 0 || (uint64_t)i >= model->gguf->n_kv) {
        vwn_fail(VWN_ERR_INVALID_ARG, "metadata index %d is out of range (0..%llu)", (int)i,
                 (unsigned long long)model->gguf->n_kv);
        return NULL;
    }
    return model->gguf->kv[i].key;
}

int32_t vwn_model_tensor_count(const vwn_model *model) {
    vwn_clear_error();
    if (vwn_check_handle(model, VWN_MAGIC_MODEL, "model")) return -1;
    return (int32_t)model->gguf->n_tensors;
}

vwn_status vwn_model_tensor_info(const vwn_model *model, int32_t i, vwn_tensor_info *info) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(model, VWN_MAGIC_MODEL, "model");
    if (st) return st;
    if (!info) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_tensor_info: info is NULL");
    const gguf_file *f = model->gguf;
    if (i < 0 || (uint64_t)i >= f->n_tensors)
        return vwn_fail(VWN_ERR_INVALID_ARG, "tensor index %d is out of range (the model has %llu tensors)",
                        (int)i, (unsigned long long)f->n_tensors);
    const gguf_tensor *t = &f->tensors[i];
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->type = (int32_t)t->type;
    info->n_dims = (int32_t)t->n_dims;
    for (int d = 0; d < 4; d++) info->ne[d] = t->ne[d];
    info->offset = f->data_offset + t->offset;
    info->n_bytes = t->n_bytes;
    return VWN_OK;
}

vwn_status vwn_model_tensor_read_f32(const vwn_model *model, const char *name, float *dst, size_t n_elements) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(model, VWN_MAGIC_MODEL, "model");
    if (st) return st;
    if (!name) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_tensor_read_f32: name is NULL");
    const gguf_tensor *t = gguf_find_tensor(model->gguf, name);
    if (!t) return vwn_fail(VWN_ERR_INVALID_ARG, "the model has no tensor '%s'", name);
    if ((uint64_t)n_elements < t->n_elements)
        return vwn_fail(VWN_ERR_BUFFER_TOO_SMALL, "tensor '%s' has %llu elements; the buffer holds %zu", name,
                        (unsigned long long)t->n_elements, n_elements);
    if (!dst) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_tensor_read_f32: dst is NULL");
    int64_t cols = t->ne[0], rows = (int64_t)(t->n_elements / (uint64_t)cols);
    size_t rb = vwn_row_bytes((int32_t)t->type, cols);
    for (int64_t r = 0; r < rows; r++)
        vwn_dequant_row((int32_t)t->type, (const char *)t->data + (size_t)r * rb, dst + r * cols, cols);
    return VWN_OK;
}

/* ---- loading from memory (internal, for the fuzz targets and tests; lib/model.h) ----------
 * The same steps as vwn_model_load after the file is opened, on an in-memory image (copied), with
 * the NaN/Inf scan on. */
vwn_status vwn_model_load_memory(const void *data, size_t size, vwn_model **out_model) {
    vwn_clear_error();
    if (!out_model) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_load_memory: out_model is NULL");
    *out_model = NULL;
    if (!data && size > 0) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_model_load_memory: data is NULL");
    vwn_model *m = vwn_calloc(1, sizeof *m);
    if (!m) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory loading a model from memory");
    vwn_status st = gguf_open_memory(data, size, &m->gguf);
    if (st == VWN_OK) st = load_parsed(m, true);
    if (st != VWN_OK) {
        model_destroy(m);
        return st;
    }
    m->magic = VWN_MAGIC_MODEL;
    *out_model = m;
    return VWN_OK;
}

/* state.c -- saving and restoring a context: vwn_state_size, vwn_state_save, vwn_state_load and the
 * file variants (include/vwn.h). A saved state lets a later process, or another context of the same
 * model, continue exactly where the saving context stood: the logits of every following call are
 * bit-identical to those of the context that was never interrupted.
 *
 * The format, version 1. All integers little-endian, floats IEEE-754 binary32 as in memory:
 *
 *   header   "VWNS"  u32 version = 1  u64 body_size                                    16 bytes
 *   body     u64 model_id                  (vwn_model_identity: which model made the state)
 *            u32 n_vocab, n_layer, kv_dim, n_wide      (shape; must equal the model's)
 *            u32 n_ctx, n_batch, ring                  (of the saving context; informational)
 *            u32 n_mtp                                 (MTP modules saved: 0 or the model's depth)
 *            i32 n_past
 *            i32 mtp_len[n_mtp]
 *            i32 tokens[n_past]
 *            f32 K[n_layer][n_past][kv_dim], then f32 V[n_layer][n_past][kv_dim]
 *            per MTP module j: f32 K[mtp_len[j]][kv_dim], f32 V[mtp_len[j]][kv_dim]
 *            per ring stage s < n_mtp: u32 count, then count x (i32 pos, f32 state[n_wide])
 *            i32 logits_first, i32 logits_count, f32 logits[logits_count][n_vocab]
 *            per MTP module j: i32 first, i32 count, f32 logits[count][n_vocab]
 *   trailer  u64 checksum of header + body (vwn_state_checksum)                          8 bytes
 *
 * Only what the context needs is saved: cache rows below the lengths, the ring entries that hold a
 * valid state (with their positions), and the outputs of the latest call (so vwn_get_logits works
 * right after a restore). A pending draft and the perf counters are not saved.
 *
 * Loading checks, in this order, and reports the first failure: magic (BAD_FORMAT), version
 * (BAD_VERSION), the size the header states (TRUNCATED when shorter, BAD_FORMAT when longer), the
 * checksum (CHECKSUM), the model identity and shape (STATE_MISMATCH), MTP compatibility
 * (STATE_MISMATCH), n_past against n_ctx (CONTEXT_FULL), then every count, position and token of
 * the body (BAD_FORMAT). Only when everything is valid is the context written, so a failed load
 * leaves it untouched.
 *
 * Contexts of other shapes: the target may have another n_ctx (>= n_past), n_batch (the ring is
 * re-slotted by position; every state the next call needs always fits) or logits_all (only the last
 * rows of the saved outputs that fit are restored). A state saved with MTP loads into a context
 * with MTP disabled (the MTP part is checked and dropped); a state saved without MTP cannot feed a
 * context that runs MTP (STATE_MISMATCH). */
#include "state.h"
#include "context.h"
#include "common.h"
#include "attention.h"
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char state_magic[4] = {'V', 'W', 'N', 'S'};

/* ---- the hash: one lane of xxHash64's round over 8-byte words ------------------------------ */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL

typedef struct hasher {
    uint64_t h, len;
    uint8_t tail[8];
    size_t n_tail;
} hasher;

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t le64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8); /* every supported host is little-endian */
    return w;
}
static inline uint64_t hash_round(uint64_t h, uint64_t w) { return rotl64(h ^ (w * P2), 31) * P1; }

static void hash_init(hasher *s) {
    s->h = 0x27D4EB2F165667C5ULL;
    s->len = 0;
    s->n_tail = 0;
}

static void hash_update(hasher *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->len += n;
    if (s->n_tail) {
        while (s->n_tail < 8 && n) {
            s->tail[s->n_tail++] = *p++;
            n--;
        }
        if (s->n_tail < 8) return;
        s->h = hash_round(s->h, le64(s->tail));
        s->n_tail = 0;
    }
    uint64_t h = s->h;
    for (; n >= 8; p += 8, n -= 8) h = hash_round(h, le64(p));
    s->h = h;
    while (n) {
        s->tail[s->n_tail++] = *p++;
        n--;
    }
}

static uint64_t hash_final(const hasher *s) {
    uint64_t h = s->h;
    if (s->n_tail) {
        uint8_t last[8] = {0};
        memcpy(last, s->tail, s->n_tail);
        h = hash_round(h, le64(last));
    }
    h = hash_round(h, s->len);
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t vwn_state_checksum(const void *data, size_t size) {
    hasher s;
    hash_init(&s);
    hash_update(&s, data, size);
    return hash_final(&s);
}

static void hash_i32(hasher *s, int32_t v) { hash_update(s, &v, 4); }
static void hash_f32(hasher *s, float v) { hash_update(s, &v, 4); }

uint64_t vwn_model_identity(const vwn_model *m) {
    hasher s;
    hash_init(&s);
    hash_update(&s, "vwn-model-identity-1", 20);
    const vwn_hparams *hp = &m->hp;
    const int32_t ints[] = {hp->n_vocab, hp->n_embd, hp->n_layer, hp->ghc_m, hp->ghc_n, hp->seg, hp->n_wide,
                            hp->n_coef, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff, hp->mtp_depth,
                            hp->max_seq_len, hp->ghc_dynamic, hp->wide_embedding, hp->tied_head,
                            hp->output_group_norm};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) hash_i32(&s, ints[i]);
    hash_f32(&s, hp->rope_theta);
    hash_f32(&s, hp->rms_eps);
    hash_f32(&s, hp->gn_eps);
    const gguf_file *f = m->gguf;
    if (f && f->image) {
        /* header, metadata and tensor table: everything before the data section */
        const uint64_t meta = f->data_offset <= f->size ? f->data_offset : f->size;
        hash_update(&s, f->image, (size_t)meta);
        /* a sample of every tensor's values: two models of one configuration differ here */
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor *t = &f->tensors[i];
            const uint64_t n = t->n_bytes < 32 ? t->n_bytes : 32;
            hash_update(&s, t->data, (size_t)n);
            hash_update(&s, (const uint8_t *)t->data + (t->n_bytes - n), (size_t)n);
        }
    }
    return hash_final(&s);
}

/* ---- writing ------------------------------------------------------------------------------- */

/* A sink: counts bytes, and copies them to a buffer or a file, hashing on the way. */
typedef struct writer {
    uint8_t *buf;  /* NULL: no buffer          */
    FILE *fp;      /* NULL: no file            */
    bool hashing;
    bool failed;   /* a file write failed     */
    uint64_t pos;
    hasher h;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (n == 0 || w->failed) return;
    if (w->hashing) hash_update(&w->h, p, n);
    if (w->buf) memcpy(w->buf + w->pos, p, n);
    else if (w->fp && fwrite(p, 1, n, w->fp) != n) w->failed = true;
    w->pos += n;
}
static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }
static void put_i32(writer *w, int32_t v) { put(w, &v, 4); }
static void put_u64(writer *w, uint64_t v) { put(w, &v, 8); }
static void put_f32(writer *w, const float *p, size_t n) { put(w, p, n * sizeof(float)); }

/* One layer's KV cache (layout: attention.h) as the file stores it, [n_past][Hkv*hd] of fp32
 * whatever the context's kv_type (fp16 widens exactly; Q8_0 dequantizes exactly, d * qs).
 * `cache` is the layer's first byte. */
static void put_kv(writer *w, const vwn_context *ctx, const char *cache, int32_t n_past) {
    const int32_t hd = ctx->model->hp.head_dim, n_kv = ctx->model->hp.n_head_kv, n_ctx = ctx->params.n_ctx;
    const int32_t type = ctx->params.kv_type;
    for (int32_t p = 0; p < n_past; p++)
        for (int32_t h = 0; h < n_kv; h++) {
            const char *row = vwn_kv_row((void *)cache, ctx->kv_row, n_ctx, h, p);
            if (type == VWN_TYPE_F32) {
                put_f32(w, (const float *)row, (size_t)hd);
                continue;
            }
            float buf[64]; /* 64 values: whole Q8_0 blocks */
            for (int32_t i = 0; i < hd; i += 64) {
                const int32_t n = hd - i < 64 ? hd - i : 64;
                if (type == VWN_TYPE_F16)
                    for (int32_t c = 0; c < n; c++) buf[c] = vwn_fp16_to_fp32(((const uint16_t *)row)[i + c]);
                else vwn_dequant_row(VWN_TYPE_Q8_0, (const vwn_block_q8_0 *)row + i / VWN_QK8_0, buf, n);
                put_f32(w, buf, (size_t)n);
            }
        }
}

/* ... and back: fp32 rows [n_rows][Hkv*hd] from the file (any alignment) into the cache's layout
 * and type, stored as when decoding (fp16: rounded to nearest even; Q8_0: quantized by the
 * context's kernels -- a Q8_0 row saved and loaded again is the same blocks: its largest value is
 * d * 127, so the scale comes back as d and every quant as itself). */
static void get_kv(const vwn_context *ctx, char *cache, const uint8_t *rows, int32_t n_rows) {
    const int32_t hd = ctx->model->hp.head_dim, n_kv = ctx->model->hp.n_head_kv, n_ctx = ctx->params.n_ctx;
    const size_t row_bytes = (size_t)hd * sizeof(float);
    for (int32_t p = 0; p < n_rows; p++)
        for (int32_t h = 0; h < n_kv; h++) {
            char *dst = vwn_kv_row(cache, ctx->kv_row, n_ctx, h, p);
            const uint8_t *src = rows + ((size_t)p * n_kv + h) * row_bytes;
            if (ctx->params.kv_type == VWN_TYPE_F32) {
                memcpy(dst, src, row_bytes);
                continue;
            }
            float buf[64];
            for (int32_t i = 0; i < hd; i += 64) {
                const int32_t n = hd - i < 64 ? hd - i : 64;
                memcpy(buf, src + (size_t)i * sizeof(float), (size_t)n * sizeof(float));
                if (ctx->params.kv_type == VWN_TYPE_F16)
                    for (int32_t c = 0; c < n; c++) ((uint16_t *)dst)[i + c] = vwn_fp32_to_fp16(buf[c]);
                else ctx->ops->quantize_q8_0(buf, (vwn_block_q8_0 *)dst + i / VWN_QK8_0, n);
            }
        }
}

/* The valid range of kept outputs [first, first + count), or count 0 if it is not inside [0, limit). */
static void kept_range(int32_t first, int32_t count, int32_t limit, int32_t *out_first, int32_t *out_count) {
    if (count <= 0 || first < 0 || first > limit - count) {
        *out_first = 0;
        *out_count = 0;
        return;
    }
    *out_first = first;
    *out_count = count;
}

/* The ring stage s holds positions below this bound (the ones the modules may still read). */
static int32_t stage_limit(const vwn_context *ctx, int32_t s) {
    return s == 0 ? ctx->n_past : ctx->mtp_len[s - 1];
}

static void write_body(const vwn_context *ctx, uint64_t model_id, writer *w) {
    const vwn_hparams *hp = &ctx->model->hp;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim, Dw = (size_t)hp->n_wide, V = (size_t)hp->n_vocab;
    const size_t kv_layer = (size_t)ctx->params.n_ctx * hp->n_head_kv * ctx->kv_row; /* bytes of one layer's cache */
    const int32_t n_past = ctx->n_past;

    put_u64(w, model_id);
    put_u32(w, (uint32_t)hp->n_vocab);
    put_u32(w, (uint32_t)hp->n_layer);
    put_u32(w, (uint32_t)kv_dim);
    put_u32(w, (uint32_t)hp->n_wide);
    put_u32(w, (uint32_t)ctx->params.n_ctx);
    put_u32(w, (uint32_t)ctx->params.n_batch);
    put_u32(w, (uint32_t)ctx->ring);
    put_u32(w, (uint32_t)ctx->n_mtp);
    put_i32(w, n_past);
    for (int32_t j = 0; j < ctx->n_mtp; j++) put_i32(w, ctx->mtp_len[j]);
    put(w, ctx->tokens, (size_t)n_past * sizeof(int32_t));

    for (int32_t l = 0; l < hp->n_layer; l++)
        put_kv(w, ctx, (const char *)ctx->k_cache + (size_t)l * kv_layer, n_past);
    for (int32_t l = 0; l < hp->n_layer; l++)
        put_kv(w, ctx, (const char *)ctx->v_cache + (size_t)l * kv_layer, n_past);
    for (int32_t j = 0; j < ctx->n_mtp; j++) {
        put_kv(w, ctx, (const char *)ctx->mtp_k + (size_t)j * kv_layer, ctx->mtp_len[j]);
        put_kv(w, ctx, (const char *)ctx->mtp_v + (size_t)j * kv_layer, ctx->mtp_len[j]);
    }

    /* ring: the slots holding a valid position of the stage, in slot order */
    for (int32_t s = 0; s < ctx->n_mtp; s++) {
        const int32_t *tags = ctx->state_pos + (size_t)s * ctx->ring;
        const int32_t lim = stage_limit(ctx, s);
        uint32_t count = 0;
        for (int32_t i = 0; i < ctx->ring; i++)
            if (tags[i] >= 0 && tags[i] < lim) count++;
        put_u32(w, count);
        for (int32_t i = 0; i < ctx->ring; i++) {
            if (!(tags[i] >= 0 && tags[i] < lim)) continue;
            put_i32(w, tags[i]);
            put_f32(w, ctx->states + ((size_t)s * ctx->ring + (size_t)i) * Dw, Dw);
        }
    }

    /* outputs of the latest call */
    int32_t first, count;
    kept_range(ctx->logits_first, ctx->logits_count, n_past, &first, &count);
    put_i32(w, first);
    put_i32(w, count);
    put_f32(w, ctx->logits, (size_t)count * V);
    for (int32_t j = 0; j < ctx->n_mtp; j++) {
        kept_range(ctx->mtp_first[j], ctx->mtp_count[j], ctx->mtp_len[j], &first, &count);
        put_i32(w, first);
        put_i32(w, count);
        put_f32(w, ctx->mtp_logits + (size_t)j * ctx->n_out * V, (size_t)count * V);
    }
}

/* Writes the whole state (header, body, trailer) to w; body_size from a counting pass. */
static void write_state(const vwn_context *ctx, uint64_t model_id, uint64_t body_size, writer *w) {
    w->hashing = true;
    hash_init(&w->h);
    put(w, state_magic, 4);
    put_u32(w, VWN_STATE_VERSION);
    put_u64(w, body_size);
    write_body(ctx, model_id, w);
    w->hashing = false;
    put_u64(w, hash_final(&w->h));
}

/* Total bytes of the state, and the model id (computed once for both passes). */
static uint64_t state_bytes(const vwn_context *ctx, uint64_t model_id, uint64_t *body_size) {
    writer count = {0};
    write_body(ctx, model_id, &count);
    *body_size = count.pos;
    return VWN_STATE_HEADER_BYTES + count.pos + VWN_STATE_TRAILER_BYTES;
}

vwn_status vwn_state_size(const vwn_context *ctx, uint64_t *out_size) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!out_size) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_state_size: out_size is NULL");
    uint64_t body;
    *out_size = state_bytes(ctx, 0, &body);
    return VWN_OK;
}

vwn_status vwn_state_save(const vwn_context *ctx, void *buf, uint64_t size, uint64_t *out_written) {
    vwn_clear_error();
    if (out_written) *out_written = 0;
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!buf) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_state_save: buf is NULL");
    uint64_t body;
    const uint64_t need = state_bytes(ctx, 0, &body);
    if (size < need)
        return vwn_fail(VWN_ERR_BUFFER_TOO_SMALL,
                        "vwn_state_save: the state needs %llu bytes, the buffer holds %llu (see vwn_state_size)",
                        (unsigned long long)need, (unsigned long long)size);
    writer w = {0};
    w.buf = buf;
    write_state(ctx, vwn_model_identity(ctx->model), body, &w);
    if (w.pos != need) return vwn_fail(VWN_ERR_INTERNAL, "vwn_state_save: wrote %llu bytes, planned %llu",
                                       (unsigned long long)w.pos, (unsigned long long)need);
    if (out_written) *out_written = w.pos;
    return VWN_OK;
}

vwn_status vwn_state_save_file(const vwn_context *ctx, const char *path) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!path) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_state_save_file: path is NULL");
    FILE *fp = fopen(path, "wb");
    if (!fp) return vwn_fail(VWN_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    uint64_t body;
    state_bytes(ctx, 0, &body);
    writer w = {0};
    w.fp = fp;
    write_state(ctx, vwn_model_identity(ctx->model), body, &w);
    const bool write_failed = w.failed;
    const int write_errno = errno;
    if (fclose(fp) != 0 || write_failed) {
        const int e = write_failed ? write_errno : errno;
        remove(path);
        return vwn_fail(VWN_ERR_IO, "cannot write '%s': %s", path, e ? strerror(e) : "write error");
    }
    return VWN_OK;
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    uint64_t pos, size;
    bool overrun;
} reader;

/* Pointer to the next n bytes, or NULL (and overrun set) if the body ends first. */
static const uint8_t *take(reader *r, uint64_t n) {
    if (r->overrun || n > r->size - r->pos) {
        r->overrun = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}
static uint32_t get_u32(reader *r) {
    uint32_t v = 0;
    const uint8_t *q = take(r, 4);
    if (q) memcpy(&v, q, 4);
    return v;
}
static int32_t get_i32(reader *r) {
    int32_t v = 0;
    const uint8_t *q = take(r, 4);
    if (q) memcpy(&v, q, 4);
    return v;
}
static uint64_t get_u64(reader *r) {
    uint64_t v = 0;
    const uint8_t *q = take(r, 8);
    if (q) memcpy(&v, q, 8);
    return v;
}
/* n_rows x row_floats floats; NULL on overflow or overrun. */
static const uint8_t *take_f32(reader *r, uint64_t n_rows, uint64_t row_floats) {
    uint64_t n;
    if (!vwn_mul_u64(n_rows, row_floats, &n) || !vwn_mul_u64(n, 4, &n)) {
        r->overrun = true;
        return NULL;
    }
    return take(r, n);
}

#define MAX_STAGES 16 /* the model format's limit on mtp_depth */

/* Where each part of a validated body is, and the ring re-slotted for the target context. */
typedef struct parsed {
    int32_t n_mtp;                 /* modules saved                   */
    int32_t n_past;
    int32_t mtp_len[MAX_STAGES];
    const uint8_t *tokens;
    const uint8_t *k, *v;          /* [n_layer][n_past][kv_dim]       */
    const uint8_t *mtp_k[MAX_STAGES], *mtp_v[MAX_STAGES];
    int32_t logits_first, logits_count;
    const uint8_t *logits;
    int32_t mtp_first[MAX_STAGES], mtp_count[MAX_STAGES];
    const uint8_t *mtp_logits[MAX_STAGES];
    /* the target context's ring (when it runs MTP): tag and source state of every slot */
    int32_t *tags;                 /* [n_mtp][ring]                   */
    const uint8_t **src;           /* [n_mtp][ring]                   */
} parsed;

static vwn_status bad(const char *what) {
    return vwn_fail(VWN_ERR_BAD_FORMAT, "saved state is malformed: %s", what);
}

/* Checks the body and fills *ps; writes nothing to ctx. */
static vwn_status parse_body(const vwn_context *ctx, reader *r, parsed *ps) {
    const vwn_model *m = ctx->model;
    const vwn_hparams *hp = &m->hp;
    const uint64_t kv_dim = (uint64_t)hp->n_head_kv * hp->head_dim, Dw = (uint64_t)hp->n_wide,
                   V = (uint64_t)hp->n_vocab;

    /* identity and shape */
    const uint64_t id = get_u64(r);
    const uint32_t n_vocab = get_u32(r), n_layer = get_u32(r), kvd = get_u32(r), n_wide = get_u32(r);
    (void)get_u32(r); /* n_ctx, n_batch, ring of the saving context: informational */
    (void)get_u32(r);
    (void)get_u32(r);
    const uint32_t n_mtp = get_u32(r);
    const int32_t n_past = get_i32(r);
    if (r->overrun) return bad("the body is shorter than its fixed fields");
    if (id != vwn_model_identity(m))
        return vwn_fail(VWN_ERR_STATE_MISMATCH,
                        "the state was saved with another model (identity %016llx, this model is %016llx)",
                        (unsigned long long)id, (unsigned long long)vwn_model_identity(m));
    if (n_vocab != (uint32_t)hp->n_vocab || n_layer != (uint32_t)hp->n_layer || kvd != (uint32_t)kv_dim ||
        n_wide != (uint32_t)hp->n_wide)
        return vwn_fail(VWN_ERR_STATE_MISMATCH,
                        "the state's shape (V %u, L %u, kv %u, D' %u) is not the model's (V %d, L %d, kv %llu, D' %d)",
                        n_vocab, n_layer, kvd, n_wide, hp->n_vocab, hp->n_layer, (unsigned long long)kv_dim,
                        hp->n_wide);
    if (n_mtp != 0 && n_mtp != (uint32_t)hp->mtp_depth)
        return bad("the number of saved MTP modules is neither 0 nor the model's MTP depth");
    if (n_mtp == 0 && ctx->n_mtp > 0)
        return vwn_fail(VWN_ERR_STATE_MISMATCH,
                        "the state was saved without MTP but this context runs %d MTP modules "
                        "(create the context with params.mtp = false)", ctx->n_mtp);
    if (n_past < 0) return bad("negative length");
    if (n_past > ctx->params.n_ctx)
        return vwn_fail(VWN_ERR_CONTEXT_FULL, "the state holds %d tokens, the context has room for %d", n_past,
                        ctx->params.n_ctx);
    ps->n_mtp = (int32_t)n_mtp;
    ps->n_past = n_past;

    /* lengths: module j (1-based) lags the main model by j, and each lags the one before */
    for (uint32_t j = 0; j < n_mtp; j++) {
        ps->mtp_len[j] = get_i32(r);
        const int32_t cap = n_past - (int32_t)(j + 1) > 0 ? n_past - (int32_t)(j + 1) : 0;
        if (r->overrun) return bad("the MTP lengths are cut off");
        if (ps->mtp_len[j] < 0 || ps->mtp_len[j] > cap || (j > 0 && ps->mtp_len[j] > ps->mtp_len[j - 1]))
            return bad("an MTP module length is out of range");
    }

    /* tokens */
    ps->tokens = take(r, (uint64_t)n_past * 4);
    if (!ps->tokens) return bad("the tokens are cut off");
    for (int32_t i = 0; i < n_past; i++) {
        int32_t t;
        memcpy(&t, ps->tokens + (size_t)i * 4, 4);
        if (t < 0 || t >= hp->n_vocab) return bad("a token is outside the vocabulary");
    }

    /* caches */
    ps->k = take_f32(r, (uint64_t)hp->n_layer * (uint64_t)n_past, kv_dim);
    ps->v = take_f32(r, (uint64_t)hp->n_layer * (uint64_t)n_past, kv_dim);
    for (uint32_t j = 0; j < n_mtp; j++) {
        ps->mtp_k[j] = take_f32(r, (uint64_t)ps->mtp_len[j], kv_dim);
        ps->mtp_v[j] = take_f32(r, (uint64_t)ps->mtp_len[j], kv_dim);
    }
    if (r->overrun) return bad("the KV caches are cut off");

    /* ring: re-slot every saved state by its position into the target's ring (the most recent
     * position wins a slot); the states the next call reads must all be there */
    const int32_t R = ctx->ring;
    const bool use_ring = ctx->n_mtp > 0;
    if (use_ring)
        for (size_t i = 0; i < (size_t)ctx->n_mtp * (size_t)R; i++) {
            ps->tags[i] = -1;
            ps->src[i] = NULL;
        }
    for (uint32_t s = 0; s < n_mtp; s++) {
        const uint32_t count = get_u32(r);
        const int32_t lim = s == 0 ? n_past : ps->mtp_len[s - 1];
        if (r->overrun) return bad("the ring is cut off");
        if (count > (uint32_t)lim) return bad("a ring stage holds more states than positions");
        for (uint32_t e = 0; e < count; e++) {
            const int32_t pos = get_i32(r);
            const uint8_t *state = take_f32(r, 1, Dw);
            if (r->overrun) return bad("the ring is cut off");
            if (pos < 0 || pos >= lim) return bad("a ring state has a position out of range");
            if (!use_ring) continue;
            const size_t slot = (size_t)s * (size_t)R + (size_t)(pos % R);
            if (ps->tags[slot] == pos) return bad("a ring position is saved twice");
            if (ps->tags[slot] < pos) {
                ps->tags[slot] = pos;
                ps->src[slot] = state;
            }
        }
        if (!use_ring) continue;
        /* what the next catch-up of module s+1 reads without recomputing it */
        const int32_t from = ps->mtp_len[s];
        if (lim - from > R)
            return vwn_fail(VWN_ERR_STATE_MISMATCH,
                            "the next call needs %d ring states of stage %u, this context's ring holds %d "
                            "(create it with a larger n_batch)", lim - from, s, R);
        for (int32_t p = from; p < lim; p++)
            if (ps->tags[(size_t)s * (size_t)R + (size_t)(p % R)] != p)
                return vwn_fail(VWN_ERR_BAD_FORMAT, "saved state is malformed: it lacks the ring state of "
                                "stage %u at position %d", s, p);
    }

    /* outputs */
    ps->logits_first = get_i32(r);
    ps->logits_count = get_i32(r);
    if (r->overrun) return bad("the logits are cut off");
    if (ps->logits_count < 0 || ps->logits_first < 0 || ps->logits_first > n_past - ps->logits_count)
        return bad("the kept logits are out of range");
    ps->logits = take_f32(r, (uint64_t)ps->logits_count, V);
    if (!ps->logits) return bad("the logits are cut off");
    for (uint32_t j = 0; j < n_mtp; j++) {
        ps->mtp_first[j] = get_i32(r);
        ps->mtp_count[j] = get_i32(r);
        if (r->overrun) return bad("the MTP logits are cut off");
        if (ps->mtp_count[j] < 0 || ps->mtp_first[j] < 0 || ps->mtp_first[j] > ps->mtp_len[j] - ps->mtp_count[j])
            return bad("the kept MTP logits are out of range");
        ps->mtp_logits[j] = take_f32(r, (uint64_t)ps->mtp_count[j], V);
        if (!ps->mtp_logits[j]) return bad("the MTP logits are cut off");
    }
    if (r->pos != r->size) return bad("the body has bytes after its last section");
    return VWN_OK;
}

/* Copies a validated body into ctx (cannot fail). */
static void apply_body(vwn_context *ctx, const parsed *ps) {
    const vwn_hparams *hp = &ctx->model->hp;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim, Dw = (size_t)hp->n_wide, V = (size_t)hp->n_vocab;
    const size_t kv_layer = (size_t)ctx->params.n_ctx * hp->n_head_kv * ctx->kv_row, n_past = (size_t)ps->n_past;
    const size_t layer_bytes = n_past * kv_dim * sizeof(float); /* in the file */

    ctx->n_past = ps->n_past;
    memcpy(ctx->tokens, ps->tokens, n_past * sizeof(int32_t));
    for (int32_t l = 0; l < hp->n_layer; l++) {
        get_kv(ctx, (char *)ctx->k_cache + (size_t)l * kv_layer, ps->k + (size_t)l * layer_bytes, ps->n_past);
        get_kv(ctx, (char *)ctx->v_cache + (size_t)l * kv_layer, ps->v + (size_t)l * layer_bytes, ps->n_past);
    }

    /* outputs: the last rows that fit this context's output buffer */
    int32_t count = ps->logits_count < ctx->n_out ? ps->logits_count : ctx->n_out;
    int32_t skip = ps->logits_count - count;
    memcpy(ctx->logits, ps->logits + (size_t)skip * V * sizeof(float), (size_t)count * V * sizeof(float));
    ctx->logits_first = ps->logits_first + skip;
    ctx->logits_count = count;
    ctx->draft_n = 0;

    for (int32_t j = 0; j < ctx->n_mtp; j++) { /* ctx->n_mtp is 0 or ps->n_mtp */
        ctx->mtp_len[j] = ps->mtp_len[j];
        ctx->mtp_last_pos[j] = -1; /* its last output state is not saved: recomputed when needed */
        get_kv(ctx, (char *)ctx->mtp_k + (size_t)j * kv_layer, ps->mtp_k[j], ps->mtp_len[j]);
        get_kv(ctx, (char *)ctx->mtp_v + (size_t)j * kv_layer, ps->mtp_v[j], ps->mtp_len[j]);
        count = ps->mtp_count[j] < ctx->n_out ? ps->mtp_count[j] : ctx->n_out;
        skip = ps->mtp_count[j] - count;
        memcpy(ctx->mtp_logits + (size_t)j * ctx->n_out * V, ps->mtp_logits[j] + (size_t)skip * V * sizeof(float),
               (size_t)count * V * sizeof(float));
        ctx->mtp_first[j] = ps->mtp_first[j] + skip;
        ctx->mtp_count[j] = count;
    }
    for (size_t i = 0; i < (size_t)ctx->n_mtp * (size_t)ctx->ring; i++) {
        ctx->state_pos[i] = ps->tags[i];
        if (ps->src[i]) memcpy(ctx->states + i * Dw, ps->src[i], Dw * sizeof(float));
    }
}

/* vwn_state_load without the handle check and error clearing. */
static vwn_status state_load(vwn_context *ctx, const void *buf, uint64_t size) {
    const uint8_t *b = buf;
    const size_t have_magic = size < 4 ? (size_t)size : 4;
    if (memcmp(b, state_magic, have_magic) != 0)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "not a libvwn saved state (the magic is not \"VWNS\")");
    if (size < 8) return vwn_fail(VWN_ERR_TRUNCATED, "saved state truncated: %llu bytes", (unsigned long long)size);
    uint32_t version;
    memcpy(&version, b + 4, 4);
    if (version != VWN_STATE_VERSION)
        return vwn_fail(VWN_ERR_BAD_VERSION, "saved state version %u is not supported (this libvwn reads version %d)",
                        version, VWN_STATE_VERSION);
    if (size < VWN_STATE_HEADER_BYTES)
        return vwn_fail(VWN_ERR_TRUNCATED, "saved state truncated: %llu bytes", (unsigned long long)size);
    uint64_t body_size, total;
    memcpy(&body_size, b + 8, 8);
    if (!vwn_add_u64(body_size, VWN_STATE_HEADER_BYTES + VWN_STATE_TRAILER_BYTES, &total))
        return vwn_fail(VWN_ERR_BAD_FORMAT, "saved state is malformed: body size %llu", (unsigned long long)body_size);
    if (size < total)
        return vwn_fail(VWN_ERR_TRUNCATED, "saved state truncated: %llu bytes of the %llu its header states",
                        (unsigned long long)size, (unsigned long long)total);
    if (size > total)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "saved state is malformed: %llu bytes follow the %llu its header states",
                        (unsigned long long)(size - total), (unsigned long long)total);
    uint64_t stored;
    memcpy(&stored, b + total - VWN_STATE_TRAILER_BYTES, 8);
    if (stored != vwn_state_checksum(b, (size_t)(total - VWN_STATE_TRAILER_BYTES)))
        return vwn_fail(VWN_ERR_CHECKSUM, "saved state is corrupt: checksum mismatch");

    parsed ps;
    memset(&ps, 0, sizeof ps);
    const size_t slots = (size_t)ctx->n_mtp * (size_t)ctx->ring;
    if (slots) {
        ps.tags = vwn_malloc(slots * sizeof *ps.tags);
        ps.src = vwn_malloc(slots * sizeof *ps.src);
        if (!ps.tags || !ps.src) {
            vwn_free(ps.tags);
            vwn_free((void *)ps.src);
            return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory loading a saved state");
        }
    }
    reader r = {b + VWN_STATE_HEADER_BYTES, 0, body_size, false};
    vwn_status st = parse_body(ctx, &r, &ps);
    if (st == VWN_OK) apply_body(ctx, &ps);
    vwn_free(ps.tags);
    vwn_free((void *)ps.src);
    return st;
}

vwn_status vwn_state_load(vwn_context *ctx, const void *buf, uint64_t size) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!buf) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_state_load: buf is NULL");
    if (size > SIZE_MAX) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_state_load: size exceeds the address space");
    return state_load(ctx, buf, size);
}

vwn_status vwn_state_load_file(vwn_context *ctx, const char *path) {
    vwn_clear_error();
    vwn_status st = vwn_check_handle(ctx, VWN_MAGIC_CONTEXT, "context");
    if (st) return st;
    if (!path) return vwn_fail(VWN_ERR_INVALID_ARG, "vwn_state_load_file: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp) return vwn_fail(VWN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return vwn_fail(VWN_ERR_IO, "'%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        fclose(fp);
        return vwn_fail(VWN_ERR_IO, "'%s' is too large", path);
    }
    const size_t size = (size_t)sb.st_size;
    uint8_t *buf = vwn_malloc(size);
    if (!buf) {
        fclose(fp);
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory reading '%s' (%zu bytes)", path, size);
    }
    const size_t got = size ? fread(buf, 1, size, fp) : 0;
    const bool read_error = ferror(fp) != 0;
    fclose(fp);
    if (read_error) {
        vwn_free(buf);
        return vwn_fail(VWN_ERR_IO, "cannot read '%s'", path);
    }
    st = got == 0 ? vwn_fail(VWN_ERR_TRUNCATED, "saved state '%s' is empty", path) : state_load(ctx, buf, got);
    vwn_free(buf);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vwn_last_error());
        vwn_fail(st, "%s: %s", path, msg);
    }
    return st;
}

/* gguf.c -- a hardened reader of GGUF v3 files (see gguf.h and docs/format.md, "What the loader
 * checks").
 *
 * The whole file is mapped read-only (or read into one 64-byte-aligned buffer) and then parsed with
 * a bounds-checked cursor. Nothing read from the file is trusted: every count and length is checked
 * against fixed sanity limits (BAD_FORMAT) and against the bytes that remain (TRUNCATED) before
 * anything is allocated for it, every size is computed with overflow-safe arithmetic, and every
 * tensor's data range must be aligned, inside the file and disjoint from every other tensor. The
 * parsed structure keeps pointers into the image, so it lives as long as the image. */
#include "gguf.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libvwn reads little-endian GGUF files in place and needs a little-endian CPU"
#endif

/* Sanity limits: a count or length above these is malformed (BAD_FORMAT) whatever the file size.
 * Below them, a count that cannot fit in the bytes that remain means the file was cut (TRUNCATED). */
#define GGUF_MAX_KV          (1u << 20)          /* metadata pairs                 */
#define GGUF_MAX_TENSORS     (1u << 20)          /* tensors                        */
#define GGUF_MAX_KEY_LEN     65535u              /* the GGUF spec's key limit      */
#define GGUF_MAX_NAME_LEN    1024u               /* tensor names                   */
#define GGUF_MAX_STR_LEN     (1ull << 30)        /* string values                  */
#define GGUF_MAX_ARR_LEN     (1ull << 32)        /* array elements                 */
#define GGUF_MAX_DIMS        4u
#define GGUF_DEFAULT_ALIGN   32u

/* Smallest encoding of one KV pair (key length, empty-key excluded: 1 byte, type, u8 value) and of
 * one tensor info (name length + 1 byte, n_dims, one dimension, type, offset). */
#define GGUF_MIN_KV_BYTES     (8u + 1u + 4u + 1u)
#define GGUF_MIN_TINFO_BYTES  (8u + 1u + 4u + 8u + 4u + 8u)

/* ---- value types ------------------------------------------------------------------------- */

static const char *value_type_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return t <= GGUF_TYPE_FLOAT64 ? names[t] : "?";
}

/* Bytes of one scalar of type t (0 for string, array and unknown types). */
static uint64_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static bool is_int_type(uint32_t t) {
    return t <= GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

/* ---- tensor types ------------------------------------------------------------------------ */

/* Names of the ggml types, for messages ("q4_1 is not supported"). */
static const char *ggml_type_name(uint32_t t) {
    static const char *names[] = {"f32", "f16", "q4_0", "q4_1", "q4_2", "q4_3", "q5_0", "q5_1",
                                  "q8_0", "q8_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K",
                                  "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s",
                                  "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m",
                                  "bf16"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Bytes of a tensor of n elements whose rows are ne0 long; false if the type is not one of ours
 * (*unsupported set) or the shape does not fit the type's blocks or overflows (*unsupported clear). */
static bool tensor_bytes(uint32_t type, uint64_t ne0, uint64_t n, uint64_t *out, bool *unsupported) {
    *unsupported = false;
    switch (type) {
    case VWN_TYPE_F32: return vwn_mul_u64(n, 4, out);
    case VWN_TYPE_F16: case VWN_TYPE_BF16: return vwn_mul_u64(n, 2, out);
    case VWN_TYPE_Q8_0:
        if (ne0 % 32 != 0) return false;
        return vwn_mul_u64(n / 32, 34, out);
    case VWN_TYPE_Q4_0:
        if (ne0 % 32 != 0) return false;
        return vwn_mul_u64(n / 32, 18, out);
    default:
        *unsupported = true;
        return false;
    }
}

/* ---- the cursor -------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    uint64_t size, pos;
} reader;

static uint64_t remaining(const reader *r) { return r->size - r->pos; }

static vwn_status truncated(const reader *r, uint64_t need, const char *what) {
    return vwn_fail(VWN_ERR_TRUNCATED,
                    "GGUF file truncated: %s needs %llu bytes at offset %llu, but the file ends at %llu",
                    what, (unsigned long long)need, (unsigned long long)r->pos,
                    (unsigned long long)r->size);
}

static vwn_status read_bytes(reader *r, void *dst, uint64_t n, const char *what) {
    if (n > remaining(r)) return truncated(r, n, what);
    memcpy(dst, r->p + r->pos, (size_t)n);
    r->pos += n;
    return VWN_OK;
}

static vwn_status read_u32(reader *r, uint32_t *v, const char *what) { return read_bytes(r, v, 4, what); }
static vwn_status read_u64(reader *r, uint64_t *v, const char *what) { return read_bytes(r, v, 8, what); }

/* A string: u64 length then the bytes (left in the image). max_len is the sanity limit. */
static vwn_status read_str(reader *r, gguf_str *s, uint64_t max_len, const char *what) {
    uint64_t len = 0;
    vwn_status st = read_u64(r, &len, what);
    if (st) return st;
    if (len > max_len)
        return vwn_fail(VWN_ERR_BAD_FORMAT,
                        "GGUF: %s has length %llu at offset %llu, above the limit of %llu bytes", what,
                        (unsigned long long)len, (unsigned long long)(r->pos - 8),
                        (unsigned long long)max_len);
    if (len > remaining(r)) return truncated(r, len, what);
    s->data = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += len;
    return VWN_OK;
}

/* A key or tensor name: non-empty, no NUL inside; returned as an owned NUL-terminated copy. */
static vwn_status read_name(reader *r, uint64_t max_len, const char *what, char **out) {
    uint64_t at = r->pos;
    gguf_str s = {NULL, 0};
    vwn_status st = read_str(r, &s, max_len, what);
    if (st) return st;
    if (s.len == 0)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: %s at offset %llu is empty", what,
                        (unsigned long long)at);
    if (memchr(s.data, 0, (size_t)s.len))
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: %s at offset %llu contains a NUL byte", what,
                        (unsigned long long)at);
    char *copy = vwn_malloc((size_t)s.len + 1);
    if (!copy) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory copying %s", what);
    memcpy(copy, s.data, (size_t)s.len);
    copy[s.len] = '\0';
    *out = copy;
    return VWN_OK;
}

/* ---- key/value pairs --------------------------------------------------------------------- */

/* A bool must be 0 or 1. */
static vwn_status check_bools(const uint8_t *p, uint64_t n, const char *key) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: key '%s' holds the bool value %u (element %llu); only 0 and 1 are valid",
                            key, p[i], (unsigned long long)i);
    return VWN_OK;
}

/* The value of kv (whose key and type are already read). */
static vwn_status read_value(reader *r, gguf_kv *kv) {
    char what[160];
    snprintf(what, sizeof what, "the value of key '%.100s'", kv->key);
    vwn_status st;
    if (kv->type == GGUF_TYPE_STRING) return read_str(r, &kv->str, GGUF_MAX_STR_LEN, what);

    if (kv->type != GGUF_TYPE_ARRAY) {
        uint64_t size = scalar_size(kv->type);
        if (size > remaining(r)) return truncated(r, size, what);
        kv->data = r->p + r->pos;
        if (kv->type == GGUF_TYPE_BOOL && (st = check_bools(r->p + r->pos, 1, kv->key))) return st;
        r->pos += size;
        return VWN_OK;
    }

    /* array: element type, count, elements */
    if ((st = read_u32(r, &kv->arr_type, what))) return st;
    if (kv->arr_type == GGUF_TYPE_ARRAY)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: key '%s' is an array of arrays (nested arrays are not supported)", kv->key);
    if (kv->arr_type > GGUF_TYPE_FLOAT64)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: key '%s' is an array of unknown element type %u", kv->key,
                        kv->arr_type);
    if ((st = read_u64(r, &kv->arr_len, what))) return st;
    if (kv->arr_len > GGUF_MAX_ARR_LEN)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: key '%s' claims an array of %llu elements (limit %llu)", kv->key,
                        (unsigned long long)kv->arr_len, (unsigned long long)GGUF_MAX_ARR_LEN);
    uint64_t min_elem = kv->arr_type == GGUF_TYPE_STRING ? 8 : scalar_size(kv->arr_type);
    if (kv->arr_len > remaining(r) / min_elem)
        return vwn_fail(VWN_ERR_TRUNCATED,
                        "GGUF file truncated: key '%s' claims an array of %llu %s elements at offset %llu, "
                        "more than the %llu bytes left in the file can hold",
                        kv->key, (unsigned long long)kv->arr_len, value_type_name(kv->arr_type),
                        (unsigned long long)r->pos, (unsigned long long)remaining(r));

    if (kv->arr_type == GGUF_TYPE_STRING) {
        /* bounded by the file size: at most remaining / 8 entries */
        kv->arr_str = vwn_calloc((size_t)kv->arr_len, sizeof(gguf_str));
        if (!kv->arr_str) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory for key '%s'", kv->key);
        for (uint64_t i = 0; i < kv->arr_len; i++) {
            const uint64_t at = r->pos;
            if (read_str(r, &kv->arr_str[i], GGUF_MAX_STR_LEN, "an element") == VWN_OK) continue;
            /* read it again for the message, naming the element (formatting every element's name
             * up front was a third of loading a 32k vocabulary) */
            r->pos = at;
            snprintf(what, sizeof what, "element %llu of key '%.100s'", (unsigned long long)i, kv->key);
            return read_str(r, &kv->arr_str[i], GGUF_MAX_STR_LEN, what);
        }
        kv->data = kv->arr_str;
        return VWN_OK;
    }

    /* numbers: copied to owned memory so that typed pointers (const float *) are aligned */
    uint64_t bytes = kv->arr_len * min_elem; /* cannot overflow: <= remaining */
    kv->arr_owned = vwn_malloc((size_t)bytes);
    if (!kv->arr_owned) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory for key '%s'", kv->key);
    memcpy(kv->arr_owned, r->p + r->pos, (size_t)bytes);
    if (kv->arr_type == GGUF_TYPE_BOOL && (st = check_bools(kv->arr_owned, kv->arr_len, kv->key))) return st;
    kv->data = kv->arr_owned;
    r->pos += bytes;
    return VWN_OK;
}

static vwn_status read_kv(reader *r, uint64_t i, gguf_kv *kv) {
    char what[96];
    snprintf(what, sizeof what, "the key of metadata pair %llu", (unsigned long long)i);
    vwn_status st = read_name(r, GGUF_MAX_KEY_LEN, what, &kv->key);
    if (st) return st;
    snprintf(what, sizeof what, "the value type of key '%.40s'", kv->key);
    uint64_t at = r->pos;
    if ((st = read_u32(r, &kv->type, what))) return st;
    if (kv->type > GGUF_TYPE_FLOAT64)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: key '%s' has unknown value type %u (at offset %llu)",
                        kv->key, kv->type, (unsigned long long)at);
    return read_value(r, kv);
}

/* ---- tensor infos ------------------------------------------------------------------------ */

static vwn_status read_tensor_info(reader *r, uint64_t i, uint32_t alignment, gguf_tensor *t) {
    char what[96];
    snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
    vwn_status st = read_name(r, GGUF_MAX_NAME_LEN, what, &t->name);
    if (st) return st;
    snprintf(what, sizeof what, "the info of tensor '%.60s'", t->name);

    /* read the whole info first, so that a cut file reports TRUNCATED, then validate */
    uint64_t ne[GGUF_MAX_DIMS] = {1, 1, 1, 1};
    if ((st = read_u32(r, &t->n_dims, what))) return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s' has %u dimensions (1..4 allowed)", t->name,
                        t->n_dims);
    for (uint32_t d = 0; d < t->n_dims; d++)
        if ((st = read_u64(r, &ne[d], what))) return st;
    if ((st = read_u32(r, &t->type, what))) return st;
    if ((st = read_u64(r, &t->offset, what))) return st;

    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX)
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s' has dimension %u = %lld (must be >= 1)",
                            t->name, d, (long long)ne[d]);
        if (!vwn_mul_u64(n, ne[d], &n) || n > (uint64_t)INT64_MAX)
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s': the element count overflows (dimension %u = %llu)",
                            t->name, d, (unsigned long long)ne[d]);
        t->ne[d] = (int64_t)ne[d];
    }
    for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    t->n_elements = n;

    bool unsupported;
    if (!tensor_bytes(t->type, ne[0], n, &t->n_bytes, &unsupported)) {
        if (unsupported)
            return vwn_fail(VWN_ERR_UNSUPPORTED,
                            "GGUF: tensor '%s' has type %u (%s); libvwn supports f32, f16, bf16, q8_0 and q4_0",
                            t->name, t->type, ggml_type_name(t->type));
        if ((t->type == VWN_TYPE_Q8_0 || t->type == VWN_TYPE_Q4_0) && ne[0] % 32 != 0)
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s' is %s but its rows have %llu elements (not a multiple of 32)",
                            t->name, ggml_type_name(t->type), (unsigned long long)ne[0]);
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s': the byte size overflows", t->name);
    }
    if (t->offset % alignment != 0)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s' has offset %llu, not a multiple of the alignment %u",
                        t->name, (unsigned long long)t->offset, alignment);
    return VWN_OK;
}

/* ---- sorted indexes: duplicate detection and binary-search lookups ----------------------- */

static int cmp_kv(const void *a, const void *b, const gguf_file *f) {
    return strcmp(f->kv[*(const uint32_t *)a].key, f->kv[*(const uint32_t *)b].key);
}

/* qsort has no context argument in C11; sort with a small merge sort instead (n <= 2^20). */
typedef int (*cmp_fn)(const void *, const void *, const gguf_file *);

static void merge_sort(uint32_t *idx, uint32_t *tmp, size_t n, cmp_fn cmp, const gguf_file *f) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(idx, tmp, h, cmp, f);
    merge_sort(idx + h, tmp, n - h, cmp, f);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp(&idx[j], &idx[i], f) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static int cmp_tensor_name(const void *a, const void *b, const gguf_file *f) {
    return strcmp(f->tensors[*(const uint32_t *)a].name, f->tensors[*(const uint32_t *)b].name);
}

static int cmp_tensor_offset(const void *a, const void *b, const gguf_file *f) {
    uint64_t x = f->tensors[*(const uint32_t *)a].offset, y = f->tensors[*(const uint32_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Returns an index array 0..n-1 sorted by cmp (NULL on allocation failure). */
static uint32_t *sorted_index(size_t n, cmp_fn cmp, const gguf_file *f) {
    uint32_t *idx = vwn_malloc(n * sizeof *idx), *tmp = vwn_malloc(n * sizeof *tmp);
    if (!idx || !tmp) {
        vwn_free(idx);
        vwn_free(tmp);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    merge_sort(idx, tmp, n, cmp, f);
    vwn_free(tmp);
    return idx;
}

/* ---- the whole file ---------------------------------------------------------------------- */

static vwn_status parse(gguf_file *f) {
    reader r = {f->image, f->size, 0};
    vwn_status st;

    /* magic and version */
    static const char magic[4] = {'G', 'G', 'U', 'F'};
    if (f->size < 4) {
        if (memcmp(f->image, magic, (size_t)f->size) != 0)
            return vwn_fail(VWN_ERR_BAD_MAGIC, "not a GGUF file (%llu bytes, does not start with \"GGUF\")",
                            (unsigned long long)f->size);
        return vwn_fail(VWN_ERR_TRUNCATED, "GGUF file truncated: only %llu bytes, shorter than the magic",
                        (unsigned long long)f->size);
    }
    if (memcmp(f->image, magic, 4) != 0)
        return vwn_fail(VWN_ERR_BAD_MAGIC,
                        "not a GGUF file: it starts with bytes %02x %02x %02x %02x, not \"GGUF\"",
                        f->image[0], f->image[1], f->image[2], f->image[3]);
    r.pos = 4;
    if ((st = read_u32(&r, &f->version, "the GGUF version"))) return st;
    if (f->version != 3) {
        if (f->version == 0x03000000u)
            return vwn_fail(VWN_ERR_BAD_VERSION, "GGUF file is big-endian; only little-endian GGUF v3 is supported");
        return vwn_fail(VWN_ERR_BAD_VERSION, "GGUF version %u is not supported (only version 3)", f->version);
    }

    /* counts: absurd ones are malformed; ones the remaining bytes cannot hold mean a cut file */
    if ((st = read_u64(&r, &f->n_tensors, "the tensor count"))) return st;
    if ((st = read_u64(&r, &f->n_kv, "the metadata count"))) return st;
    if (f->n_kv > GGUF_MAX_KV)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: the metadata count n_kv = %llu is absurd (limit %u)",
                        (unsigned long long)f->n_kv, GGUF_MAX_KV);
    if (f->n_tensors > GGUF_MAX_TENSORS)
        return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: the tensor count n_tensors = %llu is absurd (limit %u)",
                        (unsigned long long)f->n_tensors, GGUF_MAX_TENSORS);
    uint64_t min_header = f->n_kv * GGUF_MIN_KV_BYTES + f->n_tensors * GGUF_MIN_TINFO_BYTES; /* < 2^27 */
    if (min_header > remaining(&r))
        return vwn_fail(VWN_ERR_TRUNCATED,
                        "GGUF file truncated: %llu metadata pairs and %llu tensor infos need at least %llu "
                        "bytes, but only %llu remain",
                        (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors,
                        (unsigned long long)min_header, (unsigned long long)remaining(&r));

    /* metadata */
    f->kv = vwn_calloc((size_t)f->n_kv, sizeof *f->kv);
    f->tensors = vwn_calloc((size_t)f->n_tensors, sizeof *f->tensors);
    if (!f->kv || !f->tensors) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory for the header");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        if ((st = read_kv(&r, i, &f->kv[i]))) return st;
    }
    if (!(f->kv_sorted = sorted_index((size_t)f->n_kv, cmp_kv, f)))
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory indexing the metadata");
    for (uint64_t i = 1; i < f->n_kv; i++)
        if (!strcmp(f->kv[f->kv_sorted[i - 1]].key, f->kv[f->kv_sorted[i]].key))
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: duplicate metadata key '%s'", f->kv[f->kv_sorted[i]].key);

    /* alignment */
    f->alignment = GGUF_DEFAULT_ALIGN;
    const gguf_kv *akv = gguf_find_kv(f, "general.alignment");
    if (akv) {
        if (akv->type != GGUF_TYPE_UINT32)
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: key 'general.alignment' has type %s, expected u32",
                            value_type_name(akv->type));
        uint32_t a;
        memcpy(&a, akv->data, 4);
        if (a < 8 || a > 65536 || (a & (a - 1)) != 0)
            return vwn_fail(VWN_ERR_BAD_FORMAT,
                            "GGUF: general.alignment = %u is invalid (a power of two from 8 to 65536)", a);
        f->alignment = a;
    }

    /* tensor infos */
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if ((st = read_tensor_info(&r, i, f->alignment, &f->tensors[i]))) return st;
    }
    if (!(f->tensor_sorted = sorted_index((size_t)f->n_tensors, cmp_tensor_name, f)))
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory indexing the tensors");
    for (uint64_t i = 1; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[f->tensor_sorted[i - 1]].name, f->tensors[f->tensor_sorted[i]].name))
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: duplicate tensor name '%s'",
                            f->tensors[f->tensor_sorted[i]].name);

    /* data section: starts at the next multiple of the alignment */
    uint64_t pad = (f->alignment - r.pos % f->alignment) % f->alignment;
    f->data_offset = r.pos + pad; /* r.pos <= size, pad < 2^16: no overflow */
    if (f->n_tensors > 0 && f->data_offset > f->size)
        return vwn_fail(VWN_ERR_TRUNCATED,
                        "GGUF file truncated: the data section starts at offset %llu, past the end of the file (%llu bytes)",
                        (unsigned long long)f->data_offset, (unsigned long long)f->size);

    /* every data range: no overflow, inside the file */
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t start, end;
        if (!vwn_add_u64(f->data_offset, t->offset, &start) || !vwn_add_u64(start, t->n_bytes, &end))
            return vwn_fail(VWN_ERR_BAD_FORMAT, "GGUF: tensor '%s' has offset %llu: its data range overflows",
                            t->name, (unsigned long long)t->offset);
        if (end > f->size)
            return vwn_fail(VWN_ERR_TRUNCATED,
                            "GGUF file truncated: tensor '%s' needs bytes %llu..%llu, but the file ends at %llu",
                            t->name, (unsigned long long)start, (unsigned long long)end,
                            (unsigned long long)f->size);
        t->data = f->image + start;
    }

    /* no two data ranges overlap (sorted by offset, each must start where the previous ended or later) */
    uint32_t *by_off = sorted_index((size_t)f->n_tensors, cmp_tensor_offset, f);
    if (!by_off) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "GGUF: out of memory checking the tensor offsets");
    st = VWN_OK;
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *a = &f->tensors[by_off[i - 1]], *b = &f->tensors[by_off[i]];
        if (b->offset < a->offset + a->n_bytes) {
            st = vwn_fail(VWN_ERR_BAD_FORMAT,
                          "GGUF: the data of tensors '%s' (offset %llu, %llu bytes) and '%s' (offset %llu) overlap",
                          a->name, (unsigned long long)a->offset, (unsigned long long)a->n_bytes, b->name,
                          (unsigned long long)b->offset);
            break;
        }
    }
    vwn_free(by_off);
    return st;
}

/* ---- opening and closing ----------------------------------------------------------------- */

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv) {
        for (uint64_t i = 0; i < f->n_kv; i++) {
            vwn_free(f->kv[i].key);
            vwn_free(f->kv[i].arr_str);
            vwn_free(f->kv[i].arr_owned);
        }
        vwn_free(f->kv);
    }
    if (f->tensors) {
        for (uint64_t i = 0; i < f->n_tensors; i++) vwn_free(f->tensors[i].name);
        vwn_free(f->tensors);
    }
    vwn_free(f->kv_sorted);
    vwn_free(f->tensor_sorted);
    if (f->image) {
        if (f->mapped)
            munmap((void *)f->image, (size_t)f->size);
        else if (f->anon_len)
            munmap((void *)f->image, f->anon_len);
        else
            vwn_aligned_free((void *)f->image);
    }
    vwn_free(f);
}

void gguf_advise_sparse(gguf_file *f, const void *p, size_t n) {
#if defined(MADV_NOHUGEPAGE)
    if (!f || !f->mapped || !p || n == 0) return;
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    const uintptr_t base = (uintptr_t)f->image;
    const uintptr_t lo = (uintptr_t)p / (uintptr_t)page * (uintptr_t)page;
    const uintptr_t hi = ((uintptr_t)p + n + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    if (lo < base || hi > base + (size_t)f->size + (uintptr_t)page) return; /* not in the image */
    if (madvise((void *)lo, (size_t)(hi - lo), MADV_NOHUGEPAGE) == 0) {
        f->sparse_lo = (size_t)(lo - base);
        f->sparse_hi = (size_t)(hi - base);
    }
#else
    (void)f, (void)p, (void)n;
#endif
}

void gguf_release(const gguf_file *f, const void *p, size_t n) {
#if defined(MADV_DONTNEED)
    if (!f || !f->mapped || !p || n == 0) return;
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    const uintptr_t base = (uintptr_t)f->image, end = base + (uintptr_t)f->size;
    const uintptr_t lo = ((uintptr_t)p + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    const uintptr_t hi = ((uintptr_t)p + n) / (uintptr_t)page * (uintptr_t)page;
    if ((uintptr_t)p < base || (uintptr_t)p + n > end || hi <= lo) return; /* not in the image, or no whole page */
    madvise((void *)lo, (size_t)(hi - lo), MADV_DONTNEED);
#else
    (void)f, (void)p, (void)n;
#endif
}

void gguf_prefault(const gguf_file *f) {
#if defined(MADV_POPULATE_READ)
    if (!f || !f->mapped) return;
    uint8_t *base = (uint8_t *)f->image;
    const size_t size = (size_t)f->size;
    if (f->sparse_hi > f->sparse_lo) {
        if (f->sparse_lo > 0) madvise(base, f->sparse_lo, MADV_POPULATE_READ);
        if (f->sparse_hi < size) madvise(base + f->sparse_hi, size - f->sparse_hi, MADV_POPULATE_READ);
    } else {
        madvise(base, size, MADV_POPULATE_READ);
    }
#else
    (void)f;
#endif
}

/* Parses f (whose image is set); on failure closes it. */
static vwn_status finish_open(gguf_file *f, gguf_file **out) {
    vwn_status st = parse(f);
    if (st != VWN_OK) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return VWN_OK;
}

/* Reads the whole file into buf, restarting on EINTR and short reads. */
static bool read_all(int fd, uint8_t *buf, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, buf + done, size - done, (off_t)done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        done += (size_t)got;
    }
    return true;
}

vwn_status gguf_open(const char *path, bool use_mmap, gguf_file **out) {
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "gguf_open: out is NULL");
    *out = NULL;
    if (!path) return vwn_fail(VWN_ERR_INVALID_ARG, "gguf_open: path is NULL");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vwn_fail(VWN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        vwn_status st = vwn_fail(VWN_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return vwn_fail(VWN_ERR_IO, "'%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return vwn_fail(VWN_ERR_IO, "'%s' is too large to map on this system", path);
    }

    gguf_file *f = vwn_calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory opening '%s'", path);
    }
    f->size = (uint64_t)sb.st_size;

    if (f->size == 0) { /* nothing to map */
        close(fd);
        vwn_free(f);
        return vwn_fail(VWN_ERR_TRUNCATED, "GGUF file truncated: the file is empty");
    }

    if (use_mmap) {
        void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            vwn_status st = vwn_fail(VWN_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
            close(fd);
            vwn_free(f);
            return st;
        }
        /* Ask for 2 MiB pages: the weights are streamed once per token, and with 4 KiB pages the
         * TLB misses every 4 KiB (and the hardware prefetchers stop at each page). A file that is
         * not yet in the page cache is then faulted in as 2 MiB folios and mapped whole; pages
         * already cached in small folios (a file just written, or copied) stay small until the
         * kernel drops them (docs/performance.md, "Huge pages for the weights"). Measured,
         * decoding the 110M models with 2 threads: 2-4% faster per token in 2 MiB pages in the
         * slow bandwidth state, 7-10% in the fast one. Advice only: where the kernel or the
         * filesystem cannot, nothing changes. lib/model.c then keeps the embedding table out of
         * them and faults the rest in (gguf_advise_sparse, gguf_prefault). */
#ifdef MADV_HUGEPAGE
        madvise(p, (size_t)f->size, MADV_HUGEPAGE);
#endif
        f->image = p;
        f->mapped = true;
    } else {
        /* anonymous memory in 2 MiB pages where the kernel allows (transparent huge pages): the
         * weights are streamed once per token, and huge pages spare the TLB a miss every 4 KiB */
        uint8_t *buf = NULL;
        const size_t huge = (size_t)2 << 20;
        size_t len = ((size_t)f->size + huge - 1) / huge * huge;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
#ifdef MADV_HUGEPAGE
            madvise(p, len, MADV_HUGEPAGE);
#endif
            buf = p;
            f->anon_len = len;
        }
        if (!buf) {
            close(fd);
            vwn_free(f);
            return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "out of memory reading '%s' (%llu bytes)", path,
                            (unsigned long long)sb.st_size);
        }
        f->image = buf;
        f->mapped = false;
        if (!read_all(fd, buf, (size_t)f->size)) {
            vwn_status st = vwn_fail(VWN_ERR_IO, "cannot read '%s': %s", path,
                                     errno ? strerror(errno) : "unexpected end of file");
            close(fd);
            gguf_close(f);
            return st;
        }
    }
    close(fd);
    return finish_open(f, out);
}

vwn_status gguf_open_memory(const void *data, size_t size, gguf_file **out) {
    if (!out) return vwn_fail(VWN_ERR_INVALID_ARG, "gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size > 0) return vwn_fail(VWN_ERR_INVALID_ARG, "gguf_open_memory: data is NULL");
    gguf_file *f = vwn_calloc(1, sizeof *f);
    if (!f) return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "gguf_open_memory: out of memory");
    uint8_t *buf = vwn_aligned_alloc(size);
    if (!buf) {
        vwn_free(f);
        return vwn_fail(VWN_ERR_OUT_OF_MEMORY, "gguf_open_memory: out of memory for %zu bytes", size);
    }
    if (size) memcpy(buf, data, size);
    f->image = buf;
    f->size = size;
    f->mapped = false;
    return finish_open(f, out);
}

/* ---- lookups ----------------------------------------------------------------------------- */

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f || !key || !f->kv_sorted) return NULL;
    size_t lo = 0, hi = (size_t)f->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const gguf_kv *kv = &f->kv[f->kv_sorted[mid]];
        int c = strcmp(kv->key, key);
        if (c == 0) return kv;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name || !f->tensor_sorted) return NULL;
    size_t lo = 0, hi = (size_t)f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const gguf_tensor *t = &f->tensors[f->tensor_sorted[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* ---- typed getters ----------------------------------------------------------------------- */

static vwn_status missing(const char *key) {
    return vwn_fail(VWN_ERR_BAD_MODEL, "missing required metadata key '%s'", key);
}

static vwn_status wrong_type(const gguf_kv *kv, const char *expected) {
    if (kv->type == GGUF_TYPE_ARRAY)
        return vwn_fail(VWN_ERR_BAD_MODEL, "metadata key '%s' is an array of %s, expected %s", kv->key,
                        value_type_name(kv->arr_type), expected);
    return vwn_fail(VWN_ERR_BAD_MODEL, "metadata key '%s' has type %s, expected %s", kv->key,
                    value_type_name(kv->type), expected);
}

/* Reads an integer scalar of any GGUF integer type as signed 64-bit (u64 values above INT64_MAX
 * are reported through *too_big). */
static void int_value(const gguf_kv *kv, int64_t *v, bool *too_big) {
    const void *p = kv->data;
    *too_big = false;
    switch (kv->type) {
    case GGUF_TYPE_UINT8: { uint8_t x; memcpy(&x, p, 1); *v = x; break; }
    case GGUF_TYPE_INT8: { int8_t x; memcpy(&x, p, 1); *v = x; break; }
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); *v = x; break; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); *v = x; break; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); *v = x; break; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); *v = x; break; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, p, 8); *v = x; break; }
    default: { uint64_t x; memcpy(&x, p, 8); *too_big = x > (uint64_t)INT64_MAX; *v = (int64_t)(x & INT64_MAX); break; }
    }
}

vwn_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return missing(key);
    if (!is_int_type(kv->type)) return wrong_type(kv, "an integer");
    int64_t v;
    bool too_big;
    int_value(kv, &v, &too_big);
    if (too_big || v < 0 || v > (int64_t)UINT32_MAX)
        return vwn_fail(VWN_ERR_BAD_MODEL, "metadata key '%s' = %s%lld does not fit in 32 bits unsigned", key,
                        too_big ? "> " : "", (long long)v);
    *out = (uint32_t)v;
    return VWN_OK;
}

vwn_status gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return missing(key);
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, kv->data, 4);
        return VWN_OK;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
        return VWN_OK;
    }
    return wrong_type(kv, "f32 or f64");
}

vwn_status gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return missing(key);
    if (kv->type != GGUF_TYPE_BOOL) return wrong_type(kv, "bool");
    *out = *(const uint8_t *)kv->data != 0;
    return VWN_OK;
}

vwn_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return missing(key);
    if (kv->type != GGUF_TYPE_STRING) return wrong_type(kv, "string");
    *out = kv->str;
    return VWN_OK;
}

vwn_status gguf_get_u32_opt(const gguf_file *f, const char *key, uint32_t *out) {
    return gguf_find_kv(f, key) ? gguf_get_u32(f, key, out) : VWN_OK;
}

vwn_status gguf_get_f32_opt(const gguf_file *f, const char *key, float *out) {
    return gguf_find_kv(f, key) ? gguf_get_f32(f, key, out) : VWN_OK;
}

vwn_status gguf_get_bool_opt(const gguf_file *f, const char *key, bool *out) {
    return gguf_find_kv(f, key) ? gguf_get_bool(f, key, out) : VWN_OK;
}

/* An array key of element type want. */
static vwn_status get_arr(const gguf_file *f, const char *key, uint32_t want, const gguf_kv **out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return missing(key);
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != want) {
        char expected[32];
        snprintf(expected, sizeof expected, "an array of %s", value_type_name(want));
        return wrong_type(kv, expected);
    }
    *out = kv;
    return VWN_OK;
}

vwn_status gguf_get_arr_str(const gguf_file *f, const char *key, const gguf_str **out, uint64_t *out_n) {
    const gguf_kv *kv = NULL;
    vwn_status st = get_arr(f, key, GGUF_TYPE_STRING, &kv);
    if (st) return st;
    *out = kv->arr_str;
    *out_n = kv->arr_len;
    return VWN_OK;
}

vwn_status gguf_get_arr_f32(const gguf_file *f, const char *key, const float **out, uint64_t *out_n) {
    const gguf_kv *kv = NULL;
    vwn_status st = get_arr(f, key, GGUF_TYPE_FLOAT32, &kv);
    if (st) return st;
    *out = kv->data;
    *out_n = kv->arr_len;
    return VWN_OK;
}

vwn_status gguf_get_arr_i32(const gguf_file *f, const char *key, const int32_t **out, uint64_t *out_n) {
    const gguf_kv *kv = NULL;
    vwn_status st = get_arr(f, key, GGUF_TYPE_INT32, &kv);
    if (st) return st;
    *out = kv->data;
    *out_n = kv->arr_len;
    return VWN_OK;
}

/* ---- values as text ---------------------------------------------------------------------- */

/* Shortest decimal that reads back as the same float (or double). */
static int format_float(char *tmp, size_t size, double v, bool single) {
    int n = 0;
    for (int prec = single ? 6 : 15; prec <= (single ? 9 : 17); prec++) {
        n = snprintf(tmp, size, "%.*g", prec, v);
        double back = strtod(tmp, NULL);
        if (single ? (float)back == (float)v : back == v) break;
    }
    return n;
}

int32_t gguf_kv_to_text(const gguf_kv *kv, char *buf, size_t buf_size) {
    char tmp[96];
    const char *text = tmp;
    uint64_t len;
    if (!kv) return -1;
    switch (kv->type) {
    case GGUF_TYPE_STRING:
        text = kv->str.data;
        len = kv->str.len;
        break;
    case GGUF_TYPE_ARRAY:
        len = (uint64_t)snprintf(tmp, sizeof tmp, "[array of %llu %s]", (unsigned long long)kv->arr_len,
                                 value_type_name(kv->arr_type));
        break;
    case GGUF_TYPE_BOOL:
        len = (uint64_t)snprintf(tmp, sizeof tmp, "%s", *(const uint8_t *)kv->data ? "true" : "false");
        break;
    case GGUF_TYPE_FLOAT32: {
        float x;
        memcpy(&x, kv->data, 4);
        len = (uint64_t)format_float(tmp, sizeof tmp, x, true);
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        double x;
        memcpy(&x, kv->data, 8);
        len = (uint64_t)format_float(tmp, sizeof tmp, x, false);
        break;
    }
    case GGUF_TYPE_UINT64: {
        uint64_t x;
        memcpy(&x, kv->data, 8);
        len = (uint64_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)x);
        break;
    }
    default: {
        int64_t v;
        bool too_big;
        int_value(kv, &v, &too_big);
        len = (uint64_t)snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        break;
    }
    }
    if (len > (uint64_t)INT32_MAX) len = (uint64_t)INT32_MAX; /* strings are capped far below */
    if (buf && buf_size > 0) {
        size_t n = len < buf_size - 1 ? (size_t)len : buf_size - 1;
        if (n) memcpy(buf, text, n);
        buf[n] = '\0';
    }
    return (int32_t)len;
}

/* gguf.h -- a hardened reader of GGUF v3 files. Knows GGUF, nothing about VWN.
 *
 * Every count, length, string, array, dimension, type, alignment and offset is checked against the
 * file size with overflow-safe arithmetic before use. The file is mmap'd read-only (or read into an
 * aligned buffer); all returned pointers point into that image and live as long as the gguf_file. */
#ifndef VWN_GGUF_H
#define VWN_GGUF_H

#include "vwn.h"

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12
};

typedef struct gguf_str {          /* not NUL-terminated; points into the file image */
    const char *data;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    char *key;                     /* NUL-terminated copy (owned by the gguf_file) */
    uint32_t type;                 /* gguf_value_type                               */
    uint32_t arr_type;             /* element type when type == ARRAY               */
    uint64_t arr_len;              /* element count when type == ARRAY              */
    const void *data;              /* scalar value (in the image, unaligned: read it with
                                      memcpy), or the first array element (numeric arrays:
                                      an aligned copy, arr_owned); for string arrays use
                                      gguf_get_arr_str                              */
    gguf_str *arr_str;             /* string arrays: arr_len parsed strings (owned) */
    gguf_str str;                  /* type == STRING                                */
    void *arr_owned;               /* numeric arrays: the aligned copy of the elements */
} gguf_kv;

typedef struct gguf_tensor {
    char *name;                    /* NUL-terminated copy (owned)                   */
    uint32_t n_dims;               /* 1..4                                          */
    int64_t ne[4];                 /* innermost first; unused dims are 1            */
    uint32_t type;                 /* vwn_type (only F32, F16, Q8_0, BF16 accepted) */
    uint64_t offset;               /* relative to the data section                  */
    uint64_t n_elements, n_bytes;
    const void *data;              /* in the image, aligned to `alignment`          */
} gguf_tensor;

typedef struct gguf_file {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint32_t alignment;
    const uint8_t *image;          /* the whole file                                */
    uint64_t size;
    uint64_t data_offset;          /* start of the data section in the image        */
    bool mapped;                   /* true: the file is mapped (munmap on close)    */
    size_t anon_len;               /* read path: length of the anonymous mapping (0: vwn_aligned_free) */
    size_t sparse_lo, sparse_hi;   /* gguf_advise_sparse's byte range of the image (page-aligned) */
    uint32_t *kv_sorted;           /* kv indexes sorted by key (binary-search lookups) */
    uint32_t *tensor_sorted;       /* tensor indexes sorted by name                   */
} gguf_file;

/* Opens and validates a file. On failure returns the status (with vwn_fail message) and *out = NULL.
 * Status per class of damage (docs/format.md, "What the loader checks"): BAD_MAGIC, BAD_VERSION;
 * TRUNCATED when the file ends before what the header describes (including counts and lengths the
 * remaining bytes cannot hold); BAD_FORMAT for malformed content (counts or lengths above the sanity
 * limits, unknown value types, nested arrays, bad bools, empty/NUL-containing names, duplicate keys
 * or tensors, n_dims outside 1..4, dimensions < 1, element-count or range overflow, q8_0 rows not a
 * multiple of 32, bad general.alignment, misaligned or overlapping tensor data); UNSUPPORTED for a
 * tensor type other than f32/f16/bf16/q8_0; IO; OUT_OF_MEMORY. */
vwn_status gguf_open(const char *path, bool use_mmap, gguf_file **out);
/* Parses an in-memory image (copied; for fuzzing and tests). */
vwn_status gguf_open_memory(const void *data, size_t size, gguf_file **out);
void gguf_close(gguf_file *f);
/* Advises that the bytes [p, p + n) of a mapped image are read sparsely (a few rows per token: an
 * embedding table), so they stay out of the 2 MiB pages the rest of the mapping is advised into:
 * there every row read would make a whole 2 MiB resident. Advice only: nothing happens for an
 * image read into memory, off Linux, or if the kernel refuses. */
void gguf_advise_sparse(gguf_file *f, const void *p, size_t n);
/* Faults a mapped image in (MADV_POPULATE_READ), all but the sparse range, as llama.cpp's
 * MAP_POPULATE does: the pages a first decode would fault one by one, in one call, and a file not
 * yet in the page cache comes in in file order, as 2 MiB folios. Advice only: nothing happens for
 * an image read into memory, before Linux 5.14, or if the kernel refuses. */
void gguf_prefault(const gguf_file *f);
/* Drops the whole pages inside [p, p + n) of a mapped image from this process's memory
 * (MADV_DONTNEED): bytes a packed copy has replaced (lib/model.c). The mapping stays valid -- a
 * later read faults the file's bytes back in. Nothing happens for an image read into memory. */
void gguf_release(const gguf_file *f, const void *p, size_t n);

/* Lookups (NULL / -1 when absent). */
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters: return VWN_ERR_BAD_MODEL with a message naming the key if the key has the wrong
 * type or its value does not fit. Integer getters accept any GGUF integer type. */
vwn_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);   /* absent: BAD_MODEL */
vwn_status gguf_get_f32(const gguf_file *f, const char *key, float *out);      /* f32 or f64 */
vwn_status gguf_get_bool(const gguf_file *f, const char *key, bool *out);
vwn_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Same, but leave *out unchanged and return VWN_OK when the key is absent. */
vwn_status gguf_get_u32_opt(const gguf_file *f, const char *key, uint32_t *out);
vwn_status gguf_get_f32_opt(const gguf_file *f, const char *key, float *out);
vwn_status gguf_get_bool_opt(const gguf_file *f, const char *key, bool *out);
/* Arrays: the element type must match (BAD_MODEL otherwise); *out_n receives the count. */
vwn_status gguf_get_arr_str(const gguf_file *f, const char *key, const gguf_str **out, uint64_t *out_n);
vwn_status gguf_get_arr_f32(const gguf_file *f, const char *key, const float **out, uint64_t *out_n);
vwn_status gguf_get_arr_i32(const gguf_file *f, const char *key, const int32_t **out, uint64_t *out_n);

/* Formats a KV value as text (see vwn_model_meta). Returns the full length. */
int32_t gguf_kv_to_text(const gguf_kv *kv, char *buf, size_t buf_size);

#endif

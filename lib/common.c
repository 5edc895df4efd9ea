/* common.c -- last-error message, status names, handle checks, allocation, clock. */
#include "common.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef VWN_USE_MIMALLOC
#include <mimalloc.h>
#endif

/* ---- the last error, one per thread ---- */

static _Thread_local char last_error[1024];
static _Thread_local vwn_status last_status;

vwn_status vwn_fail(vwn_status status, const char *fmt, ...) {
    last_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

void vwn_clear_error(void) {
    last_error[0] = '\0';
    last_status = VWN_OK;
}

const char *vwn_last_error(void) { return last_error; }

vwn_status vwn_last_status(void) { return last_status; }

const char *vwn_status_string(vwn_status status) {
    switch (status) {
    case VWN_OK: return "VWN_OK: success";
    case VWN_ERR_INVALID_ARG: return "VWN_ERR_INVALID_ARG: invalid argument";
    case VWN_ERR_BAD_HANDLE: return "VWN_ERR_BAD_HANDLE: invalid or freed handle";
    case VWN_ERR_IO: return "VWN_ERR_IO: input/output error";
    case VWN_ERR_BAD_MAGIC: return "VWN_ERR_BAD_MAGIC: not a GGUF file";
    case VWN_ERR_BAD_VERSION: return "VWN_ERR_BAD_VERSION: unsupported version";
    case VWN_ERR_TRUNCATED: return "VWN_ERR_TRUNCATED: file truncated";
    case VWN_ERR_BAD_FORMAT: return "VWN_ERR_BAD_FORMAT: malformed file";
    case VWN_ERR_UNSUPPORTED: return "VWN_ERR_UNSUPPORTED: unsupported feature";
    case VWN_ERR_BAD_MODEL: return "VWN_ERR_BAD_MODEL: inconsistent model";
    case VWN_ERR_OUT_OF_MEMORY: return "VWN_ERR_OUT_OF_MEMORY: out of memory";
    case VWN_ERR_TOKEN_OUT_OF_RANGE: return "VWN_ERR_TOKEN_OUT_OF_RANGE: token id out of range";
    case VWN_ERR_CONTEXT_FULL: return "VWN_ERR_CONTEXT_FULL: context is full";
    case VWN_ERR_BATCH_TOO_LARGE: return "VWN_ERR_BATCH_TOO_LARGE: batch too large";
    case VWN_ERR_NOT_KEPT: return "VWN_ERR_NOT_KEPT: output not computed or not kept";
    case VWN_ERR_BUFFER_TOO_SMALL: return "VWN_ERR_BUFFER_TOO_SMALL: buffer too small";
    case VWN_ERR_NO_MTP: return "VWN_ERR_NO_MTP: no MTP modules";
    case VWN_ERR_NO_DRAFT: return "VWN_ERR_NO_DRAFT: no pending draft";
    case VWN_ERR_STATE_MISMATCH: return "VWN_ERR_STATE_MISMATCH: state does not fit this context";
    case VWN_ERR_CHECKSUM: return "VWN_ERR_CHECKSUM: checksum mismatch";
    case VWN_ERR_ABORTED: return "VWN_ERR_ABORTED: aborted by callback";
    case VWN_ERR_INTERNAL: return "VWN_ERR_INTERNAL: internal error";
    default: return "VWN_ERR_?: unknown status";
    }
}

const char *vwn_version(void) { return VWN_VERSION_STRING; }

uint32_t vwn_version_number(void) {
    return ((uint32_t)VWN_VERSION_MAJOR << 16) | ((uint32_t)VWN_VERSION_MINOR << 8) |
           (uint32_t)VWN_VERSION_PATCH;
}

const char *vwn_type_name(int32_t type) {
    switch (type) {
    case VWN_TYPE_F32: return "f32";
    case VWN_TYPE_F16: return "f16";
    case VWN_TYPE_Q4_0: return "q4_0";
    case VWN_TYPE_Q8_0: return "q8_0";
    case VWN_TYPE_BF16: return "bf16";
    default: return "?";
    }
}

/* ---- handles ---- */

vwn_status vwn_check_handle(const void *handle, uint64_t magic, const char *what) {
    if (handle == NULL) return vwn_fail(VWN_ERR_INVALID_ARG, "%s is NULL", what);
    uint64_t tag;
    memcpy(&tag, handle, sizeof tag);
    if (tag == magic) return VWN_OK;
    if (tag == VWN_MAGIC_DEAD)
        return vwn_fail(VWN_ERR_BAD_HANDLE, "%s was already freed (use after free)", what);
    return vwn_fail(VWN_ERR_BAD_HANDLE, "%s is not a valid %s handle (bad magic tag)", what, what);
}

/* ---- allocation ---- */

#ifdef VWN_USE_MIMALLOC
void *vwn_malloc(size_t size) { return mi_malloc(size ? size : 1); }
void *vwn_calloc(size_t count, size_t size) { return mi_calloc(count ? count : 1, size ? size : 1); }
void *vwn_realloc(void *ptr, size_t size) { return mi_realloc(ptr, size ? size : 1); }
void vwn_free(void *ptr) { mi_free(ptr); }
void *vwn_aligned_alloc(size_t size) { return mi_zalloc_aligned(size ? size : 1, 64); }
void vwn_aligned_free(void *ptr) { mi_free(ptr); }
#else
void *vwn_malloc(size_t size) { return malloc(size ? size : 1); }
void *vwn_calloc(size_t count, size_t size) { return calloc(count ? count : 1, size ? size : 1); }
void *vwn_realloc(void *ptr, size_t size) { return realloc(ptr, size ? size : 1); }
void vwn_free(void *ptr) { free(ptr); }
void *vwn_aligned_alloc(size_t size) {
    size_t rounded = (size + 63) / 64 * 64;
    if (rounded < size) return NULL;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded ? rounded : 64);
    return p;
}
void vwn_aligned_free(void *ptr) { free(ptr); }
#endif

/* ---- large buffers: their own mapping, with transparent huge pages --------------------------
 * The KV caches: decode attention streams every KV head's keys and values of every layer, a few
 * hundred KiB to MiB each, so with 4 KiB pages it walks thousands of pages per token; in 2 MiB
 * pages it does not. (Measured on this project's noisy VM with every allocation in huge pages,
 * MIMALLOC_LARGE_OS_PAGES=1: decode of a 110M Q8_0 model at prompt 256 ran 8-9% faster in one
 * interleaved run; an A/B of this code alone at prompt 512 was within the noise, -1% to +6%.)
 * Linux gives anonymous memory huge pages when the mapping is advised before it is touched (THP
 * mode "madvise", the common default), so these buffers are mapped here, 2 MiB aligned, and
 * advised. A 64-byte header before the returned pointer remembers the mapping. Elsewhere (or if
 * mmap fails) the ordinary aligned allocation. */
#define BIG_MAGIC 0x5657424947ull /* "VWBIG" */
#define BIG_ALIGN ((size_t)2 << 20)
typedef struct big_header {
    uint64_t magic;
    void *base;
    size_t len;
    char pad[64 - 8 - sizeof(void *) - sizeof(size_t)];
} big_header;

/* Under AddressSanitizer the ordinary allocation is used, so that the KV caches keep their
 * redzones. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VWN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define VWN_ASAN 1
#endif
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(VWN_ASAN)
#define VWN_BIG_MMAP 1
#endif

void *vwn_big_alloc(size_t size) {
#ifdef VWN_BIG_MMAP
    size_t len;
    if (vwn_add_size(size, sizeof(big_header) + 2 * BIG_ALIGN, &len)) {
        char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map != MAP_FAILED) {
            /* the header sits in the last 64 bytes before a 2 MiB boundary; the data follows it */
            char *data = (char *)(((uintptr_t)map + sizeof(big_header) + BIG_ALIGN - 1) & ~(uintptr_t)(BIG_ALIGN - 1));
            madvise(data, size ? size : 1, MADV_HUGEPAGE); /* advice only: its failure changes nothing */
            big_header *h = (big_header *)(data - sizeof(big_header));
            h->magic = BIG_MAGIC, h->base = map, h->len = len;
            return data; /* fresh anonymous memory: zero */
        }
    }
#endif
    char *p = vwn_aligned_alloc(size + sizeof(big_header));
    if (!p) return NULL;
    ((big_header *)p)->magic = 0;
    return p + sizeof(big_header);
}

void vwn_big_free(void *ptr) {
    if (!ptr) return;
    big_header *h = (big_header *)((char *)ptr - sizeof(big_header));
#ifdef VWN_BIG_MMAP
    if (h->magic == BIG_MAGIC) {
        munmap(h->base, h->len);
        return;
    }
#endif
    vwn_aligned_free(h);
}

char *vwn_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = vwn_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- the thread budget ---- */

static atomic_int threads_in_use;

static int n_cores(void) {
    static atomic_int cached;
    int n = atomic_load(&cached);
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > 1024 ? 1024 : (int)c;
        atomic_store(&cached, n);
    }
    return n;
}

int vwn_threads_acquire(int want) {
    if (want <= 1) {
        atomic_fetch_add(&threads_in_use, 1);
        return 1;
    }
    const int cores = n_cores();
    int used = atomic_load(&threads_in_use);
    for (;;) {
        int grant = cores - used;
        if (grant > want) grant = want;
        if (grant < 1) grant = 1;
        if (atomic_compare_exchange_weak(&threads_in_use, &used, used + grant)) return grant;
    }
}

void vwn_threads_release(int granted) { atomic_fetch_sub(&threads_in_use, granted); }

double vwn_time_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- the machine's last-level cache ---- */

#ifdef __linux__
/* The first line of a small sysfs file; false if it cannot be read. */
static bool read_line(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    const bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    return ok;
}
#endif

static size_t llc_read(void) {
    size_t best = 0;
#ifdef __linux__
    int best_level = 0;
    for (int i = 0; i < 16; i++) {
        char path[96], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!read_line(path, buf, sizeof buf)) break;
        if (strncmp(buf, "Instruction", 11) == 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (!read_line(path, buf, sizeof buf)) continue;
        const int level = atoi(buf);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!read_line(path, buf, sizeof buf)) continue;
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (*end == 'K') v <<= 10;
        else if (*end == 'M') v <<= 20;
        if (level > best_level && v > 0 && v < ((unsigned long long)1 << 40)) best_level = level, best = (size_t)v;
    }
#endif
    return best ? best : (size_t)32 << 20;
}

/* Read once per process (every context asks), as n_cores. */
size_t vwn_llc_bytes(void) {
    static _Atomic size_t cached;
    size_t v = atomic_load(&cached);
    if (v == 0) {
        v = llc_read();
        atomic_store(&cached, v);
    }
    return v;
}

/* common.h -- what every file of the library shares: the last-error message, handle magic tags,
 * allocation (mimalloc or libc), timing and overflow-safe size arithmetic. Knows nothing of models. */
#ifndef VWN_COMMON_H
#define VWN_COMMON_H

#include "vwn.h"

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Records the message of a failure on this thread and returns status (printf-style). */
vwn_status vwn_fail(vwn_status status, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Clears the last error of this thread (called at the start of public entry points). */
void vwn_clear_error(void);

/* Handle magic tags: the first field of every public object. Freed objects get VWN_MAGIC_DEAD. */
#define VWN_MAGIC_MODEL   0x4c444f4d4e575631ULL /* "1VWNMODL" */
#define VWN_MAGIC_CONTEXT 0x5854434e4e575631ULL /* "1VWNCNTX" */
#define VWN_MAGIC_SAMPLER 0x504d534e4e575631ULL /* "1VWNSMPL" */
#define VWN_MAGIC_DEAD    0x444145444e575631ULL /* "1VWNDEAD" */

/* Checks a handle pointer and its magic; sets the error and returns it (VWN_OK if fine). */
vwn_status vwn_check_handle(const void *handle, uint64_t magic, const char *what);

/* Allocation: every allocation of the library goes through these (mimalloc unless built with
 * VWN_USE_MIMALLOC=OFF). Aligned allocations are for the KV cache and scratch (64 bytes). */
void *vwn_malloc(size_t size);
void *vwn_calloc(size_t count, size_t size);
void *vwn_realloc(void *ptr, size_t size);
void *vwn_aligned_alloc(size_t size); /* 64-byte aligned, zeroed */
/* Large buffers (the KV caches): zeroed, 64-byte aligned, in transparent huge pages where Linux
 * allows (common.c). Free with vwn_big_free only. */
void *vwn_big_alloc(size_t size);
void vwn_big_free(void *ptr);
void vwn_free(void *ptr);
void vwn_aligned_free(void *ptr);
char *vwn_strdup(const char *s);

/* Overflow-safe arithmetic: return false on overflow. */
static inline bool vwn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}
static inline bool vwn_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return false;
    *out = a + b;
    return true;
}
static inline bool vwn_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}
static inline bool vwn_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return false;
    *out = a + b;
    return true;
}

/* The process-wide compute-thread budget: contexts that decode at the same time share the cores
 * instead of oversubscribing them. acquire returns how many threads the caller may use now
 * (between 1 and want: what is left of the budget, never less than one); release gives them back. */
int vwn_threads_acquire(int want);
void vwn_threads_release(int granted);

/* Bytes of the last-level cache of this machine (Linux: sysfs, cpu0's highest cache level; glibc's
 * sysconf reports 320 MiB for the 32 MiB L3 of the machine we measure on). 32 MiB where unknown. */
size_t vwn_llc_bytes(void);

/* Monotonic clock in microseconds. */
double vwn_time_us(void);

#endif

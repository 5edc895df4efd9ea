/* seg_rows.h -- rows side by side from far-apart segments: the split that the small-T kernels of
 * tile_float.h (AVX2, NEON) and the Q8_0 kernels of ops_avx2.c and ops_avx512.c share. */
#ifndef VWN_SEG_ROWS_H
#define VWN_SEG_ROWS_H

#include <stddef.h>
#include <stdint.h>

/* Rows side by side from far-apart segments. A kernel that reads several rows at once (each
 * activation vector loaded once for all of them) reads as many streams; when those rows are
 * adjacent, every stream ends after one short row and the hardware prefetchers start over
 * (Zen 4, one thread, rows of 768 B read two side by side: 7 GB/s against 20 for one stream;
 * 8 KiB rows: 14 against 22; docs/performance.md, "Nineteenth session"). Cutting the range into
 * rt segments of consecutive rows and taking row i of every segment keeps each stream going
 * across rows; from ~64 KiB a segment they read at the one-stream rate. seg_rows: the rows per
 * segment for rt rows side by side over [r0, r1), or 0 when a segment would be shorter. */
#define VWN_SEG_MIN_BYTES (64 * 1024)
static inline int64_t seg_rows(int rt, size_t row_bytes, int64_t r0, int64_t r1) {
    if (rt < 2 || r1 - r0 < rt) return 0;
    const int64_t h = (r1 - r0) / rt;
    return (uint64_t)h * row_bytes >= VWN_SEG_MIN_BYTES ? h : 0;
}
#endif

/* Build: clang -O2 -march=native -fopenmp=libomp -DVWN_OPENMP -Iinclude -Ilib docs/bench/run-u/hexbench.c build/lib/libvwn.a
 *   (+ the link line of abflag.c) -o hexbench; run: hexbench 256 2048; hexbench 768 2048 */
/* A throwaway measurement of a 16-block ("hex") packed Q8_0 layout with one int32 lane per block,
 * against the library's packed octs (8 blocks, two lanes per block). One thread. Per hex of 16
 * blocks: 32 bytes of fp16 scales, then 8 vectors whose lane L holds bytes 4c..4c+3 of block L
 * (XOR 0x80); 544 bytes, as two octs. Per (row, token, hex): 8 vpdpbusd + cvt + mul + fma (11
 * ops for 512 products) against 2 x (4 + 3) = 14 for two octs; weight side 9 loads + 1 convert
 * against 10 loads + 2 converts + 2 permutes.
 * args: ROWS COLS (COLS a multiple of 512) */
#include "ops/ops.h"
#include "common.h"
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
#define HEX_BYTES 544
typedef struct { __m512i q[8], ncorr; __m512 d; } hexprep;

static void pack_hex(const vwn_block_q8_0 *b, uint8_t *o) {
    for (int L = 0; L < 16; L++) memcpy(o + 2 * L, &b[L].d, 2);
    for (int c = 0; c < 8; c++)
        for (int L = 0; L < 16; L++)
            for (int k = 0; k < 4; k++) o[32 + 64 * c + 4 * L + k] = (uint8_t)b[L].qs[4 * c + k] ^ 0x80u;
}
static void prep_hex(const vwn_block_q8_0 *x, hexprep *e) {
    int32_t nc[16]; uint16_t dh[16]; int8_t q[8][64];
    for (int L = 0; L < 16; L++) {
        int s = 0;
        for (int k = 0; k < 32; k++) s += x[L].qs[k];
        nc[L] = -128 * s; dh[L] = x[L].d;
        for (int c = 0; c < 8; c++) for (int k = 0; k < 4; k++) q[c][4 * L + k] = x[L].qs[4 * c + k];
    }
    for (int c = 0; c < 8; c++) e->q[c] = _mm512_loadu_si512(q[c]);
    e->ncorr = _mm512_loadu_si512(nc);
    e->d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dh));
}
static inline __attribute__((always_inline)) void row_hex(int tt, const char *w, const hexprep *xp, int64_t nhex, float *y, int64_t ldy) {
    __m512 acc[8];
    for (int j = 0; j < tt; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t h = 0; h < nhex; h++) {
        const char *o = w + h * HEX_BYTES;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o));
        __m512i v[8];
        for (int c = 0; c < 8; c++) v[c] = _mm512_loadu_si512(o + 32 + 64 * c);
        for (int j = 0; j < tt; j++) {
            const hexprep *e = &xp[j * nhex + h];
            __m512i s = e->ncorr;
            for (int c = 0; c < 8; c++) s = _mm512_dpbusd_epi32(s, v[c], e->q[c]);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, e->d), acc[j]);
        }
    }
    for (int j = 0; j < tt; j++) y[j * ldy] = _mm512_reduce_add_ps(acc[j]);
}
static void matmul_hex(int tt, const char *W, int64_t rows, int64_t cols, const hexprep *xp, float *Y) {
    const int64_t nhex = cols / 512, rb = nhex * HEX_BYTES;
    switch (tt) {
    case 1: for (int64_t r = 0; r < rows; r++) row_hex(1, W + r * rb, xp, nhex, Y + r, rows); break;
    default: for (int64_t r = 0; r < rows; r++) row_hex(8, W + r * rb, xp, nhex, Y + r, rows); break;
    }
}
int main(int argc, char **argv) {
    const int64_t rows = argc > 1 ? atoll(argv[1]) : 256, cols = argc > 2 ? atoll(argv[2]) : 2048;
    const vwn_ops *ops = vwn_ops_best();
    const int64_t nb = cols / 32, nhex = cols / 512;
    const size_t rb = vwn_row_bytes(VWN_TYPE_Q8_0, cols);
    /* in cache: one matrix; from memory: as many as fill 256 MB */
    for (int mem = 0; mem < 2; mem++) {
        const int nm = mem ? (int)(((size_t)256 << 20) / (rb * rows)) : 1;
        const size_t mb = rb * rows;
        char *buf = vwn_big_alloc(mb * nm), *oct = vwn_big_alloc(mb * nm), *hex = vwn_big_alloc(mb * nm);
        for (size_t i = 0; i < mb * nm; i++) buf[i] = (char)(i * 2654435761u >> 13);
        for (size_t i = 0; i < mb * nm / 34; i++) ((vwn_block_q8_0 *)buf)[i].d = (uint16_t)(0x3000 + (i % 512));
        vwn_pack_rows(VWN_TYPE_Q8_0, buf, oct, rows * nm, cols);
        for (size_t i = 0; i < mb * nm / HEX_BYTES; i++) pack_hex((const vwn_block_q8_0 *)buf + 16 * i, (uint8_t *)hex + i * HEX_BYTES);
        vwn_mat *m = calloc(nm, sizeof *m);
        for (int i = 0; i < nm; i++) m[i] = (vwn_mat){buf + i * mb, VWN_TYPE_Q8_0, rows, cols, rb, oct + i * mb};
        for (int tt = 1; tt <= 8; tt += 7) {
            if (mem && tt > 1) continue;
            float *x = malloc(sizeof(float) * tt * cols);
            for (int64_t i = 0; i < tt * cols; i++) x[i] = (float)((i * 7) % 13) - 6 + 0.1f * (float)(i % 5);
            vwn_block_q8_0 *xq = malloc(sizeof(vwn_block_q8_0) * tt * nb);
            ops->quantize_q8_0(x, xq, tt * cols);
            hexprep *xp = aligned_alloc(64, sizeof(hexprep) * tt * nhex);
            float *y1 = malloc(sizeof(float) * rows * tt), *y2 = malloc(sizeof(float) * rows * tt);
            double bo = 1e9, bh = 1e9, err = 0;
            /* the activations prepared once (the library's kernel prepares its own inside each call:
             * a small share of a call here, whose rows are long) */
            for (int j = 0; j < tt; j++) for (int64_t h = 0; h < nhex; h++) prep_hex(xq + j * nb + 16 * h, &xp[j * nhex + h]);
            const int reps = mem ? 5 : 2000;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                for (int k = 0; k < (mem ? 1 : reps / 5); k++)
                    for (int i = 0; i < nm; i++) ops->matmul(&m[i], x, cols, xq, tt, y1, rows, 0, rows);
                double t1 = now();
                for (int k = 0; k < (mem ? 1 : reps / 5); k++)
                    for (int i = 0; i < nm; i++) matmul_hex(tt, hex + i * mb, rows, cols, xp, y2);
                double t2 = now();
                if (t1 - t0 < bo) bo = t1 - t0;
                if (t2 - t1 < bh) bh = t2 - t1;
            }
            for (int64_t i = 0; i < rows * tt; i++) { double d = fabs(y1[i] - y2[i]) / (fabs(y1[i]) + 1); if (d > err) err = d; }
            const double bytes = (double)mb * nm * (mem ? 1 : reps / 5);
            printf("%s %lldx%lld T=%d: octs %.2f GB/s, hex %.2f GB/s, hex/oct time %.3f (max rel diff %.2g)\n", mem ? "memory" : "cache ",
                   (long long)rows, (long long)cols, tt, bytes / bo / 1e9, bytes / bh / 1e9, bh / bo, err);
            free(x); free(xq); free(xp); free(y1); free(y2);
        }
        vwn_big_free(buf); vwn_big_free(oct); vwn_big_free(hex); free(m);
    }
    return 0;
}

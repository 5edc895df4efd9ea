/* Single-thread streaming rate of the matmul kernels at T = 1 over 256 MB of matrices (far past
 * the LLC): F32 and Q8_0 (file layout and packed) against a plain sum of the same bytes. */
#include "ops/ops.h"
#include "common.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double sum_bytes(const char *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 64));
        c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 128));
        d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 192));
    }
    return (double)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}
int main(int argc, char **argv) {
    const int64_t rows = argc > 1 ? atoll(argv[1]) : 2048, cols = argc > 2 ? atoll(argv[2]) : 768;
    const vwn_ops *ops = vwn_ops_best();
    const size_t total = (size_t)256 << 20;
    float x[8192]; for (int i = 0; i < cols; i++) x[i] = (float)((i * 7) % 13) - 6;
    vwn_block_q8_0 xq[256]; ops->quantize_q8_0(x, xq, cols);
    float *y = malloc(sizeof(float) * rows);
    for (int type = 0; type < 4; type++) { /* 0 F32, 1 Q8_0 file, 2 Q8_0 packed, 3 Q4_0 */
        int32_t ty = type == 0 ? VWN_TYPE_F32 : type >= 3 ? VWN_TYPE_Q4_0 : VWN_TYPE_Q8_0;
        size_t rb = vwn_row_bytes(ty, cols), mb = rb * rows;
        int nm = (int)(total / mb);
        char *buf = vwn_big_alloc(mb * nm);
        for (size_t i = 0; i < mb * nm; i++) buf[i] = (char)(i * 2654435761u >> 13);
        if (ty == VWN_TYPE_F32) for (size_t i = 0; i < mb * nm / 4; i++) ((float *)buf)[i] = (float)(i % 17) * 0.01f;
        else if (ty == VWN_TYPE_Q8_0) for (size_t i = 0; i < mb * nm / 34; i++) ((vwn_block_q8_0 *)buf)[i].d = 0x3c00;
        else for (size_t i = 0; i < mb * nm / 18; i++) ((vwn_block_q4_0 *)buf)[i].d = 0x3c00;
        char *pk = NULL;
        if (type == 2) { pk = vwn_big_alloc(mb * nm); vwn_pack_rows(ty, buf, pk, rows * nm, cols); }
        vwn_mat *m = calloc(nm, sizeof *m);
        for (int i = 0; i < nm; i++) m[i] = (vwn_mat){buf + i * mb, ty, rows, cols, rb, pk ? pk + i * mb : NULL};
        const char *src = pk ? pk : buf;
        double best_k = 1e9, best_r = 1e9, sink = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            for (int i = 0; i < nm; i++) ops->matmul(&m[i], x, cols, xq, 1, y, rows, 0, rows);
            double t1 = now();
            sink += sum_bytes(src, mb * nm);
            double t2 = now();
            if (t1 - t0 < best_k) best_k = t1 - t0;
            if (t2 - t1 < best_r) best_r = t2 - t1;
        }
        printf("%-12s %lldx%lld: kernel %.2f GB/s, plain read %.2f GB/s, ratio %.3f (%g)\n",
               type == 0 ? "F32" : type == 1 ? "Q8_0 file" : type == 2 ? "Q8_0 packed" : type == 3 ? "Q4_0" : "Q4_0 packed", (long long)rows, (long long)cols,
               mb * nm / best_k / 1e9, mb * nm / best_r / 1e9, best_r / best_k, sink * 0 + y[0] * 0);
        vwn_big_free(buf); vwn_big_free(pk); free(m);
    }
    return 0;
}

/* mix_tiled.h -- the `mix` kernel (ops.h) as plain C written for the compiler to vectorize: 4
 * outputs x 64 columns of accumulators, no horizontal sums. Included by the SIMD files that have
 * no hand-written version (ops_avx2.c, ops_neon.c), so it is compiled with their flags. */
#ifndef VWN_MIX_TILED_H
#define VWN_MIX_TILED_H

#include <stdbool.h>
#include <stdint.h>

#define MIXT_O 4
#define MIXT_C 64

static void mix_tiled(float *out, int64_t ldo, const float *A, int64_t ao, int64_t ai,
                      const float *B, int64_t ldb, int64_t n_out, int64_t n_in, int64_t n_cols,
                      bool accumulate) {
    for (int64_t c0 = 0; c0 < n_cols; c0 += MIXT_C) {
        const int64_t nc = n_cols - c0 < MIXT_C ? n_cols - c0 : MIXT_C;
        for (int64_t o0 = 0; o0 < n_out; o0 += MIXT_O) {
            const int64_t no = n_out - o0 < MIXT_O ? n_out - o0 : MIXT_O;
            float acc[MIXT_O][MIXT_C];
            for (int64_t o = 0; o < MIXT_O; o++)
                for (int64_t c = 0; c < MIXT_C; c++)
                    acc[o][c] = (accumulate && o < no && c < nc) ? out[(o0 + o) * ldo + c0 + c] : 0.0f;
            for (int64_t i = 0; i < n_in; i++) {
                const float *b = B + i * ldb + c0;
                float bb[MIXT_C];
                for (int64_t c = 0; c < MIXT_C; c++) bb[c] = c < nc ? b[c] : 0.0f;
                for (int64_t o = 0; o < MIXT_O; o++) {
                    const float a = o < no ? A[(o0 + o) * ao + i * ai] : 0.0f;
                    for (int64_t c = 0; c < MIXT_C; c++) acc[o][c] += a * bb[c];
                }
            }
            for (int64_t o = 0; o < no; o++)
                for (int64_t c = 0; c < nc; c++) out[(o0 + o) * ldo + c0 + c] = acc[o][c];
        }
    }
}

#endif

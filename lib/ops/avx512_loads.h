/* avx512_loads.h -- the AVX-512 loads of weight and KV-cache rows shared by ops_avx512.c (the
 * matrix products) and attn_avx512.c (attention): fp32, or fp16 / bf16 widened to fp32, whole
 * vectors or the first n lanes (masked: never reads past a row). Included only by files compiled
 * with the AVX-512 flags, after their VL (16) and INLINE. */
#ifndef VWN_AVX512_LOADS_H
#define VWN_AVX512_LOADS_H

#include "vwn.h"

#include <immintrin.h>
#include <stdint.h>

#if VL != 16
#error "avx512_loads.h: VL must be 16"
#endif

INLINE __m512 widen_w(int type, __m256i h) {
    if (type == VWN_TYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16 */
}

INLINE __m512 load_w(int type, const void *row, int64_t c) {
    if (type == VWN_TYPE_F32) return _mm512_loadu_ps((const float *)row + c);
    return widen_w(type, _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
}

/* The first n < 16 elements at column c, the rest zero. */
INLINE __m512 load_w_tail(int type, const void *row, int64_t c, __mmask16 m) {
    if (type == VWN_TYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    return widen_w(type, _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + c));
}

INLINE __mmask16 tail_mask(int64_t n) {
    return (__mmask16)((1u << n) - 1u);
}

/* Lanes c .. c + 16 of a row of c1 (the last vector of a row masked). */
INLINE __m512 load_x_any(const float *x, int64_t c, int64_t c1) {
    return c + VL <= c1 ? _mm512_loadu_ps(x + c) : _mm512_maskz_loadu_ps(tail_mask(c1 - c), x + c);
}
INLINE __m512 load_w_any(int type, const void *row, int64_t c, int64_t c1) {
    return c + VL <= c1 ? load_w(type, row, c) : load_w_tail(type, row, c, tail_mask(c1 - c));
}

#endif

/* avx512_loads.h -- the AVX-512 loads of weight and KV-cache rows shared by ops_avx512.c (the
 * matrix products) and attn_avx512.c (attention): fp32, or fp16 / bf16 widened to fp32, or (KV
 * cache rows only) Q8_0 dequantized, whole vectors or the first n lanes (masked: never reads past
 * a row). Included only by files compiled with the AVX-512 flags, after their VL (16) and INLINE. */
#ifndef VWN_AVX512_LOADS_H
#define VWN_AVX512_LOADS_H

#include "vwn.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#if VL != 16
#error "avx512_loads.h: VL must be 16"
#endif

INLINE __m512 widen_w(int type, __m256i h) {
    if (type == VWN_TYPE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16 */
}

/* Values c .. c + 15 (c % 16 == 0) of a row of Q8_0 blocks (34 bytes: fp16 d, 32 quants): d * qs,
 * exact in fp32 (11 x 8 significant bits), so a kernel over them gives the bits it gives over the
 * row dequantized. Reads only inside the block. */
INLINE __m512 load_q8_0(const void *row, int64_t c) {
    const char *b = (const char *)row + (c / 32) * 34;
    uint16_t d;
    memcpy(&d, b, sizeof d);
    const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2 + c % 32))));
    /* the scale broadcast as fp16 and widened in the vector (2 instructions, not 4 via a scalar) */
    return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_set1_epi16((short)d)), q);
}

INLINE __m512 load_w(int type, const void *row, int64_t c) {
    if (type == VWN_TYPE_F32) return _mm512_loadu_ps((const float *)row + c);
    if (type == VWN_TYPE_Q8_0) return load_q8_0(row, c);
    return widen_w(type, _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + c)));
}

/* The first n < 16 elements at column c, the rest zero (Q8_0: the lanes of m). */
INLINE __m512 load_w_tail(int type, const void *row, int64_t c, __mmask16 m) {
    if (type == VWN_TYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + c);
    if (type == VWN_TYPE_Q8_0) return _mm512_maskz_mov_ps(m, load_q8_0(row, c)); /* rows are whole blocks */
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

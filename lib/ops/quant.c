/* quant.c -- number formats of the weights: exact fp16/bf16 <-> fp32 conversions (round to nearest
 * even when narrowing, NaN and Inf kept), the byte size of a row of each type, and dequantization of
 * one row to fp32. Plain C, no SIMD; the kernels in ops_*.c have their own vector conversions. */
#include "ops/ops.h"
#include "vwn.h"

#include <string.h>

_Static_assert(sizeof(vwn_block_q8_0) == 34, "Q8_0 block must be 34 bytes (ggml layout)");
_Static_assert(sizeof(vwn_block_q4_0) == 18, "Q4_0 block must be 18 bytes (ggml layout)");

static inline uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- fp16 (IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits) ---------------------------- */

float vwn_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13)); /* Inf, NaN (payload kept) */
    if (exp == 0) {
        if (mant == 0) return bits_float(sign);                             /* +-0 */
        /* subnormal: mant * 2^-24, exact in fp32 */
        float v = (float)mant * 0x1p-24f;
        return bits_float(sign | float_bits(v));
    }
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));          /* rebias 15 -> 127 */
}

uint16_t vwn_fp32_to_fp16(float f) {
    uint32_t x = float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) {                       /* Inf or NaN */
        if (ax == 0x7f800000u) return sign | 0x7c00u;
        uint16_t payload = (uint16_t)((ax >> 13) & 0x3ffu);    /* top payload bits: exact for  */
        return (uint16_t)(sign | 0x7c00u | (payload ? payload : 0x200u)); /* fp16-born NaNs */
    }
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  /* >= 65520 rounds to Inf */

    if (ax < 0x38800000u) {                        /* below 2^-14: fp16 subnormal or zero */
        int e = (int)(ax >> 23);
        if (e < 102) return sign;                  /* < 2^-25: rounds to zero (2^-25 is a tie -> 0) */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u; /* value = m * 2^(e-150); result = value * 2^24 */
        int shift = 126 - e;                       /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);               /* q == 0x400 is the smallest normal: correct */
    }

    uint32_t r = ax - 0x38000000u;                 /* rebias exponent 127 -> 15 */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++; /* a carry into the exponent is right */
    return (uint16_t)(sign | q);
}

/* ---- bf16 (the top 16 bits of an fp32) ----------------------------------------------------- */

float vwn_bf16_to_fp32(uint16_t h) {
    return bits_float((uint32_t)h << 16);
}

uint16_t vwn_fp32_to_bf16(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) {           /* NaN: keep the top payload bits */
        uint16_t h = (uint16_t)(x >> 16);
        return (h & 0x7fu) ? h : (uint16_t)(h | 0x40u);
    }
    x += 0x7fffu + ((x >> 16) & 1u);               /* round to nearest even; overflow gives Inf */
    return (uint16_t)(x >> 16);
}

/* ---- rows ---------------------------------------------------------------------------------- */

size_t vwn_row_bytes(int32_t type, int64_t cols) {
    if (cols <= 0) return 0;
    uint64_t n = (uint64_t)cols;
    uint64_t bytes;
    switch (type) {
    case VWN_TYPE_F32:
        if (n > UINT64_MAX / 4) return 0;
        bytes = n * 4;
        break;
    case VWN_TYPE_F16:
    case VWN_TYPE_BF16:
        if (n > UINT64_MAX / 2) return 0;
        bytes = n * 2;
        break;
    case VWN_TYPE_Q8_0:
        if (n % VWN_QK8_0 != 0) return 0;
        bytes = (n / VWN_QK8_0) * sizeof(vwn_block_q8_0);
        break;
    case VWN_TYPE_Q4_0:
        if (n % VWN_QK4_0 != 0) return 0;
        bytes = (n / VWN_QK4_0) * sizeof(vwn_block_q4_0);
        break;
    default:
        return 0;
    }
    if (bytes > SIZE_MAX) return 0;
    return (size_t)bytes;
}

/* ---- the packed layout (ops.h) ------------------------------------------------------------- */

static bool is_float(int32_t type) {
    return type == VWN_TYPE_F32 || type == VWN_TYPE_F16 || type == VWN_TYPE_BF16;
}

bool vwn_packable(int32_t type, int64_t cols) {
    if (type == VWN_TYPE_Q8_0) return cols > 0 && cols % 256 == 0;
    return is_float(type) && cols > 0;
}

size_t vwn_packed_bytes(int32_t type, int64_t rows, int64_t cols) {
    if (!vwn_packable(type, cols) || rows <= 0) return 0;
    const size_t rb = vwn_row_bytes(type, cols);
    const uint64_t r = is_float(type) ? ((uint64_t)rows + 15) / 16 * 16 : (uint64_t)rows;
    if (rb == 0 || r > SIZE_MAX / rb) return 0;
    return (size_t)(r * rb);
}

/* Float rows into 16-row column-major panels (ops.h); rows past the end of the matrix are zero.
 * Element by element through memcpy: src and dst need no alignment. */
static void pack_panels(int32_t type, const void *src, void *dst, int64_t rows, int64_t cols) {
    const size_t n = (size_t)cols, es = type == VWN_TYPE_F32 ? 4 : 2;
    for (int64_t p0 = 0; p0 < rows; p0 += 16)
        for (int64_t i = 0; i < 16; i++) {
            const int64_t r = p0 + i;
            char *d = (char *)dst + ((size_t)p0 * n + (size_t)i) * es;
            if (r >= rows) {
                for (size_t k = 0; k < n; k++) memset(d + k * 16 * es, 0, es);
            } else if (es == 4) {
                const char *s = (const char *)src + (size_t)r * n * 4;
                for (size_t k = 0; k < n; k++) memcpy(d + k * 64, s + k * 4, 4);
            } else {
                const char *s = (const char *)src + (size_t)r * n * 2;
                for (size_t k = 0; k < n; k++) memcpy(d + k * 32, s + k * 2, 2);
            }
        }
}

/* One oct: the 8 blocks at src to its scales d (16 bytes) and quants q (256). Block g and 4 + g
 * share 128-bit lane g: the scales go b0 b4 b1 b5 ..., and lane g of a vector holds 8 quants of
 * b_g, then the same 8 of b_{4+g}. */
static void pack_oct(const vwn_block_q8_0 *b, uint8_t *d, uint8_t *q) {
    static const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (int i = 0; i < 8; i++) memcpy(d + 2 * i, &b[order[i]].d, 2);
    for (int c = 0; c < 4; c++)         /* vector c: quants 8c..8c+7 */
        for (int i = 0; i < 8; i++) {   /* 8-byte piece i: block order[i], each byte XOR 0x80 */
            uint64_t piece;
            memcpy(&piece, b[order[i]].qs + 8 * c, 8);
            piece ^= 0x8080808080808080u;
            memcpy(q + 64 * c + 8 * i, &piece, 8);
        }
}

void vwn_pack_rows(int32_t type, const void *src, void *dst, int64_t rows, int64_t cols) {
    if (is_float(type)) {
        pack_panels(type, src, dst, rows, cols);
        return;
    }
    /* Q8_0 (vwn_packable) */
    const size_t n = (size_t)rows * (size_t)(cols / 256); /* octs */
    for (size_t i = 0; i < n; i++) {
        uint8_t *o = (uint8_t *)dst + i * 8 * sizeof(vwn_block_q8_0);
        pack_oct((const vwn_block_q8_0 *)src + 8 * i, o, o + 16);
    }
}

void vwn_dequant_row(int32_t type, const void *src, float *dst, int64_t cols) {
    switch (type) {
    case VWN_TYPE_F32:
        memcpy(dst, src, (size_t)cols * sizeof(float));
        break;
    case VWN_TYPE_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < cols; i++) dst[i] = vwn_fp16_to_fp32(s[i]);
        break;
    }
    case VWN_TYPE_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < cols; i++) dst[i] = vwn_bf16_to_fp32(s[i]);
        break;
    }
    case VWN_TYPE_Q8_0: {
        const vwn_block_q8_0 *b = src;
        for (int64_t i = 0; i < cols / VWN_QK8_0; i++) {
            float d = vwn_fp16_to_fp32(b[i].d);
            for (int j = 0; j < VWN_QK8_0; j++) dst[i * VWN_QK8_0 + j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case VWN_TYPE_Q4_0: {
        const vwn_block_q4_0 *b = src;
        for (int64_t i = 0; i < cols / VWN_QK4_0; i++) {
            float d = vwn_fp16_to_fp32(b[i].d);
            float *o = dst + i * VWN_QK4_0;
            for (int j = 0; j < VWN_QK4_0 / 2; j++) {
                o[j] = d * (float)((b[i].qs[j] & 0x0F) - 8);
                o[j + VWN_QK4_0 / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    default:
        break;
    }
}

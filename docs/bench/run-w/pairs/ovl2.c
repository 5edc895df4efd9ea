/* One thread streams a 512 MB buffer line by line; per line L extra loads from an L1-resident
 * 4 KB buffer and 8 FMAs (the extra loads feed the FMAs, as activations do). GB/s, best of 3;
 * and the same with the stream in L1 (16 KB). */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define RUN(L) \
static float run##L(const float *b, size_t n, const float *x) { \
    __m512 a[8]; for (int i = 0; i < 8; i++) a[i] = _mm512_set1_ps(0.f); \
    size_t xo = 0; \
    for (size_t i = 0; i < n; i += 16) { \
        __m512 v = _mm512_load_ps(b + i); \
        for (int k = 0; k < 8; k++) { \
            __m512 m = (k < L) ? _mm512_load_ps(x + ((xo + 16 * k) & 1023)) : v; \
            a[k] = _mm512_fmadd_ps(v, m, a[k]); } \
        xo += 16 * 8; \
    } \
    __m512 s = a[0]; for (int i = 1; i < 8; i++) s = _mm512_add_ps(s, a[i]); \
    return _mm512_reduce_add_ps(s); }
RUN(0) RUN(2) RUN(4) RUN(8)
typedef float (*fn)(const float *, size_t, const float *);
int main(void) {
    size_t big = (size_t)512 << 20, small = 16384;
    float *b = aligned_alloc(2 << 20, big), *x = aligned_alloc(64, 4096);
    memset(b, 0, big); memset(x, 0, 4096);
    fn f[] = {run0, run2, run4, run8}; int ls[] = {0, 2, 4, 8};
    volatile float sink = 0;
    for (int q = 0; q < 4; q++) {
        double best = 1e9, bb = 1e9;
        for (int r = 0; r < 2000; r++) { double t0 = now(); sink += f[q](b, small / 4, x); double dt = now() - t0; if (dt < best) best = dt; }
        for (int r = 0; r < 3; r++) { double t0 = now(); sink += f[q](b, big / 4, x); double dt = now() - t0; if (dt < bb) bb = dt; }
        printf("8 FMAs + %d L1 loads per line: in L1 %6.1f GB/s, from DRAM %5.1f GB/s, sum-model %5.1f\n", ls[q], small / best / 1e9, big / bb / 1e9, 1.0 / (best / small * 1e9 + 1.0 / 20.5));
    }
    return (int)sink & 0;
}

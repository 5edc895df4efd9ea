/* Does a core overlap compute with its memory stream? One thread reads a 512 MB buffer (or a
 * 16 KB one, in L1) line by line, with K FMAs per line (8 independent chains), optionally
 * prefetching PF bytes ahead. GB/s, best of 3. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define RUN(K) \
static float run##K(const float *b, size_t n, size_t pf, int hint) { \
    __m512 a[8]; for (int i = 0; i < 8; i++) a[i] = _mm512_set1_ps(0.f); \
    const __m512 m = _mm512_set1_ps(1.0001f); \
    for (size_t i = 0; i < n; i += 16) { \
        if (pf) { if (hint == 0) _mm_prefetch((const char *)(b + i) + pf, _MM_HINT_T0); \
                  else if (hint == 2) _mm_prefetch((const char *)(b + i) + pf, _MM_HINT_T2); \
                  else _mm_prefetch((const char *)(b + i) + pf, _MM_HINT_NTA); } \
        __m512 v = _mm512_load_ps(b + i); \
        for (int k = 0; k < K; k++) a[k & 7] = _mm512_fmadd_ps(v, m, a[k & 7]); \
        if (K == 0) a[0] = _mm512_add_ps(a[0], v); \
    } \
    __m512 s = a[0]; for (int i = 1; i < 8; i++) s = _mm512_add_ps(s, a[i]); \
    return _mm512_reduce_add_ps(s); }
RUN(0) RUN(4) RUN(8) RUN(16) RUN(32)
typedef float (*fn)(const float *, size_t, size_t, int);
int main(void) {
    size_t big = (size_t)512 << 20, small = 16384;
    float *b = aligned_alloc(2 << 20, big);
    memset(b, 0, big);
    fn f[] = {run0, run4, run8, run16, run32}; int ks[] = {0, 4, 8, 16, 32};
    size_t pfs[] = {0, 1024, 4096, 16384}; 
    volatile float sink = 0;
    for (int q = 0; q < 5; q++) {
        double best = 1e9;
        for (int r = 0; r < 2000; r++) { double t0 = now(); sink += f[q](b, small / 4, 0, 0); double dt = now() - t0; if (dt < best) best = dt; }
        printf("K=%2d in L1: %6.1f GB/s |", ks[q], small / best / 1e9);
        for (int p = 0; p < 4; p++) for (int h = 0; h < (pfs[p] ? 2 : 1); h++) {
            int hint = h == 0 ? 0 : 2;
            double bb = 1e9;
            for (int r = 0; r < 3; r++) { double t0 = now(); sink += f[q](b, big / 4, pfs[p], hint); double dt = now() - t0; if (dt < bb) bb = dt; }
            printf(" pf%5zu%s %5.1f", pfs[p], pfs[p] ? (hint ? "t2" : "t0") : "  ", big / bb / 1e9);
        }
        printf("\n");
    }
    return (int)sink & 0;
}

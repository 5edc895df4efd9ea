/* One thread reads a 512 MB buffer as S interleaved streams: the buffer is cut into rows of R
 * bytes; rows are taken S at a time and read line by line in lockstep (row r line i, row r+1
 * line i, ...), as a kernel reading S rows side by side does. GB/s, best of 3. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float run(const char *b, size_t bytes, size_t R, int S) {
    __m512 a = _mm512_setzero_ps(), c = _mm512_setzero_ps();
    for (size_t r0 = 0; r0 + S * R <= bytes; r0 += S * R)
        for (size_t i = 0; i < R; i += 64)
            for (int s = 0; s < S; s++) {
                __m512 v = _mm512_load_ps((const float *)(b + r0 + s * R + i));
                if (s & 1) c = _mm512_add_ps(c, v); else a = _mm512_add_ps(a, v);
            }
    return _mm512_reduce_add_ps(_mm512_add_ps(a, c));
}
int main(void) {
    size_t big = (size_t)512 << 20;
    char *b = aligned_alloc(2 << 20, big);
    memset(b, 1, big);
    volatile float sink = 0;
    size_t Rs[] = {768, 3072, 8192, 65536};
    int Ss[] = {1, 2, 4, 8};
    for (int ri = 0; ri < 4; ri++) {
        printf("rows of %6zu B:", Rs[ri]);
        for (int si = 0; si < 4; si++) {
            double bb = 1e9;
            for (int r = 0; r < 3; r++) { double t0 = now(); sink += run(b, big, Rs[ri], Ss[si]); double dt = now() - t0; if (dt < bb) bb = dt; }
            printf("  %d streams %5.1f GB/s", Ss[si], big / bb / 1e9);
        }
        printf("\n");
    }
    return (int)sink & 0;
}

/* As ovl3, but the S rows read side by side are far apart: a chunk of C rows is cut into S
 * segments of C/S consecutive rows, and step i reads row i of every segment, line by line in
 * lockstep -- each segment is one continuous stream. GB/s, best of 3. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float run(const char *b, size_t bytes, size_t R, int S, size_t C) {
    __m512 a = _mm512_setzero_ps(), c = _mm512_setzero_ps();
    const size_t seg = C / S;
    for (size_t r0 = 0; r0 + C * R <= bytes; r0 += C * R)
        for (size_t i = 0; i < seg; i++)
            for (size_t l = 0; l < R; l += 64)
                for (int s = 0; s < S; s++) {
                    __m512 v = _mm512_load_ps((const float *)(b + r0 + (s * seg + i) * R + l));
                    if (s & 1) c = _mm512_add_ps(c, v); else a = _mm512_add_ps(a, v);
                }
    return _mm512_reduce_add_ps(_mm512_add_ps(a, c));
}
int main(void) {
    size_t big = (size_t)512 << 20;
    char *b = aligned_alloc(2 << 20, big);
    memset(b, 1, big);
    volatile float sink = 0;
    size_t Rs[] = {768, 3072, 8192};
    size_t Cs[] = {16, 64, 256};
    int Ss[] = {1, 2, 4};
    for (int ri = 0; ri < 3; ri++)
        for (int ci = 0; ci < 3; ci++) {
            printf("rows of %5zu B, chunks of %3zu rows:", Rs[ri], Cs[ci]);
            for (int si = 0; si < 3; si++) {
                double bb = 1e9;
                for (int r = 0; r < 3; r++) { double t0 = now(); sink += run(b, big, Rs[ri], Ss[si], Cs[ci]); double dt = now() - t0; if (dt < bb) bb = dt; }
                printf("  %d streams %5.1f", Ss[si], big / bb / 1e9);
            }
            printf("\n");
        }
    return (int)sink & 0;
}

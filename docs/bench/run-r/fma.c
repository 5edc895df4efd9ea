#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
    for (int nt = 1; nt <= 2; nt++) {
        double t0 = now(); float sink = 0;
#pragma omp parallel num_threads(nt) reduction(+:sink)
        {
            __m512 a[12]; const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
            for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
            for (long k = 0; k < 100000000L; k++)
                for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
            for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_ps(a[i]);
        }
        double t = now() - t0;
        printf("%d threads: %.2f s, %.1f GFLOP/s total, %.1f per thread (%g)\n", nt, t, nt * 1.2e9 * 32 / t / 1e9, 1.2e9 * 32 / t / 1e9, sink * 0);
    }
    return 0;
}

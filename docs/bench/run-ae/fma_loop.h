/* fma_loop.h -- shared by the run-ae harnesses: a monotonic clock, a double comparator for qsort,
 * and the FMA loop (16 independent 512-bit chains, as `vwn bench` measures the peak) in GFLOP/s. */
#include <immintrin.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
#define C16(X) X(0)X(1)X(2)X(3)X(4)X(5)X(6)X(7)X(8)X(9)X(10)X(11)X(12)X(13)X(14)X(15)
static double fma_gflops(long it) {
    const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
#define FL_D(k) __m512 a##k = _mm512_set1_ps(0.01f * k);
#define FL_S(k) a##k = _mm512_fmadd_ps(a##k, b, c);
#define FL_A(k) s = _mm512_add_ps(s, a##k);
    C16(FL_D)
    double t0 = now();
    for (long i = 0; i < it; i++) { C16(FL_S) }
    double t = now() - t0;
    __m512 s = _mm512_setzero_ps();
    C16(FL_A)
    static volatile float sink;
    sink = _mm512_reduce_add_ps(s);
    return it * 16.0 * 32 / t * 1e-9;
}

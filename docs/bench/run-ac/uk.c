#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifndef NR
#define NR 12
#endif
#ifndef UNR
#define UNR 1
#endif
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static float peak_run(long N){ __m512 a[12]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-9f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps((float)i);
  for(long k=0;k<N;k++){
#define F(i) a[i]=_mm512_fmadd_ps(a[i],b,c);
    F(0)F(1)F(2)F(3)F(4)F(5)F(6)F(7)F(8)F(9)F(10)F(11)
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]));
  }
  float s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]); return s;}
#ifndef NP
#define NP 2
#endif
__attribute__((noinline)) void kern(const float *P0, long ps, const float *x, long n, float *y) {
  __m512 a[NP][NR];
  for (int p = 0; p < NP; p++) for (int j = 0; j < NR; j++) a[p][j] = _mm512_setzero_ps();
#pragma clang loop unroll_count(UNR)
  for (long k = 0; k < n; k++) {
    __m512 w[NP]; for (int p = 0; p < NP; p++) w[p] = _mm512_loadu_ps(P0 + p * ps + k * 16);
    for (int j = 0; j < NR; j++) {
      const __m512 b = _mm512_set1_ps(x[j * 272 + k]);
      for (int p = 0; p < NP; p++) a[p][j] = _mm512_fmadd_ps(w[p], b, a[p][j]);
    }
  }
  for (int p = 0; p < NP; p++) for (int j = 0; j < NR; j++) _mm512_storeu_ps(y + j * 64 + p * 16, a[p][j]);
}
int main(void) {
  long n = 256; float *P = aligned_alloc(64, 4 * 16 * n * 4), *x = aligned_alloc(64, NR * 272 * 4), *y = aligned_alloc(64, NR * 64 * 4);
  for (long i = 0; i < 64 * n; i++) P[i] = (i % 7) * 0.1f; for (long i = 0; i < NR * 272; i++) x[i] = (i % 5) * 0.1f;
  for (int r = 0; r < 3; r++) {
    double t0 = now(); for (int it = 0; it < 20000; it++) kern(P, 16 * n, x, n, y); double t = now() - t0;
    t0 = now(); volatile float s = peak_run(2000000); double tp = now() - t0; (void)s;
    double g = 20000.0 * n * NR * NP * 32 / t * 1e-9, pk = 2000000.0 * 12 * 32 / tp * 1e-9;
    printf("kernel in L1 NP=%d NR=%d unroll %d: %.1f GF/s, FMA loop %.1f GF/s: %.0f%%\n", NP, NR, UNR, g, pk, 100 * g / pk);
  }
}

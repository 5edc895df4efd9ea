/* outer-product (broadcast) GEMM over 16-row packed panels, k-blocks of L summed from zero and
 * added in order: is it fast on this host? */
#include "ops/ops.h"
#include "vwn.h"
#include <immintrin.h>
extern const vwn_ops vwn_ops_avx512;
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef L
#define L 256
#endif
#ifndef NR
#define NR 12
#endif
#ifndef XP
#define XP 1
#endif
#ifndef TBK
#define TBK 100000
#endif
#ifndef ORDE
#define ORDE 0
#endif
#ifndef MC
#define MC 512
#endif
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
static float peak_run(long N){ __m512 a[12]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-9f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps((float)i);
  for(long k=0;k<N;k++){
#define F(i) a[i]=_mm512_fmadd_ps(a[i],b,c);
    F(0)F(1)F(2)F(3)F(4)F(5)F(6)F(7)F(8)F(9)F(10)F(11)
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]));
  }
  float s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]); return s;}

/* P: panels of 16 rows, [p][k][16]; X [t][ldx]; Y [t][ldy] */
static inline __attribute__((always_inline)) void ukernel(const float *P0, const float *P1, int64_t K, const float *x, int64_t ldx, int nt,
    int64_t k0, int64_t k1, float *y, int64_t ldy, int first) {
  __m512 a0[NR], a1[NR];
  for (int j = 0; j < NR; j++) a0[j] = a1[j] = _mm512_setzero_ps();
  for (int64_t k = k0; k < k1; k++) {
    const __m512 w0 = _mm512_load_ps(P0 + k * 16), w1 = _mm512_load_ps(P1 + k * 16);
    for (int j = 0; j < NR; j++) {
      const __m512 b = _mm512_set1_ps(XP == 2 ? x[j * (L + 16) + (k - k0)] : XP ? x[(k - k0) * NR + j] : x[j * ldx + k]);
      a0[j] = _mm512_fmadd_ps(w0, b, a0[j]);
      a1[j] = _mm512_fmadd_ps(w1, b, a1[j]);
    }
  }
  for (int j = 0; j < nt; j++) {
    if (first) { _mm512_storeu_ps(y + j * ldy, a0[j]); _mm512_storeu_ps(y + j * ldy + 16, a1[j]); }
    else { _mm512_storeu_ps(y + j*ldy, _mm512_add_ps(_mm512_loadu_ps(y+j*ldy), a0[j]));
           _mm512_storeu_ps(y + j*ldy+16, _mm512_add_ps(_mm512_loadu_ps(y+j*ldy+16), a1[j])); }
  }
  (void)K;
}
static float xp[512*(L+16)];
static void gemm(const float *P, int64_t R, int64_t K, const float *X0, int64_t T0, float *Y0) {
 for (int64_t tb = 0; tb < T0; tb += TBK) {
  const float *X = X0 + tb * K; float *Y = Y0 + tb * R; int64_t T = T0 - tb < TBK ? T0 - tb : TBK;
  for (int64_t k0 = 0; k0 < K; k0 += L) {
    int64_t k1 = k0 + L < K ? k0 + L : K;
    for (int64_t r0 = 0; r0 < R; r0 += MC) {
      int64_t r1 = r0 + MC < R ? r0 + MC : R;
      for (int64_t t = 0; t + NR <= T; t += NR) {
        const float *xs = X + t * K;
        if (XP == 2) { if (r0 == 0) for (int j = 0; j < NR; j++) memcpy(xp + (t + j) * (L + 16), X + (t + j) * K + k0, 4 * (k1 - k0)); xs = xp + t * (L + 16); } else if (XP) { if (r0 == 0) for (int64_t k = k0; k < k1; k++) for (int j = 0; j < NR; j++) xp[t * L + (k - k0) * NR + j] = X[(t + j) * K + k];
                  xs = xp + t * L; }
        for (int64_t r = r0; r < r1; r += 32) if (!ORDE)
          ukernel(P + (r / 16) * K * 16, P + (r / 16 + 1) * K * 16, K, xs, K, NR, k0, k1, Y + t * R + r, R, k0 == 0);
      }
      if (ORDE) for (int64_t r = r0; r < r1; r += 32) for (int64_t t = 0; t + NR <= T; t += NR)
          ukernel(P + (r / 16) * K * 16, P + (r / 16 + 1) * K * 16, K, xp + t * L, K, NR, k0, k1, Y + t * R + r, R, k0 == 0);
    }
  }
 }
}
int main(int argc, char **argv) {
  int R = atoi(argv[1]), K = atoi(argv[2]), T = atoi(argv[3]), N = atoi(argv[4]);
  float *W = aligned_alloc(64, 4L * R * K), *P = aligned_alloc(64, 4L * R * K), *X = aligned_alloc(64, 4L * T * K), *Y = aligned_alloc(64, 4L * T * R);
  for (long i = 0; i < (long)R * K; i++) W[i] = ((i * 7919) % 1000) * 1e-3f - 0.5f;
  for (long i = 0; i < (long)T * K; i++) X[i] = ((i * 31) % 100) * 0.01f - 0.3f;
  for (int p = 0; p < R / 16; p++) for (int k = 0; k < K; k++) for (int i = 0; i < 16; i++) P[((long)p * K + k) * 16 + i] = W[(long)(p * 16 + i) * K + k];
  double tm[400], tl[400], pk[400]; volatile float sink = 0;
  T = T / NR * NR;
  float *Y2 = aligned_alloc(64, 4L * T * R);
  vwn_mat Wm={.data=W,.type=0,.rows=R,.cols=K,.row_bytes=4*K,.packed=NULL};
  for (int i = 0; i < N; i++) { double t0 = now(); gemm(P, R, K, X, T, Y); tm[i] = now() - t0;
    t0 = now(); vwn_ops_avx512.matmul(&Wm,X,K,NULL,T,Y2,R,0,R); tl[i] = now() - t0;
    t0 = now(); sink += peak_run(100000); pk[i] = now() - t0; }
  qsort(tm, N, sizeof(double), cmpd); qsort(pk, N, sizeof(double), cmpd); qsort(tl, N, sizeof(double), cmpd);
  printf("library GEMM %.1f GF/s; new/library time %.3f\n", 2.0*R*K*T/tl[N/2]*1e-9, tm[N/2]/tl[N/2]);
  double err = 0; for (int t = 0; t < T; t += 37) for (int r = 0; r < R; r += 13) { double s = 0; for (int k = 0; k < K; k++) s += (double)W[(long)r*K+k]*X[(long)t*K+k]; double e = Y[(long)t*R+r] - s; if (e<0)e=-e; if (e>err) err=e; }
  double pkg = 100000.0 * 12 * 32 / pk[N / 2] * 1e-9, g = 2.0 * R * K * T / tm[N / 2] * 1e-9;
  printf("%dx%d T=%d L=%d NR=%d MC=%d: %.1f GF/s, peak %.1f -> %.0f%% (maxerr %.2g)\n", R, K, T, L, NR, MC, g, pkg, 100 * g / pkg, err);
}

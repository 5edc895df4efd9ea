/* fe.c -- does a loop of 16 independent FMAs slow down as loads are added (front-end bound)? */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
#define C16(X) X(0)X(1)X(2)X(3)X(4)X(5)X(6)X(7)X(8)X(9)X(10)X(11)X(12)X(13)X(14)X(15)
static float buf[64] __attribute__((aligned(64)));
#define LOOP(K) static __attribute__((noinline)) double run##K(long it){ \
  const __m512 b=_mm512_set1_ps(0.9999999f), c=_mm512_set1_ps(1e-7f); __m512 z=_mm512_setzero_ps(); \
  _Pragma("clang diagnostic ignored \"-Wunused-variable\"") \
  C16(D) double t0=now(); \
  for(long i=0;i<it;i++){ C16(S) const float *p=buf; __asm__ volatile("" : "+r"(p)); for(int q=0;q<K;q++){ __m512 l=_mm512_set1_ps(p[q]); __asm__ volatile("" :: "v"(l)); } } \
  double t=now()-t0; __m512 s=z; C16(A) static volatile float sink; sink=_mm512_reduce_add_ps(s); return it*16.0*32/t*1e-9; }
#define D(k) __m512 a##k=_mm512_set1_ps(0.01f*k);
#define S(k) a##k=_mm512_fmadd_ps(a##k,b,c);
#define A(k) s=_mm512_add_ps(s,a##k);
LOOP(0) LOOP(4) LOOP(8) LOOP(12) LOOP(16) LOOP(24)
int main(void){ long it=20000000;
 for(int r=0;r<5;r++){ double g0=run0(it),g4=run4(it),g8=run8(it),g12=run12(it),g16=run16(it),g24=run24(it);
  printf("16 FMA + 0/4/8/12/16/24 broadcast loads: %.0f %.0f %.0f %.0f %.0f %.0f GF/s\n",g0,g4,g8,g12,g16,g24);} }

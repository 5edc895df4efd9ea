#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
#define C16(X) X(0)X(1)X(2)X(3)X(4)X(5)X(6)X(7)X(8)X(9)X(10)X(11)X(12)X(13)X(14)X(15)
static float buf[1024] __attribute__((aligned(64)));
#define D(k) __m512 a##k=_mm512_set1_ps(0.01f*k);
#define S(k) a##k=_mm512_fmadd_ps(a##k,b,c);
#define A(k) s=_mm512_add_ps(s,a##k);
#define BODY(NAME, K, EXTRA) static __attribute__((noinline)) double NAME(long it){ \
  const __m512 b=_mm512_set1_ps(0.9999999f), c=_mm512_set1_ps(1e-7f); long u0=1,u1=2,u2=3,u3=4; \
  C16(D) double t0=now(); \
  for(long i=0;i<it;i++){ C16(S) const float *p=buf; __asm__ volatile("" : "+r"(p)); for(int q=0;q<K;q++){ EXTRA } } \
  double t=now()-t0; __m512 s=_mm512_setzero_ps(); C16(A) static volatile float sink; sink=_mm512_reduce_add_ps(s)+u0+u1+u2+u3; return it*16.0*32/t*1e-9; }
#define BC { __m512 l=_mm512_set1_ps(p[q]); __asm__ volatile("" :: "v"(l)); }
#define VL { __m512 l=_mm512_loadu_ps(p+16*q); __asm__ volatile("" :: "v"(l)); }
#define SL { float l=p[q]; __asm__ volatile("" :: "x"(l)); }
#define IA { __asm__ volatile("add $1, %0" : "+r"(u0)); }
#define NP { __asm__ volatile("nop"); }
BODY(b0,0,BC) BODY(b4,4,BC) BODY(b8,8,BC) BODY(v4,4,VL) BODY(v8,8,VL) BODY(s4,4,SL) BODY(s8,8,SL) BODY(i4,4,IA) BODY(i8,8,IA) BODY(n4,4,NP) BODY(n8,8,NP)
int main(void){ long it=20000000;
 for(int r=0;r<4;r++){
  printf("16 FMA + nothing %.0f | +4/+8 bcast %.0f %.0f | vec loads %.0f %.0f | scalar loads %.0f %.0f | int adds %.0f %.0f | nops %.0f %.0f GF/s\n",
   b0(it), b4(it), b8(it), v4(it), v8(it), s4(it), s8(it), i4(it), i8(it), n4(it), n8(it)); } }

#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 20000000L
int main(void){
  __m512i a0=_mm512_set1_epi8(3),a1=_mm512_set1_epi8(4),a2=_mm512_set1_epi8(6),a3=_mm512_set1_epi8(7);
  __m512i b0=_mm512_set1_epi8(5),b1=_mm512_set1_epi8(9);
  __m512 acc[6]; for(int i=0;i<6;i++) acc[i]=_mm512_set1_ps(0);
  __m512 dw0=_mm512_set1_ps(1e-9f),dw1=_mm512_set1_ps(2e-9f), dx0=_mm512_set1_ps(1.0f),dx1=_mm512_set1_ps(1.5f),dx2=_mm512_set1_ps(1.7f);
  __m512i nc0=_mm512_set1_epi32(1),nc1=_mm512_set1_epi32(2),nc2=_mm512_set1_epi32(3);
  double t0=now();
  for(long i=0;i<N;i++){
    __asm__ volatile("":"+v"(a0),"+v"(a1),"+v"(a2),"+v"(a3),"+v"(b0),"+v"(b1));
    __asm__ volatile("":"+v"(dw0),"+v"(dw1),"+v"(nc0),"+v"(nc1),"+v"(nc2));
    /* 2 rows (weights a*,b*) x 3 tokens: 6 units */
    __m512i w[2][4]={{a0,a1,a2,a3},{b0,b1,a1,a0}}; __m512 dw[2]={dw0,dw1};
    __m512i nc[3]={nc0,nc1,nc2}; __m512 dx[3]={dx0,dx1,dx2};
    for(int r=0;r<2;r++) for(int j=0;j<3;j++){ __m512i t=nc[j]; for(int c=0;c<4;c++) t=_mm512_dpbusd_epi32(t,w[r][c],w[1-r][(c+j)&3]);
      acc[r*3+j]=_mm512_fmadd_ps(_mm512_cvtepi32_ps(t),_mm512_mul_ps(dw[r],dx[j]),acc[r*3+j]); }
  }
  double dt=now()-t0; float f=0; for(int i=0;i<6;i++) f+=_mm512_reduce_add_ps(acc[i]);
  printf("unit (4 dpbusd+cvt+mul+fma): %.3f ns per unit = %.2f cycles@3.6  (%g)\n", dt/(N*6.0)*1e9, dt/(N*6.0)*1e9*3.6, f);
  return 0;
}

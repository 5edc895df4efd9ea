#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(void){
  for (int w=0; w<2; w++) {
  __m512 a[12]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-9f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps((float)i);
  long N=200000000; double t=now();
  for(long k=0;k<N;k++){
#define F(i) a[i]=_mm512_fmadd_ps(a[i],b,c);
    F(0)F(1)F(2)F(3)F(4)F(5)F(6)F(7)F(8)F(9)F(10)F(11)
  }
  t=now()-t; float s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]);
  printf("zmm: %.1f GFLOP/s (%g)\n", N*12*32/t*1e-9, s);
  __m256 y[12]; __m256 yb=_mm256_set1_ps(1.0000001f), yc=_mm256_set1_ps(1e-9f);
  for(int i=0;i<12;i++) y[i]=_mm256_set1_ps((float)i);
  t=now();
  for(long k=0;k<N;k++){
#define G(i) y[i]=_mm256_fmadd_ps(y[i],yb,yc);
    G(0)G(1)G(2)G(3)G(4)G(5)G(6)G(7)G(8)G(9)G(10)G(11)
  }
  t=now()-t; s=0; float tmp[8]; for(int i=0;i<12;i++){_mm256_storeu_ps(tmp,y[i]); s+=tmp[0];}
  printf("ymm: %.1f GFLOP/s (%g)\n", N*12*16/t*1e-9, s);
  }
}

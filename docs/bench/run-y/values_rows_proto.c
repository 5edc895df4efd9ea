#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define INLINE static inline __attribute__((always_inline))
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#ifndef R
#define R 4
#endif
static void vals_old(float*out,const float*p,const float*V,int ldv,int n){ /* hd 64 */
  __m512 acc[4]; for(int v=0;v<4;v++) acc[v]=_mm512_setzero_ps();
  for(int j=0;j<n;j++){ const __m512 pj=_mm512_set1_ps(p[j]); const float*row=V+(long)j*ldv; for(int v=0;v<4;v++) acc[v]=_mm512_fmadd_ps(pj,_mm512_loadu_ps(row+16*v),acc[v]); }
  for(int v=0;v<4;v++) _mm512_storeu_ps(out+16*v,acc[v]);
}
static void vals_new(float*const*out,const float*const*p,const float*V,int ldv,int n){
  __m512 acc[R][4]; for(int r=0;r<R;r++) for(int v=0;v<4;v++) acc[r][v]=_mm512_setzero_ps();
  for(int j=0;j<n;j++){ const float*row=V+(long)j*ldv; __m512 w[4]; for(int v=0;v<4;v++) w[v]=_mm512_loadu_ps(row+16*v);
    for(int r=0;r<R;r++){ const __m512 pj=_mm512_set1_ps(p[r][j]); for(int v=0;v<4;v++) acc[r][v]=_mm512_fmadd_ps(pj,w[v],acc[r][v]); } }
  for(int r=0;r<R;r++) for(int v=0;v<4;v++) _mm512_storeu_ps(out[r]+16*v,acc[r][v]);
}
int main(int argc,char**argv){
  int n=atoi(argv[1]), hd=64, rows=8;
  float*V=aligned_alloc(64,(size_t)n*hd*4),*p=aligned_alloc(64,rows*n*4),*o1=malloc(rows*hd*4),*o2=malloc(rows*hd*4);
  srand(3); for(long i=0;i<(long)n*hd;i++)V[i]=rand()/(float)RAND_MAX-0.5f; for(int i=0;i<rows*n;i++)p[i]=rand()/(float)RAND_MAX;
  double bo=1e9,bn=1e9;
  for(int rep=0;rep<200;rep++){
    double t0=now(); for(int r=0;r<rows;r++) vals_old(o1+r*hd,p+r*n,V,hd,n); double t1=now();
    for(int r=0;r<rows;r+=R){ float*oo[R]; const float*pp[R]; for(int i=0;i<R;i++){oo[i]=o2+(r+i)*hd; pp[i]=p+(r+i)*n;} vals_new(oo,pp,V,hd,n);} double t2=now();
    if(t1-t0<bo)bo=t1-t0; if(t2-t1<bn)bn=t2-t1;
  }
  printf("R=%d n=%d rows=%d: old %.2f us new %.2f us (%.2fx) same=%d\n",R,n,rows,bo*1e6,bn*1e6,bo/bn,memcmp(o1,o2,rows*hd*4)==0);
}

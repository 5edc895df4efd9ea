/* A/B of GEMM variants compiled from ops_avx512.c with different constants: tables v0..v(NV-1). */
#include "ops/ops.h"
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef NV
#define NV 2
#endif
extern const vwn_ops v0, v1
#if NV > 2
, v2
#endif
#if NV > 3
, v3
#endif
;
#include <immintrin.h>
static float peak_run(long N){ __m512 a[12]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-9f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps((float)i);
  for(long k=0;k<N;k++){
#define F(i) a[i]=_mm512_fmadd_ps(a[i],b,c);
    F(0)F(1)F(2)F(3)F(4)F(5)F(6)F(7)F(8)F(9)F(10)F(11)
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]));
  }
  float s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]); return s;}
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  const vwn_ops *ops[]={&v0,&v1
#if NV > 2
  ,&v2
#endif
#if NV > 3
  ,&v3
#endif
  };
  int R=atoi(argv[1]),C=atoi(argv[2]),T=atoi(argv[3]),type=atoi(argv[4]),N=atoi(argv[5]);
  size_t rb=vwn_row_bytes(type,C);
  char*w=aligned_alloc(64,rb*R); for(size_t i=0;i<rb*R/2;i++) ((uint16_t*)w)[i]=(uint16_t)(0x3c00+(i*7919)%1024) & 0x3fff;
  if(type==0) for(size_t i=0;i<(size_t)R*C;i++) ((float*)w)[i]=((i*7919)%1000)*1e-3f-0.5f;
  float*X=aligned_alloc(64,4*(size_t)T*C); for(size_t i=0;i<(size_t)T*C;i++)X[i]=((i*31)%100)*0.01f-0.3f;
  float*Y[NV]; for(int v=0;v<NV;v++) Y[v]=aligned_alloc(64,4*(size_t)T*R);
  vwn_mat W={.data=w,.type=type,.rows=R,.cols=C,.row_bytes=rb,.packed=NULL};
  double *tm[NV]; for(int v=0;v<NV;v++) tm[v]=calloc(N,sizeof(double));
  for(int i=0;i<N;i++) for(int k=0;k<NV;k++){int v=(i&1)?NV-1-k:k; double t0=now(); ops[v]->matmul(&W,X,C,NULL,T,Y[v],R,0,R); tm[v][i]=now()-t0;}
  double pk[4000]; volatile float sink=0; for(int i=0;i<N;i++){double t0=now(); sink+=peak_run(100000); pk[i]=now()-t0;}
  qsort(pk,N,sizeof(double),cmpd); double peak=100000.0*12*32/pk[N/2]*1e-9; printf("peak %.1f GF/s (1 core, after)\n",peak);
  for(int v=0;v<NV;v++){ if(memcmp(Y[0],Y[v],4*(size_t)T*R)) printf("v%d DIFFERS\n",v); qsort(tm[v],N,sizeof(double),cmpd);}
  printf("%dx%d T=%d type %d:", R,C,T,type);
  for(int v=0;v<NV;v++) printf("  v%d %.1f GF/s (%.3f)", v, 2.0*R*C*T/tm[v][N/2]*1e-9, tm[v][N/2]/tm[0][N/2]);
  printf("\n");
}

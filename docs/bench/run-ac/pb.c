/* A/B of gemm_avx512.c variants (v0..): packed panels, one thread */
#include "ops/ops.h"
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef NV
#define NV 2
#endif
typedef void fn(const vwn_mat *W, const float *X, int64_t ldx, const float *xq, int64_t T, float *Y, int64_t ldy, int64_t r0, int64_t r1);
typedef size_t pbfn(int64_t T, int64_t cols);
typedef void pxfn(const float *X, int64_t ldx, int64_t T, int64_t cols, int64_t t0, int64_t t1, void *out);
extern fn v0, v1, v2, v3;
extern pbfn v0_pb, v1_pb, v2_pb, v3_pb;
extern pxfn v0_px, v1_px, v2_px, v3_px;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  fn *f[]={v0,v1,v2,v3}; pbfn *pbf[]={v0_pb,v1_pb,v2_pb,v3_pb}; pxfn *pxf[]={v0_px,v1_px,v2_px,v3_px};
  int R=atoi(argv[1]),C=atoi(argv[2]),T=atoi(argv[3]),type=atoi(argv[4]),N=atoi(argv[5]);
  size_t rb=vwn_row_bytes(type,C);
  char*w=aligned_alloc(64,rb*R); for(size_t i=0;i<rb*R/2;i++) ((uint16_t*)w)[i]=(uint16_t)(0x3c00+(i*7919)%1024) & 0x3fff;
  if(type==0) for(size_t i=0;i<(size_t)R*C;i++) ((float*)w)[i]=((i*7919)%1000)*1e-3f-0.5f;
  char*pk=aligned_alloc(64,(vwn_packed_bytes(type,R,C)+63)/64*64); vwn_pack_rows(type,w,pk,R,C);
  float*X=aligned_alloc(64,4*(size_t)T*C); for(size_t i=0;i<(size_t)T*C;i++)X[i]=((i*31)%100)*0.01f-0.3f;
  float*Y[NV]; for(int v=0;v<NV;v++) Y[v]=aligned_alloc(64,4*(size_t)T*R);
  vwn_mat W={.data=w,.type=type,.rows=R,.cols=C,.row_bytes=rb,.packed=pk};
  double *tm[NV]; for(int v=0;v<NV;v++) tm[v]=calloc(N,sizeof(double));
  void *xp=malloc(pbf[0](T,C)+64);
  for(int i=0;i<N;i++) for(int k=0;k<NV;k++){int v=(i&1)?NV-1-k:k; double t0=now(); pxf[v](X,C,T,C,0,T,xp); f[v](&W,X,C,xp,T,Y[v],R,0,R); tm[v][i]=now()-t0;}
  for(int v=0;v<NV;v++){ if(memcmp(Y[0],Y[v],4*(size_t)T*R)) printf("v%d DIFFERS\n",v); qsort(tm[v],N,sizeof(double),cmpd);}
  printf("%dx%d T=%d type %d:", R,C,T,type);
  for(int v=0;v<NV;v++) printf("  v%d %.1f GF/s (%.3f)", v, 2.0*R*C*T/tm[v][N/2]*1e-9, tm[v][N/2]/tm[0][N/2]);
  printf("\n");
}

/* pk.c -- variants of lib/ops/gemm_avx512.c (v0..v3, -D GEMM_NP / NR) on one thread, each call
 * followed by an FMA loop of similar length: per variant the median GFLOP/s and the median of
 * (GEMM GFLOP/s / FMA loop GFLOP/s) over adjacent pairs -- the tile's share of the core's peak in
 * the same moments, on a host whose cores' throughput drifts by 2x. */
#include "ops/ops.h"
#include "vwn.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef void fn(const vwn_mat *W, const float *X, int64_t ldx, const float *xq, int64_t T, float *Y, int64_t ldy, int64_t r0, int64_t r1);
typedef size_t pbfn(int64_t T, int64_t cols);
typedef void pxfn(const float *X, int64_t ldx, int64_t T, int64_t cols, int64_t t0, int64_t t1, void *out);
extern fn v0, v1, v2, v3;
extern pbfn v0_pb, v1_pb, v2_pb, v3_pb;
extern pxfn v0_px, v1_px, v2_px, v3_px;
#include "fma_loop.h"
int main(int argc,char**argv){
  fn *f[]={v0,v1,v2,v3}; pbfn *pbf[]={v0_pb,v1_pb,v2_pb,v3_pb}; pxfn *pxf[]={v0_px,v1_px,v2_px,v3_px};
  int R=atoi(argv[1]),C=atoi(argv[2]),T=atoi(argv[3]),type=atoi(argv[4]),N=atoi(argv[5]),NV=atoi(argv[6]),RP=argc>7?atoi(argv[7]):1;
  size_t rb=vwn_row_bytes(type,C);
  char*w=aligned_alloc(64,rb*R); for(size_t i=0;i<rb*R/2;i++) ((uint16_t*)w)[i]=(uint16_t)(0x3c00+(i*7919)%1024) & 0x3fff;
  if(type==0) for(size_t i=0;i<(size_t)R*C;i++) ((float*)w)[i]=((i*7919)%1000)*1e-3f-0.5f;
  char*pk=aligned_alloc(64,(vwn_packed_bytes(type,R,C)+63)/64*64); vwn_pack_rows(type,w,pk,R,C);
  float*X=aligned_alloc(64,4*(size_t)T*C); for(size_t i=0;i<(size_t)T*C;i++)X[i]=((i*31)%100)*0.01f-0.3f;
  float*Y[4]; for(int v=0;v<NV;v++) Y[v]=aligned_alloc(64,4*(size_t)T*R);
  vwn_mat W={.data=w,.type=type,.rows=R,.cols=C,.row_bytes=rb,.packed=pk};
  double *g[4],*r[4]; for(int v=0;v<NV;v++){ g[v]=calloc(N,sizeof(double)); r[v]=calloc(N,sizeof(double)); }
  void *xp=malloc(pbf[0](T,C)+64);
  long it = (long)(2.0*R*C*T*RP/512/16/4); /* an FMA loop of about a quarter of the GEMM's FLOP */
  for(int i=0;i<N;i++) for(int k=0;k<NV;k++){int v=(i+k)%NV;
    pxf[v](X,C,T,C,0,T,xp); double t0=now(); for(int q=0;q<RP;q++) f[v](&W,X,C,xp,T,Y[v],R,0,R); double t=(now()-t0)/RP;
    double pk_=fma_gflops(it); g[v][i]=2.0*R*C*T/t*1e-9; r[v][i]=g[v][i]/pk_; }
  for(int v=0;v<NV;v++){ if(memcmp(Y[0],Y[v],4*(size_t)T*R)) printf("v%d DIFFERS\n",v); qsort(g[v],N,sizeof(double),cmpd); qsort(r[v],N,sizeof(double),cmpd);}
  printf("%dx%d T=%d type %d:", R,C,T,type);
  for(int v=0;v<NV;v++) printf("  v%d %.1f GF/s, %.0f%% of FMA loop (q1-q3 %.0f-%.0f%%)", v, g[v][N/2], 100*r[v][N/2], 100*r[v][N/4], 100*r[v][3*N/4]);
  printf("\n");
}

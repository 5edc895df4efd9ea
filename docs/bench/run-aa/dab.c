/* A/B of decode matmuls (variant tables v0_vnni, v1_vnni): one token, 2 threads (rows halved), from DRAM */
#include "ops/ops.h"
#include "vwn.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern const vwn_ops v0_vnni, v1_vnni, v2_vnni;
#define NV 3
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int type=atoi(argv[1]), R=atoi(argv[2]),C=atoi(argv[3]),N=atoi(argv[4]),T=atoi(argv[5]),NT=atoi(argv[6]);
  const vwn_ops*ops[NV]={&v0_vnni,&v1_vnni,&v2_vnni};
  float*X=aligned_alloc(64,4*(size_t)C*T); for(int i=0;i<C*T;i++)X[i]=((i*31)%100)*0.01f-0.3f;
  vwn_block_q8_0*xq=aligned_alloc(64,sizeof(vwn_block_q8_0)*(size_t)C/32*T); for(int t=0;t<T;t++) ops[0]->quantize_q8_0(X+t*C,xq+t*C/32,C);
  float*Y[NV]; for(int v=0;v<NV;v++) Y[v]=aligned_alloc(64,4*(size_t)R*T);
  size_t rb=vwn_row_bytes(type,C); int copies=4; vwn_mat W[4];
  for(int k=0;k<copies;k++){ char*w=aligned_alloc(4096,rb*R);
    if(type==0) for(size_t i=0;i<(size_t)R*C;i++) ((float*)w)[i]=((i*7919)%1000)*1e-3f-0.5f;
    else if(type==30) for(size_t i=0;i<(size_t)R*C;i++) ((uint16_t*)w)[i]=vwn_fp32_to_bf16(((i*7919)%1000)*1e-3f-0.5f);
    else { for(size_t i=0;i<rb*R;i++) w[i]=(char)((i*7919)%251); for(int r=0;r<R;r++) for(int b=0;b<C/32;b++) { if(type==8) ((vwn_block_q8_0*)(w+r*rb))[b].d=0x2c00; else ((vwn_block_q4_0*)(w+r*rb))[b].d=0x2c00; } }
    W[k]=(vwn_mat){.data=w,.type=type,.rows=R,.cols=C,.row_bytes=rb,.packed=NULL};
    if(type==8){ char*p=aligned_alloc(4096,rb*R); vwn_pack_rows(8,w,p,R,C); W[k].packed=p; }
  }
  double tm[NV][4000];
  for(int i=0;i<N;i++) for(int q=0;q<NV;q++){int v=(i&1)?NV-1-q:q; const vwn_mat*Wk=&W[(NV*i+q)%copies]; double t0=now();
#pragma omp parallel num_threads(NT)
    { int th=omp_get_thread_num(); int64_t a=(int64_t)R*th/NT, b=(int64_t)R*(th+1)/NT; ops[v]->matmul(Wk,X,C,xq,T,Y[v],R,a,b); }
    tm[v][i]=now()-t0;}
  printf("type %d %dx%d T=%d threads %d: %s", type,R,C,T,NT, (memcmp(Y[0],Y[1],4*(size_t)R*T)||memcmp(Y[0],Y[2],4*(size_t)R*T))?"DIFF ":"");
  for(int v=0;v<NV;v++){ qsort(tm[v],N,sizeof(double),cmpd); printf("  v%d %.2f GB/s (%.3f)",v,(double)R*rb/tm[v][N/2]*1e-9,tm[v][N/2]/tm[0][N/2]);} printf("\n");
}

/* the AVX-512 float GEMM (the build's) on 1 thread vs 2 (rows split in halves, activations prepared once) */
#include "ops/ops.h"
#include "vwn.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
extern const vwn_ops vwn_ops_avx512;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int R=atoi(argv[1]),C=atoi(argv[2]),T=atoi(argv[3]),N=atoi(argv[4]);
  size_t rb=4*(size_t)C; float*w=aligned_alloc(64,rb*R); for(size_t i=0;i<(size_t)R*C;i++) w[i]=((i*7919)%1000)*1e-3f-0.5f;
  char*pk=aligned_alloc(64,(vwn_packed_bytes(0,R,C)+63)/64*64); vwn_pack_rows(0,w,pk,R,C);
  float*X=aligned_alloc(64,4*(size_t)T*C); for(size_t i=0;i<(size_t)T*C;i++)X[i]=((i*31)%100)*0.01f-0.3f;
  float*Y=aligned_alloc(64,4*(size_t)T*R);
  vwn_mat W={.data=w,.type=0,.rows=R,.cols=C,.row_bytes=rb,.packed=pk};
  const vwn_ops *o=&vwn_ops_avx512; void *xp=malloc(o->prep_bytes(T,C));
  double t1[400],t2[400],h0[400],h1[400];
  for(int i=0;i<N;i++){
    double s=now(); o->prepare_x(X,C,T,C,0,T,xp); o->matmul(&W,X,C,xp,T,Y,R,0,R); t1[i]=now()-s;
    s=now();
#pragma omp parallel num_threads(2)
    { int id=omp_get_thread_num(); int64_t r0=id? (R/2+15)/16*16:0, r1=id?R:(R/2+15)/16*16;
      o->prepare_x(X,C,T,C,id?T/2:0,id?T:T/2,xp);
#pragma omp barrier
      double a=now(); o->matmul(&W,X,C,xp,T,Y,R,r0,r1); double b=now(); if(id) h1[i]=b-a; else h0[i]=b-a; }
    t2[i]=now()-s; }
  qsort(t1,N,8,cmpd); qsort(t2,N,8,cmpd); qsort(h0,N,8,cmpd); qsort(h1,N,8,cmpd);
  printf("%dx%d T=%d: 1 thread %.1f GF/s, 2 threads %.1f GF/s (%.2fx); halves alone %.1f / %.1f ms of %.1f\n",R,C,T,2.0*R*C*T/t1[N/2]*1e-9,2.0*R*C*T/t2[N/2]*1e-9,t1[N/2]/t2[N/2],h0[N/2]*1e3,h1[N/2]*1e3,t2[N/2]*1e3);
}

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include "ops/ops.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int level=atoi(argv[1]), hd=atoi(argv[2]), n=atoi(argv[3]), f16=argc>4;
  const vwn_ops *ops=vwn_ops_get(level);
  float *K=aligned_alloc(64,(size_t)n*hd*4+64), *q=aligned_alloc(64,hd*4+64), *o=aligned_alloc(64,n*4+64);
  uint16_t *Kh=(uint16_t*)K;
  for(long i=0;i<(long)n*hd;i++)K[i]=(i%13)*0.1f; for(int i=0;i<hd;i++)q[i]=i*0.01f;
  if(f16) for(long i=0;i<(long)n*hd;i++)Kh[i]=0x3c00;
  double best=1e9;
  for(int r=0;r<20;r++){ double t0=now(); for(int k=0;k<200;k++) { if(f16) ops->attn_scores_f16(o,q,Kh,hd,n,hd,0.1f); else ops->attn_scores(o,q,K,hd,n,hd,0.1f);} double dt=(now()-t0)/200; if(dt<best)best=dt;}
  printf("%s hd %d keys %d%s: %.2f us, %.1f GB/s\n",ops->name,hd,n,f16?" f16":"",best*1e6,n*hd*(f16?2:4)/best/1e9);
}

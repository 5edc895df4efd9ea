#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
extern int vwn_ab_one;
void vwn_avx512_attn_scores(float *out, const float *q, const float *K, int64_t ldk, int64_t n_kv, int64_t head_dim, float scale);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int hd=atoi(argv[1]), n=atoi(argv[2]);
  float *K=aligned_alloc(64,(size_t)n*hd*4+64), *q=aligned_alloc(64,hd*4+64), *o=aligned_alloc(64,n*4+64);
  for(long i=0;i<(long)n*hd;i++)K[i]=(i%13)*0.1f; for(int i=0;i<hd;i++)q[i]=i*0.01f;
  double best[2]={1e9,1e9};
  for(int r=0;r<40;r++){ int ab=r&1; vwn_ab_one=ab; double t0=now(); for(int k=0;k<200;k++) vwn_avx512_attn_scores(o,q,K,hd,n,hd,0.1f); double dt=(now()-t0)/200; if(dt<best[ab])best[ab]=dt;}
  printf("hd %d keys %d: row-at-a-time %.2f us, tree %.2f us (%.3f); %.1f GB/s -> %.1f\n",hd,n,best[0]*1e6,best[1]*1e6,best[1]/best[0], n*hd*4/best[0]/1e9, n*hd*4/best[1]/1e9);
}

#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
extern int vwn_ab_seg1;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  vwn_model_params mp=vwn_model_default_params(); vwn_model*m=NULL;
  if(vwn_model_load(argv[1],&mp,&m)){printf("load: %s\n",vwn_last_error());return 1;}
  int reps=atoi(argv[2]), P=atoi(argv[3]), B=atoi(argv[4]);
  vwn_context_params cp=vwn_context_default_params(); cp.n_ctx=P+64<4096?4096:P+64; cp.n_threads=2; cp.n_batch=512;
  vwn_context*c=NULL; if(vwn_context_new(m,&cp,&c)){printf("ctx: %s\n",vwn_last_error());return 1;}
  vwn_model_info mi; vwn_model_get_info(m,&mi); int32_t *t=malloc((P+64)*4); for(int i=0;i<P+64;i++)t[i]=(i*7919)%mi.n_vocab;
  for(int o=0;o<P;o+=512){int n=P-o<512?P-o:512; vwn_decode(c,t+o,n);}
  double x[256],y[256]; int nx=0,ny=0;
  for(int r=0;r<2*reps;r++){
    int off=(r%4==0||r%4==3); vwn_ab_seg1=off?0:atoi(getenv("ON")?getenv("ON"):"1");
    double t0=now(); for(int k=0;k<16;k++) vwn_decode(c,t+P+k*B,B); double dt=(now()-t0)/16;
    vwn_context_truncate(c,P);
    if(off) x[nx++]=dt; else y[ny++]=dt;
  }
  qsort(x,nx,sizeof(double),cmp); qsort(y,ny,sizeof(double),cmp);
  printf("%s P=%d batch %d: ms/call old/new %.3f/%.3f (%.3f)\n", argv[1], P, B, x[nx/2]*1e3, y[ny/2]*1e3, y[ny/2]/x[nx/2]);
  return 0;
}

#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
extern int vwn_ab_grp_max;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  vwn_model_params mp=vwn_model_default_params(); vwn_model*m=NULL;
  if(vwn_model_load(argv[1],&mp,&m)){printf("load: %s\n",vwn_last_error());return 1;}
  vwn_context_params cp=vwn_context_default_params(); cp.n_ctx=512; cp.n_threads=2; cp.n_batch=64;
  vwn_context*c=NULL; if(vwn_context_new(m,&cp,&c)){printf("ctx: %s\n",vwn_last_error());return 1;}
  int32_t p[16]; for(int i=0;i<16;i++)p[i]=100+i;
  vwn_decode(c,p,16);
  int reps=atoi(argv[2]);
  printf("%s: GEMM-or-old/groups ms", argv[1]);
  for(int a=3;a<argc;a++){ int T=atoi(argv[a]);
    int32_t t[64]; for(int i=0;i<64;i++)t[i]=5+i;
    double x[512],y[512]; int nx=0,ny=0;
    for(int r=0;r<2*reps;r++){
      int off = (r%4==0||r%4==3);
      vwn_ab_grp_max = off ? 0 : 64;
      double t0=now(); vwn_decode(c,t,T); double dt=now()-t0;
      vwn_context_truncate(c,16);
      if(off) x[nx++]=dt; else y[ny++]=dt;
    }
    qsort(x,nx,sizeof(double),cmp); qsort(y,ny,sizeof(double),cmp);
    printf("  T=%d %.2f/%.2f (%.3f)", T, x[nx/2]*1e3, y[ny/2]*1e3, y[ny/2]/x[nx/2]);
  }
  printf("\n");
  return 0;
}

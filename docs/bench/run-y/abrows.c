#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
extern int vwn_ab_rows;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  vwn_model_params mp=vwn_model_default_params(); vwn_model*m=NULL;
  if(vwn_model_load(argv[1],&mp,&m)){printf("load: %s\n",vwn_last_error());return 1;}
  int reps=atoi(argv[2]), nth=atoi(argv[3]);
  vwn_context_params cp=vwn_context_default_params(); cp.n_ctx=4096; cp.n_threads=nth; cp.n_batch=512;
  if(getenv("KVF16")) cp.kv_type=VWN_TYPE_F16;
  vwn_context*c=NULL; if(vwn_context_new(m,&cp,&c)){printf("ctx: %s\n",vwn_last_error());return 1;}
  printf("%s t%d%s: prefill ms old/new", argv[1], nth, getenv("KVF16")?" kv f16":"");
  for(int a=4;a<argc;a++){ int T=atoi(argv[a]);
    int32_t *t=malloc(T*4); for(int i=0;i<T;i++)t[i]=(i*7919)%32000;
    double x[64],y[64]; int nx=0,ny=0;
    for(int r=0;r<2*reps;r++){
      int off=(r%4==0||r%4==3); vwn_ab_rows = !off;
      double t0=now(); for(int o=0;o<T;o+=512){int n=T-o<512?T-o:512; vwn_decode(c,t+o,n);} double dt=now()-t0;
      vwn_context_truncate(c,0);
      if(off) x[nx++]=dt; else y[ny++]=dt;
    }
    qsort(x,nx,sizeof(double),cmp); qsort(y,ny,sizeof(double),cmp);
    printf("  T=%d %.1f/%.1f (%.3f)", T, x[nx/2]*1e3, y[ny/2]*1e3, y[ny/2]/x[nx/2]); fflush(stdout);
    free(t);
  }
  printf("\n");
  return 0;
}

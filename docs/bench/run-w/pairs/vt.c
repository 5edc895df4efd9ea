#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  vwn_model_params mp=vwn_model_default_params(); vwn_model*m=NULL;
  if(vwn_model_load(argv[1],&mp,&m)){printf("load: %s\n",vwn_last_error());return 1;}
  vwn_context_params cp=vwn_context_default_params(); cp.n_ctx=512; cp.n_threads=2;
  vwn_context*c=NULL; if(vwn_context_new(m,&cp,&c)){printf("ctx: %s\n",vwn_last_error());return 1;}
  int32_t p[16]; for(int i=0;i<16;i++)p[i]=100+i;
  vwn_decode(c,p,16);
  int reps=atoi(argv[2]);
  for(int round=0;round<1;round++){
    for(int T=1;T<=8;T++){
      int32_t t[8]={5,6,7,8,9,10,11,12};
      double best=1e9, sum=0;
      for(int r=0;r<reps;r++){
        double t0=now(); vwn_decode(c,t,T); double dt=now()-t0;
        vwn_context_truncate(c,16);
        sum+=dt; if(dt<best)best=dt;
      }
      printf("T=%d best %.3f ms mean %.3f ms\n",T,best*1e3,sum/reps*1e3);
    }
  }
  return 0;
}

/* Three settings of a throwaway switch in one process: a T-token vwn_decode after a 16-token prompt,
 * then a truncate, the settings in ABCCBA order, medians (ms). Built against a library that defines
 * the switch: -DAB_SET(k)='...' sets it for setting k (0, 1, 2). The session's runs:
 *   column block:  AB_SET(k)='vwn_ab_kc = kcs[k]' (three block widths from argv[5..7])
 *   group shape:   AB_SET(k)='(vwn_ab_grp_off = (k) == 0, vwn_ab_alt = (k) == 2)'
 *   Q4_0 pairs:    AB_SET(k)='vwn_ab_q4pair = (k)'
 * usage: ab_three_ways MODEL REPS T... (T values up to 256) */
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
extern int vwn_ab_kc, vwn_ab_grp_off, vwn_ab_alt, vwn_ab_q4pair;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  vwn_model_params mp=vwn_model_default_params(); vwn_model*m=NULL;
  if(vwn_model_load(argv[1],&mp,&m)){printf("load: %s\n",vwn_last_error());return 1;}
  vwn_context_params cp=vwn_context_default_params(); cp.n_ctx=512; cp.n_threads=2; cp.n_batch=256;
  vwn_context*c=NULL; if(vwn_context_new(m,&cp,&c)){printf("ctx: %s\n",vwn_last_error());return 1;}
  int32_t p[16]; for(int i=0;i<16;i++)p[i]=100+i;
  vwn_decode(c,p,16);
  int reps=atoi(argv[2]);
  printf("%s: settings 0/1/2 ms", argv[1]);
  for(int a=3;a<argc;a++){ int T=atoi(argv[a]);
    int32_t t[256]; for(int i=0;i<256;i++)t[i]=5+i;
    double x[3][512]; int n[3]={0,0,0};
    for(int r=0;r<3*reps;r++){
      int k = (r/3)%2 ? 2-(r%3) : r%3;
      AB_SET(k);
      double t0=now(); vwn_decode(c,t,T); double dt=now()-t0;
      vwn_context_truncate(c,16);
      x[k][n[k]++]=dt;
    }
    printf("  T=%d", T);
    for(int k=0;k<3;k++){qsort(x[k],n[k],sizeof(double),cmp); printf(" %.2f", x[k][n[k]/2]*1e3);}
  }
  printf("\n");
  return 0;
}

/* Decode attention, the paged cache (the library) against the session-start per-head cache
 * (old_attention.c: git show cd8ea5f:lib/attention.c renamed, compiled with its own attention.h).
 * 12 layers; before each, 10 MB of "weights" read on 2 threads evict the caches; only the
 * attention is timed; old and new alternate rep by rep (ABBA). args: N_POS REPS [HKV] [THREADS] */
#include "attention.h"
#include "ops/ops.h"
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
void old_vwn_attention(const vwn_ops *, const float *, int32_t, const void *, const void *, int32_t, int32_t, int32_t, int32_t, int32_t, float *, float *, int32_t, int, int64_t);
size_t old_vwn_attention_scratch_floats(int32_t, int32_t, int32_t, int);
enum{H=12,HD=64,L=12};
static _Alignas(64) float sink[64];
static __m512 rd(const float*p,size_t n,__m512 a){for(size_t i=0;i<n;i+=16)a=_mm512_add_ps(a,_mm512_load_ps(p+i));return a;}
int main(int argc,char**argv){int n_pos=atoi(argv[1]),reps=atoi(argv[2]),HKV=argc>3?atoi(argv[3]):12,NT=argc>4?atoi(argv[4]):2; int n_ctx=n_pos+200;
 const vwn_ops*ops=vwn_ops_best();
 size_t lay_new=vwn_kv_layer_bytes(n_ctx,HKV,HD,4)/4; const size_t voff=getenv("IL")?(size_t)VWN_ATT_POS_BLOCK*HD:lay_new, lay_old=(size_t)HKV*n_ctx*HD, wfl=10u<<20>>2;
 float*kn=aligned_alloc(2<<20,(2*lay_new*L*4+(2<<20))/(2<<20)*(2<<20)+(2<<20)),*ko=aligned_alloc(2<<20,(2*lay_old*L*4+(2<<20))/(2<<20)*(2<<20)+(2<<20));
 float*w=aligned_alloc(2<<20,wfl*L*4); for(size_t i=0;i<wfl*L;i++)w[i]=1.0f;
 srand(1);
 for(int l=0;l<L;l++)for(int kvh=0;kvh<HKV;kvh++)for(int p=0;p<n_ctx;p++)for(int c=0;c<HD;c++){float k=(float)rand()/(float)RAND_MAX-.5f,v=(float)rand()/(float)RAND_MAX-.5f;
   float*Kn=kn+(size_t)l*2*lay_new,*Vn=Kn+voff,*Ko=ko+(size_t)l*2*lay_old,*Vo=Ko+lay_old;
   ((float*)vwn_kv_row(Kn,4,HKV,HD,kvh,p))[c]=k; ((float*)vwn_kv_row(Vn,4,HKV,HD,kvh,p))[c]=v;
   Ko[((size_t)kvh*n_ctx+p)*HD+c]=k; Vo[((size_t)kvh*n_ctx+p)*HD+c]=v;}
 static float q[H*HD],on[H*HD],oo[L][H*HD]; for(int i=0;i<H*HD;i++)q[i]=(float)rand()/(float)RAND_MAX;
 size_t scn=vwn_attention_scratch_floats(H,HD,n_ctx,NT), sco=old_vwn_attention_scratch_floats(H,HD,n_ctx,NT);
 float*sc=aligned_alloc(64,((scn>sco?scn:sco)*4+63)/64*64);
 double T[2]={0}; double maxd=0;
 int only=getenv("ONLY")?atoi(getenv("ONLY")):-1;
 for(int r=0;r<reps;r++)for(int k=0;k<2;k++){int m=(r&1)?1-k:k; if(only>=0&&m!=only)continue;
  for(int l=0;l<L;l++){
#pragma omp parallel num_threads(2)
   {int i=omp_get_thread_num();__m512 a=_mm512_setzero_ps();a=rd(w+l*wfl+i*wfl/2,wfl/2,a);_mm512_store_ps(sink+16*i,_mm512_add_ps(a,_mm512_load_ps(sink+16*i)));}
   double t0=now();
   if(m==0) old_vwn_attention(ops,q,VWN_TYPE_F32,ko+(size_t)l*2*lay_old,ko+(size_t)l*2*lay_old+lay_old,n_pos-1,1,H,HKV,HD,oo[l],sc,n_ctx,NT,VWN_ATT_SPLIT_MEMORY);
   else vwn_attention(ops,q,VWN_TYPE_F32,kn+(size_t)l*2*lay_new,kn+(size_t)l*2*lay_new+voff,n_pos-1,1,H,HKV,HD,on,sc,n_ctx,NT,VWN_ATT_SPLIT_MEMORY);
   T[m]+=now()-t0;
   if(m==1&&r<2)for(int i=0;i<H*HD;i++){double d=fabs(on[i]-oo[l][i]);if(d>maxd)maxd=d;}
  }}
 (void)oo;
 printf("pos %4d Hkv %2d threads %d: old %6.2f us/layer  new %6.2f us/layer  new/old %.3f  (max |diff| %.1e)\n",n_pos,HKV,NT,T[0]/(L*reps)*1e6,T[1]/(L*reps)*1e6,T[1]/T[0],maxd);
 return sink[0]==12345;}

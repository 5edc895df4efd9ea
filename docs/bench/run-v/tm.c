/* bare KV reads: per-head layout head after head vs token-major rows, decode-like (evicted) */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
enum{H=12,HD=64,L=12};
static _Alignas(64) float sink[64];
static __m512 rd(const float*p,size_t n,__m512 a){for(size_t i=0;i<n;i+=16)a=_mm512_add_ps(a,_mm512_load_ps(p+i));return a;}
int main(int argc,char**argv){int n_pos=atoi(argv[1]),n_ctx=atoi(argv[2]),reps=atoi(argv[3]);
 size_t layer=(size_t)H*n_ctx*HD, wfl=10u<<20>>2;
 float*kv=aligned_alloc(2<<20,2*layer*L*4+(2<<20)); float*w=aligned_alloc(2<<20,wfl*L*4);
 for(size_t i=0;i<2*layer*L;i++)kv[i]=1.0f; for(size_t i=0;i<wfl*L;i++)w[i]=1.0f;
 double T[4]={0};
 for(int r=0;r<reps;r++)for(int m=0;m<3;m++)for(int l=0;l<L;l++){
#pragma omp parallel num_threads(2)
  {int i=omp_get_thread_num();__m512 a=_mm512_setzero_ps();a=rd(w+l*wfl+i*wfl/2,wfl/2,a);_mm512_store_ps(sink+16*i,a);}
  double t0=now(); float*K=kv+(size_t)l*2*layer,*V=K+layer;
#pragma omp parallel num_threads(2)
  {int i=omp_get_thread_num();__m512 a=_mm512_setzero_ps();int h0=i*H/2,h1=(i+1)*H/2;size_t np=(size_t)n_pos*HD;
   if(m==0){for(int h=h0;h<h1;h++){a=rd(K+h*(size_t)n_ctx*HD,np,a);a=rd(V+h*(size_t)n_ctx*HD,np,a);}}
   else if(m==1){ /* token-major: row p = H*HD floats; thread's heads h0..h1 contiguous */
     for(int kv2=0;kv2<2;kv2++){const float*B=kv2?V:K; for(int p=0;p<n_pos;p++)a=rd(B+(size_t)p*H*HD+h0*HD,(size_t)(h1-h0)*HD,a);} }
   else { /* token-major, split by positions: each thread all heads of half the positions */
     int p0=i*n_pos/2,p1=(i+1)*n_pos/2; for(int kv2=0;kv2<2;kv2++){const float*B=kv2?V:K; a=rd(B+(size_t)p0*H*HD,(size_t)(p1-p0)*H*HD,a);} }
   _mm512_store_ps(sink+16*i,_mm512_add_ps(a,_mm512_load_ps(sink+16*i)));}
  T[m]+=now()-t0;}
 double b=2.0*H*n_pos*HD*4*L*reps;
 for(int m=0;m<3;m++)printf("pos %d mode %d: %.2f us/layer %.1f GB/s ratio %.3f\n",n_pos,m,T[m]/(L*reps)*1e6,b/T[m]/1e9,T[m]/T[0]);
 printf("%g\n",sink[0]);}

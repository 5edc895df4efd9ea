/* Can a part of the weight stream stay in L3 across passes if the rest is read non-temporally?
 * 2 threads each read half of [0,N) MB per pass; the first R MB of each thread's half... no: the
 * last KEEP MB (split over threads) read with plain loads, the rest with prefetchnta ahead + loads (mode 1)
 * or plain (mode 0). Modes alternate pass by pass. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static _Alignas(64) float sink[64];
static __m512 rd(const char*p,size_t n,__m512 a){for(size_t i=0;i<n;i+=64)a=_mm512_add_ps(a,_mm512_load_ps((const float*)(p+i)));return a;}
static __m512 rdfl(const char*p,size_t n,__m512 a,size_t behind){for(size_t i=0;i<n;i+=64){a=_mm512_add_ps(a,_mm512_load_ps((const float*)(p+i)));if(i>=behind)_mm_clflushopt((void*)(p+i-behind));}return a;}
static __m512 rdnta(const char*p,size_t n,__m512 a,size_t ahead){for(size_t i=0;i<n;i+=64){_mm_prefetch(p+i+ahead,_MM_HINT_NTA);a=_mm512_add_ps(a,_mm512_load_ps((const float*)(p+i)));}return a;}
int main(int argc,char**argv){size_t N=(size_t)atoi(argv[1])<<20, KEEP=(size_t)atoi(argv[2])<<20; int reps=atoi(argv[3]); size_t ahead=argc>4?(size_t)atoi(argv[4]):1024;
 char*w=aligned_alloc(2<<20,N); for(size_t i=0;i<N;i+=4)*(float*)(w+i)=1.0f;
 double T[3]={0}; int cnt[3]={0};
 for(int r=0;r<reps;r++)for(int m=0;m<3;m++){double t0=now();
#pragma omp parallel num_threads(2)
  {int i=omp_get_thread_num();__m512 a=_mm512_setzero_ps(); size_t half=N/2, keep=KEEP/2; const char*b=w+i*half;
   if(m==0)a=rd(b,half,a);
   else if(m==1){a=rdnta(b,half-keep,a,ahead);a=rd(b+half-keep,keep,a);}
   else {a=rdfl(b,half-keep,a,ahead);a=rd(b+half-keep,keep,a);}
   _mm512_store_ps(sink+16*i,_mm512_add_ps(a,_mm512_load_ps(sink+16*i)));}
  double t=now()-t0; if(r>=2){T[m]+=t;cnt[m]++;}}
 const char*nm[3]={"plain","nta+keep","flush+keep"};
 for(int m=0;m<3;m++)printf("N %zu MB keep %zu MB ahead %zu: %-9s %.3f ms/pass %.1f GB/s ratio %.3f\n",N>>20,KEEP>>20,ahead,nm[m],T[m]/cnt[m]*1e3,N/(T[m]/cnt[m])/1e9,T[m]/T[0]);
 printf("%g\n",sink[0]);}

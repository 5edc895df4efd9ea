/* micro4: 2-chain 4x3 tile vs sequential-chain tiles (one chain at a time, more accumulators) */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
#define INLINE static inline __attribute__((always_inline))
INLINE void tile2(int RT,int TT,const float*w,long ws,const float*x,long xs,long n,float*y,long ys){
  __m512 a0[8][8],a1[8][8];
  for(int i=0;i<RT;i++)for(int j=0;j<TT;j++){a0[i][j]=_mm512_setzero_ps();a1[i][j]=_mm512_setzero_ps();}
  for(long c=0;c<n;c+=32){ __m512 wv[8];
    for(int i=0;i<RT;i++) wv[i]=_mm512_loadu_ps(w+i*ws+c);
    for(int j=0;j<TT;j++){__m512 xv=_mm512_loadu_ps(x+j*xs+c); for(int i=0;i<RT;i++) a0[i][j]=_mm512_fmadd_ps(wv[i],xv,a0[i][j]);}
    for(int i=0;i<RT;i++) wv[i]=_mm512_loadu_ps(w+i*ws+c+16);
    for(int j=0;j<TT;j++){__m512 xv=_mm512_loadu_ps(x+j*xs+c+16); for(int i=0;i<RT;i++) a1[i][j]=_mm512_fmadd_ps(wv[i],xv,a1[i][j]);}
  }
  for(int i=0;i<RT;i++)for(int j=0;j<TT;j++) y[j*ys+i]=_mm512_reduce_add_ps(_mm512_add_ps(a0[i][j],a1[i][j]));
}
INLINE void tile2p(int RT,int TT,const float*w,long ws,const float*x,long xs,long n,float*y,long ys,long pd){
  __m512 a0[8][8],a1[8][8];
  for(int i=0;i<RT;i++)for(int j=0;j<TT;j++){a0[i][j]=_mm512_setzero_ps();a1[i][j]=_mm512_setzero_ps();}
  for(long c=0;c<n;c+=32){ __m512 wv[8];
    for(int j=0;j<TT;j++){ _mm_prefetch((const char*)(x+j*xs+c+pd),_MM_HINT_T0); _mm_prefetch((const char*)(x+j*xs+c+pd+16),_MM_HINT_T0);}
    for(int i=0;i<RT;i++) wv[i]=_mm512_loadu_ps(w+i*ws+c);
    for(int j=0;j<TT;j++){__m512 xv=_mm512_loadu_ps(x+j*xs+c); for(int i=0;i<RT;i++) a0[i][j]=_mm512_fmadd_ps(wv[i],xv,a0[i][j]);}
    for(int i=0;i<RT;i++) wv[i]=_mm512_loadu_ps(w+i*ws+c+16);
    for(int j=0;j<TT;j++){__m512 xv=_mm512_loadu_ps(x+j*xs+c+16); for(int i=0;i<RT;i++) a1[i][j]=_mm512_fmadd_ps(wv[i],xv,a1[i][j]);}
  }
  for(int i=0;i<RT;i++)for(int j=0;j<TT;j++) y[j*ys+i]=_mm512_reduce_add_ps(_mm512_add_ps(a0[i][j],a1[i][j]));
}
/* one chain at a time; XR: x preloaded per step (TT regs) and w loaded per row */
INLINE void tileS(int RT,int TT,const float*w,long ws,const float*x,long xs,long n,float*y,long ys,__m512*park){
  __m512 a[8][8];
  for(int p=0;p<2;p++){
    for(int i=0;i<RT;i++)for(int j=0;j<TT;j++) a[i][j]=_mm512_setzero_ps();
    for(long c=16*p;c<n;c+=32){
      __m512 xv[8];
      for(int j=0;j<TT;j++) xv[j]=_mm512_loadu_ps(x+j*xs+c);
      for(int i=0;i<RT;i++){__m512 wv=_mm512_loadu_ps(w+i*ws+c); for(int j=0;j<TT;j++) a[i][j]=_mm512_fmadd_ps(wv,xv[j],a[i][j]);}
    }
    if(p==0) for(int i=0;i<RT;i++)for(int j=0;j<TT;j++) park[i*TT+j]=a[i][j];
    else for(int i=0;i<RT;i++)for(int j=0;j<TT;j++) y[j*ys+i]=_mm512_reduce_add_ps(_mm512_add_ps(park[i*TT+j],a[i][j]));
  }
}
#define R 24
static float *W,*X,*Y[4]; static long C=768,T=240;
__attribute__((noinline)) void k0(void){ for(int r=0;r<R;r+=4) for(long t=0;t<T;t+=3) tile2(4,3,W+r*C,C,X+t*C,C,C,Y[0]+t*R+r,R); }
__attribute__((noinline)) void k1(void){ for(int r=0;r<R;r+=4) for(long t=0;t<T;t+=3) tile2(4,3,W+r*C,C,X+(t%6)*C,C,C,Y[1]+t*R+r,R); }
static long PD=64; __attribute__((noinline)) void k2(void){ for(int r=0;r<R;r+=4) for(long t=0;t<T;t+=3) tile2p(4,3,W+r*C,C,X+t*C,C,C,Y[2]+t*R+r,R,PD); }
static float *WB; static long RBIG=2048, rb=0; static float *YB;
__attribute__((noinline)) void k3(void){ for(int r=0;r<R;r+=4) for(long t=0;t<T;t+=3) tile2(4,3,WB+(rb+r)*C,C,X+t*C,C,C,YB+t*R+r,R); rb=(rb+R)%RBIG; }
int main(int argc,char**argv){
  int N=atoi(argv[1]); if(argc>2) PD=atol(argv[2]);
  W=aligned_alloc(64,4*R*C); X=aligned_alloc(64,4*T*C); for(int k=0;k<4;k++) Y[k]=aligned_alloc(64,4*T*R); WB=aligned_alloc(64,4*RBIG*C); for(long i=0;i<RBIG*C;i++)WB[i]=(i%97)*0.01f; YB=aligned_alloc(64,4*T*R);
  for(long i=0;i<R*C;i++)W[i]=((i*7919)%1000)*1e-3f-0.5f; for(long i=0;i<T*C;i++)X[i]=((i*31)%100)*0.01f-0.3f;
  void (*k[4])(void)={k0,k1,k2,k3}; const char*nm[4]={"2-chain 4x3","x in L1","prefetch","W from mem"};
  double tm[4][1000];
  for(int i=0;i<N;i++) for(int q=0;q<4;q++){int v=(i&1)?3-q:q; double t0=now(); k[v](); tm[v][i]=now()-t0;}
  for(int v=0;v<4;v++){ qsort(tm[v],N,sizeof(double),cmpd); printf("%-12s %6.1f GF/s %.3f %s\n",nm[v],2.0*R*C*T/tm[v][N/2]*1e-9,tm[v][N/2]/tm[0][N/2], memcmp(Y[0],Y[v],4*T*R)?"DIFF":"same");}
}

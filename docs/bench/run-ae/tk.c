/* tk.c -- GEMM tile variants in L1 (W: n columns of np panels; X: NR tokens), each run followed by
 * the FMA loop: median share of the FMA loop. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fma_loop.h"
#define N 128
#define PF 16
/* A: 2 panels x 12 tokens, X token-major (stride XS), broadcast into a register */
#define XS (256+16)
__attribute__((noinline)) static void tA(const float *P, long ps, const float *x, float *y) {
  __m512 a[2][12]; for(int p=0;p<2;p++)for(int j=0;j<12;j++)a[p][j]=_mm512_setzero_ps();
  for(long k=0;k<N;k++){ _mm_prefetch((const char*)(P+(k+PF)*16),_MM_HINT_T0); _mm_prefetch((const char*)(P+ps+(k+PF)*16),_MM_HINT_T0);
    __m512 w0=_mm512_loadu_ps(P+k*16), w1=_mm512_loadu_ps(P+ps+k*16);
    for(int j=0;j<12;j++){ __m512 b=_mm512_set1_ps(x[j*XS+k]); a[0][j]=_mm512_fmadd_ps(w0,b,a[0][j]); a[1][j]=_mm512_fmadd_ps(w1,b,a[1][j]); } }
  for(int p=0;p<2;p++)for(int j=0;j<12;j++)_mm512_storeu_ps(y+j*32+p*16,a[p][j]); }
/* C: 1 panel x NRC tokens, X column-major within the tile (x[k NRC + j]): the broadcast folded into the FMA */
#ifndef NRC
#define NRC 24
#endif
__attribute__((noinline)) static void tC(const float *P, long ps, const float *x, float *y) {
  (void)ps; __m512 a[NRC]; for(int j=0;j<NRC;j++)a[j]=_mm512_setzero_ps();
#ifdef UNRC
#pragma clang loop unroll_count(UNRC)
#endif
  for(long k=0;k<N;k++){
#ifndef NOPF
    _mm_prefetch((const char*)(P+(k+PF)*16),_MM_HINT_T0);
#endif
    __m512 w0=_mm512_loadu_ps(P+k*16); const float *xk = x + k*NRC;
    for(int j=0;j<NRC;j++) a[j]=_mm512_fmadd_ps(w0,_mm512_set1_ps(xk[j]),a[j]); }
  for(int j=0;j<NRC;j++)_mm512_storeu_ps(y+j*16,a[j]); }
/* E: 2 panels x 12 tokens, X column-major in the tile, embedded broadcasts by inline asm */
#define FMB(acc, w, mem) __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(mem))
__attribute__((noinline)) static void tE(const float *P, long ps, const float *x, float *y) {
  __m512 a[2][12]; for(int p=0;p<2;p++)for(int j=0;j<12;j++)a[p][j]=_mm512_setzero_ps();
  for(long k=0;k<N;k++){ _mm_prefetch((const char*)(P+(k+PF)*16),_MM_HINT_T0); _mm_prefetch((const char*)(P+ps+(k+PF)*16),_MM_HINT_T0);
    __m512 w0=_mm512_loadu_ps(P+k*16), w1=_mm512_loadu_ps(P+ps+k*16); const float *xk = x + k*12;
    for(int j=0;j<12;j++){ FMB(a[0][j], w0, xk[j]); FMB(a[1][j], w1, xk[j]); } }
  for(int p=0;p<2;p++)for(int j=0;j<12;j++)_mm512_storeu_ps(y+j*32+p*16,a[p][j]); }
typedef void tf(const float*,long,const float*,float*);
int main(int argc, char **argv){
  int R = argc > 1 ? atoi(argv[1]) : 15;
  float *P=aligned_alloc(64,2*16*N*4+8192), *x=aligned_alloc(64,32*XS*4), *y=aligned_alloc(64,64*32*4);
  for(int i=0;i<2*16*N+2048;i++)P[i]=(i%7)*0.1f; for(int i=0;i<32*XS;i++)x[i]=(i%5)*0.1f;
  tf *f[3]={tA,tC,tE}; const char *nm[3]={"A 2x12 reg-bcast","C 1xNRC embedded","E 2x12 asm-embedded"}; double fl[3]={2*12*N*2.0*16, NRC*N*2.0*16, 2*12*N*2.0*16};
  double r[3][64], g[3][64]; int it=20000;
  for(int i=0;i<R;i++) for(int v=0;v<3;v++){ double t0=now(); for(int q=0;q<it;q++) f[v](P,16*N,x,y); double t=now()-t0; double gg=fl[v]*it/t*1e-9; double pk=fma_gflops((long)(fl[v]*it/512/4)); g[v][i]=gg; r[v][i]=gg/pk; }
  for(int v=0;v<3;v++){ qsort(r[v],R,8,cmpd); qsort(g[v],R,8,cmpd); printf("%-22s %.1f GF/s  %.0f%% of the FMA loop (q1-q3 %.0f-%.0f%%)\n", nm[v], g[v][R/2], 100*r[v][R/2], 100*r[v][R/4], 100*r[v][3*R/4]); }
}

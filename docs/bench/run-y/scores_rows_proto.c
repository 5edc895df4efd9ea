#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define INLINE static inline __attribute__((always_inline))
#define VL 16
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* the tree: a_i = v_i + v_{i+8}; b_i = a_i + a_{i+4}; c_i = b_i + b_{i+2}; d = c_0 + c_1 */
INLINE float hsum(__m512 v){
  __m256 a=_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v,1));
  __m128 b=_mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a,1));
  __m128 c=_mm_add_ps(b,_mm_movehl_ps(b,b));
  __m128 d=_mm_add_ss(c,_mm_movehdup_ps(c));
  return _mm_cvtss_f32(d);
}
INLINE float dot_old(const float*q,const float*k,int n){
  __m512 a0=_mm512_setzero_ps(),a1=_mm512_setzero_ps(); int i=0;
  for(;i+32<=n;i+=32){a0=_mm512_fmadd_ps(_mm512_loadu_ps(q+i),_mm512_loadu_ps(k+i),a0);a1=_mm512_fmadd_ps(_mm512_loadu_ps(q+i+16),_mm512_loadu_ps(k+i+16),a1);}
  for(;i<n;i+=16){a0=_mm512_fmadd_ps(_mm512_loadu_ps(q+i),_mm512_loadu_ps(k+i),a0);}
  return hsum(_mm512_add_ps(a0,a1));
}
static void scores_old(float*out,const float*q,const float*K,int ldk,int n,int hd,float s){for(int j=0;j<n;j++)out[j]=s*dot_old(q,K+(long)j*ldk,hd);}
/* stage helpers */
INLINE __m512 st1(__m512 A,__m512 B){ /* [A_i+A_{i+8} (8) | B_i+B_{i+8} (8)] */
  return _mm512_add_ps(_mm512_shuffle_f32x4(A,B,_MM_SHUFFLE(1,0,1,0)),_mm512_shuffle_f32x4(A,B,_MM_SHUFFLE(3,2,3,2)));}
INLINE __m512 st2(__m512 AB,__m512 CD){ /* 128-lanes [A b0-3, B, C, D] */
  return _mm512_add_ps(_mm512_shuffle_f32x4(AB,CD,_MM_SHUFFLE(2,0,2,0)),_mm512_shuffle_f32x4(AB,CD,_MM_SHUFFLE(3,1,3,1)));}
INLINE __m512 st3(__m512 P,__m512 Q){ return _mm512_add_ps(_mm512_shuffle_ps(P,Q,_MM_SHUFFLE(1,0,1,0)),_mm512_shuffle_ps(P,Q,_MM_SHUFFLE(3,2,3,2)));}
INLINE __m512 st4(__m512 R1,__m512 R2){ return _mm512_add_ps(_mm512_shuffle_ps(R1,R2,_MM_SHUFFLE(2,0,2,0)),_mm512_shuffle_ps(R1,R2,_MM_SHUFFLE(3,1,3,1)));}
/* R rows x 16 keys, nv = hd/16 vectors (hd multiple of 16 for the prototype) */
INLINE __m512 keyvec(int nv,const __m512*q,const float*k){
  __m512 a0=_mm512_setzero_ps(),a1=_mm512_setzero_ps(); int v=0;
  for(;v+2<=nv;v+=2){a0=_mm512_fmadd_ps(q[v],_mm512_loadu_ps(k+16*v),a0);a1=_mm512_fmadd_ps(q[v+1],_mm512_loadu_ps(k+16*v+16),a1);}
  for(;v<nv;v++) a0=_mm512_fmadd_ps(q[v],_mm512_loadu_ps(k+16*v),a0);
  return _mm512_add_ps(a0,a1);
}
/* output lane order of st4(st3(st2(st1(A,B),st1(C,D)),st2(..)),...) -- letters A..P: lane l holds letter perm[l] */
#ifndef R
#define R 2
#endif
INLINE void keyvecR(int nv,const __m512 q[R][8],const float*k,__m512 out[R]){
  __m512 a0[R],a1[R]; for(int r=0;r<R;r++){a0[r]=_mm512_setzero_ps();a1[r]=_mm512_setzero_ps();}
  int v=0;
  for(;v+2<=nv;v+=2){ const __m512 k0=_mm512_loadu_ps(k+16*v),k1=_mm512_loadu_ps(k+16*v+16);
    for(int r=0;r<R;r++){a0[r]=_mm512_fmadd_ps(q[r][v],k0,a0[r]);a1[r]=_mm512_fmadd_ps(q[r][v+1],k1,a1[r]);}}
  for(;v<nv;v++){ const __m512 k0=_mm512_loadu_ps(k+16*v); for(int r=0;r<R;r++) a0[r]=_mm512_fmadd_ps(q[r][v],k0,a0[r]);}
  for(int r=0;r<R;r++) out[r]=_mm512_add_ps(a0[r],a1[r]);
}
INLINE void pairR(int nv,const __m512 q[R][8],const float*K,int ldk,int j,__m512 s1[R]){
  __m512 A[R],B[R]; keyvecR(nv,q,K+(long)j*ldk,A); keyvecR(nv,q,K+(long)(j+1)*ldk,B);
  for(int r=0;r<R;r++) s1[r]=st1(A[r],B[r]);
}
INLINE void quadR(int nv,const __m512 q[R][8],const float*K,int ldk,int j,__m512 s2[R]){
  __m512 x[R],y[R]; pairR(nv,q,K,ldk,j,x); pairR(nv,q,K,ldk,j+2,y);
  for(int r=0;r<R;r++) s2[r]=st2(x[r],y[r]);
}
INLINE void octR(int nv,const __m512 q[R][8],const float*K,int ldk,int j,__m512 s3[R]){
  __m512 x[R],y[R]; quadR(nv,q,K,ldk,j,x); quadR(nv,q,K,ldk,j+4,y);
  for(int r=0;r<R;r++) s3[r]=st3(x[r],y[r]);
}
INLINE void tile16(int nv,const __m512 q[R][8],const float*K,int ldk,float*const*out,int j,float s){
  __m512 x[R],y[R]; octR(nv,q,K,ldk,j,x); octR(nv,q,K,ldk,j+8,y);
  const __m512i idx=_mm512_setr_epi32(0,4,8,12,1,5,9,13,2,6,10,14,3,7,11,15);
  for(int r=0;r<R;r++) _mm512_storeu_ps(out[r]+j,_mm512_mul_ps(_mm512_set1_ps(s),_mm512_permutexvar_ps(idx,st4(x[r],y[r]))));
}
static void scores_new(float*const*out,const float*const*q,const float*K,int ldk,int n,int hd,float s){
  int nv=hd/16; __m512 qr[R][8];
  for(int r=0;r<R;r++) for(int v=0;v<nv;v++) qr[r][v]=_mm512_loadu_ps(q[r]+16*v);
  int j=0;
  if(nv==4) for(;j+16<=n;j+=16) tile16(4,qr,K,ldk,out,j,s);
  for(int r=0;r<R;r++) scores_old(out[r]+j,q[r],K+(long)j*ldk,ldk,n-j,hd,s);
}
int main(int argc,char**argv){
  int n=atoi(argv[1]), hd=64, rows=8;
  float*K=aligned_alloc(64,(size_t)n*hd*4),*q=aligned_alloc(64,rows*hd*4),*o1=malloc(rows*n*4),*o2=malloc(rows*n*4);
  srand(3); for(long i=0;i<(long)n*hd;i++)K[i]=rand()/(float)RAND_MAX-0.5f; for(int i=0;i<rows*hd;i++)q[i]=rand()/(float)RAND_MAX-0.5f;
  double bo=1e9,bn=1e9;
  for(int rep=0;rep<200;rep++){
    double t0=now(); for(int r=0;r<rows;r++) scores_old(o1+r*n,q+r*hd,K,hd,n,hd,0.125f); double t1=now();
    for(int r=0;r<rows;r+=R){ float*oo[R]; const float*qq[R]; for(int i=0;i<R;i++){oo[i]=o2+(r+i)*n; qq[i]=q+(r+i)*hd;} scores_new(oo,qq,K,hd,n,hd,0.125f);} double t2=now();
    if(t1-t0<bo)bo=t1-t0; if(t2-t1<bn)bn=t2-t1;
  }
  printf("n=%d rows=%d: old %.2f us new %.2f us (%.2fx) same=%d\n",n,rows,bo*1e6,bn*1e6,bo/bn,memcmp(o1,o2,rows*n*4)==0);
}

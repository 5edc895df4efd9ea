/* KV compute: per-head layout split by heads vs token-major split by positions (decode-like, evicted) */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
enum{H=12,HD=64,L=12};
static _Alignas(64) float sink[64];
static __m512 rd(const float*p,size_t n,__m512 a){for(size_t i=0;i<n;i+=16)a=_mm512_add_ps(a,_mm512_load_ps(p+i));return a;}
static inline float dot64(const float*q,const float*k){__m512 a=_mm512_mul_ps(_mm512_load_ps(q),_mm512_load_ps(k));
 a=_mm512_fmadd_ps(_mm512_load_ps(q+16),_mm512_load_ps(k+16),a);a=_mm512_fmadd_ps(_mm512_load_ps(q+32),_mm512_load_ps(k+32),a);
 a=_mm512_fmadd_ps(_mm512_load_ps(q+48),_mm512_load_ps(k+48),a);return _mm512_reduce_add_ps(a);}
static void soft(float*s,int n){float m=-1e30f;for(int i=0;i<n;i++)m=s[i]>m?s[i]:m;float z=0;for(int i=0;i<n;i++){s[i]=expf(s[i]-m);z+=s[i];}for(int i=0;i<n;i++)s[i]/=z;}
static _Alignas(64) float q[H*HD];
int main(int argc,char**argv){int NM=10, B=getenv("B")?atoi(getenv("B")):64;int n_pos=atoi(argv[1]),n_ctx=atoi(argv[2]),reps=atoi(argv[3]);
 size_t layer=(size_t)H*n_ctx*HD, wfl=10u<<20>>2;
 float*kv=aligned_alloc(2<<20,2*layer*L*4+(2<<20)); float*w=aligned_alloc(2<<20,wfl*L*4);
 for(size_t i=0;i<2*layer*L;i++)kv[i]=(float)(i%13)/13.f; for(size_t i=0;i<wfl*L;i++)w[i]=1.0f; for(int i=0;i<H*HD;i++)q[i]=0.01f*(i%7);
 double T[4]={0};
 for(int r=0;r<reps;r++)for(int m=0;m<NM;m++)for(int l=0;l<L;l++){
#pragma omp parallel num_threads(2)
  {int i=omp_get_thread_num();__m512 a=_mm512_setzero_ps();a=rd(w+l*wfl+i*wfl/2,wfl/2,a);_mm512_store_ps(sink+16*i,a);}
  double t0=now(); float*K=kv+(size_t)l*2*layer,*V=K+layer;
#pragma omp parallel num_threads(2)
  {int i=omp_get_thread_num();static _Thread_local _Alignas(64) float s[H][2048]; float acc=0;
   if(m==0){int h0=i*H/2,h1=(i+1)*H/2; for(int h=h0;h<h1;h++){const float*Kh=K+h*(size_t)n_ctx*HD,*Vh=V+h*(size_t)n_ctx*HD;
      for(int p=0;p<n_pos;p++)s[h][p]=0.125f*dot64(q+h*HD,Kh+(size_t)p*HD); soft(s[h],n_pos);
      __m512 o0=_mm512_setzero_ps(),o1=o0,o2=o0,o3=o0; for(int p=0;p<n_pos;p++){__m512 pj=_mm512_set1_ps(s[h][p]);const float*v=Vh+(size_t)p*HD;
        o0=_mm512_fmadd_ps(pj,_mm512_load_ps(v),o0);o1=_mm512_fmadd_ps(pj,_mm512_load_ps(v+16),o1);o2=_mm512_fmadd_ps(pj,_mm512_load_ps(v+32),o2);o3=_mm512_fmadd_ps(pj,_mm512_load_ps(v+48),o3);}
      acc+=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(o0,o1),_mm512_add_ps(o2,o3)));}}
   else if(m==2){int p0=i*n_pos/2,p1=(i+1)*n_pos/2,np=p1-p0; static _Thread_local _Alignas(64) float o[H*HD];
     for(int p=p0;p<p1;p++){const float*row=K+(size_t)p*H*HD; for(int h=0;h<H;h++)s[h][p-p0]=0.125f*dot64(q+h*HD,row+h*HD);}
     for(int h=0;h<H;h++)soft(s[h],np);
     for(int k=0;k<H*HD;k++)o[k]=0;
     for(int p=p0;p<p1;p++){const float*row=V+(size_t)p*H*HD; for(int h=0;h<H;h++){__m512 pj=_mm512_set1_ps(s[h][p-p0]);
         for(int c=0;c<4;c++)_mm512_store_ps(o+h*HD+16*c,_mm512_fmadd_ps(pj,_mm512_load_ps(row+h*HD+16*c),_mm512_load_ps(o+h*HD+16*c)));}}
     for(int k=0;k<H*HD;k+=16)acc+=_mm512_reduce_add_ps(_mm512_load_ps(o+k));}
   else if(m==9){ /* head-major pages: [H][page][K,V][B][HD], head split, each head's pages in order */
     int npg=(n_pos+B-1)/B, cap=(n_ctx+B-1)/B, h0=i*H/2,h1=(i+1)*H/2;
     for(int h=h0;h<h1;h++) for(int pg=0;pg<npg;pg++){int p0=pg*B, nb=n_pos-p0<B?n_pos-p0:B;
       const float*Kh=K+(((size_t)h*cap+pg)*2)*B*HD,*Vh=Kh+(size_t)B*HD;
       for(int p=0;p<nb;p++)s[h][p]=0.125f*dot64(q+h*HD,Kh+(size_t)p*HD); soft(s[h],nb);
       __m512 o0=_mm512_setzero_ps(),o1=o0,o2=o0,o3=o0; for(int p=0;p<nb;p++){__m512 pj=_mm512_set1_ps(s[h][p]);const float*v=Vh+(size_t)p*HD;
        o0=_mm512_fmadd_ps(pj,_mm512_load_ps(v),o0);o1=_mm512_fmadd_ps(pj,_mm512_load_ps(v+16),o1);o2=_mm512_fmadd_ps(pj,_mm512_load_ps(v+32),o2);o3=_mm512_fmadd_ps(pj,_mm512_load_ps(v+48),o3);}
       acc+=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(o0,o1),_mm512_add_ps(o2,o3)));}}
   else if(m==8){ /* paged, K and V adjacent per (page, head), head split: thread's 6 heads page after page */
     int npg=(n_pos+B-1)/B, h0=i*H/2,h1=(i+1)*H/2;
     for(int pg=0;pg<npg;pg++){int p0=pg*B, nb=n_pos-p0<B?n_pos-p0:B;
       for(int h=h0;h<h1;h++){const float*Kh=K+(((size_t)pg*H+h)*2)*B*HD,*Vh=Kh+(size_t)B*HD;
       for(int p=0;p<nb;p++)s[h][p]=0.125f*dot64(q+h*HD,Kh+(size_t)p*HD); soft(s[h],nb);
       __m512 o0=_mm512_setzero_ps(),o1=o0,o2=o0,o3=o0; for(int p=0;p<nb;p++){__m512 pj=_mm512_set1_ps(s[h][p]);const float*v=Vh+(size_t)p*HD;
        o0=_mm512_fmadd_ps(pj,_mm512_load_ps(v),o0);o1=_mm512_fmadd_ps(pj,_mm512_load_ps(v+16),o1);o2=_mm512_fmadd_ps(pj,_mm512_load_ps(v+32),o2);o3=_mm512_fmadd_ps(pj,_mm512_load_ps(v+48),o3);}
       acc+=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(o0,o1),_mm512_add_ps(o2,o3)));}}}
   else if(m==7){ /* paged, K and V of a (page, head) adjacent: [page][H][2][B][HD] in one buffer (K+V region) */
     int npg=(n_pos+B-1)/B, nparts=npg*H, a0=nparts*i/2, a1=nparts*(i+1)/2;
     for(int it=a0;it<a1;it++){int pg=it/H,h=it%H; int p0=pg*B, nb=n_pos-p0<B?n_pos-p0:B;
       const float*Kh=K+(((size_t)pg*H+h)*2)*B*HD,*Vh=Kh+(size_t)B*HD;
       for(int p=0;p<nb;p++)s[h][p]=0.125f*dot64(q+h*HD,Kh+(size_t)p*HD); soft(s[h],nb);
       __m512 o0=_mm512_setzero_ps(),o1=o0,o2=o0,o3=o0; for(int p=0;p<nb;p++){__m512 pj=_mm512_set1_ps(s[h][p]);const float*v=Vh+(size_t)p*HD;
        o0=_mm512_fmadd_ps(pj,_mm512_load_ps(v),o0);o1=_mm512_fmadd_ps(pj,_mm512_load_ps(v+16),o1);o2=_mm512_fmadd_ps(pj,_mm512_load_ps(v+32),o2);o3=_mm512_fmadd_ps(pj,_mm512_load_ps(v+48),o3);}
       acc+=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(o0,o1),_mm512_add_ps(o2,o3)));}}
   else if(m==5||m==6){ /* paged [page][H][B][HD], head split: thread's heads contiguous within each page */
     int npg=(n_pos+B-1)/B, h0=i*H/2,h1=(i+1)*H/2;
     for(int pg=0;pg<npg;pg++){int p0=pg*B, nb=n_pos-p0<B?n_pos-p0:B;
       if(m==6){const float*Kp=K+((size_t)pg*H+h0)*B*HD,*Vp=V+((size_t)pg*H+h0)*B*HD; __m512 a=_mm512_setzero_ps();
         for(int h=0;h<h1-h0;h++){for(int j=0;j<nb*HD;j+=16)a=_mm512_add_ps(a,_mm512_load_ps(Kp+(size_t)h*B*HD+j));
                                  for(int j=0;j<nb*HD;j+=16)a=_mm512_add_ps(a,_mm512_load_ps(Vp+(size_t)h*B*HD+j));}
         acc+=_mm512_reduce_add_ps(a); continue;}
       for(int h=h0;h<h1;h++){const float*Kh=K+((size_t)pg*H+h)*B*HD,*Vh=V+((size_t)pg*H+h)*B*HD;
       for(int p=0;p<nb;p++)s[h][p]=0.125f*dot64(q+h*HD,Kh+(size_t)p*HD); soft(s[h],nb);
       __m512 o0=_mm512_setzero_ps(),o1=o0,o2=o0,o3=o0; for(int p=0;p<nb;p++){__m512 pj=_mm512_set1_ps(s[h][p]);const float*v=Vh+(size_t)p*HD;
        o0=_mm512_fmadd_ps(pj,_mm512_load_ps(v),o0);o1=_mm512_fmadd_ps(pj,_mm512_load_ps(v+16),o1);o2=_mm512_fmadd_ps(pj,_mm512_load_ps(v+32),o2);o3=_mm512_fmadd_ps(pj,_mm512_load_ps(v+48),o3);}
       acc+=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(o0,o1),_mm512_add_ps(o2,o3)));}}}
   else if(m==3||m==4){ /* paged: [page][H][B][HD]; threads split (page, head) parts in page-major order */
     int npg=(n_pos+B-1)/B, nparts=npg*H, a0=nparts*i/2, a1=nparts*(i+1)/2;
     for(int it=a0;it<a1;it++){int pg=it/H,h=it%H; int p0=pg*B, nb=n_pos-p0<B?n_pos-p0:B;
       const float*Kh=K+((size_t)pg*H+h)*B*HD,*Vh=V+((size_t)pg*H+h)*B*HD;
       if(m==4){ /* bare */ __m512 a=_mm512_setzero_ps(); for(int j=0;j<nb*HD;j+=16)a=_mm512_add_ps(a,_mm512_add_ps(_mm512_load_ps(Kh+j),_mm512_load_ps(Vh+j))); acc+=_mm512_reduce_add_ps(a); continue;}
       for(int p=0;p<nb;p++)s[h][p]=0.125f*dot64(q+h*HD,Kh+(size_t)p*HD); soft(s[h],nb);
       __m512 o0=_mm512_setzero_ps(),o1=o0,o2=o0,o3=o0; for(int p=0;p<nb;p++){__m512 pj=_mm512_set1_ps(s[h][p]);const float*v=Vh+(size_t)p*HD;
        o0=_mm512_fmadd_ps(pj,_mm512_load_ps(v),o0);o1=_mm512_fmadd_ps(pj,_mm512_load_ps(v+16),o1);o2=_mm512_fmadd_ps(pj,_mm512_load_ps(v+32),o2);o3=_mm512_fmadd_ps(pj,_mm512_load_ps(v+48),o3);}
       acc+=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(o0,o1),_mm512_add_ps(o2,o3)));}}
   else {int p0=i*n_pos/2,p1=(i+1)*n_pos/2,np=p1-p0;
     for(int p=p0;p<p1;p++){const float*row=K+(size_t)p*H*HD; for(int h=0;h<H;h++)s[h][p-p0]=0.125f*dot64(q+h*HD,row+h*HD);}
     for(int h=0;h<H;h++)soft(s[h],np);
     for(int g=0;g<H;g+=6){__m512 o[24];for(int k=0;k<24;k++)o[k]=_mm512_setzero_ps();
       for(int p=p0;p<p1;p++){const float*row=V+(size_t)p*H*HD+g*HD; for(int h=0;h<6;h++){__m512 pj=_mm512_set1_ps(s[g+h][p-p0]);
         for(int c=0;c<4;c++)o[4*h+c]=_mm512_fmadd_ps(pj,_mm512_load_ps(row+h*HD+16*c),o[4*h+c]);}}
       for(int k=0;k<24;k++)acc+=_mm512_reduce_add_ps(o[k]);}}
   sink[16*i]+=acc;}
  T[m]+=now()-t0;}
 double b=2.0*H*n_pos*HD*4*L*reps;
 for(int m=0;m<NM;m++)printf("pos %d mode %d: %.2f us/layer %.1f GB/s ratio %.3f\n",n_pos,m,T[m]/(L*reps)*1e6,b/T[m]/1e9,T[m]/T[0]);
 printf("%g\n",sink[0]);}

/* A decoded token's matrix products alone (no attention, norms, GHC), 2 threads, the real model's
 * matrices in order, against (B) bare 2-thread reads of the same matrices product by product (a
 * region each) and (C) all of them in one region, and (M) the machine's 2-thread read of 1 GB.
 * Modes alternate token by token. args: MODEL TOKENS */
#include "model.h"
#include "ops/ops.h"
#include "vwn.h"
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static _Alignas(64) unsigned long long sinkv[64];
static __m512i rd(const char*p,size_t n,__m512i a){for(size_t i=0;i+64<=n;i+=64)a=_mm512_add_epi64(a,_mm512_loadu_si512(p+i));return a;}
static const vwn_mat *mats[1024]; static int nm;
static size_t mbytes(const vwn_mat*W){return (size_t)W->rows*W->row_bytes;}
static const void*mdata(const vwn_mat*W){return W->packed?W->packed:W->data;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
 vwn_model*m=NULL; if(vwn_model_load(argv[1],NULL,&m)){printf("load failed %s\n",vwn_last_error());return 1;}
 int N=atoi(argv[2]); const vwn_hparams*hp=&m->hp; const vwn_ops*ops=vwn_ops_best();
 size_t tot=0;
 for(int l=0;l<hp->n_layer;l++){vwn_layer_weights*lw=&m->layers[l];
   const vwn_mat*a[]={&lw->wq,&lw->wk,&lw->wv,&lw->wo,&lw->w_gate,&lw->w_up,&lw->w_down};for(int i=0;i<7;i++){mats[nm++]=a[i];tot+=mbytes(a[i]);}}
 mats[nm++]=&m->lm_head; tot+=mbytes(&m->lm_head);
 size_t big=(size_t)1<<30; char*buf=aligned_alloc(2<<20,big); memset(buf,1,big);
 float*X=aligned_alloc(64,4*(size_t)(hp->n_ff>hp->n_embd?hp->n_ff:hp->n_embd)*4); for(int i=0;i<hp->n_ff;i++)X[i]=0.01f*(i%17);
 float*Y[3]; for(int i=0;i<3;i++)Y[i]=aligned_alloc(64,4*(size_t)hp->n_vocab+4096);
 void*xq=aligned_alloc(64,1<<20);
 const int NK=6; size_t PF=getenv("PF")?(size_t)atoi(getenv("PF"))<<10:65536; double *T[6]; for(int k=0;k<NK;k++)T[k]=calloc(N,sizeof(double));
 for(int t=0;t<N;t++)for(int kk=0;kk<NK;kk++){int k=(t&1)?NK-1-kk:kk; double t0=now();
  if(k==0){ for(int l=0;l<hp->n_layer;l++){const vwn_mat*const*L=mats+7*l;
      vwn_matmul_mt_many(ops,L,Y,3,X,1,Y[0]==NULL?NULL:xq,2); vwn_matmul_mt(ops,L[3],X,1,Y[0],xq,2);
      vwn_matmul_mt_many(ops,L+4,Y,2,X,1,xq,2); vwn_matmul_mt(ops,L[6],X,1,Y[0],xq,2);}
    vwn_matmul_mt(ops,mats[nm-1],X,1,Y[0],xq,2);}
  else if(k==1){ /* bare reads, one region per product as the token has them */
    for(int l=0;l<=hp->n_layer;l++){int groups=l<hp->n_layer?4:1; for(int g=0;g<groups;g++){int i0,i1;
      if(l==hp->n_layer){i0=nm-1;i1=nm;} else {int st[5]={0,3,4,6,7}; i0=7*l+st[g]; i1=7*l+st[g+1];}
#pragma omp parallel num_threads(2)
      {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512();
       for(int j=i0;j<i1;j++){size_t b=mbytes(mats[j]), h=b/2/64*64; const char*p=(const char*)mdata(mats[j]); a= i==0? rd(p,h,a): rd(p+h,b-h,a);}
       sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}}}
  else if(k==4||k==5){ /* a region per product; 4: a prefetch burst of the thread's first PF bytes at its start;
                           5: at its end, a burst of the first PF bytes of its part of the next product */
    int st[5]={0,3,4,6,7}; int ng=4*hp->n_layer+1; 
    for(int g=0;g<ng;g++){int i0,i1; if(g==ng-1){i0=nm-1;i1=nm;} else {i0=7*(g/4)+st[g%4]; i1=7*(g/4)+st[g%4+1];}
      int n0=-1,n1=-1; if(g+1<ng){int gg=g+1; if(gg==ng-1){n0=nm-1;n1=nm;} else {n0=7*(gg/4)+st[gg%4]; n1=7*(gg/4)+st[gg%4+1];}}
#pragma omp parallel num_threads(2)
      {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512();
       if(k==4){size_t b=mbytes(mats[i0]),h=b/2/64*64; const char*p=(const char*)mdata(mats[i0])+(i?h:0); for(size_t o=0;o<PF;o+=64)_mm_prefetch(p+o,_MM_HINT_T0);}
       for(int j=i0;j<i1;j++){size_t b=mbytes(mats[j]), h=b/2/64*64; const char*p=(const char*)mdata(mats[j]); a= i==0? rd(p,h,a): rd(p+h,b-h,a);}
       if(k==5&&n0>=0){size_t b=mbytes(mats[n0]),h=b/2/64*64; const char*p=(const char*)mdata(mats[n0])+(i?h:0); for(size_t o=0;o<PF;o+=64)_mm_prefetch(p+o,_MM_HINT_T0);}
       sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}}
  else if(k==2){
#pragma omp parallel num_threads(2)
    {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512();
     for(int j=0;j<nm;j++){size_t b=mbytes(mats[j]), h=b/2/64*64; const char*p=(const char*)mdata(mats[j]); a= i==0? rd(p,h,a): rd(p+h,b-h,a);}
     sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}
  else {
#pragma omp parallel num_threads(2)
    {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512(); a=rd(buf+(size_t)i*(big/2),big/2,a); sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}
  T[k][t]=now()-t0;}
 const char*nmz[6]={"products (library)","bare reads, a region per product","bare reads, one region","machine read, 1 GB","bare, region/product, burst at start","bare, region/product, next burst at end"};
 double med[6]; for(int k=0;k<NK;k++){qsort(T[k],N,sizeof(double),cmpd); med[k]=T[k][N/2];}
 for(int k=0;k<NK;k++){double gbs=(k==3?(double)big:(double)tot)/med[k]/1e9; printf("%-34s %8.3f ms  %6.2f GB/s  %5.1f%% of the machine read\n",nmz[k],med[k]*1e3,gbs,100*gbs/((double)big/med[3]/1e9));}
 printf("(%d matrices, %.2f MB a token; %llu)\n",nm,tot/1e6,sinkv[0]&1);
 vwn_model_free(m); return 0;}

/* What a product boundary costs the weight stream, m1n1 matrices, 2 threads, bare reads unless said:
 * 0 the library's products back to back; 1 a region per product (each thread half of each matrix);
 * 2 one region for all; 3 the machine's 1 GB read; 4 one region with a barrier after each product;
 * 5 a region per product, thread 1 starting in the middle of its half. Each token runs every mode
 * once, the order shifted by one each token. args: MODEL TOKENS */
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
static int gi0[256],gi1[256],ng;
static __m512i part(int j,int i,int rot,__m512i a){size_t b=mbytes(mats[j]),h=b/2/64*64;const char*p=(const char*)mdata(mats[j]);
  if(i==0)return rd(p,h,a); if(!rot)return rd(p+h,b-h,a); size_t q=(b-h)/2/64*64; a=rd(p+h+q,b-h-q,a); return rd(p+h,q,a);}
enum{NK=6};
int main(int argc,char**argv){
 vwn_model*m=NULL; if(vwn_model_load(argv[1],NULL,&m)){printf("load failed\n");return 1;}
 int N=atoi(argv[2]); const vwn_hparams*hp=&m->hp; const vwn_ops*ops=vwn_ops_best(); size_t tot=0;
 for(int l=0;l<hp->n_layer;l++){vwn_layer_weights*lw=&m->layers[l]; const vwn_mat*a[]={&lw->wq,&lw->wk,&lw->wv,&lw->wo,&lw->w_gate,&lw->w_up,&lw->w_down};
   int st[5]={0,3,4,6,7}; for(int g=0;g<4;g++){gi0[ng]=nm+st[g];gi1[ng]=nm+st[g+1];ng++;} for(int i=0;i<7;i++){mats[nm++]=a[i];tot+=mbytes(a[i]);}}
 gi0[ng]=nm; mats[nm++]=&m->lm_head; gi1[ng]=nm; ng++; tot+=mbytes(&m->lm_head);
 size_t big=(size_t)1<<30; char*buf=aligned_alloc(2<<20,big); memset(buf,1,big);
 float*X=aligned_alloc(64,16*(size_t)hp->n_ff); for(int i=0;i<hp->n_ff;i++)X[i]=0.01f*(i%17);
 float*Y[3]; for(int i=0;i<3;i++)Y[i]=aligned_alloc(64,4*(size_t)hp->n_vocab+4096); void*xq=aligned_alloc(64,1<<20);
 double*T[NK]; for(int k=0;k<NK;k++)T[k]=calloc(N,8);
 for(int t=0;t<N;t++)for(int kk=0;kk<NK;kk++){int k=(kk+t)%NK; double t0=now();
  if(k==0){ for(int l=0;l<hp->n_layer;l++){const vwn_mat*const*L=mats+7*l;
      vwn_matmul_mt_many(ops,L,Y,3,X,1,xq,2); vwn_matmul_mt(ops,L[3],X,1,Y[0],xq,2); vwn_matmul_mt_many(ops,L+4,Y,2,X,1,xq,2); vwn_matmul_mt(ops,L[6],X,1,Y[0],xq,2);}
    vwn_matmul_mt(ops,mats[nm-1],X,1,Y[0],xq,2);}
  else if(k==1||k==5){ for(int g=0;g<ng;g++){
#pragma omp parallel num_threads(2)
      {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512(); for(int j=gi0[g];j<gi1[g];j++)a=part(j,i,k==5,a); sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}}
  else if(k==2||k==4){
#pragma omp parallel num_threads(2)
    {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512();
     for(int g=0;g<ng;g++){for(int j=gi0[g];j<gi1[g];j++)a=part(j,i,0,a);
       if(k==4){
#pragma omp barrier
       }}
     sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}
  else {
#pragma omp parallel num_threads(2)
    {int i=omp_get_thread_num(); __m512i a=_mm512_setzero_si512(); a=rd(buf+(size_t)i*(big/2),big/2,a); sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a);}}
  T[k][t]=now()-t0;}
 const char*nmz[NK]={"library products","bare, a region per product","bare, one region","machine read 1 GB","bare, one region + barriers","bare, a region per product, rotated"};
 double med[NK]; for(int k=0;k<NK;k++){qsort(T[k],N,8,cmpd); med[k]=T[k][N/2];}
 printf("machine %.1f GB/s |",(double)big/med[3]/1e9); for(int k=0;k<NK;k++)if(k!=3)printf(" %s %.3f |",nmz[k],med[k]*1e3); printf(" (ms, %.1f MB) %llu\n",tot/1e6,sinkv[0]&1);
 vwn_model_free(m); return 0;}

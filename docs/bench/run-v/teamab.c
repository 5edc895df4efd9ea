/* The token's products alone, each product split in two static halves (ops->matmul on each), (A)
 * one OpenMP region per product against (B) one region per token, thread 0 posting each product
 * to thread 1 through a spin-waited sequence number. Tokens alternate ABBA. args: MODEL TOKENS */
#include "model.h"
#include "ops/ops.h"
#include "vwn.h"
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
typedef struct { const vwn_ops*ops; const vwn_mat*const*W; float*const*Y; int count; const float*X; const void*xq; } job;
static _Alignas(64) unsigned long long sinkv[64]; static int BARE;
static __m512i rd(const char*p,size_t n,__m512i a){for(size_t i=0;i+64<=n;i+=64)a=_mm512_add_epi64(a,_mm512_loadu_si512(p+i));return a;}
static void body(const job*j,int i,int nt){ if(BARE){ __m512i a=_mm512_setzero_si512(); for(int w=0;w<j->count;w++){const vwn_mat*M=j->W[w]; size_t b=(size_t)M->rows*M->row_bytes,h=b/2/64*64; const char*p=(const char*)(M->packed?M->packed:M->data); a= i==0?rd(p,h,a):rd(p+h,b-h,a);} sinkv[8*i]+=(unsigned long long)_mm512_reduce_add_epi64(a); return;}
  for(int w=0;w<j->count;w++){ const vwn_mat*M=j->W[w]; int64_t ch=(M->rows+15)/16, r0=ch*i/nt*16, r1=ch*(i+1)/nt*16; if(r1>M->rows)r1=M->rows; if(r0>M->rows)r0=M->rows;
   if(r0<r1) j->ops->matmul(M,j->X,M->cols,j->xq,1,j->Y[w],M->rows,r0,r1);}}
static struct { _Alignas(64) _Atomic unsigned seq; _Alignas(64) _Atomic unsigned done; _Alignas(64) const job*j; int stop; } team;
static void post(const job*j){ team.j=j; unsigned s=atomic_load_explicit(&team.seq,memory_order_relaxed); unsigned d=atomic_load_explicit(&team.done,memory_order_relaxed);
  atomic_store_explicit(&team.seq,s+1,memory_order_release); body(j,0,2);
  while(atomic_load_explicit(&team.done,memory_order_acquire)==d)_mm_pause(); }
int main(int argc,char**argv){
 vwn_model*m=NULL; if(vwn_model_load(argv[1],NULL,&m)){printf("load failed\n");return 1;}
 int N=atoi(argv[2]); BARE=getenv("BARE")!=NULL; const vwn_hparams*hp=&m->hp; const vwn_ops*ops=vwn_ops_best();
 float*X=aligned_alloc(64,16*(size_t)hp->n_ff); for(int i=0;i<hp->n_ff;i++)X[i]=0.01f*(i%17);
 float*Y[3]; for(int i=0;i<3;i++)Y[i]=aligned_alloc(64,4*(size_t)hp->n_vocab+4096);
 void*xq=aligned_alloc(64,1<<20); ops->quantize_q8_0(X,xq,hp->n_ff);
 double*T[3]={calloc(N,8),calloc(N,8),calloc(N,8)}; double r[1000]; size_t tot=0;
 int L=hp->n_layer; job*jobs=calloc(4*L+1,sizeof(job)); const vwn_mat**ws=calloc(8*L+1,sizeof(void*));
 for(int l=0;l<L;l++){vwn_layer_weights*lw=&m->layers[l]; const vwn_mat**w=ws+8*l; w[0]=&lw->wq;w[1]=&lw->wk;w[2]=&lw->wv;w[3]=&lw->wo;w[4]=&lw->w_gate;w[5]=&lw->w_up;w[6]=&lw->w_down;
   jobs[4*l]=(job){ops,w,Y,3,X,xq}; jobs[4*l+1]=(job){ops,w+3,Y,1,X,xq}; jobs[4*l+2]=(job){ops,w+4,Y,2,X,xq}; jobs[4*l+3]=(job){ops,w+6,Y,1,X,xq};
   for(int i=0;i<7;i++)tot+=(size_t)w[i]->rows*w[i]->row_bytes;}
 ws[8*L]=&m->lm_head; jobs[4*L]=(job){ops,ws+8*L,Y,1,X,xq}; tot+=(size_t)m->lm_head.rows*m->lm_head.row_bytes;
 int nj=4*L+1;
 int NM=getenv("BAR")?3:2; for(int t=0;t<N;t++)for(int kk=0;kk<NM;kk++){int k=(kk+t)%NM; double t0=now();
   if(k==0){ for(int q=0;q<nj;q++){
#pragma omp parallel num_threads(2)
       body(&jobs[q],omp_get_thread_num(),2);} }
   else if(k==2){
#pragma omp parallel num_threads(2)
     { int i=omp_get_thread_num(); for(int q=0;q<nj;q++){ body(&jobs[q],i,2);
#pragma omp barrier
       } } }
   else {
     team.stop=0; const unsigned s0=atomic_load_explicit(&team.seq,memory_order_relaxed);
#pragma omp parallel num_threads(2)
     { if(omp_get_thread_num()==0){ for(int q=0;q<nj;q++)post(&jobs[q]); team.stop=1; atomic_fetch_add_explicit(&team.seq,1,memory_order_release);}
       else { unsigned s=s0;
         for(;;){ unsigned v; while((v=atomic_load_explicit(&team.seq,memory_order_acquire))==s)_mm_pause(); s=v; if(team.stop)break;
           body(team.j,1,2); atomic_fetch_add_explicit(&team.done,1,memory_order_release);} } }
   }
   T[k][t]=now()-t0;}
 int n=0; for(int t=0;t<N&&n<1000;t++)r[n++]=T[1][t]/T[0][t];
 if(NM==3){double rb[1000]; int nb=0; for(int t=0;t<N&&nb<1000;t++)rb[nb++]=T[2][t]/T[0][t]; qsort(rb,nb,8,cmpd); qsort(T[2],N,8,cmpd);
   printf("one region + omp barriers %.3f ms, barriers/regions per token: median %.3f [q1 %.3f q3 %.3f]; ",T[2][N/2]*1e3,rb[nb/2],rb[nb/4],rb[3*nb/4]);}
 qsort(T[0],N,8,cmpd);qsort(T[1],N,8,cmpd);qsort(r,n,8,cmpd);
 printf("region per product %.3f ms (%.1f GB/s)  one region, posted %.3f ms (%.1f GB/s)  posted/regions per token: median %.3f [q1 %.3f q3 %.3f]\n",T[0][N/2]*1e3,tot/T[0][N/2]/1e9,T[1][N/2]*1e3,tot/T[1][N/2]/1e9,r[n/2],r[n/4],r[3*n/4]);
 vwn_model_free(m); return 0;}

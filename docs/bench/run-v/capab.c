/* The token's products alone (as prodonly.c mode 0), tokens alternating ABBA between the owner's
 * claims uncapped (the library) and capped at CAP chunks (throwaway vwn_x_cap in mm_clock.c).
 * args: MODEL TOKENS CAP */
#include "model.h"
#include "ops/ops.h"
#include "vwn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
extern int vwn_x_cap;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
 vwn_model*m=NULL; if(vwn_model_load(argv[1],NULL,&m)){printf("load failed\n");return 1;}
 int N=atoi(argv[2]), cap=atoi(argv[3]); const vwn_hparams*hp=&m->hp; const vwn_ops*ops=vwn_ops_best();
 float*X=aligned_alloc(64,16*(size_t)hp->n_ff); for(int i=0;i<hp->n_ff;i++)X[i]=0.01f*(i%17);
 float*Y[3]; for(int i=0;i<3;i++)Y[i]=aligned_alloc(64,4*(size_t)hp->n_vocab+4096);
 void*xq=aligned_alloc(64,1<<20); double*T[2]={calloc(N,8),calloc(N,8)}; size_t tot=0;
 for(int t=0;t<N;t++)for(int kk=0;kk<2;kk++){int k=(t&1)?1-kk:kk; vwn_x_cap=k?cap:0; double t0=now();
   for(int l=0;l<hp->n_layer;l++){vwn_layer_weights*lw=&m->layers[l];
     const vwn_mat*q[3]={&lw->wq,&lw->wk,&lw->wv},*f[2]={&lw->w_gate,&lw->w_up};
     vwn_matmul_mt_many(ops,q,Y,3,X,1,xq,2); vwn_matmul_mt(ops,&lw->wo,X,1,Y[0],xq,2);
     vwn_matmul_mt_many(ops,f,Y,2,X,1,xq,2); vwn_matmul_mt(ops,&lw->w_down,X,1,Y[0],xq,2);
     if(t==0&&kk==0){const vwn_mat*a[]={&lw->wq,&lw->wk,&lw->wv,&lw->wo,&lw->w_gate,&lw->w_up,&lw->w_down};for(int i=0;i<7;i++)tot+=(size_t)a[i]->rows*a[i]->row_bytes;}}
   vwn_matmul_mt(ops,&m->lm_head,X,1,Y[0],xq,2); if(t==0&&kk==0)tot+=(size_t)m->lm_head.rows*m->lm_head.row_bytes;
   T[k][t]=now()-t0;}
 double r[400]; int n=0; for(int t=0;t<N&&n<400;t++)r[n++]=T[1][t]/T[0][t];
 qsort(T[0],N,8,cmpd);qsort(T[1],N,8,cmpd);qsort(r,n,8,cmpd);
 printf("cap %3d: uncapped %.3f ms (%.1f GB/s)  capped %.3f ms (%.1f GB/s)  capped/uncapped per token: median %.3f [q1 %.3f q3 %.3f]\n",cap,T[0][N/2]*1e3,tot/T[0][N/2]/1e9,T[1][N/2]*1e3,tot/T[1][N/2]/1e9,r[n/2],r[n/4],r[3*n/4]);
 vwn_model_free(m); return 0;}

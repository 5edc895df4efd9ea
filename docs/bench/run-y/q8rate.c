#include "vwn.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int rows=atoi(argv[1]), cols=atoi(argv[2]), T=atoi(argv[3]); int type=argc>4?atoi(argv[4]):VWN_TYPE_Q8_0;
  const vwn_ops*ops=vwn_ops_best();
  size_t rb=vwn_row_bytes(type,cols); char*w=aligned_alloc(64,rb*rows+64); char*pk=aligned_alloc(64,rb*rows+64);
  srand(1); float*row=malloc(cols*4);
  for(int r=0;r<rows;r++){ for(int c=0;c<cols;c++) row[c]=(rand()/(float)RAND_MAX-0.5f);
    /* quantize via ops */ ops->quantize_q8_0(row,(vwn_block_q8_0*)(w+r*rb),cols);}
  vwn_mat W={0}; W.type=type; W.rows=rows; W.cols=cols; W.row_bytes=rb; W.data=w; W.packed=NULL;
  if(ops->reads_packed && vwn_packable(type,cols)){ vwn_pack_rows(type,w,pk,rows,cols); W.packed=pk; }
  float*X=malloc((size_t)T*cols*4); for(long i=0;i<(long)T*cols;i++) X[i]=rand()/(float)RAND_MAX-0.5f;
  vwn_block_q8_0*xq=malloc((size_t)T*cols/32*sizeof(vwn_block_q8_0)); for(int t=0;t<T;t++) ops->quantize_q8_0(X+(long)t*cols,xq+(long)t*cols/32,cols);
  float*Y=malloc((size_t)T*rows*4);
  double best=1e9; for(int rep=0;rep<50;rep++){ double t0=now(); ops->matmul(&W,X,cols,xq,T,Y,rows,0,rows); double dt=now()-t0; if(dt<best)best=dt; }
  printf("%s %dx%d T=%d packed=%d: %.3f ms  %.1f GOPS  %.1f GB/s\n",ops->name,rows,cols,T,W.packed!=NULL,best*1e3,2.0*rows*cols*T/best/1e9,rb*(double)rows/best/1e9);
  return 0;
}

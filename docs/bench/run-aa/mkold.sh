#!/bin/bash
# v0 = HEAD's ops_avx2.c, v1 v2 = working tree
cd /work/main
git show HEAD:lib/ops/ops_avx2.c > /tmp/s23/ops_avx2_old.c
F="-O3 -DNDEBUG -std=c11 -D_GNU_SOURCE -DVWN_BUILD -I/work/main/include -I/work/main/lib -mavx2 -mfma -mf16c"
n() { echo "-Dvwn_ops_avx2=v$1_vnni -Dvwn_avx2_matmul_q8_0=v$1_q8 -Dvwn_avx2_matmul_q4_0=v$1_q4 -Dvwn_avx2_quantize_q8_0=v$1_qz"; }
clang $F $(n 0) -c /tmp/s23/ops_avx2_old.c -o /tmp/s23/a0.o &
clang $F $(n 1) -c lib/ops/ops_avx2.c -o /tmp/s23/a1.o &
wait
clang $F $(n 2) -DQ4_SEG_PF=0 -c lib/ops/ops_avx2.c -o /tmp/s23/a2.o
clang -O2 -march=native -Iinclude -Ilib /tmp/s23/dab.c -fopenmp=libomp /tmp/s23/a0.o /tmp/s23/a1.o /tmp/s23/a2.o build/lib/libvwn.a -lm /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so /usr/lib/llvm-14/lib/libomp.so -lpthread -Wl,-rpath,/usr/lib/llvm-14/lib -o /tmp/s23/dab2

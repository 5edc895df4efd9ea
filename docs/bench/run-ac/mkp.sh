#!/bin/bash
# mkp.sh "flags0" "flags1" ... : gemm_avx512.c compiled per flag set (v0, v1, ...) into pb
cd /work/main
i=0; objs=""
for f in "$@"; do
  clang -O3 -DNDEBUG -std=c11 -D_GNU_SOURCE -DVWN_BUILD -Iinclude -Ilib -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c -mavx2 $f -Dvwn_avx512_matmul_float=v$i -Dvwn_avx512_prep_bytes=v${i}_pb -Dvwn_avx512_prepare_x=v${i}_px -c lib/ops/gemm_avx512.c -o /tmp/s24/g$i.o &
  objs="$objs /tmp/s24/g$i.o"; i=$((i+1))
done
wait
for j in $(seq $i 3); do echo "void v$j(void){} unsigned long v${j}_pb(long a,long b){return 0;} void v${j}_px(void){}" ; done > /tmp/s24/stubs.c; clang -c /tmp/s24/stubs.c -o /tmp/s24/stubs.o; objs="$objs /tmp/s24/stubs.o"
clang -O2 -march=native -DNV=$i -fopenmp=libomp -Iinclude -Ilib /tmp/s24/pb.c $objs build/lib/libvwn.a -lm /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so /usr/lib/llvm-14/lib/libomp.so -lpthread -Wl,-rpath,/usr/lib/llvm-14/lib -o /tmp/s24/pb

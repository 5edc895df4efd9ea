#!/bin/bash
# mkv.sh "flags0" "flags1" ... : gemm_avx512.c compiled per flag set (v0, v1, ...) into pk
cd /work/main
i=0; objs=""
for f in "$@"; do
  clang -O3 -DNDEBUG -std=c11 -D_GNU_SOURCE -DVWN_BUILD -Iinclude -Ilib -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma -mf16c -mavx2 -ffp-contract=off $f -Dvwn_avx512_matmul_float=v$i -Dvwn_avx512_prep_bytes=v${i}_pb -Dvwn_avx512_prepare_x=v${i}_px -c lib/ops/gemm_avx512.c -o ${TMPDIR:-/tmp}/mkv_g$i.o || exit 1
  objs="$objs ${TMPDIR:-/tmp}/mkv_g$i.o"; i=$((i+1))
done
for j in $(seq $i 3); do echo "void v$j(void){} unsigned long v${j}_pb(long a,long b){return 0;} void v${j}_px(void){}" ; done > ${TMPDIR:-/tmp}/mkv_stubs.c; clang -c ${TMPDIR:-/tmp}/mkv_stubs.c -o ${TMPDIR:-/tmp}/mkv_stubs.o; objs="$objs ${TMPDIR:-/tmp}/mkv_stubs.o"
clang -O2 -march=native -fopenmp=libomp -Iinclude -Ilib docs/bench/run-ae/pk.c $objs build/lib/libvwn.a -lm /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so /usr/lib/llvm-14/lib/libomp.so -lpthread -Wl,-rpath,/usr/lib/llvm-14/lib -o ${TMPDIR:-/tmp}/pk

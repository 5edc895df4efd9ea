#!/bin/bash
# mk.sh "flags0" "flags1" ... : ops_avx512.c compiled once per flag set (tables v0, v1, ...; the
# -D switches were throwaway macros of the session, since removed) and linked into a harness:
#   HARNESS=ab  (default) the GEMM A/B, ab.c        HARNESS=dab  the decode-matmul A/B, dab.c
# Paths: the repository at /work/main, the harnesses and objects in /tmp/s23.
H=${HARNESS:-ab}
cd /work/main
i=0; objs=""
for f in "$@"; do
  clang -O3 -DNDEBUG -std=c11 -D_GNU_SOURCE -DVWN_BUILD -Iinclude -Ilib -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c -mavx2 $f -Dvwn_ops_avx512=v$i -Dvwn_ops_avx512_vnni=v${i}_vnni -c lib/ops/ops_avx512.c -o /tmp/s23/v$i.o &
  objs="$objs /tmp/s23/v$i.o"; i=$((i+1))
done
wait
clang -O2 -march=native -DNV=$i -fopenmp=libomp -Iinclude -Ilib /tmp/s23/$H.c $objs build/lib/libvwn.a -lm /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so /usr/lib/llvm-14/lib/libomp.so -lpthread -Wl,-rpath,/usr/lib/llvm-14/lib -o /tmp/s23/$H

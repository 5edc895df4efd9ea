#!/bin/sh
# prof.sh DATA -- per-thread share of samples by function
perf script -i $1 -F tid,ip,sym,dso 2>/dev/null | awk '{t=$1; s=$3; if ($0 ~ /libomp/) s="libomp"; if ($0 ~ /kallsyms/) s="kernel"; n[t]++; c[t" "s]++} END {for (k in c) {split(k,a," "); printf "%s %6.2f%% %s\n", a[1], 100*c[k]/n[a[1]], a[2]}}' | sort -k1,1 -k2,2nr | awk -v N=${2:-12} '{if(cnt[$1]++<N)print}'

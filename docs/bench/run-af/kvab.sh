#!/bin/bash
# kvab.sh ROUNDS MODEL PROMPT [GEN] -- `vwn bench` of one model with the KV cache in f32, f16 and
# q8_0, the three in turn for ROUNDS rounds (2 threads, 3 reps each); one JSON line per run.
R=$1; M=$2; P=$3; N=${4:-32}
VWN=${VWN:-build/bin/vwn}
for r in $(seq 1 "$R"); do
  for kv in f32 f16 q8_0; do
    printf '%s %s ' "$r" "$kv"
    $VWN bench "$M" -t 2 -p "$P" -n "$N" -r 3 --kv-type "$kv" --json | tail -1
  done
done

#!/bin/bash
# alt2.sh ROUNDS MODEL [args] : old/new vwn bench alternating (ABBA): prefill and decode tok/s
R=$1; M=$2; shift 2
for ((i=0;i<R;i++)); do
  if (( i % 2 == 0 )); then order="old new"; else order="new old"; fi
  for b in $order; do
    if [ $b = old ]; then B=/tmp/oldsrc/build/bin/vwn; else B=/work/main/build/bin/vwn; fi
    j=$($B bench $M "$@" --json | tail -1)
    echo "$b $(echo $j | python3 -c 'import sys,json; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print("prefill %.1f tok/s decode %.2f tok/s eff %.3f machine %.1f rss %.0f" % (d["prefill_tok_s"], d["decode_tok_s"], d["bw_efficiency"], d["machine_gbs"], d["rss_mb"]))')"
  done
done

#!/bin/bash
# alt.sh ROUNDS MODEL [args] : old/new vwn bench alternating, decode tok/s and efficiency
R=$1; M=$2; shift 2
for ((i=0;i<R;i++)); do
  for b in old new; do
    if [ $b = old ]; then B=/tmp/oldsrc/build/bin/vwn; else B=/work/main/build/bin/vwn; fi
    if (( i % 2 == 1 )); then if [ $b = old ]; then B=/work/main/build/bin/vwn; bb=new; else B=/tmp/oldsrc/build/bin/vwn; bb=old; fi; else bb=$b; fi
    j=$($B bench $M "$@" --json | tail -1)
    echo "$bb $(echo $j | python3 -c 'import sys,json; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print("decode %.2f tok/s eff %.3f machine %.1f" % (d["decode_tok_s"], d["bw_efficiency"], d["machine_gbs"]))')"
  done
done

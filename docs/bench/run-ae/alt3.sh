#!/bin/bash
# alt3.sh ROUNDS MODEL [vwn bench args] : the previous build (/tmp/oldsrc) and this one alternating
# (ABBA), each on 2 threads and on 1: prefill and decode tok/s per run, then the mean ratios.
R=$1; M=$2; shift 2
out=$(mktemp)
for ((i=0;i<R;i++)); do
  if (( i % 2 == 0 )); then order="old new"; else order="new old"; fi
  for t in 2 1; do
    for b in $order; do
      if [ $b = old ]; then B=/tmp/oldsrc/build/bin/vwn; else B=/work/main/build/bin/vwn; fi
      j=$($B bench $M -t $t "$@" --json | tail -1)
      echo "$b t$t $(echo $j | python3 -c 'import sys,json; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print("%.2f %.3f" % (d["prefill_tok_s"], d["decode_tok_s"]))')" | tee -a $out
    done
  done
done
python3 - $out <<'PY'
import sys, collections, statistics as st
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, t, p, d = line.split(); v[(b, t)].append((float(p), float(d)))
for t in ("t2", "t1"):
    o, n = v[("old", t)], v[("new", t)]
    print("%s prefill old %.1f new %.1f tok/s (means) new/old %.3f; decode old %.2f new %.2f new/old %.3f" % (t,
          st.mean(x[0] for x in o), st.mean(x[0] for x in n), st.mean(x[0] for x in n) / st.mean(x[0] for x in o),
          st.mean(x[1] for x in o), st.mean(x[1] for x in n), st.mean(x[1] for x in n) / st.mean(x[1] for x in o)))
for b in ("old", "new"):
    print("%s 2 threads / 1 thread prefill %.2fx (means)" % (b, st.mean(x[0] for x in v[(b, "t2")]) / st.mean(x[0] for x in v[(b, "t1")])))
PY
rm -f $out

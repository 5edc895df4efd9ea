#!/bin/bash
# alternating processes: drop the model from the page cache, then vwn bench with the session-start
# loader (old: no prefault of files with nothing to pack) or the fixed one (new)
M=$1; R=${2:-6}
for i in $(seq 1 $R); do
  for b in old new; do
    if [ $b = old ]; then V=/tmp/s18/oldtree/build/bin/vwn; else V=/work/main/build/bin/vwn; fi
    /work/main/.venv/bin/python /work/main/scripts/drop_page_cache.py $M
    out=$($V bench $M -t 2 -p 64 -n 64 -r 3 2>&1)
    echo "$b $(echo "$out" | grep -E '^  decode  ' | tr -s ' ') | $(echo "$out" | grep 'decode bandwidth' | tr -s ' ') | $(echo "$out" | grep '2 MiB pages' | tr -s ' ')"
  done
done

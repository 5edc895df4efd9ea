"""kvsum.py FILE: the runs of kvab.sh as a table (decode tok/s, share of the bandwidth, KV MB a
token reads, RSS, prefill tok/s) and the medians per KV type."""
import json, re, statistics, sys
rows, lab = [], None
for line in open(sys.argv[1]):
    m = re.match(r"^(\d+) (f32|f16|q8_0) ", line)
    if m:
        lab = m.groups()
    i = line.find("{")
    if i >= 0 and lab:
        d = json.loads(line[i:])
        d = d["models"][0] if "models" in d else d
        rows.append((lab[0], lab[1], d["decode_tok_s"], d["bw_efficiency"], d["kv_bytes_per_token"] / 1e6, d["rss_mb"], d["prefill_tok_s"]))
for r in rows:
    print("round %s %-5s decode %7.2f tok/s  eff %5.1f%%  KV %6.1f MB/token  RSS %6.1f MB  prefill %7.1f tok/s" % (r[0], r[1], r[2], 100 * r[3], r[4], r[5], r[6]))
base = statistics.median(r[2] for r in rows if r[1] == "f32")
for kv in ("f32", "f16", "q8_0"):
    dec = [r[2] for r in rows if r[1] == kv]
    if dec:
        print("%-5s median decode %7.2f tok/s (%.3fx f32), efficiency %5.1f%%, prefill %7.1f tok/s" % (
            kv, statistics.median(dec), statistics.median(dec) / base,
            100 * statistics.median(r[3] for r in rows if r[1] == kv), statistics.median(r[6] for r in rows if r[1] == kv)))

#!/usr/bin/env python3
"""bench_states.py -- sort the repetitions of scripts/bench_watch.sh by the machine's state.

    scripts/bench_states.py OUT_DIR|FILE [--fast GBS] [--slow GBS]

Reads every OUT_DIR/rNNN_TYPE.txt (`vwn bench` output of the three benchmark shapes, --json), or
one FILE of such outputs each starting with a "### round" line (docs/bench/run-m/watch.txt). A
repetition counts when its round was steady (its two bracketing bandwidth measurements within 25%
of each other, as `vwn bench` decides); it is in the fast state when the mean of the two is at
least --fast (default 45 GB/s), in the slow state below --slow (default 38), in between otherwise.
Per weight type and state it prints the medians of: the decode efficiency of each shape (achieved
GB/s / the round's bandwidth), and the decode time of each VWN shape against its twin, taken
repetition by repetition (the shapes of a repetition run back to back)."""
import glob
import json
import os
import re
import statistics
import sys

SHAPES = ("m1n1", "m2n8", "m8n64")


def reps(text):
    """(weight type, [(bandwidth, {shape: decode tok/s}, {shape: efficiency})]) of one round."""
    lines = text.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        return None, []
    js = json.loads(lines[-1])
    bpt, kind = {}, None
    for m in js["models"]:
        shape = re.search(r"_(m\d+n\d+)\.", os.path.basename(m["model"])).group(1)
        bpt[shape], kind = m["bytes_per_token"], m["weight_type"]
    brackets = js["rep_machine_gbs"]
    per = {}
    for r, model, dec in re.findall(r"rep (\d+)/\d+ (\S+): prefill [\d.]+ tok/s, decode ([\d.]+) tok/s", text):
        shape = re.search(r"_(m\d+n\d+)\.", os.path.basename(model)).group(1)
        per.setdefault(int(r) - 1, {})[shape] = float(dec)
    out = []
    for r, dec in sorted(per.items()):
        b0, b1 = brackets[r], brackets[r + 1]
        if max(b0, b1) > 1.25 * min(b0, b1) or set(dec) != set(SHAPES):
            continue
        bw = (b0 + b1) / 2
        out.append((bw, dec, {s: bpt[s] * dec[s] / 1e9 / bw for s in SHAPES}))
    return kind, out


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    fast = float(args[args.index("--fast") + 1]) if "--fast" in args else 45.0
    slow = float(args[args.index("--slow") + 1]) if "--slow" in args else 38.0
    if os.path.isdir(args[0]):
        rounds = [open(p).read() for p in sorted(glob.glob(os.path.join(args[0], "r*_*.txt")))]
    else:
        rounds = re.split(r"^(?=### round)", open(args[0]).read(), flags=re.M)
    rows = {}
    for text in rounds:
        kind, rr = reps(text)
        for bw, dec, eff in rr:
            state = "fast" if bw >= fast else "slow" if bw < slow else "between"
            rows.setdefault((state, kind), []).append((bw, dec, eff))
    med = statistics.median
    print(f"| state | weights | reps | GB/s | efficiency m1n1 | m2n8 | m8n64 | m1n1 tok/s | time vs twin (2,8) | (8,64) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for state in ("slow", "between", "fast"):
        for kind in ("f32", "f16", "bf16", "q8_0", "q4_0"):
            sel = rows.get((state, kind))
            if not sel:
                continue
            e = {s: med([x[2][s] for x in sel]) for s in SHAPES}
            r28 = med([x[1]["m1n1"] / x[1]["m2n8"] for x in sel])
            r864 = med([x[1]["m1n1"] / x[1]["m8n64"] for x in sel])
            print(f"| {state} | {kind} | {len(sel)} | {med([x[0] for x in sel]):.1f} | {100 * e['m1n1']:.0f}% | "
                  f"{100 * e['m2n8']:.0f}% | {100 * e['m8n64']:.0f}% | {med([x[1]['m1n1'] for x in sel]):.1f} | "
                  f"{r28:.3f} | {r864:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Plot validation loss vs step of training runs written by tools/train.py (OUT/log.json).

    python tools/plot_runs.py runs/vwn_demo runs/baseline --labels "VWN (m,n)=(2,8)" "baseline n=m=1" \
        --out docs/virtual-width.png [--table]

`--table` also prints a markdown table of the validation loss (nats/token) and bits per byte of the
main head at every evaluated step, and the final full-validation numbers of every head.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(run):
    with open(os.path.join(run, "log.json")) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    labels = a.labels or [os.path.basename(r.rstrip("/")) for r in a.runs]
    logs = [load(r) for r in a.runs]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for lg, lab in zip(logs, labels):
        v = lg["val"]
        steps = [r["step"] for r in v]
        axes[0].plot(steps, [r["loss"][0] for r in v], marker="o", ms=3, label=f"{lab}: main head")
        for h in range(1, len(v[0]["loss"])):
            axes[0].plot(steps, [r["loss"][h] for r in v], ls="--", lw=1, label=f"{lab}: MTP {h}")
        tr = lg["train"]
        w = 10
        sm = [sum(r["ce"][0] for r in tr[max(0, i - w + 1):i + 1]) / len(tr[max(0, i - w + 1):i + 1])
              for i in range(len(tr))]
        axes[1].plot([r["step"] for r in tr], sm, label=lab)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("validation loss (nats/token)")
    axes[0].set_title("validation loss")
    axes[0].set_ylim(top=min(8.5, axes[0].get_ylim()[1]))
    axes[0].legend(fontsize=7)
    axes[0].grid(alpha=0.3)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("train CE, main head (10-step mean)")
    axes[1].set_title("training loss")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")

    if a.table:
        print("\n| step | tokens seen | " + " | ".join(f"{l} loss / bpb" for l in labels) + " |")
        print("|---|---|" + "---|" * len(labels))
        by_step = [{r["step"]: r for r in lg["val"]} for lg in logs]
        for s in sorted(set.intersection(*[set(b) for b in by_step])):
            row = [f"{b[s]['loss'][0]:.4f} / {b[s]['bpb'][0]:.4f}" for b in by_step]
            print(f"| {s} | {by_step[0][s]['tokens_seen']} | " + " | ".join(row) + " |")
        print()
        for lg, lab in zip(logs, labels):
            f = lg["val"][-1]
            heads = " ; ".join(f"{'main' if h == 0 else 'MTP %d' % h}: {f['loss'][h]:.4f} nats, "
                               f"{f['bpb'][h]:.4f} bpb" for h in range(len(f["loss"])))
            el = lg["train"][-1]["elapsed"] if lg["train"] else 0
            print(f"- {lab}: step {f['step']}, final={f.get('final')}, {int(f['tokens'][0])} val tokens, "
                  f"{heads}; params {lg['params']}; elapsed {el:.0f} s")


if __name__ == "__main__":
    main()

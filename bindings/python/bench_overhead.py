"""bench_overhead.py -- the cost of the Python layer: greedy generation tokens/s of the `vwn` package
against the C command line tool (`vwn run`) on the same model, prompt, token budget and threads.

    python bindings/python/bench_overhead.py MODEL.gguf [-n 256] [-t 2] [--repeat 5]
                                             [--vwn /work/main/build/bin/vwn]

Measured over the repeats, C and Python runs interleaved; the median and the best run are shown
(on a busy machine the best run is the better estimate of the intrinsic cost):
  vwn run             the C tool's own generation rate (its "generated: ... tok/s" line)
  generate()          the streaming iterator: the library's generation timer (which includes the
                      Python token callback) and the wall clock seen by the consumer
  generate_tokens()   the same loop without a background thread
  python loop         decode(t) + numpy argmax per token in Python (what a per-token round trip
                      through Python would cost, for comparison)
MTP modules are off in every case, as `vwn run` turns them off when it is not speculating.
"""
import argparse
import re
import statistics
import subprocess
import sys
import time

import numpy as np

import vwn


def run_cli(exe, model, prompt, n, threads, n_ctx):
    r = subprocess.run([exe, "run", model, "--prompt", prompt, "-n", str(n), "--greedy",
                        "-t", str(threads), "--ctx", str(n_ctx)], capture_output=True, check=True)
    m = re.search(rb"generated:\s+(\d+) tokens in\s+([\d.]+) ms", r.stderr)
    if not m:
        sys.exit("cannot parse the output of vwn run:\n" + r.stderr.decode())
    return int(m.group(1)), float(m.group(2)) / 1e3, r.stdout[len(prompt.encode()):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--prompt", default="Once upon a time, there was")
    ap.add_argument("-n", type=int, default=256, help="tokens to generate")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--vwn", default="/work/main/build/bin/vwn", help="the C tool")
    a = ap.parse_args()

    model = vwn.Model(a.model)
    n_ctx = len(model.tokenize(a.prompt)) + a.n + 8
    ctx = vwn.Context(model, n_ctx=n_ctx, n_threads=a.threads, mtp=False)
    rates = {k: [] for k in ("cli", "iter_lib", "iter_wall", "sync_lib", "sync_wall", "pyloop")}
    n_gen = None
    for _ in range(a.repeat):
        n, secs, cli_text = run_cli(a.vwn, a.model, a.prompt, a.n, a.threads, n_ctx)
        rates["cli"].append(n / secs)

        ctx.clear()
        t0 = time.perf_counter()
        it = ctx.generate(a.prompt, n_predict=a.n, greedy=True, as_bytes=True)
        text = b"".join(it)
        wall = time.perf_counter() - t0
        s = it.stats
        assert text == cli_text, "the Python and C outputs differ"
        n_gen = s.n_generated
        rates["iter_lib"].append(s.tokens_per_second)
        rates["iter_wall"].append(s.n_generated / (wall - s.t_prompt_us * 1e-6))

        ctx.clear()
        t0 = time.perf_counter()
        toks = ctx.generate_tokens(a.prompt, n_predict=a.n, greedy=True)
        wall = time.perf_counter() - t0
        s = ctx.last_stats
        rates["sync_lib"].append(s.tokens_per_second)
        rates["sync_wall"].append(len(toks) / (wall - s.t_prompt_us * 1e-6))

        ctx.clear()
        ctx.decode(model.tokenize(a.prompt))
        t0 = time.perf_counter()
        for i in range(n_gen):
            t = int(np.argmax(ctx.logits()))
            if i + 1 < n_gen:
                ctx.decode(t)
        rates["pyloop"].append(n_gen / (time.perf_counter() - t0))

    med = {k: statistics.median(v) for k, v in rates.items()}
    best = {k: max(v) for k, v in rates.items()}
    print("model %s: %d generated tokens, %d threads, %d runs (median / best)"
          % (a.model, n_gen, a.threads, a.repeat))
    print("  %-42s %9.1f / %9.1f tok/s" % ("vwn run (C)", med["cli"], best["cli"]))
    for key, label in (("iter_lib", "generate() iterator, library timer"),
                       ("iter_wall", "generate() iterator, consumer wall clock"),
                       ("sync_lib", "generate_tokens(), library timer"),
                       ("sync_wall", "generate_tokens(), wall clock"),
                       ("pyloop", "python loop: decode + argmax per token")):
        print("  %-42s %9.1f / %9.1f tok/s  (%+6.1f%% / %+6.1f%% vs C)"
              % (label, med[key], best[key], 100.0 * (med[key] / med["cli"] - 1.0),
                 100.0 * (best[key] / best["cli"] - 1.0)))

if __name__ == "__main__":
    main()

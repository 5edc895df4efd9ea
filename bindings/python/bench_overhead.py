"""bench_overhead.py -- the cost of the Python layer: greedy generation with the `vwn` package
against the C tool (`vwn run`) on the same model, prompt, token budget and thread count.

    python bindings/python/bench_overhead.py MODEL.gguf [-n 500] [-t 1] [--repeat 11]
                                             [--vwn /work/main/build/bin/vwn]

Two measures, each over --repeat runs with the C and Python runs interleaved:

  CPU time per generated token (median): the CPU seconds the whole process spends -- every thread,
      the Python consumer included -- for a run of N tokens minus a run of 0 tokens (the same
      prompt), divided by N. It is what the Python layer adds to the work, and it does not depend
      on how often the process was descheduled, so it stays meaningful on a busy machine.
  tokens per second, median and best run: the generation rate as the library times it
      (t_generate_us; `vwn run` prints the same number) and, for the iterator, the wall clock of
      the consumer. On a shared machine these swing with the load; the best run is the steadier.

Forms: `vwn run` (C; it writes and flushes every piece to its stdout, a pipe here);
vwn_generate called through ctypes with no token callback (the floor for any Python host); the
generate() iterator (background thread, C token callback); generate_tokens() (calling thread,
Python token callback); a Python loop of decode(t) + numpy argmax per token (what a per-token
round trip through Python costs). Every run gets a new context, as every `vwn run` does, and the
MTP modules are off, as `vwn run` turns them off when it is not speculating.
"""
import argparse
import ctypes
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import vwn


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_cli(a, n, n_ctx):
    """One `vwn run`: (generated tokens, its tok/s, CPU seconds, generated text)."""
    c0 = cpu_children()
    r = subprocess.run([a.vwn, "run", a.model, "--prompt", a.prompt, "-n", str(n), "--greedy",
                        "-t", str(a.threads), "--ctx", str(n_ctx)], capture_output=True, check=True)
    cpu = cpu_children() - c0
    m = re.search(rb"generated:\s+(\d+) tokens in\s+([\d.]+) ms", r.stderr)
    if not m:
        sys.exit("cannot parse the output of vwn run:\n" + r.stderr.decode())
    k, ms = int(m.group(1)), float(m.group(2))
    return k, (k / (ms * 1e-3) if ms > 0 else 0.0), cpu, r.stdout[len(a.prompt.encode()):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--prompt", default="Once upon a time, there was")
    ap.add_argument("-n", type=int, default=500, help="tokens to generate")
    ap.add_argument("-t", "--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--vwn", default="/work/main/build/bin/vwn", help="the C tool")
    a = ap.parse_args()

    model = vwn.Model(a.model)
    n_ctx = len(model.tokenize(a.prompt)) + a.n + 8

    def fresh_context():
        return vwn.Context(model, n_ctx=n_ctx, n_threads=a.threads, mtp=False)

    def py_iter(n):
        ctx = fresh_context()
        c0, t0 = cpu_self(), time.perf_counter()
        it = ctx.generate(a.prompt, n_predict=n, greedy=True, as_bytes=True)
        text = b"".join(it)
        wall, cpu = time.perf_counter() - t0, cpu_self() - c0
        s = it.stats
        gen_wall = wall - s.t_prompt_us * 1e-6
        return s.n_generated, s.tokens_per_second, cpu, text, s.n_generated / gen_wall

    def py_sync(n):
        ctx = fresh_context()
        c0 = cpu_self()
        toks = ctx.generate_tokens(a.prompt, n_predict=n, greedy=True)
        cpu = cpu_self() - c0
        return len(toks), ctx.last_stats.tokens_per_second, cpu

    def py_direct(n):
        # the floor for any Python host: vwn_generate called through ctypes, no token callback
        from vwn import _lib
        ctx = fresh_context()
        gp = _lib.vwn_generate_default_params()
        gp.n_predict = n
        stats = _lib.vwn_generate_stats()
        c0 = cpu_self()
        if _lib.vwn_generate(ctx._ptr, a.prompt.encode(), ctypes.byref(gp), ctypes.byref(stats)):
            sys.exit("vwn_generate failed: %s" % _lib.vwn_last_error().decode())
        cpu = cpu_self() - c0
        return stats.n_generated, stats.n_generated / (stats.t_generate_us * 1e-6) if n else 0, cpu

    def py_loop(n):
        ctx = fresh_context()
        c0 = cpu_self()
        ctx.decode(model.tokenize(a.prompt))
        t1 = time.perf_counter()
        for i in range(n):
            t = int(np.argmax(ctx.logits()))
            if i + 1 < n:
                ctx.decode(t)
        t2 = time.perf_counter()
        return n, (n / (t2 - t1) if n else 0.0), cpu_self() - c0

    forms = ["cli", "direct", "iter", "sync", "loop"]
    cpu_us = {f: [] for f in forms}
    rate = {f: [] for f in forms + ["iter_wall"]}
    n_gen = None
    for _ in range(a.repeat):
        n, r, cpu, cli_text = run_cli(a, a.n, n_ctx)
        cpu0 = run_cli(a, 0, n_ctx)[2]
        n_gen = n
        rate["cli"].append(r)
        cpu_us["cli"].append((cpu - cpu0) / n * 1e6)

        k, r, cpu, text, wall_rate = py_iter(n)
        assert k == n and text == cli_text, "the Python and C outputs differ"
        rate["iter"].append(r)
        rate["iter_wall"].append(wall_rate)
        cpu_us["iter"].append((cpu - py_iter(0)[2]) / n * 1e6)

        k, r, cpu = py_sync(n)
        rate["sync"].append(r)
        cpu_us["sync"].append((cpu - py_sync(0)[2]) / n * 1e6)

        k, r, cpu = py_direct(n)
        rate["direct"].append(r)
        cpu_us["direct"].append((cpu - py_direct(0)[2]) / n * 1e6)

        k, r, cpu = py_loop(n)
        rate["loop"].append(r)
        cpu_us["loop"].append((cpu - py_loop(0)[2]) / n * 1e6)

    med = {f: statistics.median(v) for f, v in cpu_us.items()}
    print("model %s: %d generated tokens, %d thread(s), %d runs"
          % (a.model, n_gen, a.threads, a.repeat))
    print("  %-40s %16s %22s" % ("", "CPU us/token", "tok/s median / best"))
    labels = {"cli": "vwn run (C)", "direct": "ctypes vwn_generate, no callback",
              "iter": "generate() iterator",
              "iter_wall": "generate() iterator, consumer wall clock",
              "sync": "generate_tokens()", "loop": "python loop: decode + argmax"}
    for f in ["cli", "direct", "iter", "iter_wall", "sync", "loop"]:
        c = "%6.1f (%+6.1f%%)" % (med[f], 100.0 * (med[f] / med["cli"] - 1.0)) if f in med else ""
        print("  %-40s %16s %10.0f / %9.0f" % (labels[f], c, statistics.median(rate[f]),
                                               max(rate[f])))


if __name__ == "__main__":
    main()

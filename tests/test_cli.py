"""Tests of the `vwn` command line against the float64 reference (tools/reference.py).

    VWN_BIN=build/bin/vwn .venv/bin/python -m pytest tests/test_cli.py -q

Random checkpoints from tests/configs are converted to GGUF in a temporary folder, then:

* `vwn logits --all --mtp` equals reference.forward for the main model and every MTP module
  (max |diff| <= 1e-4 * max |logit|), and so does the last-position form without --all;
* `vwn run --greedy` prints exactly the prompt bytes followed by the reference's greedy
  continuation (bytes tokenizer: token id = byte), with and without --spec;
* a model whose main and first MTP head always say token 0 (final norms zeroed) makes every
  depth-1 draft accepted: the speculative statistics say so and the output is unchanged;
* `vwn perplexity` bits per token equal those computed from reference logits, window by window;
* `vwn bench --json` ends with a JSON line holding the documented keys, all positive;
* errors: a missing file, an out-of-range token, an unknown option give a non-zero exit and a
  message naming the problem; `--help` works for every subcommand;
* the examples (generate, speculative) run, if they were built next to the binary.

The binary is $VWN_BIN (default /work/main/build/bin/vwn); every test is skipped without it.
No test depends on timing.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
sys.path.insert(0, str(TOOLS))

import convert                      # noqa: E402
import random_checkpoint as rc      # noqa: E402
from reference import forward, greedy, load_checkpoint  # noqa: E402

VWN_BIN = Path(os.environ.get("VWN_BIN", "/work/main/build/bin/vwn"))
pytestmark = pytest.mark.skipif(not VWN_BIN.exists(), reason=f"vwn binary not found at {VWN_BIN} (set VWN_BIN)")

CONFIG_DIR = ROOT / "tests" / "configs"
# MTP depths 2, 3, 2, 0; wide and factorized; group norm on and off; fractional r
LOGIT_CONFIGS = [
    "m2n8_dynamic_wide_untied_gn_gqa2_mtp2",
    "m4n16_dynamic_fact_tied_gn_gqa2_mtp3",
    "m2n3_dynamic_fact_untied_nogn_gqa1_mtp2",
    "m1n1_static_wide_untied_nogn_mha_mtp0",
]
MTP_MODEL = "m2n8_dynamic_wide_untied_gn_gqa2_mtp2"
SUBCOMMANDS = ["info", "tokenize", "logits", "run", "perplexity", "bench"]
TOKENS = [72, 101, 108, 108, 111, 44, 32, 118, 119, 110, 0, 255]


def vwn(*args, check=True, timeout=120):
    """Run the binary; returns the CompletedProcess with bytes stdout/stderr."""
    p = subprocess.run([str(VWN_BIN), *map(str, args)], capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"vwn {' '.join(map(str, args))} exited {p.returncode}:\n"
                             f"{p.stderr.decode(errors='replace')}")
    return p


def zero_tensors(path, names):
    """Zero some F32 tensors of a safetensors file in place."""
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        for name in names:
            info = header[name]
            assert info["dtype"] == "F32"
            begin, end = info["data_offsets"]
            f.seek(8 + n + begin)
            f.write(b"\0" * (end - begin))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (checkpoint dir, gguf path) for every config used here, made once."""
    out = {}
    base = tmp_path_factory.mktemp("cli_models")
    for name in LOGIT_CONFIGS:
        with open(CONFIG_DIR / f"{name}.json") as f:
            cfg = json.load(f)
        ckpt = base / name
        rc.make_checkpoint(cfg, str(ckpt), seed=1)
        convert.convert(str(ckpt), str(base / f"{name}.gguf"))
        out[name] = (ckpt, base / f"{name}.gguf")
    # "always token 0": main and MTP-1 heads see a zero vector, so their logits are all 0 and the
    # argmax is token 0 (ties go to the lowest id); MTP-2 stays random
    with open(CONFIG_DIR / f"{MTP_MODEL}.json") as f:
        cfg = json.load(f)
    ckpt = base / "zero_head"
    rc.make_checkpoint(cfg, str(ckpt), seed=2)
    zero_tensors(ckpt / "model.safetensors", ["final_norm.weight", "mtp.0.final_norm.weight"])
    convert.convert(str(ckpt), str(base / "zero_head.gguf"))
    out["zero_head"] = (ckpt, base / "zero_head.gguf")
    # heads of 32 values: a Q8_0 KV cache holds whole blocks (--kv-type q8_0)
    cfg["head_dim"] = 32
    ckpt = base / "hd32"
    rc.make_checkpoint(cfg, str(ckpt), seed=1)
    convert.convert(str(ckpt), str(base / "hd32.gguf"))
    out["hd32"] = (ckpt, base / "hd32.gguf")
    return out


def assert_close(got, want, what):
    want = np.asarray(want)
    assert got.dtype == np.float32, what
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    if want.size == 0:
        return
    err = np.max(np.abs(got.astype(np.float64) - want))
    scale = np.max(np.abs(want))
    assert err <= 1e-4 * scale, f"{what}: max |diff| {err:.3g} > 1e-4 * {scale:.3g}"


# =============================================================================================
# help and errors
# =============================================================================================

@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help(cmd):
    p = vwn(cmd, "--help")
    assert p.stdout.strip(), f"vwn {cmd} --help printed nothing"


def test_top_level_help_and_unknown_command():
    assert b"perplexity" in vwn("--help").stdout
    p = vwn("frobnicate", check=False)
    assert p.returncode != 0 and b"frobnicate" in p.stderr


@pytest.mark.parametrize("cmd,extra", [
    ("logits", ["--tokens", "1,2", "-o", "x.npy"]),
    ("run", ["--prompt", "hi", "-n", "2"]),
    ("perplexity", ["--file", __file__]),
    ("bench", ["-p", "4", "-n", "2", "-r", "1", "--bw-mb", "16"]),
])
def test_missing_model_file(tmp_path, cmd, extra):
    missing = tmp_path / "no_such_model.gguf"
    p = vwn(cmd, missing, *extra, check=False)
    assert p.returncode != 0
    assert str(missing).encode() in p.stderr, p.stderr


def test_missing_text_file(models, tmp_path):
    missing = tmp_path / "no_such_text.txt"
    p = vwn("perplexity", models[MTP_MODEL][1], "--file", missing, check=False)
    assert p.returncode != 0 and str(missing).encode() in p.stderr
    p = vwn("run", models[MTP_MODEL][1], "--file", missing, check=False)
    assert p.returncode != 0 and str(missing).encode() in p.stderr


def test_token_out_of_range(models, tmp_path):
    p = vwn("logits", models[MTP_MODEL][1], "--tokens", "1,2,256,3", "-o", tmp_path / "x.npy", check=False)
    assert p.returncode != 0
    assert b"vocabulary" in p.stderr and b"256" in p.stderr, p.stderr
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("args", [
    ["logits", "M", "--tokens", "1,2", "--frob", "-o", "x.npy"],
    ["logits", "M", "--tokens", "1,x", "-o", "x.npy"],
    ["logits", "M", "--tokens", "1,2"],                      # no -o
    ["run", "M", "--prompt", "a", "-n"],                     # missing value
    ["run", "M", "--prompt", "a", "--temp", "hot"],
    ["run", "M", "--prompt", "a", "--simd", "sse9"],
    ["perplexity", "M"],                                     # no --file
    ["bench", "M", "-r", "0"],
])
def test_usage_errors(models, args):
    args = [str(models[MTP_MODEL][1]) if a == "M" else a for a in args]
    p = vwn(*args, check=False)
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    assert p.stderr.startswith(b"vwn " + args[0].encode() + b": ")


def test_spec_without_mtp(models):
    p = vwn("run", models["m1n1_static_wide_untied_nogn_mha_mtp0"][1], "--prompt", "a", "--spec", "1", check=False)
    assert p.returncode != 0 and b"MTP" in p.stderr


# =============================================================================================
# logits
# =============================================================================================

@pytest.mark.parametrize("name", LOGIT_CONFIGS)
def test_logits_all_mtp_match_reference(models, tmp_path, name):
    ckpt, gguf = models[name]
    cfg, w = load_checkpoint(str(ckpt))
    want, want_mtp = forward(cfg, w, TOKENS)
    out = tmp_path / "out.npy"
    args = ["logits", gguf, "--tokens", ",".join(map(str, TOKENS)), "--all", "-o", out, "-t", "1"]
    if cfg["mtp_depth"]:
        args.append("--mtp")
    vwn(*args)
    assert_close(np.load(out), want, f"{name} main")
    for j in range(1, cfg["mtp_depth"] + 1):
        assert_close(np.load(tmp_path / f"out.mtp{j}.npy"), want_mtp[j - 1], f"{name} mtp{j}")
    assert not (tmp_path / f"out.mtp{cfg['mtp_depth'] + 1}.npy").exists()


def test_logits_last_position(models, tmp_path):
    ckpt, gguf = models["m4n16_dynamic_fact_tied_gn_gqa2_mtp3"]
    cfg, w = load_checkpoint(str(ckpt))
    want, want_mtp = forward(cfg, w, TOKENS)
    vwn("logits", gguf, "--tokens", ",".join(map(str, TOKENS)), "--mtp", "-o", tmp_path / "last")
    assert_close(np.load(tmp_path / "last"), want[-1], "main last")   # no .npy suffix: written as given
    for j in range(1, 4):
        assert_close(np.load(tmp_path / f"last.mtp{j}.npy"), want_mtp[j - 1][-1], f"mtp{j} last")


def test_logits_prompt_equals_tokens(models, tmp_path):
    """bytes tokenizer: --prompt TEXT is the same as --tokens of its bytes."""
    gguf = models[MTP_MODEL][1]
    text = "VWN!"
    vwn("logits", gguf, "--prompt", text, "--all", "-o", tmp_path / "a.npy")
    vwn("logits", gguf, "--tokens", ",".join(str(b) for b in text.encode()), "--all", "-o", tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


# =============================================================================================
# run
# =============================================================================================

@pytest.mark.parametrize("spec", [None, "1", "2", "auto"])
def test_run_greedy_matches_reference(models, spec):
    ckpt, gguf = models[MTP_MODEL]
    cfg, w = load_checkpoint(str(ckpt))
    prompt = b"The cat"
    n = 20
    want = prompt + bytes(greedy(cfg, w, list(prompt), n))
    args = ["run", gguf, "--prompt", prompt.decode(), "-n", n, "--greedy"]
    if spec:
        args += ["--spec", spec]
    p = vwn(*args)
    assert p.stdout == want
    assert b"generated:" in p.stderr and b"tok/s" in p.stderr
    if spec:
        assert b"speculative" in p.stderr and b"drafted" in p.stderr


def test_run_prompt_file_and_stop(models, tmp_path):
    ckpt, gguf = models[MTP_MODEL]
    cfg, w = load_checkpoint(str(ckpt))
    prompt = b"ab\x00c"  # a NUL byte: the file is used verbatim
    (tmp_path / "p.txt").write_bytes(prompt)
    cont = bytes(greedy(cfg, w, list(prompt), 12))
    p = vwn("run", gguf, "--file", tmp_path / "p.txt", "-n", 12, "--greedy")
    assert p.stdout == prompt + cont
    # --stop: a printable byte of the continuation; output ends just before its first occurrence
    stops = [c for c in cont if 33 <= c < 127]
    if not stops:
        pytest.skip("no printable byte in this continuation")
    stop = bytes([stops[0]])
    p = vwn("run", gguf, "--file", tmp_path / "p.txt", "-n", 12, "--greedy", "--stop", stop.decode())
    assert p.stdout == prompt + cont[:cont.find(stop)]
    assert b"stop string" in p.stderr


def test_run_speculative_accepts(models):
    """Main and MTP-1 always pick token 0: every depth-1 draft must be accepted."""
    gguf = models["zero_head"][1]
    plain = vwn("run", gguf, "--prompt", "xy", "-n", 24, "--greedy")
    assert plain.stdout == b"xy" + b"\0" * 24
    p = vwn("run", gguf, "--prompt", "xy", "-n", 24, "--greedy", "--spec", "2")
    assert p.stdout == plain.stdout
    line = [ln for ln in p.stderr.decode().splitlines() if ln.strip().startswith("depth  1:")][0]
    acc, drafted = line.split(":")[1].split("accepted")[0].split("/")
    assert int(acc) == int(drafted) > 0


def test_run_sampling_is_seeded(models):
    gguf = models[MTP_MODEL][1]
    a = vwn("run", gguf, "--prompt", "x", "-n", 16, "--seed", 7).stdout
    b = vwn("run", gguf, "--prompt", "x", "-n", 16, "--seed", 7).stdout
    assert a == b and a.startswith(b"x") and len(a) > 1


# =============================================================================================
# perplexity
# =============================================================================================

def reference_bits(cfg, w, toks, ctx, stride):
    """The documented window rule, computed from reference logits: (bits, scored)."""
    bits, scored, done = 0.0, 0, 0
    b = 0
    while True:
        end = min(b + ctx, len(toks))
        lo = max(b + 1, done)
        if lo < end:
            logits, _ = forward(cfg, w, toks[b:end])
            for p in range(lo, end):
                row = logits[p - 1 - b]
                lse = np.max(row) + np.log(np.sum(np.exp(row - np.max(row))))
                bits += (lse - row[toks[p]]) / np.log(2.0)
                scored += 1
        done = end
        if end == len(toks):
            return bits, scored
        b += stride


@pytest.mark.parametrize("ctx,stride", [(16, None), (16, 8), (64, None)])
def test_perplexity_matches_reference(models, tmp_path, ctx, stride):
    ckpt, gguf = models[MTP_MODEL]
    cfg, w = load_checkpoint(str(ckpt))
    text = b"Virtual width networks widen the residual stream. " * 2
    (tmp_path / "t.txt").write_bytes(text)
    args = ["perplexity", gguf, "--file", tmp_path / "t.txt", "--ctx", ctx, "--json"]
    if stride:
        args += ["--stride", stride]
    p = vwn(*args)
    res = json.loads(p.stdout.decode().strip().splitlines()[-1])
    bits, scored = reference_bits(cfg, w, list(text), ctx, stride or ctx)
    assert res["tokens"] == len(text)
    assert res["scored_tokens"] == scored
    assert res["scored_bytes"] == scored            # bytes tokenizer: one byte per token
    assert abs(res["bits_per_token"] - bits / scored) <= 1e-4 * bits / scored
    assert abs(res["bits_per_byte"] - res["bits_per_token"]) <= 1e-9 * res["bits_per_token"]
    assert b"bits per token" in p.stdout


def test_perplexity_kv_f16(models, tmp_path):
    """--kv-type f16 matches the reference run with an fp16 KV cache (tools/reference.py kv_fp16)."""
    ckpt, gguf = models[MTP_MODEL]
    cfg, w = load_checkpoint(str(ckpt))
    text = b"Virtual width networks widen the residual stream. " * 2
    (tmp_path / "t.txt").write_bytes(text)
    res = json.loads(vwn("perplexity", gguf, "--file", tmp_path / "t.txt", "--ctx", 64, "--kv-type", "f16",
                         "--json").stdout.decode().strip().splitlines()[-1])
    bits, scored = reference_bits(dict(cfg, kv_fp16=True), w, list(text), 64, 64)
    assert res["scored_tokens"] == scored
    assert abs(res["bits_per_token"] - bits / scored) <= 1e-4 * bits / scored
    bad = subprocess.run([str(VWN_BIN), "perplexity", str(gguf), "--file", str(tmp_path / "t.txt"),
                          "--kv-type", "bf16"], capture_output=True)
    assert bad.returncode == 2 and b"--kv-type expects f32, f16 or q8_0" in bad.stderr


def test_perplexity_kv_q8_0(models, tmp_path):
    """--kv-type q8_0 matches the reference run with a Q8_0 KV cache (tools/reference.py kv_q8_0)
    within 1e-4 of the bits per token (measured: 2.4e-8); on a model whose heads are not whole
    32-value blocks it fails with the library's message."""
    ckpt, gguf = models["hd32"]
    cfg, w = load_checkpoint(str(ckpt))
    text = b"Virtual width networks widen the residual stream. " * 2
    (tmp_path / "t.txt").write_bytes(text)
    res = json.loads(vwn("perplexity", gguf, "--file", tmp_path / "t.txt", "--ctx", 64, "--kv-type", "q8_0",
                         "--json").stdout.decode().strip().splitlines()[-1])
    bits, scored = reference_bits(dict(cfg, kv_q8_0=True), w, list(text), 64, 64)
    assert res["scored_tokens"] == scored
    assert abs(res["bits_per_token"] - bits / scored) <= 1e-4 * bits / scored
    bad = subprocess.run([str(VWN_BIN), "perplexity", str(models[MTP_MODEL][1]), "--file", str(tmp_path / "t.txt"),
                          "--kv-type", "q8_0"], capture_output=True)
    assert bad.returncode != 0 and b"multiple of 32" in bad.stderr


def test_perplexity_max_tokens(models, tmp_path):
    gguf = models[MTP_MODEL][1]
    (tmp_path / "t.txt").write_bytes(b"0123456789" * 10)
    res = json.loads(vwn("perplexity", gguf, "--file", tmp_path / "t.txt", "--max-tokens", 30,
                         "--json").stdout.decode().splitlines()[-1])
    assert res["tokens"] == 30 and res["scored_tokens"] == 29


# =============================================================================================
# bench
# =============================================================================================

BENCH_KEYS = ["prefill_tok_s", "decode_tok_s", "decode_gbs", "machine_gbs", "bw_efficiency", "ghc_share",
              "rss_mb"]
BENCH_FAST = ["-p", "8", "-n", "4", "-r", "1", "--bw-mb", "16", "-t", "1", "--json"]


def loads_unique(text):
    """json.loads that fails on a key given twice in one object (valid JSON, but strict parsers
    refuse it, and one of the two values would be lost)."""
    def pairs(items):
        keys = [k for k, _ in items]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        assert not dup, f"keys given twice: {dup}"
        return dict(items)
    return json.loads(text, object_pairs_hook=pairs)


def test_bench_reports_the_level_in_effect(models, monkeypatch):
    """`simd` is the level the contexts run at: --simd, else $VWN_SIMD (which the library honours
    for "auto"), else the best one."""
    monkeypatch.setenv("VWN_SIMD", "scalar")
    res = loads_unique(vwn("bench", models[MTP_MODEL][1], *BENCH_FAST).stdout.decode().strip().splitlines()[-1])
    assert res["simd"] == "scalar"
    monkeypatch.delenv("VWN_SIMD")
    best = loads_unique(vwn("bench", models[MTP_MODEL][1], *BENCH_FAST).stdout.decode().strip().splitlines()[-1])
    res = loads_unique(vwn("bench", models[MTP_MODEL][1], *BENCH_FAST, "--simd", "scalar").stdout.decode().strip().splitlines()[-1])
    assert res["simd"] == "scalar" and best["simd"] != "auto"


def test_bench_json(models):
    p = vwn("bench", models[MTP_MODEL][1], *BENCH_FAST, "--spec", "2")
    last = p.stdout.decode().strip().splitlines()[-1]
    res = loads_unique(last)
    for key in BENCH_KEYS + ["spec_tok_s", "spec_speedup"]:
        assert res[key] > 0, key
    assert len(res["models"]) == 1 and res["models"][0]["decode_tok_s"] == res["decode_tok_s"]
    assert len(res["spec_acceptance"]) == 2
    assert 0 < res["prefill_ghc_share"] < 1 and 0 < res["ghc_share"] < 1
    # memory in 2 MiB pages (mapped files, anonymous): 0 for a tiny model in small page-cache
    # folios, never more than the resident memory
    assert 0 <= res["file_huge_mb"] <= res["rss_mb"] and 0 <= res["anon_huge_mb"] <= res["rss_mb"]
    assert res["simd"] and res["threads"] == 1
    assert b"GB/s" in p.stdout
    # the one round bracketed by two bandwidth measurements; its rep's efficiency is the figure
    # (a round that changed state is left out only when another round is steady)
    assert len(res["rep_machine_gbs"]) == 2 and min(res["rep_machine_gbs"]) > 0
    assert res["steady_reps"] in (0, 1) and len(res["rep_bw_efficiency"]) == 1
    # (JSON numbers carry 6 significant digits, so compare to 1e-4)
    assert res["bw_efficiency"] == pytest.approx(res["rep_bw_efficiency"][0], rel=1e-4)
    assert res["machine_gbs"] == pytest.approx(sum(res["rep_machine_gbs"]) / 2, rel=1e-4)
    # the FMA peak brackets the round the same way (measured at the CPU's best level, whatever
    # level the contexts run at: every x86-64 and AArch64 CI machine has one); the prefill's
    # efficiency is its GFLOP/s over the round's mean peak
    assert len(res["rep_machine_gflops"]) == 2 and min(res["rep_machine_gflops"]) > 0
    assert b"FMA peak" in p.stdout
    assert res["machine_gflops"] == pytest.approx(sum(res["rep_machine_gflops"]) / 2, rel=1e-4)
    assert len(res["rep_flop_efficiency"]) == 1
    assert res["flop_efficiency"] == pytest.approx(res["rep_flop_efficiency"][0], rel=1e-4)
    assert res["flop_efficiency"] == pytest.approx(res["prefill_gflops"] / res["machine_gflops"], rel=1e-4)


def test_bench_two_models(models):
    a, b = models[MTP_MODEL][1], models["m1n1_static_wide_untied_nogn_mha_mtp0"][1]
    out = vwn("bench", a, b, *BENCH_FAST).stdout.decode()
    res = loads_unique(out.strip().splitlines()[-1])
    verdict = [ln for ln in out.splitlines() if "FLOP ratio" in ln]   # two f32 models: a verdict
    assert len(verdict) == 1 and ("target met" in verdict[0] or "target missed" in verdict[0])
    assert [m["model"] for m in res["models"]] == [str(a), str(b)]
    for m in res["models"]:
        for key in BENCH_KEYS + ["decode_ratio", "prefill_ratio"]:
            assert m[key] > 0, key
    assert res["models"][0]["decode_ratio"] == 1.0


def test_bench_weight_types(models, tmp_path):
    """One checkpoint as f32, q8_0, q4_0 and q4_0 --pure, benchmarked together: each file's
    weight type, and the bytes a decoded token reads follow the types' block sizes exactly (the
    untied head [V, D] is q8_0 in the q4_0 file, q4_0 with --pure)."""
    import gguf
    ckpt = models[MTP_MODEL][0]
    files = []
    for wtype, pure in (("f32", False), ("q8_0", False), ("q4_0", False), ("q4_0", True)):
        out = tmp_path / f"{wtype}{'_pure' if pure else ''}.gguf"
        convert.convert(str(ckpt), str(out), wtype, pure=pure)
        files.append(out)
    out = vwn("bench", *files, *BENCH_FAST).stdout.decode()
    res = json.loads(out.strip().splitlines()[-1])
    # the GHC-overhead verdict compares a model with its twin of the same weight type only
    ratio_lines = [ln for ln in out.splitlines() if "FLOP ratio" in ln]
    assert len(ratio_lines) == 3
    assert not any("target" in ln for ln in ratio_lines)
    got = [m["weight_type"] for m in res["models"]]
    assert got == ["f32", "q8_0", "q4_0", "q4_0"]
    wb = [m["weight_bytes_per_token"] for m in res["models"]]
    head = next(t for t in gguf.GGUFReader(str(files[0])).tensors if t.name == "lm_head.weight")
    cols, rows = (int(x) for x in head.shape)        # GGUF order: [in, out]
    assert wb[2] - wb[3] == rows * cols // 32 * (34 - 18)
    assert wb[3] < wb[2] < wb[1] < wb[0]
    # every other matrix a token reads is q4_0 there: 18 bytes per 32 weights against q8_0's 34;
    # the small tensors (norms, GHC coefficients) are fp32 copies in every file
    head_q8 = rows * cols // 32 * 34
    small = sum(4 * int(t.n_elements) for t in gguf.GGUFReader(str(files[0])).tensors
                if (t.name.startswith("layers.") and ("_ghc." in t.name or len(t.shape) == 1)
                    and not t.name.endswith("_ghc.norm.weight"))
                or t.name.startswith("out_norm.") or t.name == "final_norm.weight")
    assert small > 0
    assert (wb[1] - head_q8 - small) * 18 == (wb[2] - head_q8 - small) * 34


def prefill_mflop_per_token(path, P):
    """Multiply-adds x 2 of a P-token prefill from position 0, output head at the last position only
    (docs/cli.md, `vwn bench`), from the file's hyperparameters."""
    import gguf
    fields = gguf.GGUFReader(str(path)).fields

    def get(key):
        f = fields["vwn." + key]
        part = f.parts[f.data[0]]
        return bytes(part).decode() if f.types[0] == gguf.GGUFValueType.STRING else part[0].item()

    D, L, V, F = get("hidden_size"), get("num_layers"), get("vocab_size"), get("ffn_hidden_size")
    m, n, hd = get("ghc_m"), get("ghc_n"), get("head_dim")
    q, kv = get("num_heads") * hd, get("num_kv_heads") * hd
    s = D // m
    Dw, K = n * s, 2 * m + n
    layer = P * (2 * D * q + 2 * D * kv + 3 * D * F) + q * P * (P + 1)   # projections, FFN, attention
    ghc = (n * s * K if get("ghc_dynamic") else 0) + (m + n) * n * s + n * m * s
    embed = D * Dw if get("embedding") == "factorized" and n != m else 0
    head = (Dw * D if n != m else 0) + D * V
    return 2 * (L * layer + 2 * L * P * ghc + P * embed + head) / P / 1e6


def test_bench_prefill_flops():
    demo = ROOT / "models" / "demo.gguf"
    P = int(BENCH_FAST[BENCH_FAST.index("-p") + 1])
    p = vwn("bench", demo, demo, *BENCH_FAST)
    res = json.loads(p.stdout.decode().strip().splitlines()[-1])
    want = prefill_mflop_per_token(demo, P)
    for m in res["models"]:
        assert m["prefill_mflop_per_token"] == pytest.approx(want, rel=1e-5)
        assert m["prefill_gflops"] == pytest.approx(m["prefill_mflop_per_token"] * m["prefill_tok_s"] / 1e3, rel=1e-4)
        assert m["prefill_flop_ratio"] == 1.0
    assert b"GFLOP/s" in p.stdout and b"FLOP ratio" in p.stdout


def test_bench_kv_type(models):
    """--kv-type f16 / q8_0: the KV bytes per token are 1/2 / 34/128 of f32's; a bad type is a usage
    error."""
    a = models["hd32"][1]
    r32 = json.loads(vwn("bench", a, *BENCH_FAST).stdout.decode().strip().splitlines()[-1])
    r16 = json.loads(vwn("bench", a, *BENCH_FAST, "--kv-type", "f16").stdout.decode().strip().splitlines()[-1])
    r8 = json.loads(vwn("bench", a, *BENCH_FAST, "--kv-type", "q8_0").stdout.decode().strip().splitlines()[-1])
    assert (r32["kv_type"], r16["kv_type"], r8["kv_type"]) == ("f32", "f16", "q8_0")
    assert r16["kv_bytes_per_token"] == pytest.approx(r32["kv_bytes_per_token"] / 2)
    assert r8["kv_bytes_per_token"] == pytest.approx(r32["kv_bytes_per_token"] * 34 / 128)
    p = subprocess.run([str(VWN_BIN), "bench", str(a), "--kv-type", "q4_0"], capture_output=True)
    assert p.returncode == 2 and b"--kv-type" in p.stderr


# =============================================================================================
# examples
# =============================================================================================

def test_examples(models):
    bindir = VWN_BIN.parent
    if not (bindir / "speculative").exists() or not (bindir / "generate").exists():
        pytest.skip("examples not built next to the binary")
    gguf = models[MTP_MODEL][1]
    p = subprocess.run([str(bindir / "generate"), str(gguf), "Hi", "8"], capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith(b"Hi")
    for model in (gguf, models["zero_head"][1]):
        p = subprocess.run([str(bindir / "speculative"), str(model), "Hi", "24", "2"], capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        assert b"equals plain greedy" in p.stderr

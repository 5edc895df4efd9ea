"""libvwn against a second reference written independently from the spec (spec_ref.py).

tests/test_forward.py checks the library against tools/reference.py; both were written by the
project's own hands, so a misreading of the spec shared by the two would pass there. spec_ref.py was
written from the spec alone by a separate session (see its docstring), with its own random
checkpoints (spec_checkpoints.py: all parameters random, not their initial values). Here every
checkpoint goes through tools/convert.py (F32) and the installed `vwn` package, and must agree
with spec_ref.py:

  - main-model logits at every position and every MTP module's logits at every position, from one
    prompt, token by token, and over two decode calls in batches of 7;
  - after a truncate and a different continuation, at every SIMD level the CPU has;
  - greedy MTP drafts and the verified tokens: exactly;

to a relative error (max |diff| / max |reference logit|) of TOL; fp32 against float64 gives ~1e-5
(the largest seen over 196 checkpoints: 9.8e-6). test_comparison_detects_misreadings shows the
comparison is not blind: three plausible misreadings of the spec, put into spec_ref.py, are each
off by far more than TOL.

Runs in the "Python binding" suite of scripts/test.sh (it needs `pip install ./bindings/python`):
    .venv/bin/python -m pytest -q tests/independent
"""
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

vwn = pytest.importorskip("vwn")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools"))
import convert  # noqa: E402
import spec_checkpoints  # noqa: E402
import spec_ref  # noqa: E402

TOL = 1e-4
N_RANDOM = 24  # random shapes beside the 36 of the grid


def rel_diff(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if not want.size:
        return 0.0
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


CASES = spec_checkpoints.configs() + spec_checkpoints.random_configs(N_RANDOM, 7)
NAMES = [name for name, _ in CASES]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (checkpoint dir, gguf path, config, float64 tensors), made and converted once."""
    root = tmp_path_factory.mktemp("spec_independent")
    out = {}
    for i, (name, cfg) in enumerate(CASES):
        d = root / name
        spec_checkpoints.write(str(d), cfg, 1000 + i)
        g = root / (name + ".gguf")
        convert.convert(str(d), str(g), "f32")
        c, w = spec_ref.load(str(d))
        out[name] = (d, g, c, w)
    return out


def tokens_for(name, T):
    return np.random.default_rng(zlib.crc32(name.encode())).integers(0, 256, T).tolist()


@pytest.mark.parametrize("name", NAMES)
def test_logits_prompt_incremental_and_batched(name, models):
    _, g, cfg, w = models[name]
    k = cfg["mtp_depth"]
    T = 12 + NAMES.index(name) % 29
    toks = tokens_for(name, T)
    lg, mtp = spec_ref.forward(cfg, w, toks)
    with vwn.Model(g) as model:
        # one prompt, every position kept
        with vwn.Context(model, n_ctx=64, logits_all=True, n_threads=2) as ctx:
            ctx.decode(toks)
            assert rel_diff(ctx.all_logits(), lg) < TOL
            for j in range(1, k + 1):
                rows = np.stack([ctx.mtp_logits(j, i) for i in range(T - j)])
                assert rel_diff(rows, mtp[j - 1]) < TOL, j
        # token by token: the main logits and each module's newest position
        with vwn.Context(model, n_ctx=64, n_threads=1) as ctx:
            main, mt = [], {j: [] for j in range(1, k + 1)}
            for i, t in enumerate(toks):
                ctx.decode([t])
                main.append(ctx.logits_copy())
                for j in range(1, k + 1):
                    if i >= j:
                        assert ctx.mtp_length(j) == i - j + 1
                        mt[j].append(np.array(ctx.mtp_logits(j)))
            assert rel_diff(np.stack(main), lg) < TOL
            for j in range(1, k + 1):
                assert rel_diff(np.stack(mt[j]), mtp[j - 1]) < TOL, j
        # two decode calls, split by the library into batches of 7
        with vwn.Context(model, n_ctx=64, n_batch=7, n_threads=2) as ctx:
            ctx.decode(toks[:11])
            ctx.decode(toks[11:])
            assert rel_diff(ctx.logits_copy(), lg[-1]) < TOL
            for j in range(1, k + 1):
                assert rel_diff(ctx.mtp_logits(j), mtp[j - 1][-1]) < TOL, j


LEVELS = [lv for lv in ("scalar", "avx2", "avx512", "neon") if vwn.simd_supported(lv)]


@pytest.mark.parametrize("name", NAMES[::3])
def test_truncate_and_continue_at_every_simd_level(name, models):
    _, g, cfg, w = models[name]
    k = cfg["mtp_depth"]
    a, b = tokens_for(name, 25), tokens_for(name + "b", 9)
    cut = 13
    seq = a[:cut] + b
    lg, mtp = spec_ref.forward(cfg, w, seq)
    with vwn.Model(g) as model:
        for lv in LEVELS:
            with vwn.Context(model, n_ctx=64, logits_all=True, simd=lv, n_batch=16) as ctx:
                ctx.decode(a[:16])
                ctx.decode(a[16:])
                ctx.truncate(cut)
                ctx.decode(b)
                assert rel_diff(ctx.all_logits(), lg[cut:]) < TOL, lv
                for j in range(1, k + 1):
                    rows = [np.array(ctx.mtp_logits(j, i)) for i in range(cut, len(seq) - j)]
                    assert rel_diff(np.stack(rows), mtp[j - 1][cut:]) < TOL, (lv, j)


@pytest.mark.parametrize("name", [n for n, c in CASES if c["mtp_depth"] > 0])
def test_greedy_drafts_and_verify(name, models):
    """draft() proposes what spec §6's chain gives greedily; verify() keeps what the main model's
    greedy choices accept, then its own next token."""
    _, g, cfg, w = models[name]
    k = cfg["mtp_depth"]
    rng = np.random.default_rng(NAMES.index(name))
    toks = rng.integers(0, 256, int(rng.integers(1, 30))).tolist()
    nxt = int(rng.integers(0, 256))
    seq, want = toks + [nxt], []
    for j in range(1, k + 1):
        _, mt = spec_ref.forward(cfg, w, seq)
        t = int(np.argmax(mt[j - 1][len(toks) - 1]))
        want.append(t)
        seq = seq + [t]
    lg, _ = spec_ref.forward(cfg, w, toks + [nxt] + want)
    kept = [nxt]
    for i in range(k + 1):
        best = int(np.argmax(lg[len(toks) + i]))
        kept.append(best)
        if i == k or best != want[i]:
            break
    with vwn.Model(g) as model, vwn.Context(model, n_ctx=64) as ctx:
        ctx.decode(toks)
        drafts, _ = ctx.draft(nxt, k)
        assert drafts == want
        assert ctx.verify() == kept


def test_comparison_detects_misreadings(models, monkeypatch):
    """Misreadings of the spec put into spec_ref.py are off by far more than TOL on the grid's
    models that have the feature: the carry matrix transposed, RoPE on interleaved pairs, and the
    MTP input concatenated as (p, e)."""
    orig_ghc, orig_rope, orig_forward = spec_ref.ghc, spec_ref.rope, spec_ref.forward

    def ghc_carry_transposed(cfg, w, pre, H, sub):
        m, n = cfg["ghc_m"], cfg["ghc_n"]
        w2 = dict(w)
        C0 = w[pre + "static"].copy()
        C0[:, m:m + n] = C0[:, m:m + n].T.copy()
        w2[pre + "static"] = C0
        return orig_ghc(cfg, w2, pre, H, sub)

    def rope_interleaved(x, pos, theta):
        hd = x.shape[-1]
        y = np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1)  # pairs (2i, 2i+1)
        r = orig_rope(y, pos, theta)
        out = np.empty_like(r)
        out[..., 0::2], out[..., 1::2] = r[..., :hd // 2], r[..., hd // 2:]
        return out

    def mtp_concat_swapped(cfg, w, tokens):
        s = cfg["hidden_size"] // cfg["ghc_m"]
        w2 = dict(w)
        for j in range(cfg["mtp_depth"]):
            p = w[f"mtp.{j}.proj.weight"]
            w2[f"mtp.{j}.proj.weight"] = np.concatenate([p[:, s:], p[:, :s]], axis=1)
        return orig_forward(cfg, w2, tokens)

    def worst(pick):
        out = 0.0
        for name in [n for n, c in CASES[:36] if pick(c)][:4]:
            _, g, cfg, w = models[name]
            toks = tokens_for(name, 20)
            lg, mtp = spec_ref.forward(cfg, w, toks)
            with vwn.Model(g) as model, vwn.Context(model, n_ctx=64, logits_all=True) as ctx:
                ctx.decode(toks)
                out = max(out, rel_diff(ctx.all_logits(), lg))
                for j in range(1, cfg["mtp_depth"] + 1):
                    rows = np.stack([ctx.mtp_logits(j, i) for i in range(20 - j)])
                    out = max(out, rel_diff(rows, mtp[j - 1]))
        return out

    assert worst(lambda c: c["ghc_n"] > 1) < TOL
    monkeypatch.setattr(spec_ref, "ghc", ghc_carry_transposed)
    assert worst(lambda c: c["ghc_n"] > 1) > 100 * TOL
    monkeypatch.setattr(spec_ref, "ghc", orig_ghc)
    monkeypatch.setattr(spec_ref, "rope", rope_interleaved)
    assert worst(lambda c: c.get("head_dim", c["hidden_size"] // c["num_heads"]) > 2) > 100 * TOL
    monkeypatch.setattr(spec_ref, "rope", orig_rope)
    monkeypatch.setattr(spec_ref, "forward", mtp_concat_swapped)
    assert worst(lambda c: c["mtp_depth"] > 0) > 100 * TOL

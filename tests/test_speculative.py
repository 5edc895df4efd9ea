"""Speculative decoding with the MTP heads (lib/speculative.c, lib/generate.c).

- Greedy: speculative output equals plain greedy decoding token for token, at every depth, on models
  with MTP depth 1 to 3, over long generations, with the low-level draft/verify loop across cache
  truncations, and on a model whose heads always agree (every draft accepted).
- Sampled: the token kept after a draft follows the target distribution exactly (rejection rule):
  a chi-square test over many seeded trials against the exact target probabilities, which the draft
  distribution itself fails -- so the test has the power to catch a wrong rule.
- Errors: depth beyond the model's MTP depth, verify without a draft, a model without MTP.
"""
import ctypes as C
import math
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import vwn_ctypes as V  # noqa: E402
from vwn_ctypes import check, lib  # noqa: E402

if lib is None or not V.has("vwn_draft"):
    pytest.skip("libvwn with speculative decoding not built", allow_module_level=True)

PY = sys.executable
CFG = {1: "m2n4_dynamic_fact_untied_gn_gqa2_hd16_mtp1.json", 2: "m2n8_dynamic_wide_untied_gn_gqa2_mtp2.json",
       3: "m4n16_dynamic_fact_tied_gn_gqa2_mtp3.json"}
I32P = C.POINTER(C.c_int32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spec")
    out = {}
    for k, cfg in CFG.items():
        ck = str(tmp / f"ck{k}")
        subprocess.run([PY, os.path.join(ROOT, "tools", "random_checkpoint.py"), os.path.join(HERE, "configs", cfg),
                        ck, "--seed", str(7 + k)], check=True, capture_output=True)
        path = ck + ".gguf"
        subprocess.run([PY, os.path.join(ROOT, "tools", "convert.py"), ck, path], check=True, capture_output=True)
        out[k] = path
        if k == 2:
            for ty in ("f16", "bf16"):   # half-precision heads: drafted through a Q8_0 copy too
                subprocess.run([PY, os.path.join(ROOT, "tools", "convert.py"), ck, f"{ck}.{ty}.gguf", "--type", ty],
                               check=True, capture_output=True)
                out[ty] = f"{ck}.{ty}.gguf"
            # a model whose main and MTP heads always agree: zero final norms make every head
            # predict the same token, so every draft is accepted
            from safetensors.numpy import load_file, save_file
            t = load_file(os.path.join(ck, "model.safetensors"))
            for name in list(t):
                if name.endswith("final_norm.weight"):
                    t[name] = np.zeros_like(t[name])
            agree = str(tmp / "agree")
            os.makedirs(agree)
            save_file(t, os.path.join(agree, "model.safetensors"))
            import shutil
            shutil.copy(os.path.join(ck, "config.json"), agree)
            subprocess.run([PY, os.path.join(ROOT, "tools", "convert.py"), agree, agree + ".gguf"],
                           check=True, capture_output=True)
            out["agree"] = agree + ".gguf"
    return out


class Ctx:
    def __init__(self, path, n_ctx=512, n_batch=64, mtp=True):
        self.model = V.load_model(path)
        p = lib.vwn_context_default_params()
        p.n_ctx, p.n_batch, p.n_threads, p.mtp = n_ctx, n_batch, 2, mtp
        self.h = C.c_void_p()
        check(lib.vwn_context_new(self.model, C.byref(p), C.byref(self.h)))
        info = V.model_info(self.model)
        self.V, self.k = info.n_vocab, info.mtp_depth

    def close(self):
        lib.vwn_context_free(self.h)
        lib.vwn_model_free(self.model)

    def generate(self, prompt, n, depth, sampler=None):
        toks = []

        @V.TokenCallback
        def cb(tok, piece, n_piece, user):
            toks.append(tok)
            return True

        gp = lib.vwn_generate_default_params()
        gp.n_predict, gp.spec_depth, gp.callback, gp.stop_at_eog = n, depth, cb, False
        gp.sampler = sampler
        st = V.GenerateStats()
        arr = (C.c_int32 * len(prompt))(*prompt)
        check(lib.vwn_generate_tokens(self.h, arr, len(prompt), C.byref(gp), C.byref(st)))
        return toks, st


def argmax_next(ctx):
    p = C.POINTER(C.c_float)()
    check(lib.vwn_get_logits(ctx.h, -1, C.byref(p)))
    return int(np.argmax(np.ctypeslib.as_array(p, (ctx.V,))))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_greedy_speculative_equals_plain(models, k):
    c = Ctx(models[k])
    prompt = [3, 14, 15, 92, 65]
    plain, _ = c.generate(prompt, 150, 0)
    for depth in list(range(1, k + 1)) + [-1]:
        check(lib.vwn_context_clear(c.h))
        spec, st = c.generate(prompt, 150, depth)
        assert spec == plain, f"depth {depth}: speculative output differs from plain greedy"
        assert st.n_verify > 0 and st.n_drafted >= st.n_verify
        check(lib.vwn_context_clear(c.h))
    c.close()


@pytest.mark.parametrize("depth", [1, 2])
def test_all_drafts_accepted_when_heads_agree(models, depth):
    c = Ctx(models["agree"])
    plain, _ = c.generate([1, 2, 3], 60, 0)
    check(lib.vwn_context_clear(c.h))
    spec, st = c.generate([1, 2, 3], 60, depth)
    assert spec == plain
    assert st.n_accepted == st.n_drafted > 0, "every draft must be accepted when the heads agree"
    assert st.n_verify <= math.ceil(60 / (depth + 1)) + 1
    c.close()


def mtp_logits(ctx, j):
    p = C.POINTER(C.c_float)()
    check(lib.vwn_get_mtp_logits(ctx.h, j, -1, C.byref(p)))
    return np.ctypeslib.as_array(p, (ctx.V,)).copy()


@pytest.mark.parametrize("key", [3, "agree"])
def test_low_level_loop_across_truncations(models, key):
    """draft/verify by hand, rewinding the cache now and then; the kept tokens always equal plain
    greedy decoding of the same history, computed in a separate context. The MTP modules catch up
    on a verification's kept tokens inside the next draft (one batch with the draft's own
    positions): the drafts and the MTP logits equal those of a context that decoded the same
    history plainly, bit for bit."""
    c, ref, tw = Ctx(models[key]), Ctx(models[key], mtp=False), Ctx(models[key])
    rng = np.random.default_rng(0)
    hist = [5, 6, 7, 8]
    check(lib.vwn_decode(c.h, (C.c_int32 * 4)(*hist), 4))
    t = argmax_next(c)
    out = (C.c_int32 * 20)()
    n_out = C.c_int32()
    drafts, tw_drafts = (C.c_int32 * 16)(), (C.c_int32 * 16)()
    for step in range(40):
        depth = int(rng.integers(1, c.k + 1))
        # the twin: the same history decoded in one call (its modules caught up by the decode)
        check(lib.vwn_context_clear(tw.h))
        check(lib.vwn_decode(tw.h, (C.c_int32 * len(hist))(*hist), len(hist)))
        check(lib.vwn_draft(tw.h, t, depth, None, tw_drafts, None, None))
        check(lib.vwn_draft(c.h, t, depth, None, drafts, None, None))
        assert list(drafts[:depth]) == list(tw_drafts[:depth]), step
        for j in range(1, c.k + 1):    # every module is current once drafted
            assert lib.vwn_context_mtp_length(c.h, j) == len(hist) - j
        check(lib.vwn_verify(c.h, None, out, C.byref(n_out)))
        kept = list(out[:n_out.value])
        assert kept[0] == t
        n_before = len(hist)
        hist += kept[:-1]
        t = kept[-1]
        assert lib.vwn_context_length(c.h) == len(hist)
        for j in range(1, c.k + 1):    # the kept tokens wait for the next draft
            assert lib.vwn_context_mtp_length(c.h, j) == n_before - j
        if step % 5 == 4:
            # asking for MTP logits catches the modules up on their own: the same as the twin's
            check(lib.vwn_context_clear(tw.h))
            check(lib.vwn_decode(tw.h, (C.c_int32 * len(hist))(*hist), len(hist)))
            for j in range(1, c.k + 1):
                np.testing.assert_array_equal(mtp_logits(c, j), mtp_logits(tw, j))
                assert lib.vwn_context_mtp_length(c.h, j) == len(hist) - j
        # the reference: plain greedy over the same history must predict each kept token
        check(lib.vwn_context_clear(ref.h))
        check(lib.vwn_decode(ref.h, (C.c_int32 * len(hist))(*hist), len(hist)))
        assert argmax_next(ref) == t
        if step % 7 == 6:   # rewind a few tokens and continue from there
            cut = len(hist) - int(rng.integers(1, 6))
            check(lib.vwn_context_truncate(c.h, cut))
            hist = hist[:cut]
            last = hist.pop()
            check(lib.vwn_context_truncate(c.h, cut - 1))
            check(lib.vwn_decode(c.h, (C.c_int32 * 1)(last), 1))
            hist.append(last)
            t = argmax_next(c)
    c.close()
    ref.close()
    tw.close()


@pytest.mark.parametrize("key", ["f16", "bf16"])
def test_half_precision_heads(models, key):
    """F16 and BF16 heads take the same path as F32 ones in vwn_generate's loop (a Q8_0 draft copy,
    made from rows dequantized by quant.c): the loop drafts and its output is plain greedy
    decoding's. (The copy's values are checked for an F32 head in tests/test_draft_head.c, the row
    dequantization of each type in test_ops; these random models' heads accept too few drafts for
    acceptance to tell a good copy from a bad one.)"""
    c = Ctx(models[key])
    plain, _ = c.generate([3, 14, 15], 80, 0)
    check(lib.vwn_context_clear(c.h))
    spec, st = c.generate([3, 14, 15], 80, 2)
    assert spec == plain
    assert st.n_drafted > 0 and st.n_verify > 0
    c.close()


@pytest.mark.parametrize("key", [2, 3])
def test_draft_head(models, key):
    """vwn_draft's greedy drafts are the argmax of module 1's logits as a context that decoded the
    same tokens reports them (vwn_get_mtp_logits), on these F32 models whose head vwn_generate's
    loop drafts through a Q8_0 copy of (tests/test_draft_head.c): the public call stays exact."""
    c, tw = Ctx(models[key]), Ctx(models[key])
    gen, _ = c.generate([4, 5, 6], 20, 2)      # the loop first: the model now holds its copy
    check(lib.vwn_context_clear(c.h))
    hist = [9, 8, 7, 6, 5]
    check(lib.vwn_decode(c.h, (C.c_int32 * len(hist))(*hist), len(hist)))
    t = argmax_next(c)
    drafts, out, n_out = (C.c_int32 * 16)(), (C.c_int32 * 20)(), C.c_int32()
    for step in range(50):
        check(lib.vwn_draft(c.h, t, 1, None, drafts, None, None))
        seq = hist + [t]
        check(lib.vwn_context_clear(tw.h))
        check(lib.vwn_decode(tw.h, (C.c_int32 * len(seq))(*seq), len(seq)))
        assert drafts[0] == int(np.argmax(mtp_logits(tw, 1))), step
        check(lib.vwn_verify(c.h, None, out, C.byref(n_out)))
        kept = list(out[:n_out.value])
        hist += kept[:-1]
        t = kept[-1]
    c.close()
    tw.close()


def chi2_critical(df, z=3.719):   # z for p = 1e-4; Wilson-Hilferty approximation
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi2(counts, probs, n):
    exp = probs * n
    big = exp >= 5
    obs = np.concatenate([counts[big], [counts[~big].sum()]])
    e = np.concatenate([exp[big], [exp[~big].sum()]])
    keep = e > 0
    stat = float(((obs[keep] - e[keep]) ** 2 / e[keep]).sum())
    return stat, int(keep.sum()) - 1


@pytest.mark.parametrize("depth", [1, 2])
def test_sampled_speculation_keeps_the_target_distribution(models, depth):
    c = Ctx(models[2])
    sp = lib.vwn_sampler_default_params()
    sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.seed = 2.5, 0, 1.0, 0.0, 1234 + depth
    smpl = C.c_void_p()
    check(lib.vwn_sampler_new(C.byref(sp), C.byref(smpl)))
    prompt, t = [10, 20, 30, 40], 50
    # the exact target distribution of the token after t
    check(lib.vwn_decode(c.h, (C.c_int32 * 5)(*prompt, t), 5))
    logits = C.POINTER(C.c_float)()
    check(lib.vwn_get_logits(c.h, -1, C.byref(logits)))
    target = np.zeros(c.V, np.float32)
    check(lib.vwn_sampler_probs(smpl, logits, c.V, target.ctypes.data_as(C.POINTER(C.c_float))))
    target = target.astype(np.float64)
    check(lib.vwn_context_clear(c.h))
    check(lib.vwn_decode(c.h, (C.c_int32 * 4)(*prompt), 4))

    n = 12000
    counts = np.zeros(c.V)
    draft_counts = np.zeros(c.V)
    drafts = (C.c_int32 * 16)()
    out = (C.c_int32 * 20)()
    n_out = C.c_int32()
    accepted = 0
    for _ in range(n):
        check(lib.vwn_draft(c.h, t, depth, smpl, drafts, None, None))
        draft_counts[drafts[0]] += 1
        check(lib.vwn_verify(c.h, smpl, out, C.byref(n_out)))
        counts[out[1]] += 1
        accepted += n_out.value > 2
        check(lib.vwn_context_truncate(c.h, 4))
        check(lib.vwn_sampler_reset(smpl))   # same history for every trial; the RNG continues below
        sp.seed += 1
        lib.vwn_sampler_free(smpl)
        check(lib.vwn_sampler_new(C.byref(sp), C.byref(smpl)))
    stat, df = chi2(counts, target, n)
    assert 0.05 * n < accepted < 0.95 * n, f"acceptance {accepted / n:.2f}: the test needs partial acceptance"
    assert stat < chi2_critical(df), f"kept tokens do not follow the target: chi2 = {stat:.1f}, df = {df}"
    # power: the draft distribution itself is far from the target, so a wrong rule would show
    dstat, ddf = chi2(draft_counts, target, n)
    assert dstat > 10 * chi2_critical(ddf), "the draft distribution is too close to the target to test anything"
    lib.vwn_sampler_free(smpl)
    c.close()


def test_errors(models, tmp_path):
    c = Ctx(models[2])
    drafts = (C.c_int32 * 16)()
    out = (C.c_int32 * 20)()
    n_out = C.c_int32()
    # nothing decoded yet
    assert lib.vwn_draft(c.h, 1, 1, None, drafts, None, None) == V.VWN_ERR_INVALID_ARG
    check(lib.vwn_decode(c.h, (C.c_int32 * 2)(1, 2), 2))
    assert lib.vwn_verify(c.h, None, out, C.byref(n_out)) == V.VWN_ERR_NO_DRAFT
    assert lib.vwn_draft(c.h, 1, 3, None, drafts, None, None) == V.VWN_ERR_INVALID_ARG   # depth > k = 2
    assert b"depth" in lib.vwn_last_error()
    assert lib.vwn_draft(c.h, 1, 0, None, drafts, None, None) == V.VWN_ERR_INVALID_ARG
    assert lib.vwn_draft(c.h, 999, 1, None, drafts, None, None) == V.VWN_ERR_TOKEN_OUT_OF_RANGE
    check(lib.vwn_draft(c.h, 1, 2, None, drafts, None, None))
    check(lib.vwn_decode(c.h, (C.c_int32 * 1)(1), 1))          # a decode drops the pending draft
    assert lib.vwn_verify(c.h, None, out, C.byref(n_out)) == V.VWN_ERR_NO_DRAFT
    c.close()
    # MTP switched off in the context, and a model without MTP modules
    c = Ctx(models[2], mtp=False)
    check(lib.vwn_decode(c.h, (C.c_int32 * 2)(1, 2), 2))
    assert lib.vwn_draft(c.h, 1, 1, None, drafts, None, None) == V.VWN_ERR_NO_MTP
    c.close()
    ck = str(tmp_path / "nomtp")
    subprocess.run([PY, os.path.join(ROOT, "tools", "random_checkpoint.py"),
                    os.path.join(HERE, "configs", "m2n8_static_fact_tied_gn_mha_mtp0.json"), ck], check=True,
                   capture_output=True)
    subprocess.run([PY, os.path.join(ROOT, "tools", "convert.py"), ck, ck + ".gguf"], check=True, capture_output=True)
    c = Ctx(ck + ".gguf")
    check(lib.vwn_decode(c.h, (C.c_int32 * 2)(1, 2), 2))
    assert lib.vwn_draft(c.h, 1, 1, None, drafts, None, None) == V.VWN_ERR_NO_MTP
    gp = lib.vwn_generate_default_params()
    gp.spec_depth = 1
    assert lib.vwn_generate_tokens(c.h, (C.c_int32 * 1)(1), 1, C.byref(gp), None) == V.VWN_ERR_NO_MTP
    c.close()


@pytest.mark.parametrize("seed", range(6))
def test_greedy_speculative_equals_plain_random_configs(tmp_path, seed):
    """The same on random shapes (tests/test_forward.py `random_config`), weight types F32, BF16,
    Q8_0 and Q4_0, and a small n_batch now and then (prompts split into chunks): every depth and
    the adaptive one give plain greedy's tokens. (A throwaway sweep of 200 such configurations
    passed before this test was added.)"""
    import json
    import random
    from test_forward import random_config
    cfg, dtype, _, T = random_config(2000 + seed)
    cfg["mtp_depth"] = cfg["mtp_depth"] or 1 + seed % 3
    rng = random.Random(seed)
    wtype, n_batch = rng.choice(["f32", "bf16", "q8_0", "q4_0"]), rng.choice([1, 3, 8, 64])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    ck, path = str(tmp_path / "ck"), str(tmp_path / "m.gguf")
    subprocess.run([PY, os.path.join(ROOT, "tools", "random_checkpoint.py"), str(tmp_path / "config.json"), ck,
                    "--seed", str(seed), "--dtype", dtype], check=True, capture_output=True)
    subprocess.run([PY, os.path.join(ROOT, "tools", "convert.py"), ck, path, "--type", wtype],
                   check=True, capture_output=True)
    c = Ctx(path, n_ctx=256, n_batch=n_batch)
    prompt = [rng.randrange(256) for _ in range(T)]
    plain, _ = c.generate(prompt, 60, 0)
    for depth in list(range(1, cfg["mtp_depth"] + 1)) + [-1]:
        check(lib.vwn_context_clear(c.h))
        spec, _ = c.generate(prompt, 60, depth)
        assert spec == plain, f"depth {depth}, {wtype}, n_batch {n_batch}: {json.dumps(cfg)}"
    c.close()

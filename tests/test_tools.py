"""Tests of the Python tools: random_checkpoint.py, convert.py, reference.py.

    .venv/bin/python -m pytest tests/test_tools.py -q

* every config of tests/configs -> random checkpoint (F32, F16 or BF16 safetensors) -> GGUF of
  each --type -> read back with gguf.GGUFReader and compared tensor by tensor with the source;
* the converter names the missing / extra / mis-shaped tensor and the bad config key, exit 1;
* tokenizer embedding: llama2.c tok512.bin and a byte-level BPE trained here;
* the reference: n = m = 1 with spec-init GHC equals a plain Llama forward written below,
  a GHC module equals an explicit loop, causality, MTP shapes, the CLI.
"""

import json
import math
import shutil
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
import reference as ref             # noqa: E402

gguf = pytest.importorskip("gguf")

CONFIG_DIR = ROOT / "tests" / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.json"))
SOURCE_DTYPES = ("f32", "f16", "bf16")          # cycled over the configs
TOK512 = ROOT.parent / "shared" / "models" / "tok512.bin"
if not TOK512.exists():
    TOK512 = Path("/work/shared/models/tok512.bin")


def load_json(path):
    with open(path) as f:
        return json.load(f)


def run_tool(*args):
    """Run a tool as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=120)


# =============================================================================================
# Independent helpers (deliberately not the tools' code)
# =============================================================================================

def bf16_round(x):
    """float32 -> float32 holding the nearest bfloat16 (ties to even), via integer arithmetic."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.int64)
    low = bits & 0xFFFF
    high = bits >> 16
    up = (low > 0x8000) | ((low == 0x8000) & (high & 1 == 1))
    return ((high + up) << 16).astype(np.uint32).view(np.float32)


def dequant_q8_0(raw, cols):
    """ggml Q8_0 blocks (f16 scale + 32 int8) -> float32 [rows, cols]."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, 34)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(-1, cols)


def dequant_q4_0(raw, cols):
    """ggml Q4_0 blocks (f16 scale + 16 bytes: value j in the low nibble of byte j, value j + 16
    in its high nibble, both offset by 8) -> float32 [rows, cols]."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, 18)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nib = blocks[:, 2:]
    q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32) - 8
    return (d * q).reshape(-1, cols)


def field_value(reader, key):
    f = reader.fields[key]
    return f.contents()


# =============================================================================================
# Checkpoints shared by the tests
# =============================================================================================

@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """config file name -> (checkpoint dir, completed config, source dtype)."""
    base = tmp_path_factory.mktemp("ckpt")
    out = {}
    for i, path in enumerate(CONFIGS):
        dtype = SOURCE_DTYPES[i % len(SOURCE_DTYPES)]
        d = base / path.stem
        cfg = rc.make_checkpoint(load_json(path), d, seed=100 + i, dtype=dtype)
        out[path.stem] = (d, cfg, dtype)
    return out


def test_configs_cover_the_matrix():
    cfgs = [rc.complete_config(load_json(p)) for p in CONFIGS]
    assert len(cfgs) >= 12
    pairs = {(c["ghc_m"], c["ghc_n"]) for c in cfgs}
    assert {(1, 1), (2, 3), (2, 8), (4, 16), (8, 64), (1, 4), (2, 2)} <= pairs
    assert {c["mtp_depth"] for c in cfgs} >= {0, 1, 2, 3, 4}
    assert {c["embedding"] for c in cfgs} == {"wide", "factorized"}
    for key in ("tie_word_embeddings", "output_group_norm", "ghc_dynamic"):
        assert {c[key] for c in cfgs} == {True, False}, key
    assert any(c["num_kv_heads"] == c["num_heads"] for c in cfgs)
    assert any(c["num_heads"] // c["num_kv_heads"] == 2 for c in cfgs)
    assert any(c["num_kv_heads"] == 1 for c in cfgs)
    assert any(c["head_dim"] != c["hidden_size"] // c["num_heads"] for c in cfgs)
    for c in cfgs:
        assert 16 <= c["hidden_size"] <= 64 and 1 <= c["num_layers"] <= 2
        assert c["vocab_size"] == 256 and c["tokenizer"] == "bytes"
        assert not (c["tie_word_embeddings"] and c["embedding"] != "factorized")
        assert not (c["output_group_norm"] and c["ghc_n"] % c["ghc_m"])
    # every config is documented in the README
    readme = (CONFIG_DIR / "README.md").read_text()
    for p in CONFIGS:
        assert p.name in readme, p.name


# =============================================================================================
# random_checkpoint.py
# =============================================================================================

def test_random_checkpoint_cli_and_safetensors_compat(tmp_path):
    from safetensors.numpy import load_file
    cfgp = CONFIG_DIR / "m2n3_static_wide_untied_nogn_mha_mtp1.json"
    for dtype in ("f32", "f16", "bf16"):
        d = tmp_path / dtype
        r = run_tool(TOOLS / "random_checkpoint.py", cfgp, d, "--seed", 7, "--dtype", dtype)
        assert r.returncode == 0, r.stderr
        cfg = load_json(d / "config.json")
        for key, value in (("head_dim", 16), ("rope_theta", 10000.0), ("rms_norm_eps", 1e-5),
                           ("group_norm_eps", 1e-5), ("max_seq_len", 256),
                           ("tokenizer", "bytes"), ("architecture", "vwn")):
            assert cfg[key] == value
        _, ours = ref.load_checkpoint(d)
        if dtype != "bf16":          # the safetensors library reads our hand-written file
            lib = load_file(str(d / "model.safetensors"))
            assert set(lib) == set(ours)
            for k in lib:
                np.testing.assert_array_equal(lib[k].astype(np.float64), ours[k])
    # the same seed gives the same tensors whatever the dtype, up to its rounding
    _, a = ref.load_checkpoint(tmp_path / "f32")
    _, b = ref.load_checkpoint(tmp_path / "bf16")
    for k in a:
        np.testing.assert_array_equal(bf16_round(a[k].astype(np.float32)), b[k].astype(np.float32))


# =============================================================================================
# convert.py: round trip of every config and every --type
# =============================================================================================

def expected_type(name, shape, wtype, cfg):
    if len(shape) != 2 or "_ghc." in name or wtype == "f32":
        return "F32"
    if wtype in ("q8_0", "q4_0"):
        if shape[1] % 32 != 0:
            return "F16"
        head = "embed.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"
        return "Q8_0" if wtype == "q8_0" or name == head else "Q4_0"
    return wtype.upper()


@pytest.mark.parametrize("stem", [p.stem for p in CONFIGS])
def test_convert_roundtrip(stem, checkpoints, tmp_path):
    ckpt, cfg, _ = checkpoints[stem]
    _, src = ref.load_checkpoint(ckpt)
    for wtype in ("f32", "f16", "bf16", "q8_0", "q4_0"):
        out = tmp_path / f"{wtype}.gguf"
        convert.convert(str(ckpt), str(out), wtype)
        r = gguf.GGUFReader(str(out))

        # metadata
        assert field_value(r, "general.architecture") == "vwn"
        assert field_value(r, "general.alignment") == 32
        assert field_value(r, "vwn.spec_version") == 1
        for key in ("vocab_size", "hidden_size", "num_layers", "ghc_m", "ghc_n", "num_heads",
                    "num_kv_heads", "head_dim", "ffn_hidden_size", "mtp_depth", "max_seq_len",
                    "ghc_dynamic", "embedding", "tie_word_embeddings", "output_group_norm"):
            assert field_value(r, "vwn." + key) == cfg[key], key
        for key in ("rope_theta", "rms_norm_eps", "group_norm_eps"):
            assert field_value(r, "vwn." + key) == pytest.approx(cfg[key], rel=1e-6)
        assert field_value(r, "tokenizer.ggml.model") == "bytes"

        # tensors: the same set, shapes reversed (ne order), aligned, values as expected
        assert {t.name for t in r.tensors} == set(src)
        for t in r.tensors:
            want = src[t.name].astype(np.float32)
            assert list(reversed([int(x) for x in t.shape])) == list(want.shape), t.name
            assert t.data_offset % 32 == 0
            ttype = t.tensor_type.name
            assert ttype == expected_type(t.name, want.shape, wtype, cfg), (t.name, wtype)
            if ttype == "F32":
                np.testing.assert_array_equal(np.asarray(t.data).reshape(want.shape), want)
            elif ttype == "F16":
                np.testing.assert_array_equal(np.asarray(t.data).reshape(want.shape),
                                              want.astype(np.float16))
            elif ttype == "BF16":
                got = (np.asarray(t.data).view(np.uint16).astype(np.uint32) << 16).view(np.float32)
                np.testing.assert_array_equal(got.reshape(want.shape), bf16_round(want))
            elif ttype == "Q4_0":
                got = dequant_q4_0(t.data, want.shape[1])
                blocks = np.abs(want).reshape(-1, 32).max(axis=1, keepdims=True)
                # a step is d = max|x| / 8: half a step, a whole one at the clamped end of the
                # range (ggml's quantizer), plus the f16 rounding of the scale times |q| <= 8
                bound = blocks / 8 + blocks * 8 * 2.0**-11 / 8 + 1e-7
                err = np.abs(got - want).reshape(-1, 32)
                assert np.all(err <= bound), t.name
                # the file's bytes are ggml's: gguf.quants's reference quantizer gives the same
                assert np.array_equal(np.asarray(t.data, dtype=np.uint8).reshape(-1),
                                      gguf.quants.quantize(want, gguf.GGMLQuantizationType.Q4_0).reshape(-1))
            else:
                got = dequant_q8_0(t.data, want.shape[1])
                blocks = np.abs(want).reshape(-1, 32).max(axis=1, keepdims=True)
                # half a quantization step, plus the f16 rounding of the scale (<= 2^-11 rel.)
                bound = blocks / 127 / 2 + blocks * 2.0**-11 + 1e-7
                err = np.abs(got - want).reshape(-1, 32)
                assert np.all(err <= bound), t.name


def test_convert_q4_0_pure(checkpoints, tmp_path):
    """--type q4_0 keeps the output head Q8_0 (tied: the embedding); --pure makes it Q4_0 too."""
    for stem in ("m2n8_dynamic_wide_untied_gn_gqa2_mtp2", next(s for s in checkpoints if "_tied" in s)):
        ckpt, cfg, _ = checkpoints[stem]
        head = "embed.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"
        for pure, want in ((False, "Q8_0"), (True, "Q4_0")):
            out = tmp_path / f"{stem}.{pure}.gguf"
            convert.convert(str(ckpt), str(out), "q4_0", pure=pure)
            types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(out)).tensors}
            assert types[head] == want, (stem, pure)
            assert types["layers.0.ffn.up_proj.weight"] == "Q4_0"
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "convert.py"), "--help"], capture_output=True, text=True)
    assert "--pure" in p.stdout and "q4_0" in p.stdout


def test_convert_sharded_checkpoint(checkpoints, tmp_path):
    ckpt, cfg, _ = checkpoints["m2n8_dynamic_wide_untied_gn_gqa2_mtp2"]
    _, src = ref.load_checkpoint(ckpt)
    d = tmp_path / "sharded"
    d.mkdir()
    shutil.copy(ckpt / "config.json", d / "config.json")
    names = list(src)
    half = len(names) // 2
    rc.save_safetensors(d / "model-00001-of-00002.safetensors",
                        {k: src[k] for k in names[:half]}, "f32")
    rc.save_safetensors(d / "model-00002-of-00002.safetensors",
                        {k: src[k] for k in names[half:]}, "bf16")
    out = tmp_path / "m.gguf"
    convert.convert(str(d), str(out), "f32")
    r = gguf.GGUFReader(str(out))
    assert {t.name for t in r.tensors} == set(src)


# =============================================================================================
# convert.py: user errors
# =============================================================================================

@pytest.fixture()
def small_ckpt(tmp_path):
    d = tmp_path / "ckpt"
    rc.make_checkpoint(load_json(CONFIG_DIR / "m2n3_static_wide_untied_nogn_mha_mtp1.json"),
                       d, seed=1)
    return d


def rewrite_tensors(d, edit):
    _, w = ref.load_checkpoint(d)
    edit(w)
    rc.save_safetensors(d / "model.safetensors", w, "f32")


def assert_user_error(d, *needles):
    out = d.parent / "out.gguf"
    r = run_tool(TOOLS / "convert.py", d, out)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    assert not out.exists() and not Path(str(out) + ".tmp").exists()
    return r.stderr


def test_convert_error_missing_tensor(small_ckpt):
    rewrite_tensors(small_ckpt, lambda w: w.pop("layers.1.ffn.up_proj.weight"))
    assert_user_error(small_ckpt, "missing tensor layers.1.ffn.up_proj.weight")


def test_convert_error_extra_tensor(small_ckpt):
    rewrite_tensors(small_ckpt, lambda w: w.update({"layers.0.attn.q_proj.bias": np.zeros(32)}))
    assert_user_error(small_ckpt, "unexpected tensor layers.0.attn.q_proj.bias")


def test_convert_error_wrong_shape(small_ckpt):
    rewrite_tensors(small_ckpt, lambda w: w.update({"reduce.weight": w["reduce.weight"].T}))
    assert_user_error(small_ckpt, "reduce.weight", "[48, 32]", "[32, 48]")


def test_convert_error_bad_config(small_ckpt):
    cfg = load_json(small_ckpt / "config.json")
    cfg["output_group_norm"] = True              # n = 3 is not a multiple of m = 2
    (small_ckpt / "config.json").write_text(json.dumps(cfg))
    assert_user_error(small_ckpt, "output_group_norm", "ghc_n")
    cfg["output_group_norm"] = False
    cfg["num_kv_heads"] = 3
    cfg["hidden_size"] = 33
    (small_ckpt / "config.json").write_text(json.dumps(cfg))
    assert_user_error(small_ckpt, "num_kv_heads", "hidden_size 33")
    del cfg["ghc_m"]
    (small_ckpt / "config.json").write_text(json.dumps(cfg))
    assert_user_error(small_ckpt, "ghc_m is missing")


def test_convert_tied_head_under_either_name(tmp_path):
    """A tied model's state_dict names its head twice (embed.weight, lm_head.weight); safetensors'
    save_model keeps one of the pair. Both names with equal values, or lm_head.weight alone,
    convert to the same file as embed.weight alone; a differing lm_head.weight is refused, and
    the reference reads the lm_head-only checkpoint to the same logits."""
    cfg = load_json(CONFIG_DIR / "m2n8_static_fact_tied_gn_mha_mtp0.json")
    assert cfg["tie_word_embeddings"]
    dirs = {}
    for variant in ("embed", "both", "head", "differ"):
        d = tmp_path / variant / "ckpt"             # the same basename: the same metadata
        rc.make_checkpoint(cfg, d, seed=5)
        dirs[variant] = d
    _, w = ref.load_checkpoint(dirs["embed"])
    emb = w["embed.weight"]
    rewrite_tensors(dirs["both"], lambda t: t.update({"lm_head.weight": emb.copy()}))
    rewrite_tensors(dirs["head"], lambda t: t.update({"lm_head.weight": t.pop("embed.weight")}))
    rewrite_tensors(dirs["differ"], lambda t: t.update({"lm_head.weight": emb + np.float32(1e-3)}))
    files = {}
    for variant in ("embed", "both", "head"):
        out = tmp_path / variant / "out.gguf"
        r = run_tool(TOOLS / "convert.py", dirs[variant], out)
        assert r.returncode == 0, r.stderr
        files[variant] = out.read_bytes()
    assert files["both"] == files["embed"] and files["head"] == files["embed"]
    assert_user_error(dirs["differ"], "lm_head.weight differs from embed.weight")
    toks = np.array([1, 7, 42, 200], dtype=np.int64)
    a, _ = ref.forward(*ref.load_checkpoint(dirs["embed"]), toks)
    b, _ = ref.forward(*ref.load_checkpoint(dirs["head"]), toks)
    assert a.shape == (4, 256) and np.array_equal(a, b)


def test_convert_error_bytes_needs_256(small_ckpt):
    cfg = load_json(small_ckpt / "config.json")
    cfg["vocab_size"] = 300
    (small_ckpt / "config.json").write_text(json.dumps(cfg))
    rewrite_tensors(small_ckpt, lambda w: w.update({
        "embed.weight": np.zeros((300, 48)), "lm_head.weight": np.zeros((300, 32))}))
    assert_user_error(small_ckpt, "vocab_size 256")


# =============================================================================================
# convert.py: tokenizers
# =============================================================================================

def tokenizer_ckpt(tmp_path, vocab_size):
    cfg = load_json(CONFIG_DIR / "m2n8_static_fact_tied_gn_mha_mtp0.json")
    cfg.update(vocab_size=vocab_size, tokenizer="file", num_layers=1)
    d = tmp_path / "ckpt"
    rc.make_checkpoint(cfg, d, seed=3)
    return d


@pytest.mark.skipif(not TOK512.exists(), reason="shared/models/tok512.bin not present")
def test_llama2c_tokenizer(tmp_path):
    d = tokenizer_ckpt(tmp_path, 512)
    # the file given explicitly, and then found beside the checkpoint as tokenizer.bin
    for how in ("flag", "beside"):
        out = tmp_path / f"{how}.gguf"
        if how == "flag":
            convert.convert(str(d), str(out), tokenizer=str(TOK512))
        else:
            shutil.copy(TOK512, d / "tokenizer.bin")
            convert.convert(str(d), str(out))
        r = gguf.GGUFReader(str(out))
        assert field_value(r, "tokenizer.ggml.model") == "llama"
        tokens = field_value(r, "tokenizer.ggml.tokens")
        types = field_value(r, "tokenizer.ggml.token_type")
        scores = field_value(r, "tokenizer.ggml.scores")
        assert len(tokens) == len(types) == len(scores) == 512
        assert tokens[:3] == ["<unk>", "<s>", "</s>"]
        assert tokens[3] == "<0x00>" and tokens[258] == "<0xFF>"
        assert tokens[259] == "\u2581t"           # llama2.c's " t" in SentencePiece form
        assert types[:4] == [2, 3, 3, 6] and set(types[3:259]) == {6} and types[259] == 1
        assert scores[260] == -1.0 and scores[511] == -252.0
        assert field_value(r, "tokenizer.ggml.bos_token_id") == 1
        assert field_value(r, "tokenizer.ggml.eos_token_id") == 2
        assert field_value(r, "tokenizer.ggml.unknown_token_id") == 0
        assert field_value(r, "tokenizer.ggml.add_bos_token") is True
    # a vocabulary of the wrong size is a user error naming both counts
    cfg = load_json(d / "config.json")
    cfg["vocab_size"] = 256
    cfg["embedding"] = "wide"
    cfg["tie_word_embeddings"] = False
    d2 = tmp_path / "wrong"
    rc.make_checkpoint(cfg, d2, seed=1)
    r = run_tool(TOOLS / "convert.py", d2, tmp_path / "x.gguf", "--tokenizer", TOK512)
    assert r.returncode == 1 and "512 tokens" in r.stderr and "256" in r.stderr


def test_hf_bytelevel_bpe_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    text = (ROOT.parent / "shared" / "data" / "tinyshakespeare.txt")
    lines = text.read_text()[:20000].splitlines() if text.exists() else \
        ["the quick brown fox jumps over the lazy dog"] * 50
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    V = tok.get_vocab_size()
    d = tokenizer_ckpt(tmp_path, V)
    tok.save(str(d / "tokenizer.json"))
    j = load_json(d / "tokenizer.json")
    n_merges = len(j["model"]["merges"])
    eot = tok.token_to_id("<|endoftext|>")

    def check(out):
        r = gguf.GGUFReader(str(out))
        assert field_value(r, "tokenizer.ggml.model") == "gpt2"
        assert field_value(r, "tokenizer.ggml.pre") == "gpt2"
        tokens = field_value(r, "tokenizer.ggml.tokens")
        types = field_value(r, "tokenizer.ggml.token_type")
        merges = field_value(r, "tokenizer.ggml.merges")
        assert len(tokens) == len(types) == V
        assert len(merges) == n_merges and all(len(m.split(" ")) == 2 for m in merges)
        vocab = tok.get_vocab()
        assert all(tokens[i] == p for p, i in vocab.items())
        assert types[eot] == 3 and types.count(3) == 1 and types.count(1) == V - 1
        assert field_value(r, "tokenizer.ggml.bos_token_id") == eot
        assert field_value(r, "tokenizer.ggml.eos_token_id") == eot
        assert "tokenizer.ggml.scores" not in r.fields
        return merges

    out = tmp_path / "beside.gguf"
    convert.convert(str(d), str(out))             # tokenizer.json found beside the checkpoint
    merges_a = check(out)
    # the older "a b" string form of merges gives the same file contents
    first = j["model"]["merges"][0]
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    other = tmp_path / "strings.json"
    other.write_text(json.dumps(j))
    out2 = tmp_path / "flag.gguf"
    convert.convert(str(d), str(out2), tokenizer=str(other))
    assert check(out2) == merges_a
    assert merges_a[0] == (first if isinstance(first, str) else " ".join(first))


# =============================================================================================
# reference.py
# =============================================================================================

def llama_forward(cfg, w, tokens):
    """A plain Llama forward, token by token with a KV cache and complex-number RoPE."""
    hq, hkv, hd = cfg["num_heads"], cfg["num_kv_heads"], cfg["head_dim"]
    eps, half = cfg["rms_norm_eps"], cfg["head_dim"] // 2
    norm = lambda x, g: g * x / math.sqrt(float(np.dot(x, x)) / len(x) + eps)  # noqa: E731
    omega = cfg["rope_theta"] ** (-np.arange(half) * 2 / hd)

    def rot(v, pos):               # pairs (i, i+hd/2) as complex numbers, times e^{i pos omega_i}
        c = (v[:half] + 1j * v[half:]) * np.exp(1j * pos * omega)
        return np.concatenate([c.real, c.imag])

    caches = [([], []) for _ in range(cfg["num_layers"])]
    out = []
    for pos, t in enumerate(tokens):
        x = w["embed.weight"][t].copy()
        for l, (ks, vs) in enumerate(caches):
            p = f"layers.{l}."
            a = norm(x, w[p + "attn_norm.weight"])
            q = (w[p + "attn.q_proj.weight"] @ a).reshape(hq, hd)
            k_new = (w[p + "attn.k_proj.weight"] @ a).reshape(hkv, hd)
            ks.append(np.array([rot(k, pos) for k in k_new]))
            vs.append((w[p + "attn.v_proj.weight"] @ a).reshape(hkv, hd))
            heads = []
            for h in range(hq):
                g = h * hkv // hq
                sc = np.array([rot(q[h], pos) @ k[g] for k in ks]) / math.sqrt(hd)
                pr = np.exp(sc - sc.max())
                heads.append(sum(pi * v[g] for pi, v in zip(pr / pr.sum(), vs)))
            x = x + w[p + "attn.o_proj.weight"] @ np.concatenate(heads)
            f = norm(x, w[p + "ffn_norm.weight"])
            gt = w[p + "ffn.gate_proj.weight"] @ f
            up = w[p + "ffn.up_proj.weight"] @ f
            x = x + w[p + "ffn.down_proj.weight"] @ (gt / (1 + np.exp(-gt)) * up)
        out.append(w["lm_head.weight"] @ norm(x, w["final_norm.weight"]))
    return np.array(out)


@pytest.mark.parametrize("dynamic", [False, True])
def test_reference_n1_m1_spec_init_is_llama(tmp_path, dynamic):
    cfg = {"vocab_size": 256, "hidden_size": 32, "num_layers": 2, "ghc_m": 1, "ghc_n": 1,
           "num_heads": 4, "num_kv_heads": 2, "ffn_hidden_size": 64, "ghc_dynamic": dynamic,
           "embedding": "wide", "output_group_norm": False, "rope_theta": 500.0}
    rc.make_checkpoint(cfg, tmp_path, seed=5, spec_init_ghc=True)
    c, w = ref.load_checkpoint(tmp_path)
    assert np.array_equal(w["layers.0.attn_ghc.static"], [[1.0, 1.0, 1.0]])
    tokens = [5, 200, 17, 17, 3, 99, 250, 0, 42]
    logits, mtp = ref.forward(c, w, tokens)
    assert mtp == []
    expect = llama_forward(c, w, tokens)
    np.testing.assert_allclose(logits, expect, rtol=1e-9, atol=1e-9)
    assert 0.5 < logits.std() < 10


def test_reference_ghc_matches_explicit_loops(checkpoints):
    ckpt, _, _ = checkpoints["m2n3_dynamic_fact_untied_nogn_gqa1_mtp2"]
    c, w = ref.load_checkpoint(ckpt)
    m, n, s = c["ghc_m"], c["ghc_n"], c["hidden_size"] // c["ghc_m"]
    rng = np.random.default_rng(0)
    H = rng.normal(size=(3, n, s))
    W = rng.normal(size=(s * m, s * m))
    sub = lambda x: np.tanh(x @ W)               # noqa: E731  any sublayer T: R^D -> R^D
    got = ref.ghc(c, w, "layers.1.ffn_ghc", H, sub)
    p = "layers.1.ffn_ghc."
    for t in range(3):
        C = np.array(w[p + "static"])
        for i in range(n):                       # dynamic coefficients, one row at a time
            row = H[t, i]
            rn = row / math.sqrt(np.mean(row ** 2) + c["rms_norm_eps"]) * w[p + "norm.weight"]
            for col in range(2 * m + n):
                C[i, col] += w[p + "scale"][i, col] * math.tanh(
                    float(w[p + "proj.weight"][col] @ rn) / math.sqrt(s))
        x = np.concatenate([sum(C[i, k] * H[t, i] for i in range(n)) for k in range(m)])
        y = sub(x[None])[0]
        for j in range(n):
            want = sum(C[i, m + j] * H[t, i] for i in range(n))
            want = want + sum(C[j, m + n + k] * y[k * s:(k + 1) * s] for k in range(m))
            np.testing.assert_allclose(got[t, j], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stem", ["m1n4_dynamic_wide_untied_gn_mha_mtp2",
                                  "m4n16_dynamic_fact_tied_gn_gqa2_mtp3",
                                  "m2n3_dynamic_fact_untied_nogn_gqa1_mtp2"])
def test_reference_causal(stem, checkpoints):
    ckpt, cfg, _ = checkpoints[stem]
    c, w = ref.load_checkpoint(ckpt)
    a = [7, 100, 33, 250, 1, 64, 64, 12, 99, 180]
    b = a[:6] + [3, 4, 5, 6]                    # differs from position 6 on
    la, ma = ref.forward(c, w, a)
    lb, mb = ref.forward(c, w, b)
    np.testing.assert_allclose(la[:6], lb[:6], rtol=1e-12, atol=1e-12)
    assert not np.allclose(la[6:], lb[6:])
    for j, (x, y) in enumerate(zip(ma, mb), start=1):
        # mtp_j at position i reads tokens up to i + j
        np.testing.assert_allclose(x[:6 - j], y[:6 - j], rtol=1e-12, atol=1e-12)
        assert not np.allclose(x[6 - j:], y[6 - j:])
    # logits are O(1..10)
    assert 0.5 < la.std() < 10 and np.abs(la).max() < 40


def test_reference_mtp_shapes(checkpoints):
    ckpt, cfg, _ = checkpoints["m8n64_dynamic_wide_untied_gn_gqa2_mtp4"]
    c, w = ref.load_checkpoint(ckpt)
    logits, mtp = ref.forward(c, w, [1, 2, 3, 4, 5, 6])
    assert logits.shape == (6, 256)
    assert [x.shape for x in mtp] == [(5, 256), (4, 256), (3, 256), (2, 256)]
    logits, mtp = ref.forward(c, w, [9, 8])
    assert [x.shape for x in mtp] == [(1, 256), (0, 256), (0, 256), (0, 256)]
    # MTP module 1 at position i sees the main state at i and token i+1: the same rows come out
    # of a shorter prefix
    _, mtp_short = ref.forward(c, w, [1, 2, 3, 4])
    _, mtp_long = ref.forward(c, w, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(mtp_short[0], mtp_long[0][:3], rtol=1e-12, atol=1e-12)


def test_reference_cli(checkpoints, tmp_path):
    ckpt, _, _ = checkpoints["m2n2_dynamic_fact_untied_gn_gqa2_mtp1"]
    out = tmp_path / "o.npz"
    r = run_tool(TOOLS / "reference.py", ckpt, "--tokens", "1,2,3,4", "-o", out)
    assert r.returncode == 0, r.stderr
    z = np.load(out)
    assert sorted(z.files) == ["logits", "mtp1"]
    assert z["logits"].shape == (4, 256) and z["mtp1"].shape == (3, 256)
    r = run_tool(TOOLS / "reference.py", ckpt, "--tokens", "1,2,3,4", "--greedy", "3")
    assert r.returncode == 0, r.stderr
    ids = [int(t) for t in r.stdout.strip().split(",")]
    c, w = ref.load_checkpoint(ckpt)
    seq = [1, 2, 3, 4]
    for t in ids:
        assert t == int(np.argmax(ref.forward(c, w, seq)[0][-1]))
        seq.append(t)
    assert len(ids) == 3
    r = run_tool(TOOLS / "reference.py", ckpt, "--tokens", "1,999")
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_reference_head_and_mtp_input(checkpoints, monkeypatch):
    """The output head (group norm, reduce, final norm) and the MTP input mix, recomputed by
    explicit per-token formulas from the states the reference passes around."""
    ckpt, _, _ = checkpoints["m2n8_dynamic_wide_untied_gn_gqa2_mtp2"]
    c, w = ref.load_checkpoint(ckpt)
    D, m, n = c["hidden_size"], c["ghc_m"], c["ghc_n"]
    s, eps = D // m, c["rms_norm_eps"]
    seen_head, seen_layer = [], []
    real_head, real_layer = ref.head, ref.vwn_layer
    monkeypatch.setattr(ref, "head", lambda cfg, w_, H, o, f: (
        seen_head.append((H.copy(), o, f)), real_head(cfg, w_, H, o, f))[1])
    monkeypatch.setattr(ref, "vwn_layer", lambda cfg, w_, p, H, pos: (
        seen_layer.append((p, H.copy())), real_layer(cfg, w_, p, H, pos))[1])
    tokens = [3, 1, 4, 1, 5, 9, 2]
    logits, mtp = ref.forward(c, w, tokens)
    assert [x[1:] for x in seen_head] == [("out_norm", "final_norm"),
                                          ("mtp.0.out_norm", "mtp.0.final_norm"),
                                          ("mtp.1.out_norm", "mtp.1.final_norm")]

    def rms(x, g):
        return x / math.sqrt(sum(v * v for v in x) / len(x) + eps) * g

    def head(h_wide, prefix):                 # one token, torch GroupNorm written out
        z = np.empty_like(h_wide)
        for g in range(n // m):
            grp = h_wide[g * D:(g + 1) * D]
            mu = sum(grp) / D
            var = sum((v - mu) ** 2 for v in grp) / D
            z[g * D:(g + 1) * D] = (grp - mu) / math.sqrt(var + c["group_norm_eps"])
        z = z * w[prefix + "out_norm.weight"] + w[prefix + "out_norm.bias"]
        return w["lm_head.weight"] @ rms(w["reduce.weight"] @ z, w[prefix + "final_norm.weight"])

    H_main = seen_head[0][0]
    for t in range(len(tokens)):
        np.testing.assert_allclose(logits[t], head(H_main[t].ravel(), ""), rtol=1e-10, atol=1e-10)
    for j in (0, 1):
        U_out = seen_head[j + 1][0]
        for i in range(len(tokens) - j - 1):
            np.testing.assert_allclose(mtp[j][i], head(U_out[i].ravel(), f"mtp.{j}."),
                                       rtol=1e-10, atol=1e-10)
    # MTP module j+1 input: e from token i+j+1, p from the previous stage's state at i
    layer_inputs = {p: H for p, H in seen_layer}
    prev = [H_main, seen_head[1][0]]
    for j in (0, 1):
        U_in = layer_inputs[f"mtp.{j}.layer"]
        pre = f"mtp.{j}."
        for i in range(len(tokens) - j - 1):
            e = rms(w["embed.weight"][tokens[i + j + 1]], w[pre + "enorm.weight"])
            p = rms(prev[j][i].ravel(), w[pre + "hnorm.weight"])
            for row in range(n):
                cat = np.concatenate([e[row * s:(row + 1) * s], p[row * s:(row + 1) * s]])
                np.testing.assert_allclose(U_in[i, row], w[pre + "proj.weight"] @ cat,
                                           rtol=1e-10, atol=1e-10)


def test_bench_states_sorts_reps_by_state(tmp_path):
    """scripts/bench_states.py: steady reps only, sorted by the round's bandwidth, medians per type."""
    def round_text(i, brackets, tok_s):
        lines = [f"### round {i} f32 00:00:00"]
        models = []
        for shape, bpt in (("m1n1", 4.0e8), ("m2n8", 4.1e8), ("m8n64", 4.2e8)):
            path = f"/m/llama110m_{shape}.f32.gguf"
            for r, t in enumerate(tok_s[shape]):
                lines.append(f"  rep {r + 1}/{len(tok_s[shape])} {path}: prefill 100.00 tok/s, decode {t:.2f} tok/s")
            models.append({"model": path, "weight_type": "f32", "bytes_per_token": bpt})
        lines.append(json.dumps({"rep_machine_gbs": brackets, "models": models}))
        return "\n".join(lines) + "\n"

    # round 1: slow and steady (2 reps); round 2: rep 1 changes state (left out), rep 2 fast
    text = round_text(1, [30.0, 32.0, 31.0], {"m1n1": [70.0, 72.0], "m2n8": [68.0, 70.0], "m8n64": [65.0, 66.0]})
    text += round_text(2, [31.0, 50.0, 52.0], {"m1n1": [90.0, 120.0], "m2n8": [90.0, 116.0], "m8n64": [90.0, 100.0]})
    f = tmp_path / "watch.txt"
    f.write_text(text)
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_states.py"), str(f)],
                         check=True, capture_output=True, text=True).stdout
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[1:-1]]
            for ln in out.splitlines() if ln.startswith("| slow") or ln.startswith("| fast")}
    assert set(rows) == {"slow", "fast"}
    slow, fast = rows["slow"], rows["fast"]
    assert slow[2] == "2" and fast[2] == "1"                     # reps counted
    # slow m1n1: efficiencies 4e8*70/1e9/31 = 0.903 and 4e8*72/1e9/31.5 = 0.914 -> median 91%
    assert slow[4] == "91%"
    assert fast[4] == f"{100 * 4e8 * 120 / 1e9 / 51:.0f}%"       # 94%
    assert fast[8] == f"{120 / 116:.3f}" and fast[9] == f"{120 / 100:.3f}"

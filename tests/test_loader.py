"""test_loader.py -- the C loader against the Python converter, for every test configuration.

For each tests/configs/*.json: a random checkpoint (tools/random_checkpoint.py), converted with each
of --type f32/f16/bf16/q8_0 (tools/convert.py), loaded by libvwn through ctypes (tests/vwn_ctypes.py).
Checked: every field of vwn_model_get_info against config.json; the tensor table (names, shapes,
types per docs/format.md); every tensor's values from vwn_model_tensor_read_f32 against the source
safetensors -- exactly for F32/F16/BF16 (the source cast to the file type and back), within the Q8_0
block error bound for Q8_0 (and exactly against a NumPy dequantization of the file's own blocks).
Also: the read path equals the mmap path, and cut or damaged converter output fails cleanly.

    VWN_LIB=/path/to/libvwn.so python -m pytest tests/test_loader.py
"""

import glob
import json
import os
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import vwn_ctypes as V  # noqa: E402
from convert import convert  # noqa: E402
from random_checkpoint import make_checkpoint  # noqa: E402

CONFIGS = sorted(glob.glob(os.path.join(HERE, "configs", "*.json")))
WTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")
FILE_TYPE = {"f32": V.TYPE_F32, "f16": V.TYPE_F16, "bf16": V.TYPE_BF16, "q8_0": V.TYPE_Q8_0, "q4_0": V.TYPE_Q4_0}


def test_enough_configs():
    assert len(CONFIGS) >= 10, f"only {len(CONFIGS)} configs in tests/configs"


# ---- fixtures: one checkpoint per config, one GGUF per (config, type) -------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("loader")


_checkpoints = {}


def checkpoint(workdir, config_path):
    """(ckpt_dir, completed config, {name: float32 array}) for a config, made once."""
    if config_path not in _checkpoints:
        name = os.path.splitext(os.path.basename(config_path))[0]
        with open(config_path) as f:
            config = json.load(f)
        ckpt = os.path.join(workdir, name)
        cfg = make_checkpoint(config, ckpt, seed=1234, dtype="f32")
        tensors = load_file(os.path.join(ckpt, "model.safetensors"))
        _checkpoints[config_path] = (ckpt, cfg, tensors)
    return _checkpoints[config_path]


def converted(workdir, config_path, wtype):
    ckpt, cfg, tensors = checkpoint(workdir, config_path)
    out = os.path.join(workdir, os.path.basename(ckpt) + f".{wtype}.gguf")
    if not os.path.exists(out):
        convert(ckpt, out, wtype)
    return out, cfg, tensors


# ---- expected values ----------------------------------------------------------------------------

def bf16_round(x):
    """float32 -> nearest-even bfloat16 -> float32 (finite inputs)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


def expected_file_type(name, shape, wtype, cfg):
    """docs/format.md: only 2-D non-GHC tensors follow --type; q8_0 and q4_0 need rows % 32 == 0;
    under q4_0 the output head (lm_head, or the tied embedding) is q8_0."""
    if len(shape) != 2 or "_ghc." in name or wtype == "f32":
        return V.TYPE_F32
    if wtype in ("q8_0", "q4_0") and shape[-1] % 32 != 0:
        return V.TYPE_F16
    head = "embed.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"
    if wtype == "q4_0" and name == head:
        return V.TYPE_Q8_0
    return FILE_TYPE[wtype]


def q8_0_blocks(path, offset, n_bytes):
    """(scales [nb] float32, quants [nb, 32] int8) of a Q8_0 tensor read straight from the file."""
    raw = np.fromfile(path, dtype=np.uint8, count=n_bytes, offset=offset).reshape(-1, 34)
    d = raw[:, :2].copy().view(np.float16).astype(np.float32).reshape(-1)
    q = raw[:, 2:].copy().view(np.int8)
    return d, q


def q4_0_blocks(path, offset, n_bytes):
    """(scales [nb] float32, quants [nb, 32] int in -8..7) of a Q4_0 tensor read from the file:
    ggml's layout, value j < 16 in the low nibble of byte j, value j + 16 in its high nibble."""
    raw = np.fromfile(path, dtype=np.uint8, count=n_bytes, offset=offset).reshape(-1, 18)
    d = raw[:, :2].copy().view(np.float16).astype(np.float32).reshape(-1)
    nib = raw[:, 2:]
    q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.int32) - 8
    return d, q


def check_values(path, name, src, ti, got):
    flat = src.astype(np.float32).reshape(-1)
    if ti["type"] == V.TYPE_F32:
        want = flat
    elif ti["type"] == V.TYPE_F16:
        want = flat.astype(np.float16).astype(np.float32)
    elif ti["type"] == V.TYPE_BF16:
        want = bf16_round(flat)
    elif ti["type"] in (V.TYPE_Q4_0, V.TYPE_Q8_0):
        tname = V.TYPE_NAME[ti["type"]]
        # 1. the loader's dequantization is exactly d * q of the file's blocks
        d, q = (q4_0_blocks if ti["type"] == V.TYPE_Q4_0 else q8_0_blocks)(path, ti["offset"], ti["n_bytes"])
        exact = (d[:, None] * q.astype(np.float32)).reshape(-1)
        np.testing.assert_array_equal(got, exact, err_msg=f"{name}: {tname} dequantization")
        # 2. and within the block error bound of the source, plus d's fp16 rounding (relative
        #    2^-11) times |q|. Q8_0: d = max|x| / 127, |x - q d| <= d/2, |q| <= 127. Q4_0 (ggml's
        #    quantizer): d = x_max / -8 for the x of largest magnitude, q = clamp(trunc(x / d +
        #    8.5), 0, 15) - 8, so |x - q d| <= |d|/2 but at the clamped end (q = 7 for x up to
        #    -x_max = 8|d|: error <= |d|), |q| <= 8.
        blocks = flat.reshape(-1, 32)
        amax = np.abs(blocks).max(axis=1, keepdims=True)
        if ti["type"] == V.TYPE_Q8_0:
            bound = amax / 127.0 * (0.5 + 127.0 * 2.0 ** -11) + 1e-7
        else:
            bound = amax / 8.0 * (1.0 + 8.0 * 2.0 ** -11) + 1e-7
        err = np.abs(got.reshape(-1, 32) - blocks)
        worst = float((err - bound).max())
        assert worst <= 0, f"{name}: {tname} error exceeds the block bound by {worst}"
        if ti["type"] == V.TYPE_Q4_0:  # loose only at the clamped end: the mean is within a quarter step
            assert float(err.mean()) <= float((amax / 8.0).mean()) / 2, f"{name}: q4_0 mean error too large"
        return
    else:
        raise AssertionError(f"{name}: unexpected type {ti['type']}")
    np.testing.assert_array_equal(got, want, err_msg=f"{name} ({V.TYPE_NAME[ti['type']]})")


# ---- the main test ------------------------------------------------------------------------------

@pytest.mark.parametrize("wtype", WTYPES)
@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda p: os.path.basename(p)[:-5])
def test_load_and_compare(workdir, config_path, wtype):
    path, cfg, tensors = converted(workdir, config_path, wtype)
    model = V.load_model(path, use_mmap=True, verify=True)
    try:
        info = V.model_info(model)
        D, m, n = cfg["hidden_size"], cfg["ghc_m"], cfg["ghc_n"]

        # -- configuration
        assert info.n_vocab == cfg["vocab_size"]
        assert info.n_embd == D
        assert info.n_layer == cfg["num_layers"]
        assert (info.ghc_m, info.ghc_n) == (m, n)
        assert info.n_embd_wide == n * D // m
        assert info.n_head == cfg["num_heads"]
        assert info.n_head_kv == cfg["num_kv_heads"]
        assert info.head_dim == cfg["head_dim"]
        assert info.n_ff == cfg["ffn_hidden_size"]
        assert info.mtp_depth == cfg["mtp_depth"]
        assert info.max_seq_len == cfg["max_seq_len"]
        assert info.ghc_dynamic == cfg["ghc_dynamic"]
        assert info.wide_embedding == (cfg["embedding"] == "wide")
        assert info.tied_head == cfg["tie_word_embeddings"]
        assert info.output_group_norm == cfg["output_group_norm"]
        assert info.rope_theta == np.float32(cfg["rope_theta"])
        assert info.rms_norm_eps == np.float32(cfg["rms_norm_eps"])
        assert info.group_norm_eps == np.float32(cfg["group_norm_eps"])
        assert info.file_size == os.path.getsize(path)
        assert info.n_params == sum(int(a.size) for a in tensors.values())
        assert V.meta(model, "general.architecture") == "vwn"
        assert V.meta(model, "vwn.hidden_size") == str(D)
        assert V.meta(model, "vwn.no_such_key") is None
        if V.has("vwn_tokenizer_get_kind"):
            assert V.lib.vwn_tokenizer_get_kind(model) == V.TOKENIZER_BYTES

        # -- tensor table: exactly the checkpoint's tensors, shapes reversed, types per the doc
        infos = {t["name"]: t for t in V.tensor_infos(model)}
        assert set(infos) == set(tensors)
        for name, src in tensors.items():
            ti = infos[name]
            assert ti["ne"] == list(src.shape[::-1]), name
            assert ti["type"] == expected_file_type(name, src.shape, wtype, cfg), name
            assert ti["offset"] % 32 == 0 and ti["offset"] + ti["n_bytes"] <= info.file_size

        # -- derived numbers
        # weight_type: the type holding the most matrix (2-D) elements (vwn.h), lower number on a tie
        per_type = {}
        for t in infos.values():
            if t["n_dims"] == 2:
                per_type[t["type"]] = per_type.get(t["type"], 0) + int(np.prod(t["ne"]))
        want = min(per_type, key=lambda ty: (-per_type[ty], ty))
        assert info.weight_type == want, (info.weight_type, per_type)
        per_token = sum(t["n_bytes"] for nm, t in infos.items()
                        if nm.startswith("layers.") and t["n_dims"] == 2 and "_ghc." not in nm)
        per_token += sum(infos[nm]["n_bytes"] for nm in ("reduce.weight", "lm_head.weight",
                                                         "embed_expand.weight") if nm in infos)
        per_token += infos["embed.weight"]["n_bytes"] // cfg["vocab_size"]
        if cfg["tie_word_embeddings"]:
            per_token += infos["embed.weight"]["n_bytes"]
        # the small tensors, read as fp32 copies: the layers' norms and GHC coefficients (not the
        # routing norm, folded into the projection at load), the group norm, the final norm
        per_token += sum(4 * int(np.prod(t["ne"])) for nm, t in infos.items()
                         if (nm.startswith("layers.") and ("_ghc." in nm or t["n_dims"] == 1)
                             and not nm.endswith("_ghc.norm.weight"))
                         or nm.startswith("out_norm.") or nm == "final_norm.weight")
        assert info.weight_bytes_per_token == per_token

        # -- values
        for name, src in tensors.items():
            got = V.read_tensor_f32(model, name, src.size)
            check_values(path, name, src, infos[name], got)
    finally:
        V.lib.vwn_model_free(model)


@pytest.mark.parametrize("config_path", CONFIGS[:3], ids=lambda p: os.path.basename(p)[:-5])
def test_read_path_matches_mmap(workdir, config_path):
    path, cfg, tensors = converted(workdir, config_path, "q8_0")
    a = V.load_model(path, use_mmap=True)
    b = V.load_model(path, use_mmap=False)
    try:
        ia, ib = V.model_info(a), V.model_info(b)
        assert bytes(ia) == bytes(ib)
        for name, src in tensors.items():
            np.testing.assert_array_equal(V.read_tensor_f32(a, name, src.size),
                                          V.read_tensor_f32(b, name, src.size))
    finally:
        V.lib.vwn_model_free(a)
        V.lib.vwn_model_free(b)


# ---- damaged converter output -------------------------------------------------------------------

def test_truncated_converter_output(workdir):
    path, _, _ = converted(workdir, CONFIGS[0], "q8_0")
    data = open(path, "rb").read()
    cut_path = os.path.join(workdir, "cut.gguf")
    for cut in (0, 3, 10, 24, 200, len(data) // 3, len(data) // 2, len(data) - 1):
        with open(cut_path, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(V.VwnError) as e:
            V.load_model(cut_path)
        assert e.value.status_name == "TRUNCATED", (cut, str(e.value))
        assert e.value.message


def test_bad_files(workdir):
    with pytest.raises(V.VwnError) as e:
        V.load_model(os.path.join(workdir, "does-not-exist.gguf"))
    assert e.value.status_name == "IO" and "does-not-exist.gguf" in e.value.message
    path, _, _ = converted(workdir, CONFIGS[0], "f32")
    data = bytearray(open(path, "rb").read())
    bad = os.path.join(workdir, "bad.gguf")
    for offset, patch, status in ((0, b"GGML", "BAD_MAGIC"), (4, b"\x02\x00\x00\x00", "BAD_VERSION"),
                                  (16, b"\xff" * 8, "BAD_FORMAT")):
        damaged = bytearray(data)
        damaged[offset:offset + len(patch)] = patch
        with open(bad, "wb") as f:
            f.write(damaged)
        with pytest.raises(V.VwnError) as e:
            V.load_model(bad)
        assert e.value.status_name == status, str(e.value)


def test_api_misuse():
    info = V.ModelInfo()
    assert V.lib.vwn_model_get_info(None, info) == V.VWN_ERR_INVALID_ARG
    assert V.lib.vwn_model_meta_count(None) == -1
    assert V.lib.vwn_model_meta_key(None, 0) is None
    out = V.C.c_void_p(1)
    assert V.lib.vwn_model_load(None, None, V.C.byref(out)) == V.VWN_ERR_INVALID_ARG
    assert out.value is None
    V.lib.vwn_model_free(None)


# ---- tests/vwn_ctypes.py mirrors vwn.h ----------------------------------------------------------

def test_ctypes_layout_matches_header(tmp_path):
    """Every structure of vwn_ctypes has the size and field offsets of its C counterpart."""
    import shutil
    import subprocess
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    structs = {"vwn_model_params": V.ModelParams, "vwn_model_info": V.ModelInfo,
               "vwn_tensor_info": V.TensorInfo, "vwn_context_params": V.ContextParams,
               "vwn_perf": V.Perf, "vwn_sampler_params": V.SamplerParams,
               "vwn_sampler_iface": V.SamplerIface, "vwn_generate_params": V.GenerateParams,
               "vwn_generate_stats": V.GenerateStats}
    lines = ['#include "vwn.h"', "#include <stdio.h>", "#include <stddef.h>", "int main(void) {"]
    for cname, py in structs.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof({cname}));')
        lines += [f'printf("{cname}.{f[0]} %zu\\n", offsetof({cname}, {f[0]}));' for f in py._fields_]
    lines.append("return 0; }")
    (tmp_path / "layout.c").write_text("\n".join(lines))
    exe = str(tmp_path / "layout")
    subprocess.check_call([cc, "-std=c11", "-I", os.path.join(ROOT, "include"),
                           str(tmp_path / "layout.c"), "-o", exe])
    c_layout = dict(line.rsplit(" ", 1) for line in subprocess.check_output([exe]).decode().splitlines())
    py_layout = {}
    for cname, py in structs.items():
        py_layout[cname] = str(V.C.sizeof(py))
        for f in py._fields_:
            py_layout[f"{cname}.{f[0]}"] = str(getattr(py, f[0]).offset)
    assert py_layout == c_layout

#!/usr/bin/env python3
"""Convert a VWN checkpoint folder to a libvwn GGUF file.

    python tools/convert.py CHECKPOINT_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0] [--pure] [--tokenizer PATH]

The checkpoint is spec §7 (shared/spec/architecture.md): `config.json` plus `model.safetensors`
(or sharded `model-*.safetensors`) with F32, F16 or BF16 tensors.  The output is the GGUF v3 file
described in docs/format.md: the `vwn.*` hyperparameter keys, the `tokenizer.ggml.*` keys and
every tensor under its checkpoint name.

Steps, each a function below:
  1. read and validate config.json (every problem is listed, not just the first);
  2. list the tensors the config requires with their shapes, and compare with the safetensors
     headers: every missing, extra, mis-shaped or wrongly typed tensor is named;
  3. pick and read the tokenizer (rules in docs/format.md, "Tokenizer");
  4. write the GGUF: metadata, tensor infos, then the tensor data one tensor at a time (a tqdm
     bar counts tensors), into OUT.gguf.tmp renamed to OUT.gguf at the end.

User errors (bad config, bad tensors, bad tokenizer) print `convert: error: ...` on stderr and
exit with code 1, without a traceback.  Importable: `convert(ckpt_dir, out_path, wtype="f32",
tokenizer=None, progress=False, pure=False)` raises ConvertError for the same errors.
"""

import argparse
import glob
import json
import os
import re
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from tqdm import tqdm

SPEC_VERSION = 1
ALIGNMENT = 32
MAX_MTP_DEPTH = 16


class ConvertError(Exception):
    """An error in the user's input; the message says what is wrong."""


# =============================================================================================
# 1. Configuration
# =============================================================================================

# Integer keys that must be present, with their smallest legal value.
REQUIRED_INTS = {"vocab_size": 1, "hidden_size": 1, "num_layers": 1, "ghc_m": 1, "ghc_n": 1,
                 "num_heads": 1, "ffn_hidden_size": 1}
REQUIRED_BOOLS = ("ghc_dynamic", "output_group_norm")
# Keys with a default (the same defaults as tools/random_checkpoint.py and tools/reference.py).
# num_kv_heads defaults to num_heads and head_dim to hidden_size / num_heads.
DEFAULTS = {"architecture": "vwn", "mtp_depth": 0, "tie_word_embeddings": False,
            "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "group_norm_eps": 1e-5,
            "max_seq_len": 256, "tokenizer": "bytes"}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_config(ckpt_dir):
    """Read config.json, fill the defaults, and check every rule; return the completed dict."""
    path = os.path.join(ckpt_dir, "config.json")
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise ConvertError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConvertError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConvertError(f"{path} must hold a JSON object")

    cfg = dict(DEFAULTS)
    cfg.update(raw)
    problems = []

    for key, low in REQUIRED_INTS.items():
        if key not in cfg:
            problems.append(f"{key} is missing")
        elif not _is_int(cfg[key]) or not low <= cfg[key] < 2**32:
            problems.append(f"{key} must be an integer >= {low}, got {cfg[key]!r}")
    for key in REQUIRED_BOOLS:
        if key not in cfg:
            problems.append(f"{key} is missing")
    if "embedding" not in cfg:
        problems.append("embedding is missing")
    if problems:                                 # later checks need these keys
        raise ConvertError("bad config.json: " + "; ".join(problems))

    cfg.setdefault("num_kv_heads", cfg["num_heads"])
    if "head_dim" not in cfg:
        if cfg["hidden_size"] % cfg["num_heads"]:
            problems.append(f"head_dim is absent and hidden_size {cfg['hidden_size']} is not "
                            f"divisible by num_heads {cfg['num_heads']}")
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_heads"]

    for key, low in (("num_kv_heads", 1), ("head_dim", 2), ("mtp_depth", 0), ("max_seq_len", 1)):
        if not _is_int(cfg[key]) or not low <= cfg[key] < 2**32:
            problems.append(f"{key} must be an integer >= {low}, got {cfg[key]!r}")
    for key in ("ghc_dynamic", "output_group_norm", "tie_word_embeddings"):
        if not isinstance(cfg[key], bool):
            problems.append(f"{key} must be true or false, got {cfg[key]!r}")
    for key in ("rope_theta", "rms_norm_eps", "group_norm_eps"):
        if not _is_number(cfg[key]) or not 0 < cfg[key] < float("inf"):
            problems.append(f"{key} must be a positive number, got {cfg[key]!r}")
    if cfg["architecture"] != "vwn":
        problems.append(f"architecture must be \"vwn\", got {cfg['architecture']!r}")
    if cfg["embedding"] not in ("wide", "factorized"):
        problems.append(f"embedding must be \"wide\" or \"factorized\", got {cfg['embedding']!r}")
    if not isinstance(cfg["tokenizer"], str):
        problems.append(f"tokenizer must be a string, got {cfg['tokenizer']!r}")
    if problems:
        raise ConvertError("bad config.json: " + "; ".join(problems))

    # Consistency between keys (spec §1-§6).
    D, m, n = cfg["hidden_size"], cfg["ghc_m"], cfg["ghc_n"]
    hq, hkv = cfg["num_heads"], cfg["num_kv_heads"]
    if D % m:
        problems.append(f"hidden_size {D} is not divisible by ghc_m {m}")
    if n < m:
        problems.append(f"ghc_n {n} is smaller than ghc_m {m}")
    if cfg["output_group_norm"] and n % m:
        problems.append(f"output_group_norm needs ghc_n ({n}) to be a multiple of ghc_m ({m})")
    if hq % hkv:
        problems.append(f"num_heads {hq} is not a multiple of num_kv_heads {hkv}")
    if cfg["head_dim"] % 2:
        problems.append(f"head_dim {cfg['head_dim']} must be even (RoPE rotates pairs)")
    if cfg["mtp_depth"] > MAX_MTP_DEPTH:
        problems.append(f"mtp_depth {cfg['mtp_depth']} exceeds {MAX_MTP_DEPTH}")
    if cfg["tie_word_embeddings"] and cfg["embedding"] != "factorized":
        problems.append("tie_word_embeddings is allowed only with embedding \"factorized\"")
    if problems:
        raise ConvertError("bad config.json: " + "; ".join(problems))
    return cfg


# =============================================================================================
# 2. Tensors
# =============================================================================================

def expected_tensors(cfg):
    """Name -> torch shape of every tensor the config makes present (spec §7), in model order."""
    V, D, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_layers"]
    m, n = cfg["ghc_m"], cfg["ghc_n"]
    hq, hkv, hd, F = cfg["num_heads"], cfg["num_kv_heads"], cfg["head_dim"], cfg["ffn_hidden_size"]
    s = D // m
    Dw, K = n * s, 2 * m + n
    out = {}

    def ghc(p):
        out[p + ".static"] = (n, K)
        if cfg["ghc_dynamic"]:
            out[p + ".scale"] = (n, K)
            out[p + ".proj.weight"] = (K, s)
            out[p + ".norm.weight"] = (s,)

    def layer(p):
        ghc(p + ".attn_ghc")
        out[p + ".attn_norm.weight"] = (D,)
        out[p + ".attn.q_proj.weight"] = (hq * hd, D)
        out[p + ".attn.k_proj.weight"] = (hkv * hd, D)
        out[p + ".attn.v_proj.weight"] = (hkv * hd, D)
        out[p + ".attn.o_proj.weight"] = (D, hq * hd)
        ghc(p + ".ffn_ghc")
        out[p + ".ffn_norm.weight"] = (D,)
        out[p + ".ffn.gate_proj.weight"] = (F, D)
        out[p + ".ffn.up_proj.weight"] = (F, D)
        out[p + ".ffn.down_proj.weight"] = (D, F)

    def head_norms(p):
        if cfg["output_group_norm"]:
            out[p + "out_norm.weight"] = (Dw,)
            out[p + "out_norm.bias"] = (Dw,)

    if cfg["embedding"] == "wide":
        out["embed.weight"] = (V, Dw)
    else:
        out["embed.weight"] = (V, D)
        if n != m:
            out["embed_expand.weight"] = (Dw, D)
    for i in range(L):
        layer(f"layers.{i}")
    head_norms("")
    if n != m:
        out["reduce.weight"] = (D, Dw)
    out["final_norm.weight"] = (D,)
    if not cfg["tie_word_embeddings"]:
        out["lm_head.weight"] = (V, D)
    for j in range(cfg["mtp_depth"]):
        p = f"mtp.{j}"
        out[p + ".enorm.weight"] = (Dw,)
        out[p + ".hnorm.weight"] = (Dw,)
        out[p + ".proj.weight"] = (s, 2 * s)
        layer(p + ".layer")
        head_norms(p + ".")
        out[p + ".final_norm.weight"] = (D,)
    return out


_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}   # BF16 is read as raw uint16 bits


def scan_safetensors(ckpt_dir):
    """Read the headers of model.safetensors or model-*.safetensors.

    Returns name -> (path, dtype tag, shape, absolute data offset, byte length); problems with
    dtypes or duplicates are collected and raised together."""
    files = sorted(glob.glob(os.path.join(ckpt_dir, "model.safetensors")) +
                   glob.glob(os.path.join(ckpt_dir, "model-*.safetensors")))
    if not files:
        raise ConvertError(f"no model.safetensors or model-*.safetensors in {ckpt_dir}")
    found, problems = {}, []
    for path in files:
        try:
            with open(path, "rb") as f:
                (hlen,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(hlen))
            size = os.path.getsize(path)
        except (OSError, struct.error, ValueError) as e:
            raise ConvertError(f"{path}: not a readable safetensors file ({e})") from None
        base = 8 + hlen
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype, shape = info.get("dtype"), tuple(info.get("shape", ()))
            begin, end = info.get("data_offsets", (0, -1))
            if name in found:
                problems.append(f"tensor {name} is in both {found[name][0]} and {path}")
            elif dtype not in _ST_DTYPES:
                problems.append(f"tensor {name} has dtype {dtype}; only F32, F16, BF16 are read")
            elif end - begin != int(np.prod(shape)) * (4 if dtype == "F32" else 2) \
                    or base + end > size:
                problems.append(f"tensor {name} in {path} has a bad data range")
            else:
                found[name] = (path, dtype, shape, base + begin, end - begin)
    if problems:
        raise ConvertError("bad safetensors: " + "; ".join(problems))
    return found


def resolve_tied_head(cfg, found):
    """A tied head is `embed.weight` (spec §5); accept the names a tied PyTorch model saves.

    A tied model's state_dict holds the one tensor under both names, `embed.weight` and
    `lm_head.weight`; a checkpoint may carry both (the same values) or, after safetensors'
    `save_model` drops one of a shared pair, either one alone. So when tie_word_embeddings is
    true, an `lm_head.weight` equal to `embed.weight` is dropped, and an `lm_head.weight` alone
    is read as `embed.weight`. One that differs from `embed.weight` is an error: the config
    says the head is the embedding, the file says otherwise."""
    if not cfg["tie_word_embeddings"] or "lm_head.weight" not in found:
        return found
    found = dict(found)
    head = found.pop("lm_head.weight")
    if "embed.weight" not in found:
        found["embed.weight"] = head
    elif tuple(head[2]) != tuple(found["embed.weight"][2]) or \
            not np.array_equal(read_tensor(head), read_tensor(found["embed.weight"])):
        raise ConvertError("tie_word_embeddings is true but lm_head.weight differs from "
                           "embed.weight (a tied head is the embedding; spec §5)")
    return found


def check_tensors(expected, found):
    """Name every missing, extra or mis-shaped tensor; raise if there is any."""
    problems = []
    for name, shape in expected.items():
        if name not in found:
            problems.append(f"missing tensor {name} {list(shape)}")
        elif tuple(found[name][2]) != tuple(shape):
            problems.append(f"tensor {name} has shape {list(found[name][2])}, "
                            f"the config needs {list(shape)}")
    for name in found:
        if name not in expected:
            problems.append(f"unexpected tensor {name} {list(found[name][2])} "
                            "(not used by this config)")
    if problems:
        raise ConvertError(f"{len(problems)} tensor problem(s):\n  " + "\n  ".join(problems))


def read_tensor(entry):
    """Load one tensor (memory-mapped) as float32 in its torch shape."""
    path, dtype, shape, offset, _ = entry
    count = int(np.prod(shape))
    a = np.memmap(path, dtype=_ST_DTYPES[dtype], mode="r", offset=offset, shape=(count,)) \
        if count else np.zeros(0, dtype=_ST_DTYPES[dtype])
    if dtype == "BF16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return np.asarray(a, dtype=np.float32).reshape(shape)


# =============================================================================================
# Tensor types (docs/format.md, "What the converter quantizes")
# =============================================================================================

def is_big_matrix(name, shape):
    """The weights that --type applies to: 2-D backbone, embedding, reduce, head, MTP proj.

    Every 1-D tensor (norm gains, group-norm weight and bias) and every GHC tensor (static,
    scale, proj, norm) stays F32: they are small and feed the routing, where precision matters.
    """
    return len(shape) == 2 and "_ghc." not in name


def is_output_head(name, cfg):
    """The matrix the LM head multiplies by: lm_head, or the embedding when the two are tied."""
    return name == "lm_head.weight" or (name == "embed.weight" and cfg.get("tie_word_embeddings", False))


def ggml_type_for(name, shape, wtype, cfg=None, pure=False):
    if not is_big_matrix(name, shape) or wtype == "f32":
        return QT.F32
    if wtype == "f16":
        return QT.F16
    if wtype == "bf16":
        return QT.BF16
    # q8_0 and q4_0: blocks of 32 along a row; other row lengths fall back to F16. Under q4_0 the
    # output head stays Q8_0, as llama.cpp keeps its output tensor at a higher precision than the
    # rest (docs/format.md): it is one matrix and carries most of the 4-bit loss. `pure` (--pure,
    # as llama-quantize's) makes it Q4_0 too.
    if shape[-1] % 32 != 0:
        return QT.F16
    if wtype == "q4_0" and (pure or not is_output_head(name, cfg or {})):
        return QT.Q4_0
    return QT.Q8_0


def encode(data, qtype):
    """float32 array -> the array GGUFWriter writes (uint8 bytes for BF16, Q8_0 and Q4_0)."""
    if qtype == QT.F32:
        return data
    if qtype == QT.F16:
        return data.astype(np.float16)
    # gguf.quants: BF16 rounds to nearest even; Q8_0 and Q4_0 are bit-exact with ggml's reference.
    return gguf.quants.quantize(data, qtype)


def encoded_nbytes(shape, qtype):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape[:-1])) * (shape[-1] // block) * size


def byte_shape(shape, qtype):
    """The shape GGUFWriter expects for the array `encode` returns."""
    if qtype in (QT.F32, QT.F16):
        return shape
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return (*shape[:-1], shape[-1] // block * size)


# =============================================================================================
# 3. Tokenizer (docs/format.md, "Tokenizer")
# =============================================================================================

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_BYTE = 1, 2, 3, 4, 6

BOS_CANDIDATES = ("<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<|endoftext|>")
EOS_CANDIDATES = ("<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>")


def pick_tokenizer(ckpt_dir, cfg, path):
    """Return (kind, path or None): "gpt2" for a tokenizer.json, "llama" for a llama2.c
    tokenizer.bin, "bytes" for config tokenizer "bytes".

    Order: --tokenizer PATH; tokenizer.json beside the checkpoint; tokenizer.bin beside it;
    config `tokenizer: "bytes"`.  A PATH is a tokenizer.json if its name ends in .json or its
    first byte is '{', else a llama2.c tokenizer.bin; a directory is searched like the checkpoint.
    """
    if path is not None:
        if os.path.isdir(path):
            ckpt_dir = path
        elif not os.path.isfile(path):
            raise ConvertError(f"tokenizer {path} does not exist")
        else:
            with open(path, "rb") as f:
                first = f.read(1)
            return ("gpt2" if path.endswith(".json") or first == b"{" else "llama"), path
    for name, kind in (("tokenizer.json", "gpt2"), ("tokenizer.bin", "llama")):
        candidate = os.path.join(ckpt_dir, name)
        if os.path.isfile(candidate):
            return kind, candidate
    if cfg["tokenizer"] == "bytes":
        return "bytes", None
    raise ConvertError(f"config tokenizer is {cfg['tokenizer']!r} but there is no "
                       f"tokenizer.json or tokenizer.bin in {ckpt_dir} and no --tokenizer")


def _special_name(value):
    """tokenizer_config.json writes special tokens as a string or {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def read_hf_tokenizer(path):
    """A Hugging Face byte-level BPE tokenizer.json -> tokenizer.ggml.* values (a dict)."""
    try:
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"cannot read tokenizer {path}: {e}") from None
    model = j.get("model") or {}
    if model.get("type", "BPE") != "BPE" or "vocab" not in model or "merges" not in model:
        raise ConvertError(f"{path}: only BPE tokenizers (model.vocab + model.merges) are supported")

    def has_byte_level(node):
        if not isinstance(node, dict):
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(has_byte_level(p) for p in node.get("pretokenizers", []))

    if not has_byte_level(j.get("pre_tokenizer")):
        raise ConvertError(f"{path}: the pre_tokenizer is not ByteLevel; only byte-level BPE "
                           "(GPT-2 style) is supported")

    # Id -> piece and type: the BPE vocabulary, then the added tokens.
    pieces, types = {}, {}
    for piece, i in model["vocab"].items():
        pieces[i], types[i] = piece, TOKEN_NORMAL
    specials = {}
    for t in j.get("added_tokens") or []:
        i, content = t["id"], t["content"]
        if i in pieces and pieces[i] != content:
            raise ConvertError(f"{path}: id {i} is both {pieces[i]!r} and added token {content!r}")
        pieces[i] = content
        # Special added tokens are control tokens; other added tokens are user-defined words
        # (matched in raw text), as llama.cpp does.
        types[i] = TOKEN_CONTROL if t.get("special", False) else TOKEN_USER_DEFINED
        if t.get("special", False):
            specials[content] = i
    count = max(pieces) + 1 if pieces else 0
    holes = [i for i in range(count) if i not in pieces]
    if holes or min(pieces, default=0) < 0:
        raise ConvertError(f"{path}: token ids are not contiguous (no token for id {holes[:5]})")

    merges = []
    for mrg in model["merges"]:
        if isinstance(mrg, str):
            merges.append(mrg)
        else:
            left, right = mrg
            if " " in left or " " in right:
                raise ConvertError(f"{path}: merge {mrg!r} holds a space; cannot write it as text")
            merges.append(f"{left} {right}")

    # Special ids: tokenizer_config.json beside the tokenizer first, then well-known names.
    tc_path = os.path.join(os.path.dirname(path) or ".", "tokenizer_config.json")
    tc = {}
    if os.path.isfile(tc_path):
        try:
            with open(tc_path, encoding="utf-8") as f:
                tc = json.load(f)
        except (OSError, ValueError):
            tc = {}
    by_piece = {p: i for i, p in pieces.items()}

    def special(kind, candidates):
        name = _special_name(tc.get(kind + "_token"))
        if name in by_piece:
            return by_piece[name]
        return next((specials[c] for c in candidates if c in specials), None)

    out = {"model": "gpt2", "pre": "gpt2",
           "tokens": [pieces[i] for i in range(count)],
           "token_type": [types[i] for i in range(count)],
           "merges": merges,
           "bos": special("bos", BOS_CANDIDATES),
           "eos": special("eos", EOS_CANDIDATES),
           "unk": by_piece.get(model.get("unk_token")) if model.get("unk_token") else None,
           "pad": by_piece.get(_special_name(tc.get("pad_token"))),
           "add_bos": bool(tc.get("add_bos_token", False))}
    return out


def read_llama2c_tokenizer(path):
    """A llama2.c tokenizer.bin -> tokenizer.ggml.* values in SentencePiece form.

    llama2.c stores each piece with SentencePiece's U+2581 replaced by a space, and BOS/EOS as
    "\\n<s>\\n" / "\\n</s>\\n"; both are mapped back so the vocabulary reads like llama.cpp's."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError(f"cannot read tokenizer {path}: {e.strerror}") from None
    if len(data) < 4:
        raise ConvertError(f"{path}: too short for a llama2.c tokenizer")
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, tokens, scores, types = 4, [], [], []
    byte_piece = re.compile(rb"<0x[0-9A-Fa-f]{2}>")
    while off < len(data):
        if off + 8 > len(data):
            raise ConvertError(f"{path}: truncated at byte {off}")
        score, length = struct.unpack_from("<fi", data, off)
        off += 8
        if length < 0 or length > max(max_len, 0) + 16 or off + length > len(data):
            raise ConvertError(f"{path}: token {len(tokens)} has a bad length {length}")
        piece = data[off:off + length]
        off += length
        i = len(tokens)
        if i == 0:
            ttype = TOKEN_UNKNOWN
        elif i in (1, 2):
            ttype = TOKEN_CONTROL
            piece = piece.strip(b"\n")
        elif byte_piece.fullmatch(piece):
            ttype = TOKEN_BYTE
        else:
            ttype = TOKEN_NORMAL
            piece = piece.replace(b" ", "\u2581".encode())
        tokens.append(piece)
        scores.append(score)
        types.append(ttype)
    return {"model": "llama", "tokens": tokens, "scores": scores, "token_type": types,
            "bos": 1, "eos": 2, "unk": 0, "pad": None, "add_bos": True}


def load_tokenizer(ckpt_dir, cfg, path):
    kind, tpath = pick_tokenizer(ckpt_dir, cfg, path)
    V = cfg["vocab_size"]
    if kind == "bytes":
        if V != 256:
            raise ConvertError(f"tokenizer \"bytes\" needs vocab_size 256, the config has {V}")
        return {"model": "bytes"}, "bytes"
    tok = read_hf_tokenizer(tpath) if kind == "gpt2" else read_llama2c_tokenizer(tpath)
    if len(tok["tokens"]) != V:
        raise ConvertError(f"tokenizer {tpath} has {len(tok['tokens'])} tokens but vocab_size "
                           f"is {V}")
    return tok, f"{kind} from {tpath}"


# =============================================================================================
# 4. Writing
# =============================================================================================

def write_metadata(w, cfg, tok, name):
    w.add_name(name)
    w.add_custom_alignment(ALIGNMENT)
    w.add_uint32("vwn.spec_version", SPEC_VERSION)
    for key in ("vocab_size", "hidden_size", "num_layers", "ghc_m", "ghc_n", "num_heads",
                "num_kv_heads", "head_dim", "ffn_hidden_size", "mtp_depth", "max_seq_len"):
        w.add_uint32("vwn." + key, cfg[key])
    w.add_bool("vwn.ghc_dynamic", cfg["ghc_dynamic"])
    w.add_string("vwn.embedding", cfg["embedding"])
    w.add_bool("vwn.tie_word_embeddings", cfg["tie_word_embeddings"])
    w.add_bool("vwn.output_group_norm", cfg["output_group_norm"])
    for key in ("rope_theta", "rms_norm_eps", "group_norm_eps"):
        w.add_float32("vwn." + key, float(cfg[key]))

    w.add_tokenizer_model(tok["model"])
    if tok["model"] == "bytes":
        return
    if "pre" in tok:
        w.add_tokenizer_pre(tok["pre"])
    w.add_token_list(tok["tokens"])
    if "scores" in tok:
        w.add_token_scores(tok["scores"])
    w.add_token_types(tok["token_type"])
    if "merges" in tok:
        w.add_token_merges(tok["merges"])
    for key, adder in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id),
                       ("unk", w.add_unk_token_id), ("pad", w.add_pad_token_id)):
        if tok.get(key) is not None:
            adder(tok[key])
    w.add_add_bos_token(tok["add_bos"])


WTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")


def drop_from_page_cache(path):
    """Writes the file out and drops it from the page cache. The pages a write leaves in the cache
    are small (4 KiB folios), and libvwn maps the weights from the cache: dropped, the first load
    faults them in as 2 MiB folios, which decode 6-7% faster (docs/performance.md, "Huge pages for
    the weights"). The cost: that first load reads the file from disk. Best effort: nothing
    happens where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    except OSError:
        pass


def convert(ckpt_dir, out_path, wtype="f32", tokenizer=None, progress=False, pure=False):
    """Convert CKPT_DIR to OUT_PATH; raise ConvertError on bad input.  Returns a summary dict."""
    if wtype not in WTYPES:
        raise ConvertError(f"--type must be f32, f16, bf16, q8_0 or q4_0, not {wtype!r}")
    cfg = load_config(ckpt_dir)
    expected = expected_tensors(cfg)
    found = resolve_tied_head(cfg, scan_safetensors(ckpt_dir))
    check_tensors(expected, found)
    tok, tok_desc = load_tokenizer(ckpt_dir, cfg, tokenizer)

    tmp = out_path + ".tmp"
    w = gguf.GGUFWriter(tmp, "vwn")
    try:
        write_metadata(w, cfg, tok, os.path.basename(os.path.normpath(ckpt_dir)))
        types = {name: ggml_type_for(name, shape, wtype, cfg, pure) for name, shape in expected.items()}
        for name, shape in expected.items():
            qt = types[name]
            np_dtype = {QT.F32: np.float32, QT.F16: np.float16}.get(qt, np.uint8)
            w.add_tensor_info(name, byte_shape(shape, qt), np.dtype(np_dtype),
                              encoded_nbytes(shape, qt), raw_dtype=None if qt in (QT.F32, QT.F16)
                              else qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for name in tqdm(expected, desc="tensors", unit="tensor", disable=not progress):
            w.write_tensor_data(encode(read_tensor(found[name]), types[name]))
        w.close()
        drop_from_page_cache(tmp)
        os.replace(tmp, out_path)
    except BaseException:
        w.close()
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    counts = {}
    for qt in types.values():
        counts[qt.name] = counts.get(qt.name, 0) + 1
    return {"tensors": len(expected), "types": counts, "tokenizer": tok_desc}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert a VWN checkpoint folder to GGUF.")
    ap.add_argument("ckpt_dir", help="folder with config.json and model*.safetensors")
    ap.add_argument("out", help="output .gguf file")
    ap.add_argument("--type", dest="wtype", choices=WTYPES, default="f32",
                    help="type of the big matrices (default f32); see docs/format.md")
    ap.add_argument("--pure", action="store_true",
                    help="with --type q4_0: the output head Q4_0 too (default: Q8_0, as llama.cpp keeps it)")
    ap.add_argument("--tokenizer", metavar="PATH",
                    help="tokenizer.json (HF byte-level BPE) or llama2.c tokenizer.bin")
    args = ap.parse_args(argv)
    try:
        info = convert(args.ckpt_dir, args.out, args.wtype, args.tokenizer, progress=True, pure=args.pure)
    except ConvertError as e:
        print(f"convert: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:                         # e.g. the output folder does not exist
        print(f"convert: error: {e.filename or args.out}: {e.strerror}", file=sys.stderr)
        return 1
    types = ", ".join(f"{k} {v}" for k, v in sorted(info["types"].items()))
    print(f"wrote {args.out}: {info['tensors']} tensors ({types}), tokenizer {info['tokenizer']}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

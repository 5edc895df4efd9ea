#!/usr/bin/env python3
"""The independent reference forward pass of a VWN model, in plain numpy float64.

    python tools/reference.py CKPT_DIR --tokens 1,2,3 [-o out.npz] [--greedy N]

Written straight from shared/spec/architecture.md, top to bottom, sharing no code with libvwn or
with tools/convert.py.  It reads a checkpoint folder (spec §7: config.json + model.safetensors or
sharded model-*.safetensors, F32/F16/BF16) and computes, for a token sequence t[0..T-1]:

* the main logits [T, V] (row i predicts t[i+1]);
* for each MTP module j = 1..k the logits [T-j, V] (row i predicts t[i+j+1]).

`-o out.npz` saves them under the keys `logits`, `mtp1`, `mtp2`, ... ; without `-o` a summary is
printed.  `--greedy N` prints the N greedily chosen continuation tokens of the given tokens, as
one comma-separated line (the same format as --tokens), recomputing the whole forward pass for
every step (slow but obviously right).

Decisions where the spec is silent are marked "[reference]" in the comments and listed in
docs/reference.md.  The whole computation is float64: the tensors are widened from their stored
type, so this is the exact function the stored numbers define, up to float64 rounding.
"""

import argparse
import glob
import json
import os
import struct
import sys

import numpy as np


# =============================================================================================
# Loading
# =============================================================================================

def _read_safetensors(path):
    """Read one safetensors file by hand (numpy has no bfloat16): name -> float64 array."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif info["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2")
        elif info["dtype"] == "BF16":
            # bfloat16 is the top half of a float32: shift the 16 bits up.
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = bits.view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


def load_checkpoint(ckpt_dir):
    """Return (config, tensors) of a checkpoint folder; the config gets the spec defaults."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        config = json.load(f)
    # Defaults [reference]: the same as tools/random_checkpoint.py and tools/convert.py.
    config.setdefault("num_kv_heads", config["num_heads"])
    config.setdefault("head_dim", config["hidden_size"] // config["num_heads"])
    config.setdefault("mtp_depth", 0)
    config.setdefault("tie_word_embeddings", False)
    config.setdefault("rope_theta", 10000.0)
    config.setdefault("rms_norm_eps", 1e-5)
    config.setdefault("group_norm_eps", 1e-5)
    files = sorted(glob.glob(os.path.join(ckpt_dir, "model*.safetensors")))
    if not files:
        raise FileNotFoundError(f"no model*.safetensors in {ckpt_dir}")
    tensors = {}
    for path in files:
        tensors.update(_read_safetensors(path))
    # A tied head saved under its other name (tools/convert.py, resolve_tied_head, says more).
    if config["tie_word_embeddings"] and "embed.weight" not in tensors and "lm_head.weight" in tensors:
        tensors["embed.weight"] = tensors.pop("lm_head.weight")
    return config, tensors


# =============================================================================================
# Building blocks (spec §3)
# =============================================================================================

def rmsnorm(x, gain, eps):
    """x / sqrt(mean(x^2) + eps) * gain over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * gain


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def rope(x, positions, theta):
    """Rotate-half RoPE on x [T, heads, hd]: pair (i, i + hd/2) turns by p * theta^(-2i/hd)."""
    hd = x.shape[-1]
    half = hd // 2
    freq = theta ** (-2.0 * np.arange(half) / hd)             # [hd/2]
    angle = positions[:, None] * freq[None, :]                # [T, hd/2]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


def kv_q8_0(x):
    """Rows of x [..., hd] (hd % 32 == 0) through Q8_0 blocks and back, in float32 as libvwn's
    quantize_q8_0 computes them: d = max|x| / 127, q = round-half-even(x * (1 / d)) clipped to
    +-127, the value fp16(d) * q."""
    b = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    d = (np.abs(b).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    q = np.clip(np.rint((b * inv).astype(np.float32)), -127, 127)
    return (d.astype(np.float16).astype(np.float32) * q.astype(np.float32)).astype(np.float64).reshape(np.shape(x))


def attention(cfg, w, prefix, x, positions):
    """Pre-norm causal self-attention with GQA over the rows of x [T, D]; returns [T, D]."""
    T = x.shape[0]
    hq, hkv, hd = cfg["num_heads"], cfg["num_kv_heads"], cfg["head_dim"]
    a = rmsnorm(x, w[prefix + ".attn_norm.weight"], cfg["rms_norm_eps"])
    q = (a @ w[prefix + ".attn.q_proj.weight"].T).reshape(T, hq, hd)
    k = (a @ w[prefix + ".attn.k_proj.weight"].T).reshape(T, hkv, hd)
    v = (a @ w[prefix + ".attn.v_proj.weight"].T).reshape(T, hkv, hd)
    q = rope(q, positions, cfg["rope_theta"])
    k = rope(k, positions, cfg["rope_theta"])
    if cfg.get("kv_fp16"):
        # [not the spec] emulates a runtime's fp16 KV cache (libvwn's kv_type F16): keys (after
        # RoPE) and values are rounded to fp16 where they are stored.
        k = k.astype(np.float16).astype(np.float64)
        v = v.astype(np.float16).astype(np.float64)
    if cfg.get("kv_q8_0"):
        # [not the spec] emulates a runtime's Q8_0 KV cache (libvwn's kv_type Q8_0): keys (after
        # RoPE) and values are quantized where they are stored, per 32 values of a head's row.
        k, v = kv_q8_0(k), kv_q8_0(v)
    future = np.triu(np.ones((T, T), dtype=bool), k=1)        # key j > query i is masked
    heads = []
    for h in range(hq):
        g = h // (hq // hkv)                                  # the KV head of query head h
        scores = q[:, h, :] @ k[:, g, :].T / np.sqrt(hd)      # [T, T]
        scores = np.where(future, -np.inf, scores)
        heads.append(softmax(scores) @ v[:, g, :])            # [T, hd]
    return np.concatenate(heads, axis=-1) @ w[prefix + ".attn.o_proj.weight"].T


def ffn(cfg, w, prefix, x):
    """Pre-norm SwiGLU: down(silu(gate f) * up f) with f = rmsnorm(x) * ffn_norm."""
    f = rmsnorm(x, w[prefix + ".ffn_norm.weight"], cfg["rms_norm_eps"])
    gate = f @ w[prefix + ".ffn.gate_proj.weight"].T
    up = f @ w[prefix + ".ffn.up_proj.weight"].T
    return (silu(gate) * up) @ w[prefix + ".ffn.down_proj.weight"].T


# =============================================================================================
# Generalized Hyper-Connection (spec §2)
# =============================================================================================

def ghc(cfg, w, prefix, H, sublayer):
    """Wrap `sublayer` (a function [T, D] -> [T, D]) around the wide state H [T, n, s]."""
    m, n = cfg["ghc_m"], cfg["ghc_n"]
    T, _, s = H.shape
    C0 = w[prefix + ".static"]                                # [n, K]
    if cfg["ghc_dynamic"]:
        # C = C0 + S * tanh(rmsnorm_s(H) W^T / sqrt(s)); each row of H normalised separately.
        Hn = rmsnorm(H, w[prefix + ".norm.weight"], cfg["rms_norm_eps"])
        C = C0 + w[prefix + ".scale"] * np.tanh(Hn @ w[prefix + ".proj.weight"].T / np.sqrt(s))
    else:
        C = np.broadcast_to(C0, (T,) + C0.shape)              # [T, n, K]
    R, A, Bt = C[:, :, :m], C[:, :, m:m + n], C[:, :, m + n:]
    x = np.einsum("tik,tis->tks", R, H)                       # read: x_k = sum_i R[i,k] H_i
    G = np.einsum("tij,tis->tjs", A, H)                       # carry: G_j = sum_i A[i,j] H_i
    y = sublayer(x.reshape(T, m * s)).reshape(T, m, s)        # the m segments of y
    return G + np.einsum("tjk,tks->tjs", Bt, y)               # write: H'_j = G_j + sum_k Bt[j,k] y_k


def vwn_layer(cfg, w, prefix, H, positions):
    """One VWN layer: attention and FFN, each wrapped by its own GHC module."""
    H = ghc(cfg, w, prefix + ".attn_ghc", H, lambda x: attention(cfg, w, prefix, x, positions))
    H = ghc(cfg, w, prefix + ".ffn_ghc", H, lambda x: ffn(cfg, w, prefix, x))
    return H


# =============================================================================================
# Embedding, head, MTP (spec §4-6)
# =============================================================================================

def embed(cfg, w, tokens):
    """h'_0 of each token: [T, D']."""
    e = w["embed.weight"][tokens]
    if cfg["embedding"] == "factorized" and cfg["ghc_n"] != cfg["ghc_m"]:
        e = e @ w["embed_expand.weight"].T                    # absent (identity) when n == m
    return e


def group_norm(cfg, weight, bias, z):
    """torch.nn.GroupNorm on z [T, D']: r = n/m groups of D contiguous channels, biased var."""
    T, Dw = z.shape
    D = cfg["hidden_size"]
    g = z.reshape(T, Dw // D, D)
    mean = g.mean(axis=-1, keepdims=True)
    var = g.var(axis=-1, keepdims=True)                       # biased (ddof = 0)
    g = (g - mean) / np.sqrt(var + cfg["group_norm_eps"])
    return g.reshape(T, Dw) * weight + bias


def head(cfg, w, H, out_norm, final_norm):
    """logits = lm_head (rmsnorm_D(reduce groupnorm(h')) * final_norm) for H [T, n, s]."""
    T = H.shape[0]
    z = H.reshape(T, -1)
    if cfg["output_group_norm"]:
        z = group_norm(cfg, w[out_norm + ".weight"], w[out_norm + ".bias"], z)
    if cfg["ghc_n"] != cfg["ghc_m"]:                          # absent (identity) when n == m
        z = z @ w["reduce.weight"].T
    h = rmsnorm(z, w[final_norm + ".weight"], cfg["rms_norm_eps"])
    lm_head = w["embed.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return h @ lm_head.T


def forward(cfg, w, tokens):
    """Return (logits [T, V], [mtp_1 [T-1, V], ..., mtp_k [T-k, V]]) for a token list."""
    tokens = np.asarray(tokens, dtype=np.int64)
    T = len(tokens)
    n, m = cfg["ghc_n"], cfg["ghc_m"]
    s = cfg["hidden_size"] // m
    positions = np.arange(T, dtype=np.float64)

    # Main model: h'_0 -> L layers -> head.
    E = embed(cfg, w, tokens)                                 # [T, D'], reused by the MTP modules
    H = E.reshape(T, n, s)
    for i in range(cfg["num_layers"]):
        H = vwn_layer(cfg, w, f"layers.{i}", H, positions)
    logits = head(cfg, w, H, "out_norm", "final_norm")

    # MTP module j (1-based; tensors mtp.{j-1}) at position i < T-j consumes t[i+j] and the
    # previous stage's state P at position i (main: h'_L before the group norm; else U of j-1).
    mtp_logits = []
    P = H
    for j in range(1, cfg["mtp_depth"] + 1):
        p = f"mtp.{j - 1}"
        Tj = max(T - j, 0)
        if Tj == 0:
            mtp_logits.append(np.zeros((0, cfg["vocab_size"])))
            P = P[:0]
            continue
        e = rmsnorm(E[j:j + Tj], w[p + ".enorm.weight"], cfg["rms_norm_eps"])   # over all D'
        h = rmsnorm(P[:Tj].reshape(Tj, n * s), w[p + ".hnorm.weight"], cfg["rms_norm_eps"])
        # U_row_c = proj . concat(e_row_c, p_row_c): the same [s, 2s] matrix on every row c.
        ep = np.concatenate([e.reshape(Tj, n, s), h.reshape(Tj, n, s)], axis=-1)
        U = ep @ w[p + ".proj.weight"].T                      # [Tj, n, s]
        # [reference] The module's own causal attention runs over its Tj positions with RoPE
        # position i (the position of P).  RoPE scores depend only on position differences,
        # so any constant offset (e.g. i + j, the position of the input token) is equivalent.
        U = vwn_layer(cfg, w, p + ".layer", U, positions[:Tj])
        mtp_logits.append(head(cfg, w, U, p + ".out_norm", p + ".final_norm"))
        P = U
    return logits, mtp_logits


def greedy(cfg, w, tokens, steps):
    """Greedy continuation: `steps` argmax tokens, each from a full forward pass."""
    seq = list(tokens)
    out = []
    for _ in range(steps):
        logits, _ = forward(cfg, w, seq)
        nxt = int(np.argmax(logits[-1]))
        out.append(nxt)
        seq.append(nxt)
    return out


# =============================================================================================
# Command line
# =============================================================================================

def main(argv=None):
    ap = argparse.ArgumentParser(description="Reference float64 forward pass of a VWN checkpoint.")
    ap.add_argument("ckpt_dir", help="checkpoint folder (config.json + model*.safetensors)")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 1,2,3")
    ap.add_argument("-o", "--output", help="write logits, mtp1, mtp2, ... to this .npz file")
    ap.add_argument("--greedy", type=int, metavar="N",
                    help="print the N greedy continuation ids, comma-separated on one line")
    args = ap.parse_args(argv)
    try:
        tokens = [int(t) for t in args.tokens.replace(" ", "").split(",") if t != ""]
        cfg, w = load_checkpoint(args.ckpt_dir)
    except (OSError, ValueError, KeyError) as e:
        print(f"reference: error: {e}", file=sys.stderr)
        return 1
    V = cfg["vocab_size"]
    if not tokens or any(t < 0 or t >= V for t in tokens):
        print(f"reference: error: need at least one token, each in [0, {V})", file=sys.stderr)
        return 1
    if args.greedy is not None:
        print(",".join(str(t) for t in greedy(cfg, w, tokens, args.greedy)))
        return 0
    logits, mtp = forward(cfg, w, tokens)
    if args.output:
        arrays = {"logits": logits}
        arrays.update({f"mtp{j + 1}": a for j, a in enumerate(mtp)})
        np.savez(args.output, **arrays)
    else:
        print(f"logits {logits.shape}, argmax of the last row: {int(np.argmax(logits[-1]))}")
        for j, a in enumerate(mtp):
            last = int(np.argmax(a[-1])) if len(a) else None
            print(f"mtp{j + 1} {a.shape}, argmax of the last row: {last}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A second, independent float64 numpy implementation of the VWN forward pass.

Written in the nineteenth session by a helper that read only the spec (../shared/spec/
architecture.md) and the product's usage docs -- not lib/, tools/reference.py or the tests -- so
that a misreading shared by the library and tools/reference.py (written by the same hands) shows
up as a mismatch here. Deliberately not deduplicated against tools/reference.py.

    cfg, w = load(dir)
    logits, mtp = forward(cfg, w, tokens)
        logits: [T, V]  (row i predicts t[i+1])
        mtp[j-1]: [T-j, V] (row i = module j at position i, predicts t[i+j+1])
"""
import json
import os
import sys

import numpy as np


def load(d):
    from safetensors.numpy import load_file
    cfg = json.load(open(os.path.join(d, "config.json")))
    raw = load_file(os.path.join(d, "model.safetensors"))
    w = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    return complete(cfg), w


def complete(cfg):
    c = dict(cfg)
    c.setdefault("num_kv_heads", c["num_heads"])
    c.setdefault("head_dim", c["hidden_size"] // c["num_heads"])
    c.setdefault("mtp_depth", 0)
    c.setdefault("tie_word_embeddings", False)
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("rms_norm_eps", 1e-5)
    c.setdefault("group_norm_eps", 1e-5)
    return c


def rmsnorm(x, g, eps):
    # normalise over the last axis
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope(x, pos, theta):
    # x: [T, H, hd]; rotate-half: pair (i, i+hd/2) rotated by pos * theta^(-2i/hd)
    hd = x.shape[-1]
    half = hd // 2
    i = np.arange(half, dtype=np.float64)
    inv = theta ** (-2.0 * i / hd)
    ang = pos[:, None].astype(np.float64) * inv[None, :]   # [T, half]
    c = np.cos(ang)[:, None, :]
    s = np.sin(ang)[:, None, :]
    x1 = x[..., :half]
    x2 = x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def attention(cfg, w, pre, x):
    # x: [T, D]
    T, D = x.shape
    Hq, Hkv, hd = cfg["num_heads"], cfg["num_kv_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    a = rmsnorm(x, w[pre + "attn_norm.weight"], eps)
    q = (a @ w[pre + "attn.q_proj.weight"].T).reshape(T, Hq, hd)
    k = (a @ w[pre + "attn.k_proj.weight"].T).reshape(T, Hkv, hd)
    v = (a @ w[pre + "attn.v_proj.weight"].T).reshape(T, Hkv, hd)
    pos = np.arange(T)
    q = rope(q, pos, cfg["rope_theta"])
    k = rope(k, pos, cfg["rope_theta"])
    grp = Hq // Hkv
    out = np.zeros((T, Hq, hd))
    mask = np.tril(np.ones((T, T), dtype=bool))
    for h in range(Hq):
        kh = h // grp
        sc = q[:, h, :] @ k[:, kh, :].T / np.sqrt(hd)      # [T, T]
        sc = np.where(mask, sc, -np.inf)
        sc = sc - sc.max(axis=1, keepdims=True)
        p = np.exp(sc)
        p /= p.sum(axis=1, keepdims=True)
        out[:, h, :] = p @ v[:, kh, :]
    return out.reshape(T, Hq * hd) @ w[pre + "attn.o_proj.weight"].T


def silu(x):
    return x / (1.0 + np.exp(-x))


def ffn(cfg, w, pre, x):
    f = rmsnorm(x, w[pre + "ffn_norm.weight"], cfg["rms_norm_eps"])
    g = f @ w[pre + "ffn.gate_proj.weight"].T
    u = f @ w[pre + "ffn.up_proj.weight"].T
    return (silu(g) * u) @ w[pre + "ffn.down_proj.weight"].T


def ghc(cfg, w, pre, H, sub):
    """H: [T, n, s]; pre: prefix of the GHC tensors ('layers.0.attn_ghc.'); sub: x[T,D] -> y[T,D]"""
    T, n, s = H.shape
    m = cfg["ghc_m"]
    K = 2 * m + n
    C0 = w[pre + "static"]                                  # [n, K]
    assert C0.shape == (n, K)
    if cfg["ghc_dynamic"]:
        S = w[pre + "scale"]                                # [n, K]
        W = w[pre + "proj.weight"]                          # [K, s]
        g = w[pre + "norm.weight"]                          # [s]
        Hn = rmsnorm(H, g, cfg["rms_norm_eps"])             # per row
        C = C0[None] + S[None] * np.tanh(np.einsum("tis,ks->tik", Hn, W) / np.sqrt(s))
    else:
        C = np.broadcast_to(C0[None], (T, n, K))
    R = C[:, :, 0:m]                                        # [T, n, m]
    A = C[:, :, m:m + n]                                    # [T, n, n]
    Bt = C[:, :, m + n:K]                                   # [T, n, m]
    x = np.einsum("tik,tis->tks", R, H)                     # [T, m, s]
    G = np.einsum("tij,tis->tjs", A, H)                     # [T, n, s]
    y = sub(x.reshape(T, m * s)).reshape(T, m, s)
    return G + np.einsum("tjk,tks->tjs", Bt, y)


def layer(cfg, w, pre, H):
    H = ghc(cfg, w, pre + "attn_ghc.", H, lambda x: attention(cfg, w, pre, x))
    H = ghc(cfg, w, pre + "ffn_ghc.", H, lambda x: ffn(cfg, w, pre, x))
    return H


def embed(cfg, w, tokens):
    m, n = cfg["ghc_m"], cfg["ghc_n"]
    E = w["embed.weight"][np.asarray(tokens)]
    if cfg["embedding"] == "wide":
        return E
    if n == m:
        assert "embed_expand.weight" not in w
        return E
    return E @ w["embed_expand.weight"].T


def head(cfg, w, Hflat, out_pre, final_name):
    # Hflat: [T, D']
    m, n = cfg["ghc_m"], cfg["ghc_n"]
    D = cfg["hidden_size"]
    z = Hflat
    if cfg["output_group_norm"]:
        r = n // m
        T = z.shape[0]
        zz = z.reshape(T, r, D)
        mu = zz.mean(axis=-1, keepdims=True)
        var = ((zz - mu) ** 2).mean(axis=-1, keepdims=True)
        zz = (zz - mu) / np.sqrt(var + cfg["group_norm_eps"])
        z = zz.reshape(T, r * D) * w[out_pre + "out_norm.weight"] + w[out_pre + "out_norm.bias"]
    if n == m:
        assert "reduce.weight" not in w
        h = z
    else:
        h = z @ w["reduce.weight"].T
    h = rmsnorm(h, w[final_name], cfg["rms_norm_eps"])
    lm = w["embed.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return h @ lm.T


def forward(cfg, w, tokens):
    tokens = np.asarray(tokens)
    T = len(tokens)
    m, n, D, L = cfg["ghc_m"], cfg["ghc_n"], cfg["hidden_size"], cfg["num_layers"]
    s = D // m
    Dp = n * s
    h0 = embed(cfg, w, tokens)                              # [T, D']
    H = h0.reshape(T, n, s)
    for i in range(L):
        H = layer(cfg, w, "layers.%d." % i, H)
    logits = head(cfg, w, H.reshape(T, Dp), "", "final_norm.weight")
    eps = cfg["rms_norm_eps"]
    mtp = []
    P = H.reshape(T, Dp)
    for j in range(1, cfg["mtp_depth"] + 1):
        Tj = T - j
        if Tj <= 0:
            mtp.append(np.zeros((0, cfg["vocab_size"])))
            P = P[:0]
            continue
        pre = "mtp.%d." % (j - 1)
        e = rmsnorm(h0[j:j + Tj], w[pre + "enorm.weight"], eps)       # token t[i+j]
        p = rmsnorm(P[:Tj], w[pre + "hnorm.weight"], eps)
        cat = np.concatenate([e.reshape(Tj, n, s), p.reshape(Tj, n, s)], axis=-1)  # [Tj, n, 2s]
        U = cat @ w[pre + "proj.weight"].T                             # [Tj, n, s]
        U = layer(cfg, w, pre + "layer.", U)
        Uf = U.reshape(Tj, Dp)
        mtp.append(head(cfg, w, Uf, pre, pre + "final_norm.weight"))
        P = Uf
    return logits, mtp


if __name__ == "__main__":
    cfg, w = load(sys.argv[1])
    toks = [int(t) for t in sys.argv[2].split(",")]
    lg, mt = forward(cfg, w, toks)
    print(lg.shape, [x.shape for x in mt])
    print(lg[-1, :8])

"""Random VWN checkpoints in the spec's section-7 convention, for test_spec_independent.py
(written with spec_ref.py, independently of tools/random_checkpoint.py).

configs(): a grid over (m, n) -- including fractional r = 3/2 -- and four variants each (dynamic
or static GHC, wide or factorized embedding, tied heads, group norm on or off, GQA, head_dim !=
D/Hq, 0-3 MTP modules, odd F, several rope_theta / eps values); random_configs(N, seed): random
shapes (m up to 5, n not a multiple of m, D from 3, head_dim from 2). Every parameter random,
not its initial value, with magnitudes that keep tanh out of saturation.

    python spec_checkpoints.py OUTROOT   -> OUTROOT/<name>/{config.json, model.safetensors}
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file


def configs():
    rng = np.random.default_rng(12345)
    mn = [(1, 1), (1, 2), (1, 4), (2, 3), (2, 4), (2, 8), (4, 4), (3, 6), (4, 16)]
    out = []
    idx = 0
    for (m, n) in mn:
        for variant in range(4):
            idx += 1
            dyn = variant % 2 == 0 if (m, n) != (1, 1) else variant in (0, 3)
            emb = "wide" if variant in (0, 3) else "factorized"
            tied = emb == "factorized" and variant == 2
            gn = (n % m == 0) and variant in (0, 2, 3) if n != m else (variant == 1)
            # D divisible by m, 24..96
            s_choices = [x for x in range(6, 97) if 24 <= x * m <= 96 and x % 2 == 0]
            s = int(rng.choice(s_choices))
            D = s * m
            # heads
            Hq = int(rng.choice([1, 2, 3, 4, 6]))
            Hkv_opts = [h for h in range(1, Hq + 1) if Hq % h == 0]
            Hkv = int(rng.choice(Hkv_opts)) if variant != 3 else Hkv_opts[0]
            if variant == 1 or D % Hq != 0 or (D // Hq) % 2 == 1:
                hd = int(rng.choice([4, 6, 8, 10, 12, 16]))
                hd_explicit = True
            else:
                hd = D // Hq
                hd_explicit = False
            F = int(rng.choice([17, 23, 37, 45, 61, 77, 99]))
            L = int(rng.integers(1, 4))
            k = int((idx + idx // 4) % 4)
            cfg = dict(architecture="vwn", vocab_size=256, hidden_size=D, num_layers=L,
                       ghc_m=m, ghc_n=n, num_heads=Hq, num_kv_heads=Hkv,
                       ffn_hidden_size=F, mtp_depth=k, ghc_dynamic=bool(dyn), embedding=emb,
                       tie_word_embeddings=bool(tied), output_group_norm=bool(gn),
                       rope_theta=float(rng.choice([10000.0, 500000.0, 100.0, 1e6, 2.5])),
                       rms_norm_eps=float(rng.choice([1e-5, 1e-6, 1e-3, 0.05])),
                       group_norm_eps=float(rng.choice([1e-5, 1e-3, 0.1, 1e-6])),
                       max_seq_len=128, tokenizer="bytes")
            if hd_explicit:
                cfg["head_dim"] = hd
            name = "c%02d_m%dn%d_%s_%s%s%s_h%d-%d-%d_L%d_k%d" % (
                idx, m, n, "dyn" if dyn else "sta", emb[:4], "_tied" if tied else "",
                "_gn" if gn else "", Hq, Hkv, hd, L, k)
            out.append((name, cfg))
    return out


def random_configs(N, seed):
    """N random (name, config) pairs: shapes the grid does not reach."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(N):
        m = int(rng.choice([1, 1, 2, 3, 4, 5]))
        n = m * int(rng.choice([1, 2, 3, 4])) if rng.random() < 0.7 else m + int(rng.integers(0, 2 * m + 3))
        s = int(rng.integers(3, 25))
        D = m * s
        Hq = int(rng.choice([1, 2, 3, 4, 5, 6, 8]))
        Hkv = int(rng.choice([h for h in range(1, Hq + 1) if Hq % h == 0]))
        if rng.random() < 0.5 or D % Hq or (D // Hq) % 2:
            hd = int(rng.choice([2, 4, 6, 8, 12, 14, 20, 32]))
        else:
            hd = None
        emb = str(rng.choice(["wide", "factorized"]))
        cfg = dict(architecture="vwn", vocab_size=256, hidden_size=D, num_layers=int(rng.integers(1, 4)),
                   ghc_m=m, ghc_n=n, num_heads=Hq, num_kv_heads=Hkv,
                   ffn_hidden_size=int(rng.integers(5, 130)), mtp_depth=int(rng.integers(0, 4)),
                   ghc_dynamic=bool(rng.random() < 0.6), embedding=emb,
                   tie_word_embeddings=bool(emb == "factorized" and rng.random() < 0.5),
                   output_group_norm=bool(n % m == 0 and rng.random() < 0.6),
                   rope_theta=float(10 ** rng.uniform(0.5, 6.5)),
                   rms_norm_eps=float(10 ** rng.uniform(-7, -1)),
                   group_norm_eps=float(10 ** rng.uniform(-7, -0.5)),
                   max_seq_len=128, tokenizer="bytes")
        if hd is not None:
            cfg["head_dim"] = hd
        name = "r%d_%03d_m%dn%d_D%d_%s" % (seed, c, m, n, D, "dyn" if cfg["ghc_dynamic"] else "sta")
        out.append((name, cfg))
    return out


def make(cfg, seed):
    rng = np.random.default_rng(seed)
    V, D, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_layers"]
    m, n = cfg["ghc_m"], cfg["ghc_n"]
    s = D // m
    Dp = n * s
    K = 2 * m + n
    Hq, Hkv = cfg["num_heads"], cfg["num_kv_heads"]
    hd = cfg.get("head_dim", D // Hq)
    F = cfg["ffn_hidden_size"]
    w = {}

    def lin(o, i, gain=1.0):
        return rng.normal(0, gain / np.sqrt(i), (o, i))

    def gain(k):
        return rng.uniform(0.7, 1.3, k)

    def ghc(pre):
        C0 = np.zeros((n, K))
        C0[:m, :m] = np.eye(m)
        C0[:, m:m + n] = np.eye(n)
        for j in range(n):
            C0[j, m + n + (j % m)] = 1.0
        noise = rng.normal(0, 0.25, (n, K))
        noise[:, m:m + n] /= np.sqrt(n)
        w[pre + "static"] = C0 + noise
        if cfg["ghc_dynamic"]:
            sc = rng.uniform(0.5, 1.5, (n, K)) * rng.choice([-1, 1], (n, K))
            sc[:, m:m + n] /= np.sqrt(n)
            w[pre + "scale"] = sc * 0.5
            w[pre + "proj.weight"] = rng.normal(0, 0.6, (K, s))
            w[pre + "norm.weight"] = gain(s)

    def layer(pre):
        ghc(pre + "attn_ghc.")
        w[pre + "attn_norm.weight"] = gain(D)
        w[pre + "attn.q_proj.weight"] = lin(Hq * hd, D, 1.5)
        w[pre + "attn.k_proj.weight"] = lin(Hkv * hd, D, 1.5)
        w[pre + "attn.v_proj.weight"] = lin(Hkv * hd, D)
        w[pre + "attn.o_proj.weight"] = lin(D, Hq * hd)
        ghc(pre + "ffn_ghc.")
        w[pre + "ffn_norm.weight"] = gain(D)
        w[pre + "ffn.gate_proj.weight"] = lin(F, D, 1.5)
        w[pre + "ffn.up_proj.weight"] = lin(F, D)
        w[pre + "ffn.down_proj.weight"] = lin(D, F)

    if cfg["embedding"] == "wide":
        w["embed.weight"] = rng.normal(0, 1, (V, Dp))
    else:
        if cfg["tie_word_embeddings"]:
            w["embed.weight"] = rng.normal(0, 2.5 / np.sqrt(D), (V, D))
            eg = np.sqrt(D) / 2.5
        else:
            w["embed.weight"] = rng.normal(0, 1, (V, D))
            eg = 1.0
        if n != m:
            w["embed_expand.weight"] = lin(Dp, D, eg)
    for i in range(L):
        layer("layers.%d." % i)
    if cfg["output_group_norm"]:
        w["out_norm.weight"] = gain(Dp)
        w["out_norm.bias"] = rng.uniform(-0.2, 0.2, Dp)
    if n != m:
        w["reduce.weight"] = lin(D, Dp)
    w["final_norm.weight"] = gain(D)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(V, D, 2.5)
    for j in range(cfg["mtp_depth"]):
        pre = "mtp.%d." % j
        w[pre + "enorm.weight"] = gain(Dp)
        w[pre + "hnorm.weight"] = gain(Dp)
        w[pre + "proj.weight"] = lin(s, 2 * s)
        layer(pre + "layer.")
        if cfg["output_group_norm"]:
            w[pre + "out_norm.weight"] = gain(Dp)
            w[pre + "out_norm.bias"] = rng.uniform(-0.2, 0.2, Dp)
        w[pre + "final_norm.weight"] = gain(D)
    return {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in w.items()}


def write(d, cfg, seed):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    save_file(make(cfg, seed), os.path.join(d, "model.safetensors"))


if __name__ == "__main__":
    root = sys.argv[1]
    for i, (name, cfg) in enumerate(configs()):
        write(os.path.join(root, name), cfg, 1000 + i)
        print(name)

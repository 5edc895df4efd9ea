#!/usr/bin/env python3
"""PyTorch trainer for VWN models exactly as docs/spec (spec v1, architecture.md) defines them.

The module tree's state_dict names are the checkpoint convention of spec section 7, so
`OUT/model.safetensors` + `OUT/config.json` (+ `OUT/tokenizer.json`) is a checkpoint folder that
tools/convert.py turns into a libvwn GGUF file.

Importable API (used by the tests):
    VWN(config)                      nn.Module; forward(tokens [B,T] long) -> (main [B,T,V], [mtp_j [B,T-j,V]])
    VWN.loss(tokens [B,T+1])         CE(main) + 0.3 * mean_j CE(mtp_j), plus the per-head CEs
    export_logits(ckpt_dir, tokens)  loads a checkpoint folder, returns numpy (main, [mtp_j]) in fp32
    load_checkpoint_model(ckpt_dir)  -> (VWN, config)
    save_checkpoint_dir(model, config, out_dir, tokenizer_json=None)

Works with torch >= 1.13 (no torch.compile, no scaled_dot_product_attention).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MTP_WEIGHT = 0.3

DEFAULT_CONFIG = dict(
    architecture="vwn",
    vocab_size=4096,
    hidden_size=192,
    num_layers=4,
    ghc_m=2,
    ghc_n=8,
    num_heads=6,
    num_kv_heads=6,
    head_dim=32,
    ffn_hidden_size=512,
    mtp_depth=2,
    ghc_dynamic=True,
    embedding="factorized",
    tie_word_embeddings=True,
    output_group_norm=True,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    group_norm_eps=1e-5,
    max_seq_len=256,
    tokenizer="tokenizer.json",
)


def complete_config(cfg):
    """Fill defaults and validate a config dict (spec section 1)."""
    c = dict(DEFAULT_CONFIG)
    c.update(cfg)
    if cfg.get("head_dim") is None:
        c["head_dim"] = c["hidden_size"] // c["num_heads"]
    if cfg.get("num_kv_heads") is None:
        c["num_kv_heads"] = c["num_heads"]
    D, m, n = c["hidden_size"], c["ghc_m"], c["ghc_n"]
    assert D % m == 0, "hidden_size must be divisible by ghc_m"
    assert n >= m >= 1
    assert c["num_heads"] % c["num_kv_heads"] == 0
    assert c["head_dim"] % 2 == 0
    assert c["embedding"] in ("wide", "factorized")
    if c["tie_word_embeddings"]:
        assert c["embedding"] == "factorized", "tied head requires the factorized embedding"
    if c["output_group_norm"]:
        assert n % m == 0, "group norm needs n to be a multiple of m"
    return c


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------

def rms_norm(x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight over the last dim, evaluated in fp32."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y * weight.float()).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class GHC(nn.Module):
    """Generalized hyper-connection around one sublayer (spec section 2).

    Parameters: static [n,K] (+ scale [n,K], proj Linear(s,K), norm [s] when dynamic)."""

    def __init__(self, m, n, s, dynamic, eps):
        super().__init__()
        self.m, self.n, self.s, self.dynamic, self.eps = m, n, s, dynamic, eps
        K = 2 * m + n
        static = torch.zeros(n, K)
        for k in range(m):
            static[k, k] = 1.0                      # read = [I_m ; 0]
        for j in range(n):
            static[j, m + j] = 1.0                  # carry = I_n
            static[j, m + n + (j % m)] = 1.0        # Bt[j,k] = 1 iff k == j mod m
        self.static = nn.Parameter(static)
        if dynamic:
            self.scale = nn.Parameter(torch.ones(n, K))
            self.proj = nn.Linear(s, K, bias=False)
            nn.init.zeros_(self.proj.weight)
            self.norm = RMSNorm(s, eps)

    def coeffs(self, H):
        """H [..., n, s] -> C [..., n, K] (dynamic) or [n, K] (static)."""
        if not self.dynamic:
            return self.static.float()
        Hn = rms_norm(H.float(), self.norm.weight, self.eps)
        z = F.linear(Hn, self.proj.weight.float()) / math.sqrt(self.s)
        return self.static.float() + self.scale.float() * torch.tanh(z)

    def forward(self, H, sublayer, **kw):
        m, n = self.m, self.n
        C = self.coeffs(H).to(H.dtype)
        lead = H.shape[:-2]
        if self.dynamic:
            # per-token coefficients: batched matmuls (faster than einsum on CPU)
            RA = torch.matmul(C[..., :m + n].transpose(-1, -2), H)   # [..., m+n, s]
            x, G = RA[..., :m, :], RA[..., m:, :]
        else:
            x = torch.einsum("ik,...is->...ks", C[:, :m], H)
            G = torch.einsum("ij,...is->...js", C[:, m:m + n], H)
        Bt = C[..., m + n:]
        y = sublayer(x.reshape(*lead, m * self.s), **kw).reshape(*lead, m, self.s)
        if self.dynamic:
            return G + torch.matmul(Bt, y)
        return G + torch.einsum("jk,...ks->...js", Bt, y)


def rope_cache(T, hd, theta, device, offset=0):
    half = hd // 2
    inv = theta ** (-torch.arange(0, half, dtype=torch.float64) * 2.0 / hd)
    pos = torch.arange(offset, offset + T, dtype=torch.float64)
    ang = pos[:, None] * inv[None, :]
    return torch.cos(ang).float().to(device), torch.sin(ang).float().to(device)


def apply_rope(x, cos, sin):
    """rotate-half RoPE: pair (i, i+hd/2) rotated by angle p*theta^(-2i/hd). x [B,H,T,hd]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, self.Hq, self.Hkv, self.hd = c["hidden_size"], c["num_heads"], c["num_kv_heads"], c["head_dim"]
        self.q_proj = nn.Linear(D, self.Hq * self.hd, bias=False)
        self.k_proj = nn.Linear(D, self.Hkv * self.hd, bias=False)
        self.v_proj = nn.Linear(D, self.Hkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.Hq * self.hd, D, bias=False)

    def forward(self, a, cos, sin):
        B, T, _ = a.shape
        q = self.q_proj(a).view(B, T, self.Hq, self.hd).transpose(1, 2)
        k = self.k_proj(a).view(B, T, self.Hkv, self.hd).transpose(1, 2)
        v = self.v_proj(a).view(B, T, self.Hkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        g = self.Hq // self.Hkv
        if g > 1:  # query head h uses KV head h // g
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=a.device).triu(1)
        att = att.float().masked_fill(mask, float("-inf")).softmax(-1).to(v.dtype)
        o = torch.matmul(att, v).transpose(1, 2).reshape(B, T, self.Hq * self.hd)
        return self.o_proj(o)


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, Fh = c["hidden_size"], c["ffn_hidden_size"]
        self.gate_proj = nn.Linear(D, Fh, bias=False)
        self.up_proj = nn.Linear(D, Fh, bias=False)
        self.down_proj = nn.Linear(Fh, D, bias=False)

    def forward(self, f):
        return self.down_proj(F.silu(self.gate_proj(f)) * self.up_proj(f))


class Layer(nn.Module):
    """One VWN layer: attention GHC + FFN GHC (spec sections 2-3)."""

    def __init__(self, c):
        super().__init__()
        m, n, D, eps = c["ghc_m"], c["ghc_n"], c["hidden_size"], c["rms_norm_eps"]
        s = D // m
        self.attn_ghc = GHC(m, n, s, c["ghc_dynamic"], eps)
        self.attn_norm = RMSNorm(D, eps)
        self.attn = Attention(c)
        self.ffn_ghc = GHC(m, n, s, c["ghc_dynamic"], eps)
        self.ffn_norm = RMSNorm(D, eps)
        self.ffn = FFN(c)

    def _attn(self, x, cos, sin):
        return self.attn(self.attn_norm(x), cos, sin)

    def _ffn(self, x):
        return self.ffn(self.ffn_norm(x))

    def forward(self, H, cos, sin):
        H = self.attn_ghc(H, self._attn, cos=cos, sin=sin)
        return self.ffn_ghc(H, self._ffn)


class MTPModule(nn.Module):
    """DeepSeek-V3 style MTP module (spec section 6)."""

    def __init__(self, c):
        super().__init__()
        m, n, D, eps = c["ghc_m"], c["ghc_n"], c["hidden_size"], c["rms_norm_eps"]
        s = D // m
        Dw = n * s
        self.enorm = RMSNorm(Dw, eps)
        self.hnorm = RMSNorm(Dw, eps)
        self.proj = nn.Linear(2 * s, s, bias=False)
        self.layer = Layer(c)
        if c["output_group_norm"]:
            self.out_norm = nn.GroupNorm(n // m, Dw, eps=c["group_norm_eps"])
        self.final_norm = RMSNorm(D, eps)


class VWN(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = complete_config(config)
        self.config = c
        V, D, m, n = c["vocab_size"], c["hidden_size"], c["ghc_m"], c["ghc_n"]
        self.m, self.n, self.s = m, n, D // m
        self.Dw = n * self.s
        eps = c["rms_norm_eps"]
        if c["embedding"] == "wide":
            self.embed = nn.Embedding(V, self.Dw)
        else:
            self.embed = nn.Embedding(V, D)
            if n != m:
                self.embed_expand = nn.Linear(D, self.Dw, bias=False)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_layers"])])
        if c["output_group_norm"]:
            self.out_norm = nn.GroupNorm(n // m, self.Dw, eps=c["group_norm_eps"])
        if n != m:
            self.reduce = nn.Linear(self.Dw, D, bias=False)
        self.final_norm = RMSNorm(D, eps)
        if not c["tie_word_embeddings"]:
            self.lm_head = nn.Linear(D, V, bias=False)
        self.mtp = nn.ModuleList([MTPModule(c) for _ in range(c["mtp_depth"])])
        self._init_weights()

    # -- init ------------------------------------------------------------------------------
    def _init_weights(self):
        c = self.config
        std = 0.02
        out_std = std / math.sqrt(2 * c["num_layers"])
        D = c["hidden_size"]
        for name, p in self.named_parameters():
            if "_ghc." in name or name.endswith("norm.weight") or name.endswith("norm.bias"):
                continue  # GHC tensors keep the spec init; norms are ones/zeros
            if name == "embed.weight":
                nn.init.normal_(p, 0.0, std)
            elif name == "embed_expand.weight":
                nn.init.normal_(p, 0.0, 1.0 / math.sqrt(D))  # keeps the scale of embed
            elif name == "reduce.weight":
                nn.init.normal_(p, 0.0, 1.0 / math.sqrt(self.Dw))
            elif name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, 0.0, out_std)
            elif name.startswith("mtp.") and name.endswith(".proj.weight") and ".layer." not in name:
                nn.init.normal_(p, 0.0, 1.0 / math.sqrt(2 * self.s))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, std)

    # -- pieces ----------------------------------------------------------------------------
    def wide_embed(self, tokens):
        """h'_0 [B,T,n,s] of spec section 4."""
        e = self.embed(tokens)
        if self.config["embedding"] == "factorized" and self.n != self.m:
            e = self.embed_expand(e)
        return e.view(*tokens.shape, self.n, self.s)

    def head(self, H, out_norm, final_norm):
        """logits = lm_head . (rmsnorm_D(reduce . groupnorm(H)) * final_norm) (spec section 5)."""
        B, T = H.shape[:2]
        z = H.reshape(B, T, self.Dw)
        if out_norm is not None:
            z = F.group_norm(z.reshape(B * T, self.Dw).float(), out_norm.num_groups,
                             out_norm.weight.float(), out_norm.bias.float(),
                             out_norm.eps).reshape(B, T, self.Dw).to(H.dtype)
        if self.n != self.m:
            z = self.reduce(z)
        h = final_norm(z)
        w = self.embed.weight if self.config["tie_word_embeddings"] else self.lm_head.weight
        return F.linear(h, w)

    def forward(self, tokens, return_states=False):
        """tokens [B,T] -> (main logits [B,T,V], [logits of MTP module j: [B,T-j,V]])."""
        c = self.config
        B, T = tokens.shape
        cos, sin = rope_cache(T, c["head_dim"], c["rope_theta"], tokens.device)
        H0 = self.wide_embed(tokens)
        H = H0
        for layer in self.layers:
            H = layer(H, cos, sin)
        main = self.head(H, getattr(self, "out_norm", None), self.final_norm)
        mtp_logits = []
        P = H  # main model's final h'_L (before its group norm)
        eps = c["rms_norm_eps"]
        for jj, mod in enumerate(self.mtp):
            j = jj + 1
            Tj = T - j
            if Tj <= 0:  # too short a sequence: an empty [B,0,V] for this and later modules
                mtp_logits.append(main.new_zeros(B, 0, main.shape[-1]))
                continue
            # module j at position i consumes t[i+j] and the previous stage's state at i
            E = H0[:, j:, :, :]
            Pj = P[:, :Tj]
            e = rms_norm(E.reshape(B, Tj, self.Dw), mod.enorm.weight, eps).view(B, Tj, self.n, self.s)
            p = rms_norm(Pj.reshape(B, Tj, self.Dw), mod.hnorm.weight, eps).view(B, Tj, self.n, self.s)
            U = mod.proj(torch.cat([e, p], dim=-1))          # [B,Tj,n,s]
            U = mod.layer(U, cos[:Tj], sin[:Tj])              # RoPE position = i
            mtp_logits.append(self.head(U, getattr(mod, "out_norm", None), mod.final_norm))
            P = U
        return main, mtp_logits

    def loss(self, seq):
        """seq [B,T+1]: inputs seq[:, :T]; main targets seq[:, 1:]; MTP j targets seq[:, j+1:].

        Returns (total, [ce_main, ce_mtp1, ...]) where every ce is the mean over its positions."""
        x = seq[:, :-1]
        main, mtps = self(x)
        V = main.shape[-1]
        ces = [F.cross_entropy(main.float().reshape(-1, V), seq[:, 1:].reshape(-1))]
        for jj, lg in enumerate(mtps):
            j = jj + 1
            ces.append(F.cross_entropy(lg.float().reshape(-1, V), seq[:, j + 1:].reshape(-1)))
        total = ces[0]
        if len(ces) > 1:
            total = total + MTP_WEIGHT * torch.stack(ces[1:]).mean()
        return total, ces


# ----------------------------------------------------------------------------------------------
# checkpoint folders (spec section 7)
# ----------------------------------------------------------------------------------------------

def save_checkpoint_dir(model, config, out_dir, tokenizer_json=None):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    save_file(sd, tmp, metadata={"format": "pt"})
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    cfg = {k: config[k] for k in DEFAULT_CONFIG}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if tokenizer_json is not None and os.path.abspath(tokenizer_json) != os.path.abspath(
            os.path.join(out_dir, "tokenizer.json")):
        import shutil
        shutil.copyfile(tokenizer_json, os.path.join(out_dir, "tokenizer.json"))


def load_checkpoint_model(ckpt_dir, device="cpu"):
    from safetensors.torch import load_file
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    model = VWN(cfg)
    sd = load_file(os.path.join(ckpt_dir, "model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model.to(device).eval(), model.config


@torch.no_grad()
def export_logits(ckpt_dir, tokens):
    """Trainer logits of a checkpoint folder, fp32. tokens: 1-D or [B,T] ints.

    Returns numpy (main [.., T, V], [mtp_j [.., T-j, V]]) with the batch dim dropped for 1-D input."""
    model, _ = load_checkpoint_model(ckpt_dir)
    t = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    squeeze = t.dim() == 1
    if squeeze:
        t = t[None]
    main, mtps = model(t)
    main = main.numpy()
    mtps = [x.numpy() for x in mtps]
    if squeeze:
        main, mtps = main[0], [x[0] for x in mtps]
    return main, mtps


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def _data_dir():
    """$VWN_DATA_DIR, else shared/data beside the repository, else /work/shared/data."""
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (os.environ.get("VWN_DATA_DIR"), os.path.join(here, os.pardir, os.pardir, "shared", "data"),
              "/work/shared/data"):
        if d and os.path.isdir(d):
            return os.path.normpath(d)
    return "/work/shared/data"


DATA_DIR = _data_dir()
DEFAULT_FILES = ["tinystories_valid.txt", "austen.txt", "tinyshakespeare.txt"]
EOS_ID = 0


def split_text(text, val_frac=0.05):
    """train = first 95% of the characters, val = last 5% (cut at a line start when possible)."""
    cut = int(len(text) * (1.0 - val_frac))
    nl = text.rfind("\n", 0, cut)
    if nl > 0 and cut - nl < 2000:
        cut = nl + 1
    return text[:cut], text[cut:]


def read_splits(files, val_frac=0.05):
    out = []
    for p in files:
        with open(p, encoding="utf-8") as f:
            text = f.read()
        tr, va = split_text(text, val_frac)
        out.append((os.path.basename(p), tr, va))
    return out


def token_byte_lengths(tok):
    """Bytes of UTF-8 text that each token id stands for (0 for special tokens such as EOS).

    Byte-level BPE pieces are strings over the 256-character ByteLevel alphabet, one character per
    byte, so a piece's byte length is its character count."""
    from tokenizers import pre_tokenizers
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    specials = {t.content for t in tok.get_added_tokens_decoder().values()}
    lens = np.zeros(tok.get_vocab_size(), dtype=np.int64)
    for i in range(len(lens)):
        piece = tok.id_to_token(i)
        if piece is None or piece in specials:
            continue
        assert all(ch in alphabet for ch in piece), f"token {i} {piece!r} is not byte-level"
        lens[i] = len(piece)
    return lens


def encode_split(tok, texts):
    """Each text is one document: [EOS] + tokens(text); concatenated."""
    parts = []
    for t in texts:
        ids = tok.encode(t).ids
        parts.append(np.array([EOS_ID] + ids, dtype=np.uint16 if tok.get_vocab_size() < 65536 else np.int32))
    return np.concatenate(parts)


def prepare_data(tokenizer_path, files, cache_dir, val_frac=0.05):
    """Tokenize once, cache train/val token arrays as .npy next to the tokenizer hash."""
    import hashlib
    from tokenizers import Tokenizer
    h = hashlib.sha1()
    with open(tokenizer_path, "rb") as f:
        h.update(f.read())
    for p in files:
        h.update(os.path.abspath(p).encode())
        h.update(str(os.path.getsize(p)).encode())
    h.update(str(val_frac).encode())
    key = h.hexdigest()[:16]
    os.makedirs(cache_dir, exist_ok=True)
    tr_p = os.path.join(cache_dir, f"train_{key}.npy")
    va_p = os.path.join(cache_dir, f"val_{key}.npy")
    if not (os.path.exists(tr_p) and os.path.exists(va_p)):
        tok = Tokenizer.from_file(tokenizer_path)
        splits = read_splits(files, val_frac)
        tr = encode_split(tok, [s[1] for s in splits])
        va = encode_split(tok, [s[2] for s in splits])
        np.save(tr_p + ".tmp.npy", tr)
        np.save(va_p + ".tmp.npy", va)
        os.replace(tr_p + ".tmp.npy", tr_p)
        os.replace(va_p + ".tmp.npy", va_p)
    return np.load(tr_p).astype(np.int64), np.load(va_p).astype(np.int64)


def batch_offsets(seed, step, n_tokens, T, B):
    """Deterministic window starts of step `step` (same for every run with the same seed and data)."""
    rng = np.random.default_rng([seed, step])
    return rng.integers(0, n_tokens - T - 1, size=B)


def get_batch(data, offs, T):
    idx = offs[:, None] + np.arange(T + 1)[None, :]
    return torch.from_numpy(data[idx])


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model, val, T, byte_lens, batch_size=8, max_windows=None, device="cpu", amp=None):
    """Non-overlapping windows of T+1 tokens (stride T) over the validation tokens.

    Returns dict: loss per head (nats/token) and bits per byte per head."""
    model.eval()
    k = model.config["mtp_depth"]
    starts = np.arange(0, len(val) - T - 1, T)
    if max_windows is not None and len(starts) > max_windows:
        sel = np.linspace(0, len(starts) - 1, max_windows).round().astype(np.int64)
        starts = starts[sel]
    nll = np.zeros(k + 1)
    cnt = np.zeros(k + 1)
    nbytes = np.zeros(k + 1)
    for b in range(0, len(starts), batch_size):
        offs = starts[b:b + batch_size]
        seq = get_batch(val, offs, T).to(device)
        with amp() if amp else _null():
            main, mtps = model(seq[:, :-1])
        heads = [main] + list(mtps)
        for h, lg in enumerate(heads):
            tgt = seq[:, h + 1:]
            l = F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), tgt.reshape(-1), reduction="sum")
            nll[h] += l.item()
            cnt[h] += tgt.numel()
            nbytes[h] += byte_lens[tgt.cpu().numpy()].sum()
    model.train()
    loss = (nll / np.maximum(cnt, 1)).tolist()
    bpb = (nll / math.log(2) / np.maximum(nbytes, 1)).tolist()
    return {"loss": loss, "bpb": bpb, "tokens": cnt.tolist(), "bytes": nbytes.tolist()}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        last = name.split(".")[-1]
        nd = (
            name.endswith("_ghc.static") or name.endswith("_ghc.scale")
            or "norm." in name  # every norm gain / group-norm weight and bias (incl. GHC routing norm)
            or p.dim() < 2
        )
        (no_decay if nd else decay).append(p)
        del last
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step, total, peak, warmup, min_ratio):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    t = min(1.0, t)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def build_config(args, vocab_size):
    D = args.hidden_size
    cfg = dict(
        architecture="vwn",
        vocab_size=vocab_size,
        hidden_size=D,
        num_layers=args.num_layers,
        ghc_m=args.ghc_m,
        ghc_n=args.ghc_n,
        num_heads=args.num_heads,
        num_kv_heads=args.num_kv_heads or args.num_heads,
        head_dim=args.head_dim or D // args.num_heads,
        ffn_hidden_size=args.ffn_hidden_size or int(round(8 * D / 3 / 32)) * 32,
        mtp_depth=args.mtp_depth,
        ghc_dynamic=bool(args.dynamic),
        embedding=args.embedding,
        tie_word_embeddings=bool(args.tie),
        output_group_norm=bool(args.group_norm),
        rope_theta=args.rope_theta,
        rms_norm_eps=args.rms_norm_eps,
        group_norm_eps=args.group_norm_eps,
        max_seq_len=args.seq_len,
        tokenizer="tokenizer.json",
    )
    return complete_config(cfg)


def str2bool(v):
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("expected a boolean")


def make_parser():
    ap = argparse.ArgumentParser(description="Train a VWN language model (spec v1) on CPU/GPU.")
    ap.add_argument("--out", required=True, help="output folder (checkpoint folder of spec section 7)")
    ap.add_argument("--tokenizer", default=None,
                    help="tokenizer.json (default: train a byte-level BPE into OUT/tokenizer.json)")
    ap.add_argument("--vocab-size", type=int, default=4096, help="BPE size when training a tokenizer")
    ap.add_argument("--data", nargs="+", default=[os.path.join(DATA_DIR, f) for f in DEFAULT_FILES])
    ap.add_argument("--val-frac", type=float, default=0.05)
    ap.add_argument("--cache-dir", default=None, help="token cache (default OUT/../cache)")
    # model
    ap.add_argument("--hidden-size", type=int, default=192)
    ap.add_argument("--num-layers", type=int, default=4)
    ap.add_argument("--ghc-m", type=int, default=2)
    ap.add_argument("--ghc-n", type=int, default=8)
    ap.add_argument("--num-heads", type=int, default=6)
    ap.add_argument("--num-kv-heads", type=int, default=None)
    ap.add_argument("--head-dim", type=int, default=None)
    ap.add_argument("--ffn-hidden-size", type=int, default=None, help="default 8/3*D rounded to 32")
    ap.add_argument("--mtp-depth", type=int, default=2)
    ap.add_argument("--dynamic", type=str2bool, default=True)
    ap.add_argument("--embedding", choices=["wide", "factorized"], default="factorized")
    ap.add_argument("--tie", type=str2bool, default=True)
    ap.add_argument("--group-norm", type=str2bool, default=True)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--rms-norm-eps", type=float, default=1e-5)
    ap.add_argument("--group-norm-eps", type=float, default=1e-5)
    # optimisation
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--eval-windows", type=int, default=None,
                    help="cap on validation windows per periodic eval (default: all)")
    ap.add_argument("--eval-batch-size", type=int, default=16)
    ap.add_argument("--save-every", type=int, default=None, help="default: every eval")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--benchmark", type=int, default=0, help="time N steps and exit")
    ap.add_argument("--device", default=None)
    return ap


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    amp = None
    if device.startswith("cuda"):
        def amp():
            return torch.autocast("cuda", dtype=torch.bfloat16)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    # tokenizer
    tok_out = os.path.join(out, "tokenizer.json")
    if args.tokenizer:
        tok_path = os.path.abspath(args.tokenizer)
    elif os.path.exists(tok_out):
        tok_path = tok_out
    else:
        sys.path.insert(0, HERE)
        from train_tokenizer import train_bpe
        train_bpe(args.data, tok_out, vocab_size=args.vocab_size, val_frac=args.val_frac)
        tok_path = tok_out
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    V = tok.get_vocab_size()
    byte_lens = token_byte_lengths(tok)
    cache = args.cache_dir or os.path.join(os.path.dirname(out), "cache")
    train, val = prepare_data(tok_path, args.data, cache, args.val_frac)

    config = build_config(args, V)
    model = VWN(config).to(device)
    nparam = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr,
                            betas=(args.beta1, args.beta2), eps=1e-8)
    log = {"args": vars(args), "config": config, "params": nparam, "train_tokens": int(len(train)),
           "val_tokens": int(len(val)), "train": [], "val": []}
    step = 0
    state_p = os.path.join(out, "train_state.pt")
    if args.resume and os.path.exists(state_p):
        st = torch.load(state_p, map_location=device)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        log = st["log"]
        log["args_resume"] = vars(args)
        print(f"resumed from step {step}", file=sys.stderr)
    print(f"params {nparam/1e6:.3f}M  train tokens {len(train)}  val tokens {len(val)}  V {V}",
          file=sys.stderr)
    print(json.dumps(config), file=sys.stderr)

    T, B = args.seq_len, args.batch_size

    def save_all():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "log": log},
                   state_p + ".tmp")
        os.replace(state_p + ".tmp", state_p)
        save_checkpoint_dir(model, config, out, tok_path)
        with open(os.path.join(out, "log.json"), "w") as f:
            json.dump(log, f, indent=1)

    def do_eval(final=False):
        t0 = time.time()
        r = evaluate(model, val, T, byte_lens, args.eval_batch_size,
                     None if final else args.eval_windows, device, amp)
        r["final"] = final
        r["step"] = step
        r["tokens_seen"] = step * B * T
        r["elapsed"] = time.time() - t_start
        log["val"].append(r)
        msg = " ".join(f"{l:.4f}/{b:.3f}" for l, b in zip(r["loss"], r["bpb"]))
        print(f"\n[val] step {step} loss/bpb per head: {msg} ({time.time()-t0:.1f}s)", file=sys.stderr,
              flush=True)
        return r

    if args.benchmark:
        model.train()
        for i in range(args.benchmark + 1):
            if i == 1:
                t0 = time.time()
            seq = get_batch(train, batch_offsets(args.seed, i, len(train), T, B), T).to(device)
            loss, _ = model.loss(seq)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dt = (time.time() - t0) / args.benchmark
        print(f"benchmark: {dt:.3f} s/step, {B*T/dt:.0f} tokens/s, params {nparam}")
        return

    from tqdm import tqdm
    t_start = time.time() - (log["train"][-1]["elapsed"] if log["train"] else 0.0)
    model.train()
    pbar = tqdm(total=args.steps, initial=step, disable=args.no_progress, dynamic_ncols=True,
                mininterval=2.0)
    save_every = args.save_every or args.eval_every
    tps_t, tps_n = time.time(), 0
    ema = None
    if step == 0:
        do_eval()
    while step < args.steps:
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        seq = get_batch(train, batch_offsets(args.seed, step, len(train), T, B), T).to(device)
        with amp() if amp else _null():
            loss, ces = model.loss(seq)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        tps_n += B * T
        lv = loss.item()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        log["train"].append({"step": step, "loss": lv, "ce": [c.item() for c in ces], "lr": lr,
                             "grad_norm": float(gn), "elapsed": time.time() - t_start})
        now = time.time()
        pbar.set_postfix(loss=f"{ema:.3f}", ce=f"{ces[0].item():.3f}", tok_s=f"{tps_n/max(now-tps_t,1e-9):.0f}",
                         refresh=False)
        pbar.update(1)
        if now - tps_t > 30:
            tps_t, tps_n = now, 0
        if step == args.steps:
            do_eval(final=True)
        elif step % args.eval_every == 0:
            do_eval()
        if step % save_every == 0 or step == args.steps:
            save_all()
    pbar.close()
    save_all()
    print(f"done: {step} steps, {step*B*T} tokens, {time.time()-t_start:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()

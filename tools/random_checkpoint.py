#!/usr/bin/env python3
"""Write a random VWN checkpoint (config.json + model.safetensors) for tests.

    python tools/random_checkpoint.py CONFIG.json OUT_DIR [--seed S] [--dtype f32|f16|bf16]
                                      [--spec-init-ghc]

The checkpoint follows spec §7 (shared/spec/architecture.md): exactly the tensors that the
configuration makes present, with torch.nn.Linear `[out, in]` weights.  The values are random but
chosen so that every code path of a forward pass matters and nothing degenerates:

* GHC `static` is the spec's initial value plus noise (so read, carry and write all mix rows),
  `scale` is about 1, `proj` is clearly nonzero (N(0, 0.5)), the routing norm gain is about 1.
  With dynamic GHC the coefficients therefore really depend on the token.
* RMSNorm gains are 1 +- 0.2, group-norm weight 1 +- 0.2 and bias +- 0.1.
* Linear weights are N(0, 1/sqrt(in)), so every sublayer maps O(1) vectors to O(1) vectors, and
  the attention scores q.k/sqrt(hd) are O(1): no softmax saturates.
* The head is N(0, 3/sqrt(D)), so the logits are O(1..10).

The carry block of `static` and `scale` is scaled by 1/sqrt(n) beyond the identity: with n = 64
rows, independent O(1) noise on every carry coefficient would multiply the norm of the wide state
by ~4 per GHC module and drown the sublayer outputs.  With the scaling the state grows by a factor
independent of n, and the residual stream stays balanced for every (m, n).

`--spec-init-ghc` writes the spec's initial GHC values instead (static = init, scale = 1, proj = 0,
norm = 1); with n = m = 1 this is exactly a Llama-style transformer.

Importable: `make_checkpoint(config, out_dir, seed, dtype="f32", spec_init_ghc=False)` returns the
completed config.  The safetensors file is written by hand (8-byte header length, JSON header,
raw little-endian data) because numpy has no bfloat16; F32, F16 and BF16 are all supported so
that every input path of the converter can be tested.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# Keys every config must carry (spec §1 and §7); everything else has a default below.
REQUIRED_KEYS = ("vocab_size", "hidden_size", "num_layers", "ghc_m", "ghc_n", "num_heads",
                 "ffn_hidden_size", "ghc_dynamic", "embedding", "output_group_norm")

# Defaults completing a config.  head_dim defaults to hidden_size / num_heads (computed below).
DEFAULTS = {
    "architecture": "vwn",
    "mtp_depth": 0,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "group_norm_eps": 1e-5,
    "max_seq_len": 256,
    "tokenizer": "bytes",
}


def complete_config(config):
    """Return a copy of `config` with every default filled in (and a few sanity checks)."""
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ValueError(f"config lacks required keys: {', '.join(missing)}")
    cfg = dict(DEFAULTS)
    cfg.update(config)
    cfg.setdefault("num_kv_heads", cfg["num_heads"])
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_heads"])
    D, m, n = cfg["hidden_size"], cfg["ghc_m"], cfg["ghc_n"]
    if D % m or n < m:
        raise ValueError(f"need hidden_size % ghc_m == 0 and ghc_n >= ghc_m (D={D}, m={m}, n={n})")
    if cfg["output_group_norm"] and n % m:
        raise ValueError(f"output_group_norm needs ghc_n % ghc_m == 0 (m={m}, n={n})")
    if cfg["tie_word_embeddings"] and cfg["embedding"] != "factorized":
        raise ValueError("tie_word_embeddings is allowed only with embedding = factorized")
    if cfg["num_heads"] % cfg["num_kv_heads"] or cfg["head_dim"] % 2:
        raise ValueError("need num_heads % num_kv_heads == 0 and an even head_dim")
    return cfg


class _Generator:
    """Draws the tensors of one checkpoint, in module order, into self.tensors."""

    def __init__(self, cfg, seed, spec_init_ghc):
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.spec_init_ghc = spec_init_ghc
        self.tensors = {}
        self.D = cfg["hidden_size"]
        self.m, self.n = cfg["ghc_m"], cfg["ghc_n"]
        self.s = self.D // self.m
        self.Dw = self.n * self.s            # D', the virtual width

    # -- value families -------------------------------------------------------------------
    def normal(self, name, shape, std):
        self.tensors[name] = self.rng.normal(0.0, std, size=shape)

    def linear(self, name, out_f, in_f):
        self.normal(name, (out_f, in_f), 1.0 / math.sqrt(in_f))

    def gain(self, name, width):
        """An RMSNorm (or group-norm) gain: 1 +- 0.2."""
        self.tensors[name] = self.rng.uniform(0.8, 1.2, size=(width,))

    # -- modules --------------------------------------------------------------------------
    def ghc(self, prefix):
        m, n, s = self.m, self.n, self.s
        K = 2 * m + n
        # Spec §2 initial values: read [I_m; 0], carry I_n, Bt[j,k] = 1 iff k == j mod m.
        static = np.zeros((n, K))
        static[:m, :m] = np.eye(m)
        static[:, m:m + n] = np.eye(n)
        for j in range(n):
            static[j, m + n + j % m] = 1.0
        dyn = self.cfg["ghc_dynamic"]
        if self.spec_init_ghc:
            self.tensors[prefix + ".static"] = static
            if dyn:
                self.tensors[prefix + ".scale"] = np.ones((n, K))
                self.tensors[prefix + ".proj.weight"] = np.zeros((K, s))
                self.tensors[prefix + ".norm.weight"] = np.ones(s)
            return
        # Noise of std 0.2 on every coefficient; the carry block's noise is divided by sqrt(n)
        # (see the module docstring) so the state's growth does not depend on n.
        block = np.ones((1, K))
        block[0, m:m + n] = 1.0 / math.sqrt(n)
        self.tensors[prefix + ".static"] = static + self.rng.normal(0.0, 0.2, (n, K)) * block
        if dyn:
            self.tensors[prefix + ".scale"] = self.rng.uniform(0.7, 1.3, (n, K)) * block
            self.normal(prefix + ".proj.weight", (K, s), 0.5)
            self.gain(prefix + ".norm.weight", s)

    def layer(self, prefix):
        c = self.cfg
        D, F = self.D, c["ffn_hidden_size"]
        hq, hkv, hd = c["num_heads"], c["num_kv_heads"], c["head_dim"]
        self.ghc(prefix + ".attn_ghc")
        self.gain(prefix + ".attn_norm.weight", D)
        self.linear(prefix + ".attn.q_proj.weight", hq * hd, D)
        self.linear(prefix + ".attn.k_proj.weight", hkv * hd, D)
        self.linear(prefix + ".attn.v_proj.weight", hkv * hd, D)
        self.linear(prefix + ".attn.o_proj.weight", D, hq * hd)
        self.ghc(prefix + ".ffn_ghc")
        self.gain(prefix + ".ffn_norm.weight", D)
        self.linear(prefix + ".ffn.gate_proj.weight", F, D)
        self.linear(prefix + ".ffn.up_proj.weight", F, D)
        self.linear(prefix + ".ffn.down_proj.weight", D, F)

    def group_norm(self, prefix):
        self.gain(prefix + ".weight", self.Dw)
        self.tensors[prefix + ".bias"] = self.rng.uniform(-0.1, 0.1, size=(self.Dw,))

    def model(self):
        c = self.cfg
        V, D, Dw = c["vocab_size"], self.D, self.Dw
        head_std = 3.0 / math.sqrt(D)          # logits of std ~3
        # Input embedding (spec §4); h'_0 has O(1) entries in every variant.
        if c["embedding"] == "wide":
            self.normal("embed.weight", (V, Dw), 1.0)
        else:
            emb_std = head_std if c["tie_word_embeddings"] else 1.0
            self.normal("embed.weight", (V, D), emb_std)
            if self.n != self.m:
                self.normal("embed_expand.weight", (Dw, D), 1.0 / (math.sqrt(D) * emb_std))
        for i in range(c["num_layers"]):
            self.layer(f"layers.{i}")
        # Output head (spec §5).
        if c["output_group_norm"]:
            self.group_norm("out_norm")
        if self.n != self.m:
            self.linear("reduce.weight", D, Dw)
        self.gain("final_norm.weight", D)
        if not c["tie_word_embeddings"]:
            self.normal("lm_head.weight", (V, D), head_std)
        # MTP modules (spec §6), numbered from 0.
        for j in range(c["mtp_depth"]):
            p = f"mtp.{j}"
            self.gain(p + ".enorm.weight", Dw)
            self.gain(p + ".hnorm.weight", Dw)
            self.linear(p + ".proj.weight", self.s, 2 * self.s)
            self.layer(p + ".layer")
            if c["output_group_norm"]:
                self.group_norm(p + ".out_norm")
            self.gain(p + ".final_norm.weight", D)
        return self.tensors


# -- safetensors writing ----------------------------------------------------------------------

def _to_bf16_bits(x):
    """float array -> uint16 bfloat16 bit patterns, rounding to nearest even (finite inputs)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def save_safetensors(path, tensors, dtype="f32"):
    """Write `tensors` (name -> float array) as a safetensors file of F32, F16 or BF16 tensors."""
    tag = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[dtype]
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        if dtype == "f32":
            raw = np.ascontiguousarray(value, dtype="<f4").tobytes()
        elif dtype == "f16":
            raw = np.ascontiguousarray(value, dtype="<f2").tobytes()
        else:
            raw = _to_bf16_bits(value).astype("<u2").tobytes()
        header[name] = {"dtype": tag, "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)          # the format allows space padding to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def make_checkpoint(config, out_dir, seed=0, dtype="f32", spec_init_ghc=False):
    """Write OUT_DIR/config.json and OUT_DIR/model.safetensors; return the completed config."""
    if dtype not in ("f32", "f16", "bf16"):
        raise ValueError(f"dtype must be f32, f16 or bf16, not {dtype!r}")
    cfg = complete_config(config)
    tensors = _Generator(cfg, seed, spec_init_ghc).model()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a random VWN checkpoint for tests.")
    ap.add_argument("config", help="JSON config (spec §1/§7 keys; defaults are filled in)")
    ap.add_argument("out_dir", help="folder to write config.json and model.safetensors into")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32",
                    help="safetensors tensor type (default f32)")
    ap.add_argument("--spec-init-ghc", action="store_true",
                    help="write the spec's initial GHC values instead of noisy ones")
    args = ap.parse_args(argv)
    try:
        with open(args.config) as f:
            config = json.load(f)
        make_checkpoint(config, args.out_dir, args.seed, args.dtype, args.spec_init_ghc)
    except (OSError, ValueError) as e:
        print(f"random_checkpoint: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

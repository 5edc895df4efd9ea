#!/usr/bin/env python3
"""Make the benchmark models of docs/performance.md: random checkpoints of a Llama-110M-shaped
backbone (D=768, L=12, 12 heads, F=2048, V=32000, wide embedding, untied head, so that the
only extra weights a VWN model reads per token are its `reduce`) as a plain transformer (n=m=1) and as VWN at
(m,n) = (2,8) and (8,64), converted to F32, BF16 and Q8_0 GGUF files (any of the converter's
types with --types, e.g. f32,bf16,q8_0,q4_0).

    python tools/bench_models.py OUT_DIR [--types f32,bf16,q8_0] [--configs m1n1,m2n8,m8n64] [--agree]

--configs m1n1_gqa4 makes a GQA variant of the plain model (12 query heads over 3 KV heads, up to
4,096 positions) for long-context attention measurements.

--agree also writes `llama110m_NAME_agree.TYPE.gguf`: the same weights with every final norm set to
zero, so that the main model and every MTP head predict the same token (all logits are 0, argmax
picks id 0). Every greedy draft is then accepted: speculative decoding at its ceiling, which shows
what drafting and verification cost on a model far larger than the caches.

A synthetic llama2.c-style vocabulary of 32000 pieces is written beside each checkpoint (the
benchmark does not care what the pieces are; the converter needs a tokenizer of the right size).
"""
import argparse
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import json  # noqa: E402

from random_checkpoint import make_checkpoint  # noqa: E402


def write_vocab(path, V):
    """llama2.c tokenizer.bin: max_len, then per token: f32 score, i32 len, bytes."""
    pieces = ["<unk>", "\n<s>\n", "\n</s>\n"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [f"tok{i}" for i in range(V - len(pieces))]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for i, p in enumerate(pieces):
            b = p.encode()
            f.write(struct.pack("<fi", -float(i), len(b)))
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--types", default="f32,bf16,q8_0")
    ap.add_argument("--configs", default="m1n1,m2n8,m8n64")
    ap.add_argument("--agree", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name in a.configs.split(","):
        cfg_path = os.path.join(HERE, "bench_configs", f"llama110m_{name}.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        ck = os.path.join(a.out, f"llama110m_{name}")
        if not os.path.exists(os.path.join(ck, "model.safetensors")):
            print(f"checkpoint {ck}", flush=True)
            make_checkpoint(cfg, ck, seed=0)
            write_vocab(os.path.join(ck, "tokenizer.bin"), cfg["vocab_size"])
        for t in a.types.split(","):
            out = f"{ck}.{t}.gguf"
            if not os.path.exists(out):
                print(f"convert {out}", flush=True)
                subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), ck, out, "--type", t], check=True)
        if a.agree and cfg.get("mtp_depth", 0) > 0:
            ag = ck + "_agree"
            if not os.path.exists(os.path.join(ag, "model.safetensors")):
                import shutil
                from safetensors.numpy import load_file, save_file
                tensors = load_file(os.path.join(ck, "model.safetensors"))
                for name in tensors:
                    if name.endswith("final_norm.weight"):
                        tensors[name] = tensors[name] * 0
                os.makedirs(ag, exist_ok=True)
                save_file(tensors, os.path.join(ag, "model.safetensors"))
                for f in ("config.json", "tokenizer.bin"):
                    shutil.copy(os.path.join(ck, f), ag)
            for t in a.types.split(","):
                out = f"{ag}.{t}.gguf"
                if not os.path.exists(out):
                    print(f"convert {out}", flush=True)
                    subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), ag, out, "--type", t], check=True)


if __name__ == "__main__":
    main()

"""Smoke test of the PyTorch trainer (tools/train.py) and tokenizer trainer (tools/train_tokenizer.py).

    .venv/bin/python -m pytest tests/test_train.py -q

Trains a tiny VWN (D=32, L=1, (m,n)=(2,4), dynamic GHC, group norm, factorized tied embedding,
mtp_depth 1) for 20 steps on a slice of the shared text with a tiny byte-level BPE, checks that
the loss went down, that the checkpoint folder is complete (config.json keys of spec section 7,
model.safetensors with the spec's tensor names, tokenizer.json), and that the trainer's logits
(main and MTP) equal the independent numpy reference (tools/reference.py) to 1e-4 relative.

For later checks (libvwn vs trainer), the fixture `trained_ckpt` gives the checkpoint folder and
`trainer_logits(ckpt_dir, tokens)` the trainer's fp32 logits (main [T,V], [mtp_j [T-j,V]]).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
pytest.importorskip("tqdm")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import train  # noqa: E402
import train_tokenizer  # noqa: E402

SPEC_KEYS = ["architecture", "vocab_size", "hidden_size", "num_layers", "ghc_m", "ghc_n", "num_heads",
             "num_kv_heads", "head_dim", "ffn_hidden_size", "mtp_depth", "ghc_dynamic", "embedding",
             "tie_word_embeddings", "output_group_norm", "rope_theta", "rms_norm_eps", "group_norm_eps",
             "max_seq_len", "tokenizer"]
STEPS = 20


def _text_slice():
    """About 60 KB of the shared training text; a synthetic text when shared/ is absent."""
    parts = []
    for name, size in (("tinystories_valid.txt", 40000), ("tinyshakespeare.txt", 20000)):
        p = Path(train.DATA_DIR) / name
        if p.exists():
            parts.append(p.read_text(encoding="utf-8")[:size])
    if not parts:
        rng = np.random.default_rng(0)
        words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "see", "big", "red", "ball"]
        parts.append(" ".join(words[i] for i in rng.integers(0, len(words), 12000)) + "\n")
    return "\n".join(parts)


def trainer_logits(ckpt_dir, tokens):
    """The trainer's fp32 logits of a checkpoint folder: (main [T,V], [mtp_j [T-j,V]])."""
    return train.export_logits(str(ckpt_dir), tokens)


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    data = d / "slice.txt"
    data.write_text(_text_slice(), encoding="utf-8")
    tok = d / "tokenizer.json"
    train_tokenizer.train_bpe([str(data)], str(tok), vocab_size=320)
    out = d / "run"
    argv = ["--out", str(out), "--tokenizer", str(tok), "--data", str(data), "--cache-dir", str(d / "cache"),
            "--threads", "1", "--hidden-size", "32", "--num-layers", "1", "--ghc-m", "2", "--ghc-n", "4",
            "--num-heads", "2", "--head-dim", "16", "--ffn-hidden-size", "64", "--mtp-depth", "1",
            "--dynamic", "true", "--group-norm", "true", "--embedding", "factorized", "--tie", "true",
            "--seq-len", "32", "--batch-size", "8", "--steps", str(STEPS), "--warmup", "2", "--lr", "1e-2",
            "--eval-every", "10", "--eval-windows", "16", "--seed", "7", "--no-progress"]
    train.main(argv)
    return out


def test_tokenizer_specials(trained_ckpt):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(trained_ckpt / "tokenizer.json"))
    assert tok.token_to_id("<|endoftext|>") == 0
    assert tok.get_vocab_size() == 320
    s = "Once upon a time, Romeo said: 'hi'\n"
    assert tok.decode(tok.encode(s).ids) == s


def test_loss_went_down(trained_ckpt):
    log = json.loads((trained_ckpt / "log.json").read_text())
    assert len(log["train"]) == STEPS
    first = log["train"][0]["ce"][0]
    last = np.mean([r["ce"][0] for r in log["train"][-3:]])
    assert last < first - 0.5, (first, last)
    v0, v1 = log["val"][0], log["val"][-1]
    assert v1["final"] and v1["step"] == STEPS
    assert len(v1["loss"]) == 2 and len(v1["bpb"]) == 2          # main + one MTP head
    assert v1["loss"][0] < v0["loss"][0]
    assert v1["loss"][1] < v0["loss"][1]


def test_checkpoint_folder(trained_ckpt):
    cfg = json.loads((trained_ckpt / "config.json").read_text())
    assert sorted(cfg) == sorted(SPEC_KEYS)
    assert cfg["architecture"] == "vwn" and cfg["tokenizer"] == "tokenizer.json"
    assert (cfg["ghc_m"], cfg["ghc_n"], cfg["mtp_depth"], cfg["ghc_dynamic"]) == (2, 4, 1, True)
    from safetensors.numpy import load_file
    t = load_file(str(trained_ckpt / "model.safetensors"))
    D, V, s = 32, cfg["vocab_size"], 16
    assert t["embed.weight"].shape == (V, D)
    assert t["embed_expand.weight"].shape == (4 * s, D)
    assert t["layers.0.attn_ghc.static"].shape == (4, 8)
    assert t["layers.0.attn_ghc.proj.weight"].shape == (8, s)
    assert t["mtp.0.proj.weight"].shape == (s, 2 * s)
    assert t["reduce.weight"].shape == (D, 4 * s)
    assert t["out_norm.bias"].shape == (4 * s,)
    assert "lm_head.weight" not in t                               # tied
    assert all(v.dtype == np.float32 for v in t.values())
    # the GHC coefficients actually trained (proj starts at 0)
    assert np.abs(t["layers.0.ffn_ghc.proj.weight"]).max() > 0
    for f in ("train_state.pt", "log.json", "tokenizer.json"):
        assert (trained_ckpt / f).exists()


def test_resume(trained_ckpt, tmp_path):
    """--resume with a larger --steps continues from the saved step."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(trained_ckpt, run)
    argv = ["--out", str(run), "--tokenizer", str(run / "tokenizer.json"),
            "--data", str(trained_ckpt.parent / "slice.txt"), "--cache-dir", str(trained_ckpt.parent / "cache"),
            "--threads", "1", "--hidden-size", "32", "--num-layers", "1", "--ghc-m", "2", "--ghc-n", "4",
            "--num-heads", "2", "--head-dim", "16", "--ffn-hidden-size", "64", "--mtp-depth", "1",
            "--seq-len", "32", "--batch-size", "8", "--steps", str(STEPS + 2), "--warmup", "2",
            "--eval-every", "100", "--eval-windows", "4", "--seed", "7", "--no-progress", "--resume"]
    train.main(argv)
    log = json.loads((run / "log.json").read_text())
    assert [r["step"] for r in log["train"]] == list(range(1, STEPS + 3))


def test_matches_reference(trained_ckpt):
    import reference
    cfg, w = reference.load_checkpoint(str(trained_ckpt))
    rng = np.random.default_rng(3)
    for T in (1, 2, 17):
        toks = rng.integers(0, cfg["vocab_size"], size=T)
        ref_main, ref_mtp = reference.forward(cfg, w, toks)
        main, mtp = trainer_logits(trained_ckpt, toks)
        assert main.shape == ref_main.shape == (T, cfg["vocab_size"])
        assert len(mtp) == 1 and mtp[0].shape == (T - 1, cfg["vocab_size"])
        for a, b in zip([ref_main] + list(ref_mtp), [main] + list(mtp)):
            if a.size == 0:
                assert b.size == 0
                continue
            err = np.abs(a - b).max() / np.abs(a).max()
            assert err < 1e-4, err


def test_forward_shapes_and_causality():
    cfg = dict(vocab_size=50, hidden_size=32, num_layers=1, ghc_m=2, ghc_n=3, num_heads=2, num_kv_heads=1,
               head_dim=16, ffn_hidden_size=64, mtp_depth=2, ghc_dynamic=True, embedding="wide",
               tie_word_embeddings=False, output_group_norm=False)
    torch.manual_seed(0)
    m = train.VWN(cfg)
    t = torch.randint(0, 50, (2, 9))
    main, mtp = m(t)
    assert main.shape == (2, 9, 50) and [x.shape for x in mtp] == [(2, 8, 50), (2, 7, 50)]
    t2 = t.clone()
    t2[:, -1] = (t2[:, -1] + 1) % 50
    main2, mtp2 = m(t2)
    assert torch.allclose(main[:, :-1], main2[:, :-1], atol=1e-6)
    # MTP module j at position i reads t[i+j]: the changed last token touches only its last row
    assert torch.allclose(mtp[0][:, :-1], mtp2[0][:, :-1], atol=1e-6)
    assert torch.allclose(mtp[1][:, :-1], mtp2[1][:, :-1], atol=1e-6)


def test_cli_help():
    import subprocess
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "train.py"), "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--resume" in r.stdout

"""The trainer and libvwn agree: a tiny model trained for a few steps on the CPU by tools/train.py,
converted by tools/convert.py (f32), gives in libvwn the logits of the trainer's own PyTorch forward
(main and MTP heads, every position) to 1e-4 · max|logit|, and libvwn's tokenizer gives the ids of
the Hugging Face tokenizer the trainer used."""
import ctypes as C
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import vwn_ctypes as V  # noqa: E402
from test_train import trained_ckpt, trainer_logits  # noqa: E402,F401  (the fixture trains the model)

if V.lib is None:
    pytest.skip("libvwn not built", allow_module_level=True)
lib, check = V.lib, V.check


def test_libvwn_matches_trainer(trained_ckpt, tmp_path):  # noqa: F811
    gguf = str(tmp_path / "tiny.gguf")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert.py"), str(trained_ckpt), gguf],
                   check=True, capture_output=True)
    from tokenizers import Tokenizer
    text = "Once upon a time, there was a little cat. ROMEO: What light through yonder window breaks?"
    hf_ids = Tokenizer.from_file(str(trained_ckpt / "tokenizer.json")).encode(text).ids
    model = V.load_model(gguf)
    buf = (C.c_int32 * 256)()
    n = lib.vwn_tokenize(model, text.encode(), len(text.encode()), buf, 256, False, False)
    assert list(buf[:n]) == hf_ids, "libvwn's gpt2 tokenizer differs from the trainer's tokenizer.json"

    toks = np.array(hf_ids[:24], dtype=np.int64)
    ref_main, ref_mtp = trainer_logits(trained_ckpt, toks)
    ref_main = np.asarray(ref_main, dtype=np.float64)
    info = V.model_info(model)
    p = lib.vwn_context_default_params()
    p.logits_all, p.n_ctx, p.n_batch = True, 64, 64
    ctx = C.c_void_p()
    check(lib.vwn_context_new(model, C.byref(p), C.byref(ctx)))
    check(lib.vwn_decode(ctx, (C.c_int32 * len(toks))(*toks.tolist()), len(toks)))
    ptr = C.POINTER(C.c_float)()
    got = []
    for i in range(len(toks)):
        check(lib.vwn_get_logits(ctx, i, C.byref(ptr)))
        got.append(np.ctypeslib.as_array(ptr, (info.n_vocab,)).copy())
    got = np.stack(got)
    scale = np.abs(ref_main).max()
    assert np.abs(got - ref_main).max() <= 1e-4 * scale
    for j in range(1, info.mtp_depth + 1):
        ref = np.asarray(ref_mtp[j - 1], dtype=np.float64)
        rows = []
        for i in range(len(toks) - j):
            check(lib.vwn_get_mtp_logits(ctx, j, i, C.byref(ptr)))
            rows.append(np.ctypeslib.as_array(ptr, (info.n_vocab,)).copy())
        assert np.abs(np.stack(rows) - ref).max() <= 1e-4 * np.abs(ref).max(), f"MTP {j}"
    lib.vwn_context_free(ctx)
    lib.vwn_model_free(model)

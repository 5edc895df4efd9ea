#!/usr/bin/env python3
"""Train a byte-level BPE tokenizer (Hugging Face `tokenizers`) on the training split.

ByteLevel pre-tokenizer (add_prefix_space=False, GPT-2 regex), ByteLevel decoder, and the special
token `<|endoftext|>` as id 0 (EOS / document separator). The training split is the first 95% of
each file (the last 5% is held out for validation, see tools/train.py).

    python tools/train_tokenizer.py --out runs/tokenizer.json --vocab-size 4096
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
def _data_dir():
    """$VWN_DATA_DIR, else shared/data beside the repository, else /work/shared/data."""
    for d in (os.environ.get("VWN_DATA_DIR"), os.path.join(HERE, os.pardir, os.pardir, "shared", "data"),
              "/work/shared/data"):
        if d and os.path.isdir(d):
            return os.path.normpath(d)
    return "/work/shared/data"


DATA_DIR = _data_dir()
DEFAULT_FILES = ["tinystories_valid.txt", "austen.txt", "tinyshakespeare.txt"]
EOS = "<|endoftext|>"


def train_bpe(files, out_path, vocab_size=4096, val_frac=0.05, texts=None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    if texts is None:
        sys.path.insert(0, HERE)
        from train import read_splits
        texts = [tr for _, tr, _ in read_splits(files, val_frac)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def it():
        for t in texts:
            # feed in chunks of lines so the trainer does not see one huge string
            lines = t.splitlines(keepends=True)
            for i in range(0, len(lines), 1000):
                yield "".join(lines[i:i + 1000])

    tok.train_from_iterator(it(), trainer=trainer)
    assert tok.token_to_id(EOS) == 0
    d = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(d, exist_ok=True)
    tok.save(out_path)
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--data", nargs="+", default=[os.path.join(DATA_DIR, f) for f in DEFAULT_FILES])
    ap.add_argument("--val-frac", type=float, default=0.05)
    a = ap.parse_args()
    tok = train_bpe(a.data, a.out, a.vocab_size, a.val_frac)
    print(f"wrote {a.out}: {tok.get_vocab_size()} tokens")


if __name__ == "__main__":
    main()

"""test_tokenizer_hf.py -- libvwn's gpt2 and llama tokenizers against independent references.

    VWN_LIB=build/lib/libvwn.so .venv/bin/python -m pytest tests/test_tokenizer_hf.py -q

gpt2: a byte-level BPE (ByteLevel pre-tokenizer, add_prefix_space=False, ByteLevel decoder,
special `<|endoftext|>`) is trained here with Hugging Face `tokenizers` on part of the shared
texts, embedded into a tiny random model by tools/convert.py, loaded by libvwn, and the token ids
must equal HF's encode() over the whole of every /work/shared/data/*.txt (in 64 KB blocks cut at
newlines, plus one file in one piece) and over adversarial strings; decode(encode(x)) == x.
Invalid UTF-8 (HF cannot take it) is checked against the documented rule: every byte that does not
start a valid UTF-8 sequence is a code point of its own of category "other"; the expected ids are
HF's pre-tokenizer run with a private-use character (category "other") in place of each such byte,
then HF's BPE model over the original bytes of every pre-token.

llama: /work/shared/models/tok512.bin converted into a model, against a plain O(n^2)
implementation of llama2.c's encode() written below (it reads tok512.bin itself), over the
shared texts (a few hundred KB, line by line) and the adversarial strings.
"""

import ctypes as C
import glob
import os
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from vwn_ctypes import lib, load_model, last_error   # noqa: E402

tokenizers = pytest.importorskip("tokenizers")

# ../shared beside the repository (as in CI), else the developer machines' /work/shared
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
if not os.path.isdir(SHARED):
    SHARED = "/work/shared"
DATA_FILES = sorted(glob.glob(os.path.join(SHARED, "data", "*.txt")))
TOK512 = os.path.join(SHARED, "models", "tok512.bin")
EOT = "<|endoftext|>"
INT32_MIN = -2 ** 31

ADVERSARIAL = [
    "",
    "Hello, world! It's a test. I'm sure they'll've done it, we'd say, you're right.",
    "'s'S's", "'S 'T 'RE 'VE 'M 'LL 'D", "don't DON'T ''s '''", "x's 's' ' s", "rock'n'roll",
    "English Русский 日本語 中文 한국어 العربية עברית ελληνικά हिन्दी ไทย ქართული",
    "我们的生活很美好。今天天气不错，我们去公园吧！" * 5,
    "👨‍👩‍👧‍👦 👍🏽 🏳️‍🌈 🧑🏿‍💻 ❤️ 🇫🇷🇯🇵 😀😃😄",
    "e\u0301 a\u0308\u0301 Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d l\u036e\u0312 n\u0303",
    "\u202eabc\u202c שלום עולם مرحبا بالعالم \u200f\u200e",
    "1234567890" * 12, "3.14159 1,000,000 -42 +7e10 0x1F ١٢٣٤ ½ Ⅻ ² ³ ① ௰",
    "a" + " " * 50 + "b", "\t\t\tx", "\n\n\n\ny", " \t \n \r\n ", "   ", "trailing   ",
    "\u00a0\u3000\u2028x \u0085y\u2029 \u205f\u202fz\u1680", "  leading", " a  b   c    d",
    "\x00\x01\x02\x1b[31mred\x1b[0m\x7f", "\u200b\u200c\u200d\ufeff zero width",
    "tabs\tand\nnew\r\nlines\n\n\t \t", "!!!???...,,,;;;", " !!! ?? x", "a1b2c3 1a 2b",
    "\u1c89\u1c8a \ua7cb", "\ue000 \U0010fffd \U000e0001 \U0001f600",
    "CamelCaseWordsAndALLCAPS snake_case kebab-case",
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "<|endoftext",
    "<<|endoftext|>>", " <|endoftext|> x",
    "mixed 日本 text with ASCII and 数字123 and emoji🙂 and café",
]

INVALID_UTF8 = [
    b"\xff\xfe\xc3", b"abc\x80def", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong",
    b"\xf4\x90\x80\x80 too big", b"caf\xc3", b"\xe2\x82x", b"\x80\x80\x80\x80\x80",
    b"hello \xff world", b" \xff", b"\xff ", b"a\xfeb c\xfdd", b"'\xffs", b"1\xff2",
    b"\xe6\x97\xa5\xe6\x9c", b"\xf0\x9f\x98", b"ok \xf8\x88\x80\x80\x80 five",
]


# ---- the library through ctypes -----------------------------------------------------------------

class Model:
    def __init__(self, path):
        self.handle = load_model(path)

    def close(self):
        lib.vwn_model_free(self.handle)

    def tokenize(self, data, add_special=False, parse_special=False):
        if isinstance(data, str):
            data = data.encode("utf-8")
        n = lib.vwn_tokenize(self.handle, data, len(data), None, 0, add_special, parse_special)
        assert n != INT32_MIN, last_error()
        need = -n if n < 0 else n
        buf = (C.c_int32 * max(need, 1))()
        got = lib.vwn_tokenize(self.handle, data, len(data), buf, need, add_special, parse_special)
        assert got == need, (got, need, last_error())
        return list(buf[:got])

    def detokenize(self, ids, remove_special=False):
        arr = (C.c_int32 * max(len(ids), 1))(*ids)
        n = lib.vwn_detokenize(self.handle, arr, len(ids), None, 0, remove_special)
        assert n != INT32_MIN, last_error()
        need = -n if n < 0 else n
        buf = C.create_string_buffer(max(need, 1))
        got = lib.vwn_detokenize(self.handle, arr, len(ids), buf, need, remove_special)
        assert got == need, (got, need, last_error())
        return buf.raw[:got]

    def piece(self, token, special=True):
        n = lib.vwn_token_to_piece(self.handle, token, None, 0, special)
        assert n != INT32_MIN, last_error()
        need = -n if n < 0 else n
        buf = C.create_string_buffer(max(need, 1))
        assert lib.vwn_token_to_piece(self.handle, token, buf, need, special) == need
        return buf.raw[:need]


def tiny_config(vocab_size):
    return {"architecture": "vwn", "vocab_size": vocab_size, "hidden_size": 16, "num_layers": 1,
            "ghc_m": 1, "ghc_n": 1, "num_heads": 2, "num_kv_heads": 2, "ffn_hidden_size": 32,
            "mtp_depth": 0, "ghc_dynamic": False, "embedding": "factorized",
            "tie_word_embeddings": True, "output_group_norm": False, "tokenizer": "file"}


def build_model(tmp, vocab_size, tokenizer_path, name):
    from random_checkpoint import make_checkpoint
    from convert import convert
    ckpt = os.path.join(tmp, name)
    make_checkpoint(tiny_config(vocab_size), ckpt, seed=7)
    out = os.path.join(tmp, name + ".gguf")
    convert(ckpt, out, tokenizer=tokenizer_path)
    return out


def blocks(text, size=64 * 1024):
    """The text in blocks of about `size` characters, cut after a newline."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            nl = text.rfind("\n", start, end)
            if nl > start:
                end = nl + 1
        out.append(text[start:end])
        start = end
    return out


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- gpt2 -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    from train_tokenizer import train_bpe
    tmp = str(tmp_path_factory.mktemp("gpt2"))
    texts = [read_text(p)[:150_000] for p in DATA_FILES]
    texts.append(" ".join(s for s in ADVERSARIAL if EOT not in s) * 20)
    tok_path = os.path.join(tmp, "tokenizer.json")
    hf = train_bpe(None, tok_path, vocab_size=1500, texts=texts)
    assert 1000 <= hf.get_vocab_size() <= 2000
    model = Model(build_model(tmp, hf.get_vocab_size(), tok_path, "gpt2"))
    yield hf, model
    model.close()


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def test_gpt2_kind_and_specials(gpt2):
    hf, m = gpt2
    assert lib.vwn_tokenizer_get_kind(m.handle) == 1
    eot = hf.token_to_id(EOT)
    assert lib.vwn_token_eos(m.handle) == eot
    assert lib.vwn_token_is_eog(m.handle, eot)
    assert lib.vwn_token_is_control(m.handle, eot)
    assert not lib.vwn_token_is_control(m.handle, hf.token_to_id("the"))
    assert m.piece(eot, special=True) == EOT.encode()
    assert m.piece(eot, special=False) == b""
    # the model does not ask for BOS: add_special changes nothing
    assert m.tokenize("hello world", add_special=True) == m.tokenize("hello world")


def test_gpt2_whole_files_against_hf(gpt2):
    hf, m = gpt2
    total = 0
    for path in DATA_FILES:
        chunks = blocks(read_text(path))
        expected = [e.ids for e in hf.encode_batch(chunks)]
        for i, (chunk, ids) in enumerate(zip(chunks, expected)):
            ours = m.tokenize(chunk)
            if ours != ids:
                k = next((j for j, (a, b) in enumerate(zip(ours, ids)) if a != b), min(len(ours), len(ids)))
                pytest.fail(f"{os.path.basename(path)} block {i}: first difference at token {k}: "
                            f"ours {ours[k:k + 5]} hf {ids[k:k + 5]} "
                            f"({[hf.id_to_token(t) for t in ids[k:k + 5]]})")
            assert m.detokenize(ours) == chunk.encode("utf-8")
            total += len(ids)
    assert total > 1_000_000


def test_gpt2_one_whole_file_in_one_piece(gpt2):
    hf, m = gpt2
    path = min(DATA_FILES, key=os.path.getsize)
    text = read_text(path)
    ours = m.tokenize(text)
    assert ours == hf.encode(text).ids
    assert m.detokenize(ours) == text.encode("utf-8")


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_gpt2_adversarial(gpt2, text):
    hf, m = gpt2
    # HF always matches added tokens in the text: our parse_special=True
    ours = m.tokenize(text, parse_special=True)
    assert ours == hf.encode(text).ids
    assert m.detokenize(ours) == text.encode("utf-8")
    # without parse_special the special text is ordinary text (HF: encode_special_tokens)
    hf.encode_special_tokens = True
    try:
        plain = m.tokenize(text, parse_special=False)
        assert plain == hf.encode(text).ids
    finally:
        hf.encode_special_tokens = False
    assert m.detokenize(plain) == text.encode("utf-8")
    if EOT in text:
        assert hf.token_to_id(EOT) in ours and hf.token_to_id(EOT) not in plain
        assert m.detokenize(ours, remove_special=True) == text.replace(EOT, "").encode("utf-8")


def expected_invalid(hf, data):
    """The documented rule for invalid UTF-8, computed with HF's pre-tokenizer and BPE model."""
    from tokenizers import pre_tokenizers
    text = data.decode("utf-8", "surrogateescape")        # one lone surrogate per invalid byte
    spans, pos = [], 0                                     # original bytes of every character
    for ch in text:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            spans.append(bytes([ord(ch) - 0xDC00]))
        else:
            spans.append(ch.encode("utf-8"))
    probe = "".join("\ue000" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    b2u = bytes_to_unicode()
    ids = []
    # offsets of the ByteLevel pre-tokenizer are in characters of the input
    for _, (start, end) in pre.pre_tokenize_str(probe):
        raw = b"".join(spans[start:end])
        ids += [t.id for t in hf.model.tokenize("".join(b2u[b] for b in raw))]
    return ids


@pytest.mark.parametrize("data", INVALID_UTF8)
def test_gpt2_invalid_utf8(gpt2, data):
    hf, m = gpt2
    ours = m.tokenize(data)
    assert ours == expected_invalid(hf, data)
    assert m.detokenize(ours) == data


def test_gpt2_invalid_rule_matches_hf_on_valid_text(gpt2):
    # the helper above is itself HF's tokenization when there is nothing invalid
    hf, _ = gpt2
    for text in ADVERSARIAL[:20]:
        if EOT not in text:
            assert expected_invalid(hf, text.encode()) == hf.encode(text).ids


def test_gpt2_two_call_convention_and_errors(gpt2):
    hf, m = gpt2
    text = b"The quick brown fox jumps over the lazy dog."
    n = lib.vwn_tokenize(m.handle, text, len(text), None, 0, False, False)
    assert n < 0
    small = (C.c_int32 * 2)()
    assert lib.vwn_tokenize(m.handle, text, len(text), small, 2, False, False) == n
    assert lib.vwn_tokenize(m.handle, text, -1, None, 0, False, False) == INT32_MIN
    assert "text_len" in last_error()
    bad = (C.c_int32 * 2)(5, hf.get_vocab_size())
    assert lib.vwn_detokenize(m.handle, bad, 2, None, 0, False) == INT32_MIN
    assert "outside the vocabulary" in last_error()
    assert lib.vwn_token_to_piece(m.handle, -1, None, 0, True) == INT32_MIN
    assert lib.vwn_tokenize(None, text, len(text), None, 0, False, False) == INT32_MIN


# ---- llama ----------------------------------------------------------------------------------------

def read_llama2c(path):
    """tok512.bin as llama2.c reads it: (pieces as bytes, scores as float32 values)."""
    with open(path, "rb") as f:
        data = f.read()
    off, pieces, scores = 4, [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        scores.append(score)
        off += n
    return pieces, scores


class Llama2cReference:
    """llama2.c's encode(): dummy space, characters or byte fallback (id = byte + 3), then merge the
    adjacent pair of the highest score (leftmost on ties) while one exists. BOS is not merged."""

    def __init__(self, path):
        self.pieces, self.scores = read_llama2c(path)
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)
        self.threshold = struct.unpack("<f", struct.pack("<f", -1e10))[0]

    def pair(self, a, b):
        i = self.lookup.get(self.pieces[a] + self.pieces[b])
        if i is None or not self.scores[i] > self.threshold:
            return float("-inf"), None
        return self.scores[i], i

    def encode(self, data, bos):
        out = [1] if bos else []
        if not data:
            return out
        s = b" " + data
        ids, i = [], 0
        while i < len(s):
            j = i + 1
            while j < len(s) and (s[j] & 0xC0) == 0x80 and j - i < 4:
                j += 1
            if s[i:j] in self.lookup:
                ids.append(self.lookup[s[i:j]])
            else:
                ids += [b + 3 for b in s[i:j]]
            i = j
        pairs = [self.pair(ids[k], ids[k + 1]) for k in range(len(ids) - 1)]
        while pairs:
            best = max(p[0] for p in pairs)
            if best == float("-inf"):
                break
            k = next(k for k, p in enumerate(pairs) if p[0] == best)     # leftmost
            ids[k:k + 2] = [pairs[k][1]]
            del pairs[k]
            if k < len(pairs):
                pairs[k] = self.pair(ids[k], ids[k + 1])
            if k > 0:
                pairs[k - 1] = self.pair(ids[k - 1], ids[k])
        return out + ids


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    if not os.path.exists(TOK512):
        pytest.skip("no tok512.bin")
    tmp = str(tmp_path_factory.mktemp("llama"))
    ref = Llama2cReference(TOK512)
    model = Model(build_model(tmp, len(ref.pieces), TOK512, "llama"))
    yield ref, model
    model.close()


def test_llama_kind_and_specials(llama):
    ref, m = llama
    assert lib.vwn_tokenizer_get_kind(m.handle) == 2
    assert lib.vwn_token_bos(m.handle) == 1 and lib.vwn_token_eos(m.handle) == 2
    assert lib.vwn_token_is_eog(m.handle, 2) and not lib.vwn_token_is_eog(m.handle, 1)
    assert lib.vwn_token_is_control(m.handle, 1) and not lib.vwn_token_is_control(m.handle, 300)
    assert m.piece(3 + 0x41) == b"A"               # byte tokens give the raw byte
    assert m.tokenize("a", add_special=True)[0] == 1
    assert m.tokenize("", add_special=True) == [1]
    assert m.tokenize("") == []


def test_llama_texts_against_llama2c(llama):
    ref, m = llama
    n_tokens = 0
    for path in DATA_FILES:
        data = read_text(path)[:100_000].encode("utf-8")
        lines = data.split(b"\n")
        for k, line in enumerate(lines):
            if not line:
                continue
            line = line + b"\n"
            expected = ref.encode(line, bos=True)
            ours = m.tokenize(line, add_special=True)
            assert ours == expected, f"{os.path.basename(path)} line {k}: {line[:80]!r}"
            assert m.detokenize(ours, remove_special=True) == line
            n_tokens += len(ours)
    assert n_tokens > 50_000


@pytest.mark.parametrize("text", ADVERSARIAL + INVALID_UTF8)
def test_llama_adversarial(llama, text):
    ref, m = llama
    data = text.encode("utf-8") if isinstance(text, str) else text
    for bos in (False, True):
        ours = m.tokenize(data, add_special=bos)
        assert ours == ref.encode(data, bos)
        assert m.detokenize(ours, remove_special=True) == data
        assert m.detokenize(ours, remove_special=False) == (b"<s>" if bos else b"") + data


def test_llama_long_text_in_one_piece(llama):
    # O(n log n): a whole file at once; the pieces must still decode to the text
    _, m = llama
    data = read_text(min(DATA_FILES, key=os.path.getsize)).encode("utf-8")
    ours = m.tokenize(data, add_special=True)
    assert m.detokenize(ours, remove_special=True) == data

"""vwn -- Python bindings for libvwn, a CPU runtime for Virtual Width Network (VWN) language models.

    import vwn
    with vwn.Model("model.gguf") as model:
        ctx = vwn.Context(model, n_ctx=1024)
        for piece in ctx.generate("Once upon a time", n_predict=64, greedy=True):
            print(piece, end="", flush=True)

The package is a thin ctypes layer over the C ABI of include/vwn.h (the library is bundled inside
the package). Every foreign call releases the GIL, so loading, decoding and generation run without
holding it: several Python threads, each with its own Context over one shared Model, compute in
parallel. Failures raise VwnError, whose .status is a Status mirroring vwn_status and whose message
is the library's (vwn_last_error).

Object lifetimes: a Context keeps its Model alive, and a zero-copy logits view keeps its Context
alive, so close() never frees memory that Python can still reach -- the C objects are freed when
the last of these references goes.
"""
from __future__ import annotations

import atexit
import codecs
import ctypes
import enum
import os
import threading
import weakref
from ctypes import byref, c_double, c_float, c_int32, c_int64, c_uint64, c_void_p
from dataclasses import dataclass, fields
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from . import _lib as L

__version__ = "0.2.0"

__all__ = [
    "Model", "Context", "Sampler", "Generation", "VwnError", "Status", "StopReason", "Simd",
    "TokenizerKind", "TensorType", "ModelInfo", "TensorInfo", "ContextParams", "GenerateStats",
    "Perf", "version", "version_number", "simd_best", "simd_supported", "LIB_PATH",
]

LIB_PATH: str = L.LIB_PATH
"""Path of the libvwn shared library this package loaded."""

TokensLike = Union[Sequence[int], np.ndarray]
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# ---- enums and errors ----------------------------------------------------------------------------


class Status(enum.IntEnum):
    """vwn_status without the VWN_ / VWN_ERR_ prefix."""
    OK = 0
    INVALID_ARG = 1
    BAD_HANDLE = 2
    IO = 3
    BAD_MAGIC = 4
    BAD_VERSION = 5
    TRUNCATED = 6
    BAD_FORMAT = 7
    UNSUPPORTED = 8
    BAD_MODEL = 9
    OUT_OF_MEMORY = 10
    TOKEN_OUT_OF_RANGE = 11
    CONTEXT_FULL = 12
    BATCH_TOO_LARGE = 13
    NOT_KEPT = 14
    BUFFER_TOO_SMALL = 15
    NO_MTP = 16
    NO_DRAFT = 17
    STATE_MISMATCH = 18
    CHECKSUM = 19
    ABORTED = 20
    INTERNAL = 21


class StopReason(enum.IntEnum):
    """vwn_stop_reason: why a generation ended."""
    NONE = 0
    BUDGET = 1
    EOG = 2
    STRING = 3
    CALLBACK = 4
    CONTEXT_FULL = 5


class Simd(enum.IntEnum):
    """vwn_simd: the kernel set a Context computes with."""
    AUTO = -1
    SCALAR = 0
    AVX2 = 1
    AVX512 = 2
    NEON = 3


class TokenizerKind(enum.IntEnum):
    BYTES = 0
    GPT2 = 1
    LLAMA = 2


class TensorType(enum.IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q8_0 = 8
    BF16 = 30


class VwnError(Exception):
    """A libvwn call failed. .status is the Status, .message the library's detailed message."""

    def __init__(self, status: int, message: str) -> None:
        try:
            self.status: Union[Status, int] = Status(status)
        except ValueError:
            self.status = status
        self.message = message
        name = L.vwn_status_string(int(status)).decode("utf-8", "replace")
        super().__init__("%s: %s" % (name, message) if message else name)


def _error(status: int) -> VwnError:
    """The exception of a failed call; must run on the thread that made the call."""
    msg = L.vwn_last_error()
    return VwnError(status, msg.decode("utf-8", "replace") if msg else "")


def _check(status: int) -> None:
    if status:
        raise _error(status)


# ---- library-wide functions ----------------------------------------------------------------------


def version() -> str:
    """The linked library's version string ("MAJOR.MINOR.PATCH")."""
    return L.vwn_version().decode()


def version_number() -> int:
    """(MAJOR << 16) | (MINOR << 8) | PATCH of the linked library."""
    return int(L.vwn_version_number())


def simd_best() -> Simd:
    """The best SIMD level this CPU and build support."""
    return Simd(L.vwn_simd_best())


def simd_supported(level: Union[Simd, int, str]) -> bool:
    """True if the SIMD level can run on this CPU and is compiled in."""
    return bool(L.vwn_simd_supported(int(_simd_value(level))))


def _simd_value(simd: Union[None, Simd, int, str]) -> int:
    if simd is None:
        return int(Simd.AUTO)
    if isinstance(simd, str):
        try:
            return int(Simd[simd.upper()])
        except KeyError:
            raise ValueError("unknown SIMD level %r (auto, scalar, avx2, avx512 or neon)" % simd)
    return int(simd)


_KV_TYPES = {"f32": TensorType.F32, "f16": TensorType.F16, "q8_0": TensorType.Q8_0}


def _kv_type_value(kv_type: Union[str, TensorType, int]) -> int:
    """The vwn_type of a KV cache: "f32" / "f16" / "q8_0" (any case) or TensorType.F32 / F16 /
    Q8_0. Anything else raises ValueError here, before the library sees it."""
    t: Optional[int] = None
    if isinstance(kv_type, str):
        t = _KV_TYPES.get(kv_type.lower())
    elif isinstance(kv_type, (int, np.integer)) and not isinstance(kv_type, (bool, np.bool_)):
        t = int(kv_type) if int(kv_type) in _KV_TYPES.values() else None
    if t is None:
        raise ValueError("unknown KV cache type %r (\"f32\", \"f16\" or \"q8_0\")" % (kv_type,))
    return int(t)


# ---- owned C pointers ----------------------------------------------------------------------------


class _Handle:
    """Owns one C object: frees it when the last Python reference goes. deps are handles that must
    outlive this one (a context's model). Passed to ctypes functions directly (_as_parameter_),
    so a call in flight holds a reference and a concurrent close() cannot free the object under
    it."""
    __slots__ = ("ptr", "_free", "_deps", "__weakref__")

    def __init__(self, ptr: Optional[int], free: Callable[[int], None], deps: Tuple[Any, ...] = ()):
        if not ptr:
            raise VwnError(Status.INTERNAL, "the library returned success and a NULL object")
        self.ptr: Optional[int] = ptr
        self._free = free
        self._deps = deps

    @property
    def _as_parameter_(self) -> c_void_p:
        return c_void_p(self.ptr)

    def __del__(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr:
            try:
                self._free(ptr)
            except Exception:  # interpreter shutdown
                pass


class _ArrayView:
    """Exposes a C float buffer to numpy without copying and keeps its owner alive (numpy makes
    this object the array's .base)."""
    __slots__ = ("__array_interface__", "_owner")

    def __init__(self, address: Optional[int], shape: Tuple[int, ...], owner: Any) -> None:
        self.__array_interface__ = {"shape": shape, "typestr": "<f4", "data": (address, True),
                                    "version": 3}
        self._owner = owner


def _tokens_array(tokens: Union[int, TokensLike]) -> np.ndarray:
    """tokens as a contiguous int32 array; ids that do not even fit int32 are reported as out of
    range (the library's own check covers the rest)."""
    if isinstance(tokens, (int, np.integer)):
        tokens = [int(tokens)]
    a = np.asarray(tokens)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.dtype == np.int32:
        return np.ascontiguousarray(a)
    if a.size == 0:
        return np.zeros(0, dtype=np.int32)
    if a.dtype.kind not in "iu":
        if a.dtype == object:
            a = np.array([int(t) for t in a.tolist()], dtype=np.int64)
        else:
            raise TypeError("tokens must be integers, got an array of %s" % a.dtype)
    bad = np.nonzero((a < -2 ** 31) | (a > 2 ** 31 - 1))[0]
    if bad.size:
        i = int(bad[0])
        raise VwnError(Status.TOKEN_OUT_OF_RANGE,
                       "token %d at index %d does not fit an int32 token id" % (int(a[i]), i))
    return a.astype(np.int32)


def _i32p(a: np.ndarray) -> Any:
    return a.ctypes.data_as(L._I32P)


def _f32(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1)


# ---- model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """vwn_model_info: the model's configuration."""
    n_vocab: int
    n_embd: int
    n_layer: int
    ghc_m: int
    ghc_n: int
    n_embd_wide: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    mtp_depth: int
    max_seq_len: int
    ghc_dynamic: bool
    wide_embedding: bool
    tied_head: bool
    output_group_norm: bool
    rope_theta: float
    rms_norm_eps: float
    group_norm_eps: float
    weight_type: int
    n_params: int
    file_size: int
    weight_bytes_per_token: int


@dataclass(frozen=True)
class TensorInfo:
    """vwn_tensor_info; shape is numpy order (ne reversed: the row length last)."""
    name: str
    type: int
    shape: Tuple[int, ...]
    offset: int
    n_bytes: int

    @property
    def type_name(self) -> str:
        return L.vwn_type_name(self.type).decode()


class Model:
    """A loaded GGUF model (vwn_model). Immutable and thread-safe: share one Model between any
    number of Contexts and threads. Use as a context manager or call close()."""

    def __init__(self, path: PathLike, use_mmap: bool = True, verify_tensors: bool = False) -> None:
        """Loads the model file at path (mapped into memory with use_mmap, else read into memory;
        verify_tensors scans every float tensor for NaN/Inf). Raises VwnError (IO, BAD_MAGIC,
        BAD_VERSION, TRUNCATED, BAD_FORMAT, UNSUPPORTED, BAD_MODEL, OUT_OF_MEMORY)."""
        self._h: Optional[_Handle] = None
        self.path: Union[str, bytes] = os.fspath(path)
        params = L.vwn_model_default_params()
        params.use_mmap = bool(use_mmap)
        params.verify_tensors = bool(verify_tensors)
        out = c_void_p()
        st = L.vwn_model_load(os.fsencode(self.path), byref(params), byref(out))
        if st:
            raise _error(st)
        self._h = _Handle(out.value, L.vwn_model_free)
        info = L.vwn_model_info()
        _check(L.vwn_model_get_info(self._h.ptr, byref(info)))
        self._info = ModelInfo(**{f.name: getattr(info, f.name) for f in fields(ModelInfo)})
        self._bos = int(L.vwn_token_bos(self._h.ptr))
        self._eos = int(L.vwn_token_eos(self._h.ptr))

    # lifetime
    @property
    def _ptr(self) -> _Handle:
        """The live handle (raises if closed); pass it to the C functions as the object."""
        h = self._h
        if h is None or not h.ptr:
            raise ValueError("vwn.Model is closed")
        return h

    def close(self) -> None:
        """Releases the model. Contexts made from it keep it alive until they are closed too."""
        self._h = None

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._h is None:
            return "<vwn.Model %r (closed)>" % self.path
        i = self._info
        return ("<vwn.Model %r V=%d D=%d L=%d m=%d n=%d mtp=%d>"
                % (self.path, i.n_vocab, i.n_embd, i.n_layer, i.ghc_m, i.ghc_n, i.mtp_depth))

    # configuration
    @property
    def info(self) -> ModelInfo:
        """Every field of vwn_model_info."""
        return self._info

    n_vocab = property(lambda self: self._info.n_vocab, doc="V, the vocabulary size")
    n_embd = property(lambda self: self._info.n_embd, doc="D, the backbone width")
    n_embd_wide = property(lambda self: self._info.n_embd_wide, doc="D' = n * D / m")
    n_layer = property(lambda self: self._info.n_layer, doc="L, the number of layers")
    ghc_m = property(lambda self: self._info.ghc_m, doc="m of the GHC")
    ghc_n = property(lambda self: self._info.ghc_n, doc="n of the GHC")
    n_head = property(lambda self: self._info.n_head, doc="query heads")
    n_head_kv = property(lambda self: self._info.n_head_kv, doc="key/value heads")
    head_dim = property(lambda self: self._info.head_dim, doc="head dimension")
    n_ff = property(lambda self: self._info.n_ff, doc="F, the feed-forward width")
    mtp_depth = property(lambda self: self._info.mtp_depth, doc="k, the number of MTP modules")
    max_seq_len = property(lambda self: self._info.max_seq_len, doc="the trained context length")
    n_params = property(lambda self: self._info.n_params, doc="parameters in all tensors")

    @property
    def packed_bytes(self) -> int:
        """Bytes of weights held repacked for this CPU's kernels (F32/F16/BF16 on AVX-512, Q8_0 on
        AVX-512 VNNI; 0 if none)."""
        return int(L.vwn_model_packed_bytes(self._ptr))

    def meta(self, key: str) -> Optional[str]:
        """A metadata value as text (numbers in decimal, arrays as "[array of N <type>]"), or None
        if the key is absent."""
        k = key.encode()
        n = L.vwn_model_meta(self._ptr, k, None, 0)
        if n < 0:
            return None
        buf = ctypes.create_string_buffer(n + 1)
        L.vwn_model_meta(self._ptr, k, buf, n + 1)
        return buf.raw[:n].decode("utf-8", "replace")

    def meta_keys(self) -> List[str]:
        """Every metadata key, in file order."""
        p = self._ptr
        return [L.vwn_model_meta_key(p, i).decode("utf-8", "replace")
                for i in range(L.vwn_model_meta_count(p))]

    def metadata(self) -> Dict[str, str]:
        """All metadata as {key: text}."""
        return {k: self.meta(k) or "" for k in self.meta_keys()}

    def tensors(self) -> List[TensorInfo]:
        """The tensor table of the file."""
        p = self._ptr
        out = []
        ti = L.vwn_tensor_info()
        for i in range(L.vwn_model_tensor_count(p)):
            _check(L.vwn_model_tensor_info(p, i, byref(ti)))
            shape = tuple(int(ti.ne[d]) for d in range(ti.n_dims))[::-1]
            out.append(TensorInfo(ti.name.decode("utf-8", "replace"), int(ti.type), shape,
                                  int(ti.offset), int(ti.n_bytes)))
        return out

    def tensor(self, name: str) -> np.ndarray:
        """A whole tensor dequantized to a new float32 array (numpy shape order)."""
        for t in self.tensors():
            if t.name == name:
                a = np.empty(t.shape, dtype=np.float32)
                _check(L.vwn_model_tensor_read_f32(self._ptr, name.encode(),
                                                   a.ctypes.data_as(L._F32P), a.size))
                return a
        raise VwnError(Status.INVALID_ARG,
                       "no tensor named '%s' in %s" % (name, os.fsdecode(self.path)))

    # tokenizer
    @property
    def tokenizer_kind(self) -> TokenizerKind:
        return TokenizerKind(L.vwn_tokenizer_get_kind(self._ptr))

    @property
    def bos(self) -> int:
        """The BOS token id, -1 if the model has none."""
        return self._bos

    @property
    def eos(self) -> int:
        """The EOS token id, -1 if the model has none."""
        return self._eos

    def is_eog(self, token: int) -> bool:
        """True if token ends a generation (EOS or another end-of-generation control token)."""
        return bool(L.vwn_token_is_eog(self._ptr, int(token)))

    def is_control(self, token: int) -> bool:
        """True if token is a control/special token."""
        return bool(L.vwn_token_is_control(self._ptr, int(token)))

    def tokenize(self, text: Union[str, bytes], add_special: bool = True,
                 parse_special: bool = False) -> List[int]:
        """Text (str, encoded as UTF-8, or any bytes) -> token ids. add_special prepends BOS if the
        model asks for it; parse_special recognises control-token texts like "<|endoftext|>"."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if len(data) > 2 ** 31 - 1:
            raise VwnError(Status.INVALID_ARG, "text of %d bytes is too long" % len(data))
        p = self._ptr
        cap = len(data) + 8
        for _ in range(2):
            buf = np.empty(cap, dtype=np.int32)
            n = L.vwn_tokenize(p, data, len(data), _i32p(buf), cap, add_special, parse_special)
            if n == L.INT32_MIN:
                raise _error(Status(L.vwn_last_status() or Status.INVALID_ARG))
            if n >= 0:
                return buf[:n].tolist()
            cap = -n
        raise VwnError(Status.INTERNAL, "the tokenizer disagreed with itself on the token count")

    def _text_call(self, fn: Callable[[Any, int], int], tokens: Optional[np.ndarray],
                   guess: int) -> bytes:
        cap = max(guess, 16)
        for _ in range(2):
            buf = ctypes.create_string_buffer(cap)
            n = fn(buf, cap)
            if n == L.INT32_MIN:  # the library says why (vwn_last_status)
                raise _error(Status(L.vwn_last_status() or Status.INVALID_ARG))
            if n >= 0:
                return buf.raw[:n]
            cap = -n
        raise VwnError(Status.INTERNAL, "the tokenizer disagreed with itself on the text size")

    def detokenize_bytes(self, tokens: TokensLike, remove_special: bool = True) -> bytes:
        """Token ids -> the exact bytes of their text. remove_special drops BOS/EOS and other
        control tokens (else their text is rendered)."""
        a = _tokens_array(tokens)
        p = self._ptr
        return self._text_call(lambda buf, cap: L.vwn_detokenize(p, _i32p(a), a.size, buf, cap,
                                                                 remove_special),
                               a, 8 * a.size + 16)

    def detokenize(self, tokens: TokensLike, remove_special: bool = True,
                   errors: str = "replace") -> str:
        """Token ids -> text: detokenize_bytes decoded as UTF-8 (invalid bytes become U+FFFD with
        the default errors="replace")."""
        return self.detokenize_bytes(tokens, remove_special).decode("utf-8", errors)

    def token_to_piece(self, token: int, special: bool = True) -> bytes:
        """The bytes of one token (possibly a partial UTF-8 character). special renders control
        tokens' text (else they give b"")."""
        p = self._ptr
        t = int(token)
        a = np.array([t], dtype=np.int64)
        return self._text_call(lambda buf, cap: L.vwn_token_to_piece(p, t, buf, cap, special),
                               a, 64)

    # contexts
    def context(self, **kwargs: Any) -> "Context":
        """Context(self, **kwargs)."""
        return Context(self, **kwargs)


# ---- sampler -------------------------------------------------------------------------------------


class Sampler:
    """A token sampler (vwn_sampler): the chain penalties -> top-k -> temperature -> top-p ->
    min-p -> draw, with its own seeded RNG. Used by one thread at a time."""

    def __init__(self, temperature: float = 0.8, top_k: int = 40, top_p: float = 0.95,
                 min_p: float = 0.05, repeat_penalty: float = 1.0, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0, penalty_last_n: int = 64, seed: int = 0,
                 greedy: bool = False) -> None:
        """greedy (or temperature <= 0) gives argmax sampling, ties to the lowest id. top_k <= 0,
        top_p >= 1, min_p <= 0 and repeat_penalty == 1 turn those stages off."""
        self._h: Optional[_Handle] = None
        p = L.vwn_sampler_default_params()
        p.seed = int(seed) & (2 ** 64 - 1)
        p.temperature = 0.0 if greedy else float(temperature)
        p.top_k = int(top_k)
        p.top_p = float(top_p)
        p.min_p = float(min_p)
        p.repeat_penalty = float(repeat_penalty)
        p.frequency_penalty = float(frequency_penalty)
        p.presence_penalty = float(presence_penalty)
        p.penalty_last_n = int(penalty_last_n)
        out = c_void_p()
        st = L.vwn_sampler_new(byref(p), byref(out))
        if st:
            raise _error(st)
        self._h = _Handle(out.value, L.vwn_sampler_free)

    @property
    def _ptr(self) -> _Handle:
        """The live handle (raises if closed); pass it to the C functions as the object."""
        h = self._h
        if h is None or not h.ptr:
            raise ValueError("vwn.Sampler is closed")
        return h

    def close(self) -> None:
        self._h = None

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def is_greedy(self) -> bool:
        return bool(L.vwn_sampler_is_greedy(self._ptr))

    def sample(self, logits: Any) -> int:
        """Draws a token from the logits (does not call accept)."""
        x = _f32(logits)
        t = c_int32()
        _check(L.vwn_sampler_sample(self._ptr, x.ctypes.data_as(L._F32P), x.size, byref(t)))
        return t.value

    def probs(self, logits: Any) -> np.ndarray:
        """The distribution the sampler draws from for these logits and its current history."""
        x = _f32(logits)
        out = np.empty_like(x)
        _check(L.vwn_sampler_probs(self._ptr, x.ctypes.data_as(L._F32P), x.size,
                                   out.ctypes.data_as(L._F32P)))
        return out

    def draw(self, probs: Any) -> int:
        """Draws a token from an explicit distribution with the sampler's RNG."""
        x = _f32(probs)
        t = c_int32()
        _check(L.vwn_sampler_draw(self._ptr, x.ctypes.data_as(L._F32P), x.size, byref(t)))
        return t.value

    def uniform(self) -> float:
        """A uniform draw in [0, 1) from the sampler's RNG."""
        u = c_double()
        _check(L.vwn_sampler_uniform(self._ptr, byref(u)))
        return u.value

    def accept(self, token: int) -> None:
        """Records a kept token in the history the penalties look at."""
        _check(L.vwn_sampler_accept(self._ptr, int(token)))

    def reset(self) -> None:
        """Forgets the history and reseeds the RNG with the original seed."""
        _check(L.vwn_sampler_reset(self._ptr))


# ---- context -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextParams:
    """The parameters a context was made with, after defaults were applied."""
    n_ctx: int
    n_batch: int
    n_threads: int
    logits_all: bool
    mtp: bool
    simd: int
    memory_limit: int
    kv_type: TensorType = TensorType.F32
    """Element type of the KV caches: TensorType.F32, TensorType.F16 or TensorType.Q8_0."""


@dataclass(frozen=True)
class Perf:
    """vwn_perf: decode time so far, in microseconds."""
    n_eval_tokens: int
    n_eval_calls: int
    t_eval_us: float
    t_ghc_us: float
    t_mtp_us: float


@dataclass(frozen=True)
class GenerateStats:
    """vwn_generate_stats of one generation."""
    n_prompt: int
    n_generated: int
    stop_reason: StopReason
    t_prompt_us: float
    t_generate_us: float
    n_drafted: int
    n_accepted: int
    n_verify: int
    accepted_at_depth: Tuple[int, ...]
    drafted_at_depth: Tuple[int, ...]
    t_draft_us: float
    t_verify_us: float

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of generation time."""
        return self.n_generated / (self.t_generate_us * 1e-6) if self.t_generate_us > 0 else 0.0

    @staticmethod
    def _from_c(s: Any) -> "GenerateStats":
        try:
            reason: Any = StopReason(s.stop_reason)
        except ValueError:
            reason = int(s.stop_reason)
        return GenerateStats(s.n_prompt, s.n_generated, reason, s.t_prompt_us, s.t_generate_us,
                             s.n_drafted, s.n_accepted, s.n_verify, tuple(s.accepted_at_depth),
                             tuple(s.drafted_at_depth), s.t_draft_us, s.t_verify_us)


class Context:
    """A decoding context over a Model (vwn_context): KV caches, scratch and outputs.

    One thread at a time: a Context refuses (RuntimeError) a call made while another thread or a
    running generate() iterator is using it. Use one Context per thread; they can share a Model.
    Compute releases the GIL.
    """

    def __init__(self, model: Model, n_ctx: int = 0, n_batch: int = 512, n_threads: int = 0,
                 logits_all: bool = False, mtp: bool = True,
                 simd: Union[None, Simd, int, str] = None, memory_limit: int = 0,
                 abort_callback: Optional[Callable[[], bool]] = None,
                 kv_type: Union[str, TensorType] = "f32") -> None:
        """n_ctx: context length in tokens (0: the model's max_seq_len). n_batch: most tokens one
        C decode call processes (a longer decode() is split by the library; it also bounds the
        positions logits_all keeps per call). n_threads: compute threads (0: number of cores, at
        most 8). logits_all: keep the logits of every position of a decode, not only the last.
        mtp: run the MTP modules during decode (ignored for models without them). simd: "auto",
        "scalar", "avx2", "avx512", "neon" or a Simd (None: auto). memory_limit: refuse to
        allocate more bytes than this (0: no limit). abort_callback: called between units of work
        during decode (with the GIL); return True to abort the call (VwnError ABORTED, the context
        is rolled back). kv_type: element type of the KV caches, "f32" (default, exact), "f16"
        (half the cache memory and the bytes attention reads; keys and values rounded to fp16 when
        stored) or "q8_0" (0.27x the memory of f32: keys and values quantized per 32 values as
        ggml's Q8_0, an fp16 scale and 32 int8; a model whose head size is not a multiple of 32
        refuses it with VwnError UNSUPPORTED), or a TensorType F32 / F16 / Q8_0; anything else
        raises ValueError. Saved states are f32 whatever the type and load into a context of any
        type."""
        self._h: Optional[_Handle] = None
        self.model = model
        kv = _kv_type_value(kv_type)  # ValueError before anything is allocated
        self._busy = threading.Lock()
        self._gen: Optional["weakref.ReferenceType[_GenState]"] = None
        p = L.vwn_context_default_params()
        p.n_ctx = int(n_ctx)
        p.n_batch = int(n_batch)
        if n_threads:
            p.n_threads = int(n_threads)
        p.logits_all = bool(logits_all)
        p.mtp = bool(mtp)
        p.simd = _simd_value(simd)
        p.memory_limit = int(memory_limit)
        p.kv_type = kv
        self._abort_cb = None
        if abort_callback is not None:
            def _abort(user: Any) -> bool:
                try:
                    return bool(abort_callback())
                except BaseException:
                    return True
            self._abort_cb = L.vwn_abort_callback(_abort)
            p.abort_callback = self._abort_cb
        out = c_void_p()
        mh = model._h
        if mh is None:
            raise ValueError("vwn.Model is closed")
        st = L.vwn_context_new(mh.ptr, byref(p), byref(out))
        if st:
            raise _error(st)
        # the callback object lives as long as the C context (it is one of the handle's deps)
        self._h = _Handle(out.value, L.vwn_context_free, (mh,))
        if self._abort_cb is not None:
            self._h._deps = (mh, self._abort_cb)
        q = L.vwn_context_get_params(self._h.ptr)
        try:
            kv_out: Any = TensorType(q.kv_type)
        except ValueError:
            kv_out = int(q.kv_type)
        self._params = ContextParams(q.n_ctx, q.n_batch, q.n_threads, bool(q.logits_all),
                                     bool(q.mtp), q.simd, q.memory_limit, kv_out)
        self._n_vocab = model.n_vocab
        self.last_stats: Optional[GenerateStats] = None
        """Statistics of the latest generate*/Generation that finished."""

    # ---- lifetime and locking
    @property
    def _ptr(self) -> _Handle:
        """The live handle (raises if closed); pass it to the C functions as the object."""
        h = self._h
        if h is None or not h.ptr:
            raise ValueError("vwn.Context is closed")
        return h

    def _acquire(self) -> _Handle:
        ptr = self._ptr
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("vwn.Context is in use by a running generate() iterator or another "
                               "thread (close the iterator first; use one Context per thread)")
        return ptr

    def close(self) -> None:
        """Stops a running generate() iterator and releases the context (its memory is freed once
        no logits view refers to it any more)."""
        state = self._gen() if self._gen is not None else None
        if state is not None:
            state.stop_and_join()
        self._h = None

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._h is None:
            return "<vwn.Context (closed)>"
        return "<vwn.Context n_ctx=%d length=%d>" % (self._params.n_ctx, self.length)

    # ---- parameters and state
    @property
    def params(self) -> ContextParams:
        return self._params

    @property
    def n_ctx(self) -> int:
        return self._params.n_ctx

    @property
    def n_batch(self) -> int:
        return self._params.n_batch

    @property
    def n_threads(self) -> int:
        return self._params.n_threads

    @n_threads.setter
    def n_threads(self, n: int) -> None:
        ptr = self._acquire()
        try:
            _check(L.vwn_context_set_threads(ptr, int(n)))
        finally:
            self._busy.release()
        self._params = ContextParams(**{**self._params.__dict__, "n_threads": int(n)})

    @property
    def length(self) -> int:
        """Tokens in the main cache (the next position)."""
        return int(L.vwn_context_length(self._ptr))

    def __len__(self) -> int:
        return self.length

    def mtp_length(self, j: int) -> int:
        """Positions in MTP module j's cache (<= length - j)."""
        n = L.vwn_context_mtp_length(self._ptr, int(j))
        if n < 0:
            raise VwnError(Status.INVALID_ARG, "no MTP module %d in this context" % j)
        return int(n)

    @property
    def tokens(self) -> List[int]:
        """A copy of the tokens in the cache."""
        ptr = self._ptr
        n = L.vwn_context_length(ptr)
        if n <= 0:
            return []
        return L.vwn_context_tokens(ptr)[:n]

    # ---- decoding
    def decode(self, tokens: Union[int, TokensLike]) -> None:
        """Appends tokens (one id or a sequence) at the next positions and runs the model over
        them. Raises VwnError TOKEN_OUT_OF_RANGE / CONTEXT_FULL (nothing appended), ABORTED
        (rolled back), BATCH_TOO_LARGE, OUT_OF_MEMORY."""
        a = _tokens_array(tokens)
        ptr = self._acquire()
        try:
            _check(L.vwn_decode(ptr, _i32p(a), a.size))
        finally:
            self._busy.release()

    def truncate(self, n_keep: int) -> None:
        """Removes every position >= n_keep from the main and MTP caches."""
        ptr = self._acquire()
        try:
            _check(L.vwn_context_truncate(ptr, int(n_keep)))
        finally:
            self._busy.release()

    def clear(self) -> None:
        """Empties the context."""
        ptr = self._acquire()
        try:
            _check(L.vwn_context_clear(ptr))
        finally:
            self._busy.release()

    # ---- outputs
    def _view(self, p: Any, owner: _Handle) -> np.ndarray:
        addr = ctypes.cast(p, c_void_p).value
        return np.asarray(_ArrayView(addr, (self._n_vocab,), owner))

    def logits(self, pos: int = -1) -> np.ndarray:
        """Main-model logits (n_vocab float32) at absolute position pos (-1: the last), computed by
        the latest decode. A ZERO-COPY, read-only view of the context's C buffer: it is valid
        until the next call that changes the context (decode, generate*, draft, verify, truncate,
        clear, load_state), which overwrites it in place -- use logits_copy() to keep values.
        The view keeps the context's memory alive, so it never dangles. Raises VwnError NOT_KEPT
        for a position the latest decode did not keep (see logits_all)."""
        ptr = self._acquire()
        try:
            p = L._F32P()
            _check(L.vwn_get_logits(ptr, int(pos), byref(p)))
            return self._view(p, ptr)
        finally:
            self._busy.release()

    def logits_copy(self, pos: int = -1) -> np.ndarray:
        """logits(pos) copied into a new, writable array."""
        return self.logits(pos).copy()

    def all_logits(self) -> np.ndarray:
        """A copy of the logits of every position the latest decode kept, as [n, n_vocab] for the
        positions length - n .. length - 1 (with logits_all: every position of the last decode
        call, after a decode() longer than n_batch: those of its last chunk)."""
        ptr = self._acquire()
        try:
            rows = []
            p = L._F32P()
            pos = L.vwn_context_length(ptr) - 1
            st = L.vwn_get_logits(ptr, pos, byref(p))
            if st:
                raise _error(st)
            while st == 0:
                rows.append(np.ctypeslib.as_array(p, (self._n_vocab,)).copy())
                pos -= 1
                st = L.vwn_get_logits(ptr, pos, byref(p)) if pos >= 0 else 1
            return np.stack(rows[::-1])
        finally:
            self._busy.release()

    def mtp_logits(self, j: int, pos: int = -1) -> np.ndarray:
        """Logits of MTP module j (1..mtp_depth) at absolute position pos (they predict token
        pos + j + 1); pos = -1: the last position module j reached. A zero-copy read-only view
        with the same validity as logits(). Raises VwnError NO_MTP / NOT_KEPT."""
        ptr = self._acquire()
        try:
            p = L._F32P()
            _check(L.vwn_get_mtp_logits(ptr, int(j), int(pos), byref(p)))
            return self._view(p, ptr)
        finally:
            self._busy.release()

    def perf(self) -> Perf:
        """Decode time so far."""
        s = L.vwn_perf()
        _check(L.vwn_context_get_perf(self._ptr, byref(s)))
        return Perf(s.n_eval_tokens, s.n_eval_calls, s.t_eval_us, s.t_ghc_us, s.t_mtp_us)

    def reset_perf(self) -> None:
        _check(L.vwn_context_reset_perf(self._ptr))

    # ---- speculative decoding, low level
    def draft(self, next_token: int, depth: int,
              sampler: Optional[Sampler] = None) -> Tuple[List[int], List[float]]:
        """Runs the MTP modules after the chosen next token (not yet decoded) and returns up to
        depth draft tokens with their draft probabilities (greedy without a sampler)."""
        depth = int(depth)
        if depth < 1:
            raise VwnError(Status.INVALID_ARG, "draft depth %d is below 1" % depth)
        drafts = (c_int32 * depth)()
        probs = (c_float * depth)()
        n = c_int32()
        ptr = self._acquire()
        try:
            _check(L.vwn_draft(ptr, int(next_token), depth, sampler._ptr if sampler else None,
                               drafts, probs, byref(n)))
        finally:
            self._busy.release()
        return list(drafts[:n.value]), list(probs[:n.value])

    def verify(self, sampler: Optional[Sampler] = None) -> List[int]:
        """Decodes [next_token, drafts...] of the pending draft in one batch and returns the kept
        tokens: next_token, the accepted drafts and one more target token (the correction or the
        bonus token), which is NOT yet decoded. Raises VwnError NO_DRAFT without a pending draft."""
        out = (c_int32 * (max(self.model.mtp_depth, 16) + 2))()
        n = c_int32()
        ptr = self._acquire()
        try:
            _check(L.vwn_verify(ptr, sampler._ptr if sampler else None, out, byref(n)))
        finally:
            self._busy.release()
        return list(out[:n.value])

    # ---- saved state
    def save_state(self) -> bytes:
        """The context's state (caches, positions, tokens) as bytes."""
        ptr = self._acquire()
        try:
            size = c_uint64()
            _check(L.vwn_state_size(ptr, byref(size)))
            buf = ctypes.create_string_buffer(max(size.value, 1))
            written = c_uint64()
            _check(L.vwn_state_save(ptr, buf, size.value, byref(written)))
            return buf.raw[:written.value]
        finally:
            self._busy.release()

    def load_state(self, data: bytes) -> None:
        """Restores a state from save_state (same model, a large enough context)."""
        data = bytes(data)
        ptr = self._acquire()
        try:
            _check(L.vwn_state_load(ptr, data, len(data)))
        finally:
            self._busy.release()

    def save_state_file(self, path: PathLike) -> None:
        ptr = self._acquire()
        try:
            _check(L.vwn_state_save_file(ptr, os.fsencode(path)))
        finally:
            self._busy.release()

    def load_state_file(self, path: PathLike) -> None:
        ptr = self._acquire()
        try:
            _check(L.vwn_state_load_file(ptr, os.fsencode(path)))
        finally:
            self._busy.release()

    # ---- generation
    def generate(self, prompt: Union[str, bytes, TokensLike], n_predict: int = 128,
                 temperature: float = 0.8, top_k: int = 40, top_p: float = 0.95,
                 min_p: float = 0.05, repeat_penalty: float = 1.0, seed: int = 0,
                 greedy: bool = False,
                 stop: Union[None, str, bytes, Sequence[Union[str, bytes]]] = None,
                 spec_depth: int = 0, *, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0, penalty_last_n: int = 64,
                 sampler: Optional[Sampler] = None, stop_at_eog: bool = True,
                 add_special: bool = True, parse_special: bool = False,
                 as_bytes: bool = False, stream_interval: float = 0.0) -> "Generation":
        """Streams generated text: an iterator of str pieces (bytes with as_bytes) yielded as the
        library produces them.

        The whole loop -- prompt evaluation, decoding, sampling, stop strings -- runs in C
        (vwn_generate) on a background thread without the GIL. Its token callback is C code too
        (the bundled libvwnpy) that appends each kept token's text to a buffer which this
        iterator drains, so there is no per-token Python round trip: the C loop never waits for
        the GIL or the consumer. A piece may hold the text of several tokens (those produced
        while the consumer was busy, or within 1 ms of each other). Stopping early (break,
        close(), leaving a `with` block, or the iterator being garbage collected) stops the C
        loop at its next token and joins the thread. The library runs ahead of a slow consumer,
        so after an early stop the context may hold a few more generated tokens than were
        yielded (.tokens of the iterator lists them all; truncate() rewinds).

        prompt: text (tokenized with add_special / parse_special), or token ids; [] continues
        the context. n_predict: token budget (< 0: until end-of-generation or a full context).
        Sampling: temperature/top_k/top_p/min_p/penalties/seed build a Sampler for this call;
        greedy=True (or temperature <= 0) takes the argmax; sampler= uses your Sampler instead.
        stop: strings (str or bytes) that end the generation (not emitted). spec_depth:
        speculative decoding with the MTP heads (0 off, 1..mtp_depth fixed depth, -1 adaptive);
        the output follows the same distribution (identical text when greedy). as_bytes: yield
        the exact bytes instead of str. stream_interval: 0 (default) hands each piece over as
        soon as it is produced; > 0 hands over the text at most every stream_interval seconds,
        which saves thread wake-ups -- worth it when the compute threads occupy every core, where
        each wake-up of the consuming thread can preempt them. Errors raise VwnError from the
        iterator.
        """
        plan = _GenPlan(self, prompt, n_predict, temperature, top_k, top_p, min_p, repeat_penalty,
                        frequency_penalty, presence_penalty, penalty_last_n, seed, greedy, stop,
                        spec_depth, sampler, stop_at_eog, add_special, parse_special)
        return Generation(self, plan, as_bytes, stream_interval)

    def generate_bytes(self, prompt: Union[str, bytes, TokensLike], n_predict: int = 128,
                       **kwargs: Any) -> bytes:
        """Runs the generation to its end and returns the exact bytes of the generated text.
        The same C loop as generate(), drained in large batches (no Python code runs per token;
        Ctrl-C still stops it within 0.1 s). Keyword arguments as generate()."""
        return self._run_to_end(prompt, n_predict, kwargs)[0]

    def generate_text(self, prompt: Union[str, bytes, TokensLike], n_predict: int = 128,
                      **kwargs: Any) -> str:
        """generate_bytes() decoded as UTF-8 (errors="replace"). Arguments as generate()."""
        return self.generate_bytes(prompt, n_predict, **kwargs).decode("utf-8", "replace")

    def generate_tokens(self, prompt: Union[str, bytes, TokensLike], n_predict: int = 128,
                        **kwargs: Any) -> List[int]:
        """Runs the generation to its end and returns the generated token ids (stop strings
        apply to the text as in generate(); the token that completes a stop string is included).
        Arguments as generate()."""
        return self._run_to_end(prompt, n_predict, kwargs)[1]

    def _run_to_end(self, prompt: Any, n_predict: int,
                    kwargs: Dict[str, Any]) -> Tuple[bytes, List[int]]:
        kwargs.pop("as_bytes", None)
        plan = _GenPlan.from_kwargs(self, prompt, n_predict, kwargs)
        g = Generation(self, plan, as_bytes=True, interval=_INTERVAL_TO_END)
        try:
            text = b"".join(g)
        finally:
            g.close()
        return text, g.tokens


# ---- generation --------------------------------------------------------------------------------


class _GenPlan:
    """The C arguments of one generation (and the objects they point into)."""

    def __init__(self, ctx: Context, prompt: Any, n_predict: int, temperature: float, top_k: int,
                 top_p: float, min_p: float, repeat_penalty: float, frequency_penalty: float,
                 presence_penalty: float, penalty_last_n: int, seed: int, greedy: bool,
                 stop: Union[None, str, bytes, Sequence[Union[str, bytes]]], spec_depth: int,
                 sampler: Optional[Sampler], stop_at_eog: bool, add_special: bool,
                 parse_special: bool) -> None:
        self.own_sampler: Optional[Sampler] = None
        if sampler is None and not greedy and temperature > 0:
            sampler = self.own_sampler = Sampler(temperature, top_k, top_p, min_p, repeat_penalty,
                                                 frequency_penalty, presence_penalty,
                                                 penalty_last_n, seed)
        self.sampler = sampler
        if isinstance(stop, (str, bytes)):
            stop = [stop]
        self.stop_bytes = [s.encode("utf-8") if isinstance(s, str) else bytes(s)
                           for s in (stop or [])]
        for s in self.stop_bytes:
            if b"\0" in s:
                raise ValueError("stop strings cannot contain NUL characters")
        self.stop_arr = (ctypes.c_char_p * max(len(self.stop_bytes), 1))(*self.stop_bytes)
        gp = L.vwn_generate_default_params()
        gp.n_predict = int(n_predict)
        self.sampler_handle = sampler._ptr if sampler is not None else None  # kept alive
        gp.sampler = self.sampler_handle.ptr if self.sampler_handle is not None else None
        gp.stop = ctypes.cast(self.stop_arr, ctypes.POINTER(ctypes.c_char_p))
        gp.n_stop = len(self.stop_bytes)
        gp.stop_at_eog = bool(stop_at_eog)
        gp.add_special = bool(add_special)
        gp.parse_special = bool(parse_special)
        gp.spec_depth = int(spec_depth)
        self.gp = gp
        self.text: Optional[bytes] = None
        self.tokens: Optional[np.ndarray] = None
        if isinstance(prompt, (str, bytes)):
            text = prompt.encode("utf-8") if isinstance(prompt, str) else prompt
            if b"\0" in text:
                # vwn_generate takes a C string: tokenize here so any bytes are allowed
                self.tokens = _tokens_array(ctx.model.tokenize(text, add_special, parse_special))
            else:
                self.text = text
        else:
            self.tokens = _tokens_array(prompt)

    _KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "frequency_penalty",
             "presence_penalty", "penalty_last_n", "seed", "greedy", "stop", "spec_depth",
             "sampler", "stop_at_eog", "add_special", "parse_special")
    _DEFAULTS: Dict[str, Any] = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05,
                                     repeat_penalty=1.0, frequency_penalty=0.0,
                                     presence_penalty=0.0, penalty_last_n=64, seed=0,
                                     greedy=False, stop=None, spec_depth=0, sampler=None,
                                     stop_at_eog=True, add_special=True, parse_special=False)

    @classmethod
    def from_kwargs(cls, ctx: Context, prompt: Any, n_predict: int,
                    kwargs: Dict[str, Any]) -> "_GenPlan":
        unknown = set(kwargs) - set(cls._KEYS)
        if unknown:
            raise TypeError("unexpected keyword argument(s): %s" % ", ".join(sorted(unknown)))
        a = {**cls._DEFAULTS, **kwargs}
        return cls(ctx, prompt, n_predict, *(a[k] for k in cls._KEYS))

    def run(self, ctx_ptr: _Handle, callback: Any,
            user_data: Optional[int] = None) -> Tuple[int, GenerateStats]:
        """Calls vwn_generate(_tokens) on this thread (the GIL is released inside)."""
        gp = self.gp
        gp.callback = callback
        gp.user_data = user_data
        stats = L.vwn_generate_stats()
        if self.text is not None:
            st = L.vwn_generate(ctx_ptr, self.text, byref(gp), byref(stats))
        else:
            t = self.tokens
            assert t is not None
            st = L.vwn_generate_tokens(ctx_ptr, _i32p(t), t.size, byref(gp), byref(stats))
        gp.callback = L.vwn_token_callback()
        return st, GenerateStats._from_c(stats)

    def close(self) -> None:
        if self.own_sampler is not None:
            self.own_sampler.close()
            self.own_sampler = None


class _GenState:
    """What the background thread shares with a Generation (and nothing that refers back to the
    Generation, so dropping the iterator runs its __del__ and stops the thread). The pieces travel
    through a libvwnpy stream: its C callback never takes the GIL."""
    __slots__ = ("stream", "batch_us", "always_batch", "thread", "tokens", "error", "stats",
                 "__weakref__")

    def __init__(self, batch_us: int, always_batch: bool) -> None:
        ptr = L.vwnpy_stream_new()
        if not ptr:
            raise MemoryError("vwn: cannot allocate a generation stream")
        self.stream = _Handle(ptr, L.vwnpy_stream_free)
        self.batch_us = batch_us
        self.always_batch = always_batch
        self.thread: Optional[threading.Thread] = None
        self.tokens: List[int] = []
        self.error: Optional[BaseException] = None
        self.stats: Optional[GenerateStats] = None

    def stop_and_join(self) -> None:
        """Makes the C loop stop at its next token and waits for the thread."""
        L.vwnpy_stream_stop(self.stream)
        t = self.thread
        if t is not None and t is not threading.current_thread():
            t.join()

    def _take(self, text_len: int, n_tokens: int) -> bytes:
        buf = ctypes.create_string_buffer(max(text_len, 1))
        toks = np.empty(max(n_tokens, 1), dtype=np.int32)
        got_text, got_tokens = c_int64(), c_int64()
        L.vwnpy_stream_take(self.stream, buf, text_len, byref(got_text), _i32p(toks), n_tokens,
                            byref(got_tokens))
        if got_tokens.value:
            self.tokens.extend(toks[:got_tokens.value].tolist())
        return buf.raw[:got_text.value]

    def take(self) -> Optional[bytes]:
        """Blocks (in C, without the GIL) until the generation has produced something, and returns
        the text produced since the last call (b"" if only tokens without text); None once the
        generation has finished and everything was taken. Text is handed over in batches: of
        what came within batch_us while tokens come fast, and of everything every batch_us with
        always_batch (see vwnpy_stream_wait)."""
        text_len, n_tokens = c_int64(), c_int64()
        while True:
            # a bounded wait, so Ctrl-C (KeyboardInterrupt) reaches the consumer within 0.1 s
            rc = L.vwnpy_stream_wait(self.stream, self.batch_us, self.always_batch, 100000,
                                     byref(text_len), byref(n_tokens))
            if rc == 0:
                return None
            if rc == 1:
                return self._take(text_len.value, n_tokens.value)

    def drain_tokens(self) -> None:
        """Moves the token ids generated so far (not their text) into .tokens, without blocking."""
        text_len, n_tokens = c_int64(), c_int64()
        L.vwnpy_stream_sizes(self.stream, byref(text_len), byref(n_tokens))
        if n_tokens.value:
            self._take(0, n_tokens.value)


# Tokens that come within this many microseconds of each other are handed over together by the
# streaming iterator (stream_interval=0); see _GenState.take.
_BATCH_US = 1000
# generate_text/_bytes/_tokens only want the end: they take the text every 50 ms.
_INTERVAL_TO_END = 0.05

_running: "weakref.WeakSet[_GenState]" = weakref.WeakSet()


@atexit.register
def _stop_running_generations() -> None:
    """At exit, stop the C loops of unfinished generate() iterators (daemon threads) cleanly."""
    for state in list(_running):
        state.stop_and_join()


def _generation_thread(state: _GenState, ctx: Context, plan: _GenPlan, ptr: _Handle) -> None:
    stream = state.stream
    try:
        st, stats = plan.run(ptr, L.stream_callback, stream.ptr)
        state.stats = stats
        ctx.last_stats = stats
        if st:
            state.error = _error(st)  # on this thread: vwn_last_error is thread-local
        elif L.vwnpy_stream_out_of_memory(stream):
            state.error = MemoryError("vwn: out of memory buffering the generated text")
    except BaseException as e:
        state.error = e
    finally:
        plan.close()
        ctx._busy.release()
        L.vwnpy_stream_finish(stream)


class Generation(Iterator[Any]):
    """The iterator generate() returns: yields text pieces as they are produced.

    .tokens: the token ids generated so far; .stats: GenerateStats once finished; close() (or a
    `with` block, or dropping the iterator) stops the generation and joins its thread."""

    def __init__(self, ctx: Context, plan: _GenPlan, as_bytes: bool,
                 interval: float = 0.0) -> None:
        self._ctx = ctx
        self._plan: Optional[_GenPlan] = plan
        if interval > 0:
            self._state = _GenState(max(int(interval * 1e6), 1), True)
        else:
            self._state = _GenState(_BATCH_US, False)
        self._as_bytes = as_bytes
        self._decoder = None if as_bytes else codecs.getincrementaldecoder("utf-8")("replace")
        self._finished = False

    @property
    def tokens(self) -> List[int]:
        """Token ids generated so far, also those whose text was not yielded yet (a copy)."""
        self._state.drain_tokens()
        return list(self._state.tokens)

    @property
    def stats(self) -> Optional[GenerateStats]:
        """Statistics of the generation once it has finished (None before)."""
        return self._state.stats

    def _start(self) -> None:
        plan, self._plan = self._plan, None
        assert plan is not None
        ctx = self._ctx
        try:
            ptr = ctx._acquire()
        except BaseException:
            plan.close()
            raise
        state = self._state
        ctx._gen = weakref.ref(state)
        t = threading.Thread(target=_generation_thread, args=(state, ctx, plan, ptr),
                             name="vwn-generate", daemon=True)
        state.thread = t
        _running.add(state)
        try:
            t.start()
        except BaseException:
            plan.close()
            ctx._busy.release()
            raise

    def __iter__(self) -> "Generation":
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        if self._plan is not None:
            self._start()
        take = self._state.take
        while True:
            item = take()
            if item is None:
                self._finished = True
                self._state.stop_and_join()
                if self._state.error is not None:
                    raise self._state.error
                if self._decoder is not None:
                    tail = self._decoder.decode(b"", final=True)
                    if tail:
                        return tail
                raise StopIteration
            if self._decoder is None:
                if item:
                    return item
            else:
                s = self._decoder.decode(item)
                if s:
                    return s

    def close(self) -> None:
        """Stops the C loop at its next token and waits for the background thread."""
        if self._plan is not None:          # never started
            self._plan.close()
            self._plan = None
        self._finished = True
        self._state.stop_and_join()

    def __enter__(self) -> "Generation":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def text(self) -> str:
        """Consumes the rest of the iterator and returns it joined (str, or bytes decoded)."""
        parts = list(self)
        if self._as_bytes:
            return b"".join(parts).decode("utf-8", "replace")
        return "".join(parts)

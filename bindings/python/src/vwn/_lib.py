"""_lib.py -- the ctypes declarations of include/vwn.h and the loading of libvwn.

Everything here mirrors the C header one to one (structs field by field, functions with their
argument and result types); the Pythonic API lives in vwn/__init__.py. The library is the
libvwn shared object installed next to this file by `pip install`; the environment variable
VWN_LIB (a path to libvwn.so) overrides it, for testing a build tree. libvwnpy, next to it, is
the package's own small C helper (bindings/python/csrc/stream.c): the token callback of the
streaming iterator.

ctypes releases the GIL for the duration of every foreign call (these are CDLL functions), so
model loading, decoding and generation run without holding it; callbacks from C into Python
(the token callback of vwn_generate) take the GIL back for their own duration only.
"""
from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_double, c_float, c_int,
                    c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p)
from typing import Any

# ---- loading -------------------------------------------------------------------------------------


def _library_path(base: str, env: str) -> str:
    if env and os.environ.get(env):
        return os.environ[env]
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.platform == "darwin":
        names = ["lib%s.dylib" % base]
    elif sys.platform == "win32":
        names = ["%s.dll" % base, "lib%s.dll" % base]
    else:
        names = ["lib%s.so" % base]
    # next to this file, or in another directory of the package (an editable install keeps the
    # Python files in the source tree and the libraries in site-packages)
    package = sys.modules.get(__package__ or "")
    dirs = [here] + [d for d in getattr(package, "__path__", []) if d != here]
    for d in dirs:
        for name in names:
            path = os.path.join(d, name)
            if os.path.exists(path):
                return path
    raise OSError(
        "vwn: the bundled C library %s is missing from %s; reinstall the package with "
        "`pip install ./bindings/python`%s"
        % (names[0], here, ", or point %s at a libvwn shared library" % env if env else ""))


LIB_PATH = _library_path("vwn", "VWN_LIB")
lib = ctypes.CDLL(LIB_PATH)
# the streaming helper (bindings/python/csrc/stream.c); independent of which libvwn is loaded
stream_lib = ctypes.CDLL(_library_path("vwnpy", ""))

# ---- types ---------------------------------------------------------------------------------------

vwn_status = c_int
INT32_MIN = -(2 ** 31)


class vwn_model_params(Structure):
    _fields_ = [("use_mmap", c_bool), ("verify_tensors", c_bool)]


class vwn_model_info(Structure):
    _fields_ = [
        ("n_vocab", c_int32), ("n_embd", c_int32), ("n_layer", c_int32), ("ghc_m", c_int32),
        ("ghc_n", c_int32), ("n_embd_wide", c_int32), ("n_head", c_int32), ("n_head_kv", c_int32),
        ("head_dim", c_int32), ("n_ff", c_int32), ("mtp_depth", c_int32), ("max_seq_len", c_int32),
        ("ghc_dynamic", c_bool), ("wide_embedding", c_bool), ("tied_head", c_bool),
        ("output_group_norm", c_bool),
        ("rope_theta", c_float), ("rms_norm_eps", c_float), ("group_norm_eps", c_float),
        ("weight_type", c_int32),
        ("n_params", c_uint64), ("file_size", c_uint64), ("weight_bytes_per_token", c_uint64),
    ]


class vwn_tensor_info(Structure):
    _fields_ = [
        ("name", c_char_p), ("type", c_int32), ("n_dims", c_int32), ("ne", c_int64 * 4),
        ("offset", c_uint64), ("n_bytes", c_uint64),
    ]


vwn_abort_callback = CFUNCTYPE(c_bool, c_void_p)


class vwn_context_params(Structure):
    _fields_ = [
        ("n_ctx", c_int32), ("n_batch", c_int32), ("n_threads", c_int32),
        ("logits_all", c_bool), ("mtp", c_bool), ("simd", c_int32),
        ("memory_limit", c_uint64),
        ("abort_callback", vwn_abort_callback), ("abort_user_data", c_void_p),
        ("kv_type", c_int32),
    ]


class vwn_perf(Structure):
    _fields_ = [
        ("n_eval_tokens", c_uint64), ("n_eval_calls", c_uint64),
        ("t_eval_us", c_double), ("t_ghc_us", c_double), ("t_mtp_us", c_double),
    ]


class vwn_sampler_params(Structure):
    _fields_ = [
        ("seed", c_uint64), ("temperature", c_float), ("top_k", c_int32), ("top_p", c_float),
        ("min_p", c_float), ("repeat_penalty", c_float), ("frequency_penalty", c_float),
        ("presence_penalty", c_float), ("penalty_last_n", c_int32),
    ]


# bool (*)(int32_t token, const char *piece, int32_t piece_len, void *user_data); piece is a
# c_void_p because it is not NUL-terminated at piece_len.
vwn_token_callback = CFUNCTYPE(c_bool, c_int32, c_void_p, c_int32, c_void_p)


class vwn_generate_params(Structure):
    _fields_ = [
        ("n_predict", c_int32), ("sampler", c_void_p), ("stop", POINTER(c_char_p)),
        ("n_stop", c_int32), ("stop_at_eog", c_bool), ("add_special", c_bool),
        ("parse_special", c_bool), ("spec_depth", c_int32),
        ("callback", vwn_token_callback), ("user_data", c_void_p),
    ]


class vwn_generate_stats(Structure):
    _fields_ = [
        ("n_prompt", c_int32), ("n_generated", c_int32), ("stop_reason", c_int32),
        ("t_prompt_us", c_double), ("t_generate_us", c_double),
        ("n_drafted", c_int32), ("n_accepted", c_int32), ("n_verify", c_int32),
        ("accepted_at_depth", c_int32 * 16), ("drafted_at_depth", c_int32 * 16),
        ("t_draft_us", c_double), ("t_verify_us", c_double),
    ]


# ---- functions -----------------------------------------------------------------------------------

_P = c_void_p
_I32P = POINTER(c_int32)
_F32P = POINTER(c_float)


_MISSING = []  # functions the loaded library lacks: an ImportError after all declarations


def _fn(name, restype, *argtypes):
    """Declares one C function of the library."""
    try:
        f = getattr(lib, name)
    except AttributeError:
        _MISSING.append(name)
        return None
    f.restype = restype
    f.argtypes = list(argtypes)
    globals()[name] = f
    return f


_fn("vwn_version", c_char_p)
_fn("vwn_version_number", c_uint32)
_fn("vwn_status_string", c_char_p, c_int)
_fn("vwn_last_error", c_char_p)
_fn("vwn_last_status", ctypes.c_int)
_fn("vwn_type_name", c_char_p, c_int32)
_fn("vwn_simd_best", c_int)
_fn("vwn_simd_supported", c_bool, c_int)
_fn("vwn_simd_name", c_char_p, c_int)

_fn("vwn_model_default_params", vwn_model_params)
_fn("vwn_model_load", vwn_status, c_char_p, POINTER(vwn_model_params), POINTER(c_void_p))
_fn("vwn_model_free", None, _P)
_fn("vwn_model_get_info", vwn_status, _P, POINTER(vwn_model_info))
_fn("vwn_model_meta", c_int32, _P, c_char_p, ctypes.c_char_p, c_size_t)
_fn("vwn_model_meta_count", c_int32, _P)
_fn("vwn_model_meta_key", c_char_p, _P, c_int32)
_fn("vwn_model_tensor_count", c_int32, _P)
_fn("vwn_model_packed_bytes", c_uint64, _P)
_fn("vwn_model_tensor_info", vwn_status, _P, c_int32, POINTER(vwn_tensor_info))
_fn("vwn_model_tensor_read_f32", vwn_status, _P, c_char_p, _F32P, c_size_t)

_fn("vwn_tokenizer_get_kind", c_int, _P)
_fn("vwn_token_bos", c_int32, _P)
_fn("vwn_token_eos", c_int32, _P)
_fn("vwn_token_is_eog", c_bool, _P, c_int32)
_fn("vwn_token_is_control", c_bool, _P, c_int32)
_fn("vwn_tokenize", c_int32, _P, c_char_p, c_int32, _I32P, c_int32, c_bool, c_bool)
_fn("vwn_detokenize", c_int32, _P, _I32P, c_int32, c_char_p, c_int32, c_bool)
_fn("vwn_token_to_piece", c_int32, _P, c_int32, c_char_p, c_int32, c_bool)

_fn("vwn_context_default_params", vwn_context_params)
_fn("vwn_context_estimate", vwn_status, _P, POINTER(vwn_context_params), POINTER(c_uint64))
_fn("vwn_context_new", vwn_status, _P, POINTER(vwn_context_params), POINTER(c_void_p))
_fn("vwn_context_free", None, _P)
_fn("vwn_context_get_params", vwn_context_params, _P)
_fn("vwn_decode", vwn_status, _P, _I32P, c_int32)
_fn("vwn_get_logits", vwn_status, _P, c_int32, POINTER(_F32P))
_fn("vwn_get_mtp_logits", vwn_status, _P, c_int32, c_int32, POINTER(_F32P))
_fn("vwn_context_length", c_int32, _P)
_fn("vwn_context_mtp_length", c_int32, _P, c_int32)
_fn("vwn_context_tokens", _I32P, _P)
_fn("vwn_context_truncate", vwn_status, _P, c_int32)
_fn("vwn_context_clear", vwn_status, _P)
_fn("vwn_context_set_threads", vwn_status, _P, c_int32)
_fn("vwn_context_get_perf", vwn_status, _P, POINTER(vwn_perf))
_fn("vwn_context_reset_perf", vwn_status, _P)

_fn("vwn_sampler_default_params", vwn_sampler_params)
_fn("vwn_sampler_new", vwn_status, POINTER(vwn_sampler_params), POINTER(c_void_p))
_fn("vwn_sampler_free", None, _P)
_fn("vwn_sampler_probs", vwn_status, _P, _F32P, c_int32, _F32P)
_fn("vwn_sampler_sample", vwn_status, _P, _F32P, c_int32, _I32P)
_fn("vwn_sampler_draw", vwn_status, _P, _F32P, c_int32, _I32P)
_fn("vwn_sampler_uniform", vwn_status, _P, POINTER(c_double))
_fn("vwn_sampler_accept", vwn_status, _P, c_int32)
_fn("vwn_sampler_reset", vwn_status, _P)
_fn("vwn_sampler_is_greedy", c_bool, _P)

_fn("vwn_generate_default_params", vwn_generate_params)
_fn("vwn_generate", vwn_status, _P, c_char_p, POINTER(vwn_generate_params),
    POINTER(vwn_generate_stats))
_fn("vwn_generate_tokens", vwn_status, _P, _I32P, c_int32, POINTER(vwn_generate_params),
    POINTER(vwn_generate_stats))

_fn("vwn_draft", vwn_status, _P, c_int32, c_int32, _P, _I32P, _F32P, _I32P)
_fn("vwn_verify", vwn_status, _P, _P, _I32P, _I32P)

_fn("vwn_state_size", vwn_status, _P, POINTER(c_uint64))
_fn("vwn_state_save", vwn_status, _P, c_void_p, c_uint64, POINTER(c_uint64))
_fn("vwn_state_load", vwn_status, _P, c_void_p, c_uint64)
_fn("vwn_state_save_file", vwn_status, _P, c_char_p)
_fn("vwn_state_load_file", vwn_status, _P, c_char_p)

if _MISSING:
    raise ImportError("vwn: the library at %s lacks %s -- it is older than this binding; "
                      "reinstall the binding or point VWN_LIB at a matching libvwn"
                      % (LIB_PATH, ", ".join(_MISSING)))


# ---- libvwnpy: the streaming callback ----------------------------------------------------------


def _sfn(name, restype, *argtypes):
    f = getattr(stream_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    globals()[name] = f
    return f


_sfn("vwnpy_stream_new", c_void_p)
_sfn("vwnpy_stream_free", None, _P)
_sfn("vwnpy_stream_stop", None, _P)
_sfn("vwnpy_stream_finish", None, _P)
_sfn("vwnpy_stream_out_of_memory", c_bool, _P)
_sfn("vwnpy_stream_sizes", None, _P, POINTER(c_int64), POINTER(c_int64))
_sfn("vwnpy_stream_wait", c_int, _P, c_int64, c_int, c_int64, POINTER(c_int64),
     POINTER(c_int64))
_sfn("vwnpy_stream_take", None, _P, c_char_p, c_int64, POINTER(c_int64), _I32P, c_int64,
     POINTER(c_int64))
# the C function itself as a vwn_token_callback: calling it never enters Python
stream_callback = ctypes.cast(stream_lib.vwnpy_stream_callback, vwn_token_callback)


def __getattr__(name: str) -> Any:
    """The functions above are module globals made by _fn; this tells type checkers so."""
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

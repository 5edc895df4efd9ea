"""vwn_ctypes.py -- ctypes declarations of include/vwn.h for the Python tests.

    from vwn_ctypes import lib, check, VwnError, ModelInfo, load_model
    m = load_model("model.gguf")            # raises VwnError with vwn_last_error() on failure
    info = model_info(m)
    lib.vwn_model_free(m)

The library is found through the environment variable VWN_LIB (path to libvwn.so), defaulting to
/work/main/build/lib/libvwn.so.  The structures mirror vwn.h field by field (same order, same
types); keep them in sync when the header changes.  Functions the loaded library does not export
(yet) are simply not declared, so a test can skip with `has("vwn_decode")`.
"""

import ctypes as C
import os

LIB_PATH = os.environ.get("VWN_LIB", "/work/main/build/lib/libvwn.so")

# ---- status codes (vwn_status) ----------------------------------------------------------------

STATUS = {
    "OK": 0, "INVALID_ARG": 1, "BAD_HANDLE": 2, "IO": 3, "BAD_MAGIC": 4, "BAD_VERSION": 5,
    "TRUNCATED": 6, "BAD_FORMAT": 7, "UNSUPPORTED": 8, "BAD_MODEL": 9, "OUT_OF_MEMORY": 10,
    "TOKEN_OUT_OF_RANGE": 11, "CONTEXT_FULL": 12, "BATCH_TOO_LARGE": 13, "NOT_KEPT": 14,
    "BUFFER_TOO_SMALL": 15, "NO_MTP": 16, "NO_DRAFT": 17, "STATE_MISMATCH": 18, "CHECKSUM": 19,
    "ABORTED": 20, "INTERNAL": 21,
}
STATUS_NAME = {v: k for k, v in STATUS.items()}
globals().update({"VWN_" + ("OK" if k == "OK" else "ERR_" + k): v for k, v in STATUS.items()})

# vwn_type (the GGUF/ggml numbering)
TYPE_F32, TYPE_F16, TYPE_Q4_0, TYPE_Q8_0, TYPE_BF16 = 0, 1, 2, 8, 30
TYPE_NAME = {TYPE_F32: "f32", TYPE_F16: "f16", TYPE_Q4_0: "q4_0", TYPE_Q8_0: "q8_0", TYPE_BF16: "bf16"}

# vwn_simd, vwn_tokenizer_kind, vwn_stop_reason
SIMD_AUTO, SIMD_SCALAR, SIMD_AVX2, SIMD_AVX512, SIMD_NEON = -1, 0, 1, 2, 3
TOKENIZER_BYTES, TOKENIZER_GPT2, TOKENIZER_LLAMA = 0, 1, 2
STOP_NONE, STOP_BUDGET, STOP_EOG, STOP_STRING, STOP_CALLBACK, STOP_CONTEXT_FULL = range(6)

# ---- structures (field for field as in vwn.h) -------------------------------------------------


class ModelParams(C.Structure):
    _fields_ = [("use_mmap", C.c_bool), ("verify_tensors", C.c_bool)]


class ModelInfo(C.Structure):
    _fields_ = [
        ("n_vocab", C.c_int32), ("n_embd", C.c_int32), ("n_layer", C.c_int32),
        ("ghc_m", C.c_int32), ("ghc_n", C.c_int32), ("n_embd_wide", C.c_int32),
        ("n_head", C.c_int32), ("n_head_kv", C.c_int32), ("head_dim", C.c_int32),
        ("n_ff", C.c_int32), ("mtp_depth", C.c_int32), ("max_seq_len", C.c_int32),
        ("ghc_dynamic", C.c_bool), ("wide_embedding", C.c_bool), ("tied_head", C.c_bool),
        ("output_group_norm", C.c_bool),
        ("rope_theta", C.c_float), ("rms_norm_eps", C.c_float), ("group_norm_eps", C.c_float),
        ("weight_type", C.c_int32),
        ("n_params", C.c_uint64), ("file_size", C.c_uint64), ("weight_bytes_per_token", C.c_uint64),
    ]


class TensorInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("type", C.c_int32), ("n_dims", C.c_int32),
                ("ne", C.c_int64 * 4), ("offset", C.c_uint64), ("n_bytes", C.c_uint64)]


AbortCallback = C.CFUNCTYPE(C.c_bool, C.c_void_p)


class ContextParams(C.Structure):
    _fields_ = [
        ("n_ctx", C.c_int32), ("n_batch", C.c_int32), ("n_threads", C.c_int32),
        ("logits_all", C.c_bool), ("mtp", C.c_bool), ("simd", C.c_int32),
        ("memory_limit", C.c_uint64),
        ("abort_callback", AbortCallback), ("abort_user_data", C.c_void_p),
        ("kv_type", C.c_int32),     # TYPE_F32 (default) or TYPE_F16
    ]


class Perf(C.Structure):
    _fields_ = [("n_eval_tokens", C.c_uint64), ("n_eval_calls", C.c_uint64),
                ("t_eval_us", C.c_double), ("t_ghc_us", C.c_double), ("t_mtp_us", C.c_double)]


class SamplerParams(C.Structure):
    _fields_ = [
        ("seed", C.c_uint64), ("temperature", C.c_float), ("top_k", C.c_int32),
        ("top_p", C.c_float), ("min_p", C.c_float), ("repeat_penalty", C.c_float),
        ("frequency_penalty", C.c_float), ("presence_penalty", C.c_float),
        ("penalty_last_n", C.c_int32),
    ]


SamplerProbsFn = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(C.c_float), C.c_int32,
                             C.POINTER(C.c_float))
SamplerAcceptFn = C.CFUNCTYPE(None, C.c_void_p, C.c_int32)
SamplerResetFn = C.CFUNCTYPE(None, C.c_void_p)
SamplerFreeFn = C.CFUNCTYPE(None, C.c_void_p)


class SamplerIface(C.Structure):
    _fields_ = [("probs", SamplerProbsFn), ("accept", SamplerAcceptFn),
                ("reset", SamplerResetFn), ("free_user", SamplerFreeFn)]


# piece is not NUL-terminated: POINTER(c_char) plus the length
TokenCallback = C.CFUNCTYPE(C.c_bool, C.c_int32, C.POINTER(C.c_char), C.c_int32, C.c_void_p)


class GenerateParams(C.Structure):
    _fields_ = [
        ("n_predict", C.c_int32), ("sampler", C.c_void_p),
        ("stop", C.POINTER(C.c_char_p)), ("n_stop", C.c_int32),
        ("stop_at_eog", C.c_bool), ("add_special", C.c_bool), ("parse_special", C.c_bool),
        ("spec_depth", C.c_int32),
        ("callback", TokenCallback), ("user_data", C.c_void_p),
    ]


class GenerateStats(C.Structure):
    _fields_ = [
        ("n_prompt", C.c_int32), ("n_generated", C.c_int32), ("stop_reason", C.c_int32),
        ("t_prompt_us", C.c_double), ("t_generate_us", C.c_double),
        ("n_drafted", C.c_int32), ("n_accepted", C.c_int32), ("n_verify", C.c_int32),
        ("accepted_at_depth", C.c_int32 * 16), ("drafted_at_depth", C.c_int32 * 16),
        ("t_draft_us", C.c_double), ("t_verify_us", C.c_double),
    ]


# ---- functions --------------------------------------------------------------------------------

_st = C.c_int       # vwn_status
_p = C.c_void_p     # opaque handles (vwn_model *, vwn_context *, vwn_sampler *)
_i32, _u64, _f, _b, _s = C.c_int32, C.c_uint64, C.c_float, C.c_bool, C.c_char_p
_pi32, _pf = C.POINTER(C.c_int32), C.POINTER(C.c_float)

PROTOTYPES = {
    # version, errors, types, SIMD
    "vwn_version": (_s, []),
    "vwn_version_number": (C.c_uint32, []),
    "vwn_status_string": (_s, [_st]),
    "vwn_last_error": (_s, []),
    "vwn_last_status": (C.c_int, []),
    "vwn_type_name": (_s, [_i32]),
    "vwn_simd_best": (C.c_int, []),
    "vwn_simd_supported": (_b, [C.c_int]),
    "vwn_simd_name": (_s, [C.c_int]),
    # model
    "vwn_model_default_params": (ModelParams, []),
    "vwn_model_load": (_st, [_s, C.POINTER(ModelParams), C.POINTER(_p)]),
    "vwn_model_free": (None, [_p]),
    "vwn_model_get_info": (_st, [_p, C.POINTER(ModelInfo)]),
    "vwn_model_meta": (_i32, [_p, _s, C.c_char_p, C.c_size_t]),
    "vwn_model_meta_count": (_i32, [_p]),
    "vwn_model_meta_key": (_s, [_p, _i32]),
    "vwn_model_tensor_count": (_i32, [_p]),
    "vwn_model_tensor_info": (_st, [_p, _i32, C.POINTER(TensorInfo)]),
    "vwn_model_tensor_read_f32": (_st, [_p, _s, _pf, C.c_size_t]),
    # tokenizer
    "vwn_tokenizer_get_kind": (C.c_int, [_p]),
    "vwn_token_bos": (_i32, [_p]),
    "vwn_token_eos": (_i32, [_p]),
    "vwn_token_is_eog": (_b, [_p, _i32]),
    "vwn_token_is_control": (_b, [_p, _i32]),
    "vwn_tokenize": (_i32, [_p, C.c_char_p, _i32, _pi32, _i32, _b, _b]),
    "vwn_detokenize": (_i32, [_p, _pi32, _i32, C.c_char_p, _i32, _b]),
    "vwn_token_to_piece": (_i32, [_p, _i32, C.c_char_p, _i32, _b]),
    # context
    "vwn_context_default_params": (ContextParams, []),
    "vwn_context_estimate": (_st, [_p, C.POINTER(ContextParams), C.POINTER(_u64)]),
    "vwn_context_new": (_st, [_p, C.POINTER(ContextParams), C.POINTER(_p)]),
    "vwn_context_free": (None, [_p]),
    "vwn_context_model": (_p, [_p]),
    "vwn_context_get_params": (ContextParams, [_p]),
    "vwn_decode": (_st, [_p, _pi32, _i32]),
    "vwn_get_logits": (_st, [_p, _i32, C.POINTER(_pf)]),
    "vwn_get_mtp_logits": (_st, [_p, _i32, _i32, C.POINTER(_pf)]),
    "vwn_context_length": (_i32, [_p]),
    "vwn_context_mtp_length": (_i32, [_p, _i32]),
    "vwn_context_tokens": (_pi32, [_p]),
    "vwn_context_truncate": (_st, [_p, _i32]),
    "vwn_context_clear": (_st, [_p]),
    "vwn_context_set_threads": (_st, [_p, _i32]),
    "vwn_context_get_perf": (_st, [_p, C.POINTER(Perf)]),
    "vwn_context_reset_perf": (_st, [_p]),
    # samplers
    "vwn_sampler_default_params": (SamplerParams, []),
    "vwn_sampler_new": (_st, [C.POINTER(SamplerParams), C.POINTER(_p)]),
    "vwn_sampler_new_custom": (_st, [C.POINTER(SamplerIface), _p, _u64, C.POINTER(_p)]),
    "vwn_sampler_free": (None, [_p]),
    "vwn_sampler_probs": (_st, [_p, _pf, _i32, _pf]),
    "vwn_sampler_sample": (_st, [_p, _pf, _i32, _pi32]),
    "vwn_sampler_draw": (_st, [_p, _pf, _i32, _pi32]),
    "vwn_sampler_uniform": (_st, [_p, C.POINTER(C.c_double)]),
    "vwn_sampler_accept": (_st, [_p, _i32]),
    "vwn_sampler_reset": (_st, [_p]),
    "vwn_sampler_is_greedy": (_b, [_p]),
    # generation
    "vwn_generate_default_params": (GenerateParams, []),
    "vwn_generate": (_st, [_p, C.c_char_p, C.POINTER(GenerateParams), C.POINTER(GenerateStats)]),
    "vwn_generate_tokens": (_st, [_p, _pi32, _i32, C.POINTER(GenerateParams),
                                  C.POINTER(GenerateStats)]),
    # speculative decoding
    "vwn_draft": (_st, [_p, _i32, _i32, _p, _pi32, _pf, _pi32]),
    "vwn_verify": (_st, [_p, _p, _pi32, _pi32]),
    # saved state
    "vwn_state_size": (_st, [_p, C.POINTER(_u64)]),
    "vwn_state_save": (_st, [_p, C.c_void_p, _u64, C.POINTER(_u64)]),
    "vwn_state_load": (_st, [_p, C.c_void_p, _u64]),
    "vwn_state_save_file": (_st, [_p, C.c_char_p]),
    "vwn_state_load_file": (_st, [_p, C.c_char_p]),
}


def _load(path):
    library = C.CDLL(path)
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(library, name)
        except AttributeError:        # not exported (yet): leave it undeclared
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    return library


lib = _load(LIB_PATH)


def has(name):
    """True if the loaded library exports `name`."""
    return hasattr(lib, name)


# ---- errors -----------------------------------------------------------------------------------

class VwnError(Exception):
    """A failed libvwn call: .status (int), .status_name ("TRUNCATED"...), .message."""

    def __init__(self, status, what, message):
        self.status = status
        self.status_name = STATUS_NAME.get(status, str(status))
        self.message = message
        super().__init__(f"{what}: VWN_ERR_{self.status_name}: {message}")


def last_error():
    return lib.vwn_last_error().decode("utf-8", "replace")


def check(status, what="libvwn call"):
    """Raises VwnError (with vwn_last_error()) unless status is VWN_OK; returns None."""
    if status != 0:
        raise VwnError(status, what, last_error())


# ---- small helpers ----------------------------------------------------------------------------

def load_model(path, use_mmap=True, verify=False):
    """vwn_model_load; returns the handle (a c_void_p) or raises VwnError."""
    params = lib.vwn_model_default_params()
    params.use_mmap = use_mmap
    params.verify_tensors = verify
    handle = C.c_void_p()
    check(lib.vwn_model_load(os.fsencode(path), C.byref(params), C.byref(handle)),
          f"vwn_model_load({path})")
    return handle


def model_info(model):
    info = ModelInfo()
    check(lib.vwn_model_get_info(model, C.byref(info)), "vwn_model_get_info")
    return info


def tensor_infos(model):
    """[TensorInfo-like dicts] in file order."""
    out = []
    for i in range(lib.vwn_model_tensor_count(model)):
        t = TensorInfo()
        check(lib.vwn_model_tensor_info(model, i, C.byref(t)), "vwn_model_tensor_info")
        out.append({"name": t.name.decode(), "type": t.type, "n_dims": t.n_dims,
                    "ne": list(t.ne)[:t.n_dims], "offset": t.offset, "n_bytes": t.n_bytes})
    return out


def meta(model, key):
    """Metadata value as text, or None if absent (two-call convention)."""
    n = lib.vwn_model_meta(model, key.encode(), None, 0)
    if n < 0:
        return None
    buf = C.create_string_buffer(n + 1)
    lib.vwn_model_meta(model, key.encode(), buf, n + 1)
    return buf.raw[:n].decode("utf-8", "replace")


def read_tensor_f32(model, name, n_elements):
    """A tensor dequantized to fp32 (a numpy array of n_elements, flat)."""
    import numpy as np
    out = np.empty(n_elements, dtype=np.float32)
    check(lib.vwn_model_tensor_read_f32(model, name.encode(),
                                        out.ctypes.data_as(C.POINTER(C.c_float)), n_elements),
          f"vwn_model_tensor_read_f32({name})")
    return out

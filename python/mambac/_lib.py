"""ctypes declarations of libmambac's public API (include/mambac.h).

Why ctypes and not a CPython extension: every call that does real work (a decode step, a
prompt, generation, training) runs for milliseconds in C, and ctypes drops the GIL for all
of them, so its microsecond of call overhead does not show (docs/PYTHON.md measures it);
the package then has no C of its own to build against each Python version, and the wheel
works on any CPython 3.9+. The structs below mirror the header: `_check_abi` compares their
sizes with the library's own (mambac_sizeof) and refuses a library they do not match.
"""

from __future__ import annotations

import ctypes as C
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _library_path() -> str:
    env = os.environ.get("MAMBAC_LIBRARY")
    if env:
        return env
    for cand in (_HERE / "lib" / "libmambac.so", _HERE / "lib" / "libmambac.dylib"):
        if cand.exists():
            return str(cand)
    raise ImportError(
        "mambac: libmambac was not found beside the package (mambac/lib); install the package "
        "with `pip install .`, or set MAMBAC_LIBRARY to a built libmambac.so"
    )


lib = C.CDLL(_library_path())

# ---- structs ------------------------------------------------------------------------------


class Error(C.Structure):
    _fields_ = [("msg", C.c_char * 512)]


class ModelInfo(C.Structure):
    _fields_ = [
        ("arch", C.c_int), ("d_model", C.c_int32), ("n_layer", C.c_int32), ("vocab_size", C.c_int32),
        ("n_vocab_rows", C.c_int32), ("d_inner", C.c_int32), ("d_state", C.c_int32), ("d_conv", C.c_int32),
        ("dt_rank", C.c_int32), ("n_heads", C.c_int32), ("head_dim", C.c_int32), ("n_groups", C.c_int32),
        ("chunk_size", C.c_int32), ("proj_bias", C.c_int32), ("conv_bias", C.c_int32), ("gated_norm", C.c_int32),
        ("norm_before_gate", C.c_int32), ("tied_embeddings", C.c_int32), ("norm_eps", C.c_float),
        ("dt_min_limit", C.c_float), ("dt_max_limit", C.c_float), ("eos_token_id", C.c_int32), ("dtype", C.c_int),
        ("n_params", C.c_int64), ("weight_bytes", C.c_int64), ("dir", C.c_char_p), ("path", C.c_char_p),
        ("layout", C.c_char_p), ("format", C.c_char_p), ("bcdt_rms", C.c_int32), ("mixer_rms_eps", C.c_float),
    ]


class ModelParams(C.Structure):
    _fields_ = [("backend", C.c_char_p), ("repack", C.c_int32), ("precision", C.c_char_p), ("no_mmap", C.c_int32)]


class InitParams(C.Structure):
    _fields_ = [
        ("arch", C.c_int), ("d_model", C.c_int32), ("n_layer", C.c_int32), ("vocab_size", C.c_int32),
        ("d_state", C.c_int32), ("d_conv", C.c_int32), ("expand", C.c_int32), ("dt_rank", C.c_int32),
        ("head_dim", C.c_int32), ("n_groups", C.c_int32), ("chunk_size", C.c_int32), ("dtype", C.c_int),
        ("seed", C.c_uint64),
    ]


class ContextParams(C.Structure):
    _fields_ = [("max_ubatch", C.c_int32), ("n_threads", C.c_int32), ("isa", C.c_char_p)]


class Seq(C.Structure):
    _fields_ = [
        ("state", C.c_void_p), ("ids", C.POINTER(C.c_int32)), ("n_tokens", C.c_size_t), ("mode", C.c_int),
        ("logits", C.POINTER(C.c_float)), ("token", C.POINTER(C.c_int32)),
    ]


class Loglik(C.Structure):
    _fields_ = [("logprob", C.c_double), ("n_tokens", C.c_int32), ("greedy", C.c_int32)]


class LLRequest(C.Structure):
    _fields_ = [
        ("context", C.c_char_p), ("context_len", C.c_size_t), ("conts", C.POINTER(C.c_char_p)),
        ("cont_lens", C.POINTER(C.c_size_t)), ("n_conts", C.c_size_t), ("out", C.POINTER(Loglik)),
    ]


class SamplerParams(C.Structure):
    _fields_ = [
        ("temp", C.c_float), ("top_k", C.c_int32), ("top_p", C.c_float), ("min_p", C.c_float),
        ("repeat_penalty", C.c_float), ("repeat_last_n", C.c_int32), ("seed", C.c_uint64),
    ]


PROMPT_PROGRESS_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_int64, C.c_int64)


class GenerateParams(C.Structure):
    _fields_ = [
        ("sampling", SamplerParams), ("max_tokens", C.c_int64), ("ignore_eos", C.c_int32),
        ("stop", C.POINTER(C.c_char_p)), ("n_stop", C.c_size_t), ("feed_last", C.c_int32),
        ("on_prompt_progress", PROMPT_PROGRESS_FN), ("progress_user", C.c_void_p),
    ]


class GenerateResult(C.Structure):
    _fields_ = [
        ("n_prompt", C.c_int64), ("n_generated", C.c_int64), ("prefill_seconds", C.c_double),
        ("decode_seconds", C.c_double), ("n_decoded", C.c_int64), ("finish", C.c_int),
    ]


class ChatMessage(C.Structure):
    _fields_ = [("role", C.c_char_p), ("content", C.c_char_p)]


class TrainParams(C.Structure):
    _fields_ = [
        ("init", InitParams), ("init_set", C.c_int32), ("init_from", C.c_char_p), ("resume", C.c_char_p),
        ("data", C.c_char_p), ("tokenizer", C.c_char_p), ("out", C.c_char_p),
        ("batch", C.c_int64), ("seq", C.c_int64), ("steps", C.c_int64), ("warmup", C.c_int64), ("accum", C.c_int64),
        ("eval_every", C.c_int64), ("eval_windows", C.c_int64), ("save_every", C.c_int64), ("stop_at", C.c_int64),
        ("lr", C.c_float), ("min_lr", C.c_float), ("weight_decay", C.c_float), ("clip", C.c_float),
        ("beta1", C.c_float), ("beta2", C.c_float), ("val_frac", C.c_double), ("time_limit", C.c_double),
        ("seed", C.c_uint64), ("threads", C.c_int32), ("device", C.c_char_p), ("precision", C.c_char_p),
    ]


class TrainProgress(C.Structure):
    _fields_ = [
        ("step", C.c_int64), ("steps", C.c_int64), ("tokens", C.c_int64), ("train_loss", C.c_double),
        ("val_loss", C.c_double), ("lr", C.c_double), ("grad_norm", C.c_double), ("tok_s", C.c_double),
        ("elapsed", C.c_double), ("eta", C.c_double),
    ]


PIECE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int32, C.POINTER(C.c_char), C.c_size_t)
TRAIN_PROGRESS_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(TrainProgress))
GGUF_PROGRESS_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_size_t, C.c_size_t, C.c_char_p)

# ---- functions ----------------------------------------------------------------------------

_st = C.c_int  # mambac_status
_err = C.POINTER(Error)
_p = C.c_void_p

_SIGNATURES = {
    "mambac_status_str": (C.c_char_p, [C.c_int]),
    "mambac_version": (C.c_char_p, []),
    "mambac_sizeof": (C.c_size_t, [C.c_char_p]),
    "mambac_kernel_set_default": (C.c_char_p, []),
    "mambac_kernel_set_usable": (C.c_int, [C.c_char_p]),
    "mambac_threads_usable": (C.c_int32, [C.c_int32]),
    "mambac_dtype_name": (C.c_char_p, [C.c_int]),
    "mambac_arch_name": (C.c_char_p, [C.c_int]),
    "mambac_model_default_params": (ModelParams, []),
    "mambac_model_load_ex": (_st, [C.c_char_p, C.POINTER(ModelParams), C.POINTER(_p), _err]),
    "mambac_model_free": (None, [_p]),
    "mambac_model_backend": (C.c_char_p, [_p]),
    "mambac_model_get_info": (C.POINTER(ModelInfo), [_p]),
    "mambac_model_write_gguf_ex": (_st, [_p, C.c_char_p, C.c_int, GGUF_PROGRESS_FN, _p, _err]),
    "mambac_init_default_params": (InitParams, [C.c_int]),
    "mambac_init_preset": (_st, [C.c_char_p, C.POINTER(InitParams), _err]),
    "mambac_preset_name": (C.c_char_p, [C.c_int]),
    "mambac_model_write_init": (_st, [C.POINTER(InitParams), C.c_char_p, _err]),
    "mambac_state_new": (_st, [_p, C.POINTER(_p), _err]),
    "mambac_state_free": (None, [_p]),
    "mambac_state_reset": (None, [_p]),
    "mambac_state_copy": (_st, [_p, _p, _err]),
    "mambac_state_n_tokens": (C.c_int64, [_p]),
    "mambac_state_size_bytes": (C.c_size_t, [_p]),
    "mambac_state_save": (_st, [_p, C.c_char_p, _err]),
    "mambac_state_load": (_st, [_p, C.c_char_p, _err]),
    "mambac_state_file_bytes": (C.c_size_t, [_p]),
    "mambac_state_to_bytes": (_st, [_p, _p, C.c_size_t, _err]),
    "mambac_state_from_bytes": (_st, [_p, C.c_char_p, C.c_size_t, _err]),
    "mambac_context_default_params": (ContextParams, []),
    "mambac_context_new": (_st, [_p, C.POINTER(ContextParams), C.POINTER(_p), _err]),
    "mambac_context_free": (None, [_p]),
    "mambac_context_isa": (C.c_char_p, [_p]),
    "mambac_context_threads": (C.c_int32, [_p]),
    # ids and logits as plain addresses: the decode loop's path, where each pointer object costs
    "mambac_eval": (_st, [_p, _p, _p, C.c_size_t, C.c_int, _p, _err]),
    "mambac_eval_batch": (_st, [_p, C.POINTER(Seq), C.c_size_t, _err]),
    "mambac_loglikelihood_batch": (_st, [_p, _p, C.POINTER(LLRequest), C.c_size_t, _err]),
    "mambac_sampler_default_params": (SamplerParams, []),
    "mambac_generate_default_params": (GenerateParams, []),
    "mambac_generate": (_st, [_p, _p, _p, C.POINTER(C.c_int32), C.c_size_t, C.POINTER(GenerateParams), PIECE_FN,
                              _p, C.POINTER(GenerateResult), _err]),
    "mambac_chat_template_name": (C.c_char_p, [C.c_char_p]),
    "mambac_chat_apply": (_st, [C.c_char_p, C.POINTER(ChatMessage), C.c_size_t, C.c_int, C.POINTER(C.c_void_p),
                                C.POINTER(C.c_size_t), _err]),
    "mambac_chat_end_of_turn": (C.c_char_p, [C.c_char_p]),
    "mambac_tokenizer_load": (_st, [C.c_char_p, C.POINTER(_p), _err]),
    "mambac_tokenizer_free": (None, [_p]),
    "mambac_tokenizer_n_vocab": (C.c_int32, [_p]),
    "mambac_tokenize": (_st, [_p, C.c_char_p, C.c_size_t, C.POINTER(C.POINTER(C.c_int32)), C.POINTER(C.c_size_t), _err]),
    "mambac_token_bytes": (C.POINTER(C.c_char), [_p, C.c_int32, C.POINTER(C.c_size_t)]),
    "mambac_token_is_special": (C.c_int, [_p, C.c_int32]),
    "mambac_tokenizer_find": (C.c_int32, [_p, C.c_char_p]),
    "mambac_detokenize": (_st, [_p, C.POINTER(C.c_int32), C.c_size_t, C.POINTER(C.c_void_p), C.POINTER(C.c_size_t), _err]),
    "mambac_train_default_params": (TrainParams, [C.c_int]),
    "mambac_train": (_st, [C.POINTER(TrainParams), TRAIN_PROGRESS_FN, _p, _err]),
    "mambac_free": (None, [_p]),
}

for _name, (_res, _args) in _SIGNATURES.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

_MIRRORED = {
    "mambac_error": Error, "mambac_model_info": ModelInfo, "mambac_model_params": ModelParams,
    "mambac_init_params": InitParams, "mambac_context_params": ContextParams, "mambac_seq": Seq,
    "mambac_loglik": Loglik, "mambac_ll_request": LLRequest, "mambac_sampler_params": SamplerParams,
    "mambac_generate_params": GenerateParams, "mambac_generate_result": GenerateResult,
    "mambac_chat_message": ChatMessage, "mambac_train_params": TrainParams, "mambac_train_progress": TrainProgress,
}


def _check_abi() -> None:
    for name, cls in _MIRRORED.items():
        want = lib.mambac_sizeof(name.encode())
        if want != C.sizeof(cls):
            raise ImportError(
                f"mambac: {_library_path()} does not match this package ({name}: {want} bytes in the library, "
                f"{C.sizeof(cls)} here); rebuild the package from the same source"
            )


_check_abi()

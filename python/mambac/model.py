"""Models, contexts and states: loading a checkpoint, evaluating tokens, generating text."""

from __future__ import annotations

import contextlib
import ctypes as C
import json
import os
import queue
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _lib
from .errors import MambacInvalidArgument, check
from .tokenizer import Tokenizer

lib = _lib.lib

Ids = Union[Sequence[int], np.ndarray]
Prompt = Union[str, bytes, Sequence[int], np.ndarray]

_LOGITS_MODES = {"none": 0, "last": 1, "all": 2, "greedy": 3}
_FINISH = {0: "length", 1: "eos", 2: "stop", 3: "callback"}
# generate's and stream's sampling and stopping options (Context._generate_params' arguments)
_GENERATE_OPTIONS = ("max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "seed",
                     "stop", "ignore_eos", "feed_last")


def default_model_path() -> str:
    """The embedded default model: installed with the package, or the source tree's."""
    here = Path(__file__).resolve().parent
    for cand in (here / "share" / "mambac" / "models" / "default", here.parent.parent / "models" / "default"):
        if (cand / "config.json").exists():
            return str(cand)
    raise FileNotFoundError("mambac: the default model is not installed; give a model path")


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is (mambac_model_info, plus where it runs)."""

    arch: str
    d_model: int
    n_layer: int
    vocab_size: int
    n_vocab_rows: int
    d_inner: int
    d_state: int
    d_conv: int
    dt_rank: int
    n_heads: int
    head_dim: int
    n_groups: int
    chunk_size: int
    eos_token_id: int | None
    dtype: str
    n_params: int
    weight_bytes: int
    state_bytes: int
    dir: str
    path: str
    layout: str
    format: str
    backend: str


def _ids_array(ids: Ids) -> np.ndarray:
    a = np.ascontiguousarray(ids, dtype=np.int32)
    if a.ndim != 1:
        raise MambacInvalidArgument(f"token ids must be one-dimensional, not of shape {a.shape}")
    return a


def _i32p(a: np.ndarray):
    return a.ctypes.data_as(C.POINTER(C.c_int32))


def _f32p(a: np.ndarray | None):
    return a.ctypes.data_as(C.POINTER(C.c_float)) if a is not None else None


_NO_LOCK = contextlib.nullcontext()

_live_models: "weakref.WeakValueDictionary[tuple, Model]" = weakref.WeakValueDictionary()


def _unpickle_model(path: str, kwargs: dict) -> "Model":
    key = (path, tuple(sorted(kwargs.items())))
    m = _live_models.get(key)
    return m if m is not None else Model(path, **kwargs)


class Model:
    """A loaded checkpoint: a transformers or mamba_ssm folder, or a GGUF file.

    Immutable and shared: any number of contexts and states may be made from it, from any
    thread. The methods that evaluate (logits, eval, generate, ...) run on the model's own
    context, one call at a time; for calls in parallel make a Context per thread.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, threads: int = 0, device: str = "cpu",
                 precision: str | None = None, isa: str | None = None, max_ubatch: int = 0,
                 no_mmap: bool = False, repack: int = -1, tokenizer: str | os.PathLike | None = None):
        """Loads `path` (None: the embedded default model).

        threads: CPU threads of the model's context (0: every CPU this process may use).
        device: "cpu", "cuda" or "cuda:N" (builds with CUDA). precision: CUDA "f32" or "bf16".
        isa: CPU kernel set ("scalar", "avx2", "avx512"; None: the best this CPU runs).
        tokenizer: a tokenizer.json (None: the checkpoint's own, when it has one).
        """
        path = str(path) if path is not None else default_model_path()
        self._kwargs = dict(threads=threads, device=device, precision=precision, isa=isa, max_ubatch=max_ubatch,
                            no_mmap=no_mmap, repack=repack,
                            tokenizer=str(tokenizer) if tokenizer is not None else None)
        params = lib.mambac_model_default_params()
        params.backend = device.encode() if device else None
        params.precision = precision.encode() if precision else None
        params.no_mmap = 1 if no_mmap else 0
        params.repack = repack
        err = _lib.Error()
        h = C.c_void_p()
        check(lib.mambac_model_load_ex(path.encode(), C.byref(params), C.byref(h), C.byref(err)), err)
        self._h = h
        self.path = path
        ci = lib.mambac_model_get_info(h).contents
        self._raw_info = ci
        s = lambda b: b.decode("utf-8", "replace") if b else ""  # noqa: E731
        self.info = ModelInfo(
            arch="mamba2" if ci.arch == 2 else "falcon_mamba" if ci.bcdt_rms else "mamba", d_model=ci.d_model,
            n_layer=ci.n_layer,
            vocab_size=ci.vocab_size, n_vocab_rows=ci.n_vocab_rows, d_inner=ci.d_inner, d_state=ci.d_state,
            d_conv=ci.d_conv, dt_rank=ci.dt_rank, n_heads=ci.n_heads, head_dim=ci.head_dim, n_groups=ci.n_groups,
            chunk_size=ci.chunk_size, eos_token_id=ci.eos_token_id if ci.eos_token_id >= 0 else None,
            dtype=s(lib.mambac_dtype_name(ci.dtype)), n_params=ci.n_params, weight_bytes=ci.weight_bytes,
            state_bytes=lib.mambac_state_size_bytes(h), dir=s(ci.dir), path=s(ci.path), layout=s(ci.layout),
            format=s(ci.format), backend=s(lib.mambac_model_backend(h)))
        self.tokenizer: Tokenizer | None = self._load_tokenizer(tokenizer)
        self._children: "weakref.WeakSet[State | Context]" = weakref.WeakSet()
        self._ctx = Context(self, threads=threads, isa=isa, max_ubatch=max_ubatch)
        _live_models[(path, tuple(sorted(self._kwargs.items())))] = self

    def _load_tokenizer(self, explicit) -> Tokenizer | None:
        if explicit is not None:
            return Tokenizer(str(explicit))
        if self.info.format == "gguf":
            try:
                return Tokenizer(self.info.path)
            except Exception:  # a GGUF without a vocabulary: look beside it
                pass
        cand = os.path.join(self.info.dir, "tokenizer.json")
        return Tokenizer(cand) if os.path.exists(cand) else None

    def close(self) -> None:
        """Frees the weights now, and every state and context made from the model (using
        them afterwards raises); also done when the model is garbage collected."""
        for child in list(getattr(self, "_children", ())):
            child.close()
        h = getattr(self, "_h", None)
        if h:
            lib.mambac_model_free(h)
            self._h = None

    def _handle(self):
        if not self._h:
            raise MambacInvalidArgument("the model was closed")
        return self._h

    def __del__(self):
        self.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __reduce__(self):
        # a model pickles as how to load it (the weights stay in their files); unpickling in
        # a process that still holds the same model gives that model back
        return (_unpickle_model, (self.path, self._kwargs))

    def __repr__(self) -> str:
        i = self.info
        return f"Model({self.path!r}, arch={i.arch}, d_model={i.d_model}, n_layer={i.n_layer}, dtype={i.dtype}, backend={i.backend})"

    # ---- what a model makes ------------------------------------------------------------

    def state(self) -> "State":
        """A new empty sequence state."""
        return State(self)

    def context(self, threads: int = 0, isa: str | None = None, max_ubatch: int = 0) -> "Context":
        """A new context (scratch memory and a thread pool) to evaluate from another thread."""
        return Context(self, threads=threads, isa=isa, max_ubatch=max_ubatch)

    @property
    def default_context(self) -> "Context":
        return self._ctx

    def encode(self, text: str | bytes) -> list[int]:
        return self._need_tokenizer().encode(text)

    def decode(self, ids: Ids) -> str:
        return self._need_tokenizer().decode(list(ids))

    def _need_tokenizer(self) -> Tokenizer:
        if self.tokenizer is None:
            raise MambacInvalidArgument(f"{self.path} has no tokenizer.json: give Model(..., tokenizer=PATH) or token ids")
        return self.tokenizer

    # ---- evaluation on the model's context ----------------------------------------------

    def logits(self, ids: Prompt, state: "State | None" = None, last_only: bool = False) -> np.ndarray:
        """Logits after every token of `ids` (n_tokens x n_vocab_rows float32; one row with
        last_only), continuing from `state` and advancing it (None: from an empty sequence)."""
        return self._ctx.logits(ids, state, last_only)

    def eval(self, ids: Prompt, state: "State", logits: str = "last"):
        """Feeds ids to state; returns logits as `logits` asks ("last", "all", "none", "greedy")."""
        return self._ctx.eval(ids, state, logits)

    def eval_batch(self, seqs: Sequence[tuple["State", Prompt]], logits: str = "last") -> list:
        """Feeds every (state, ids) pair together (weights read once for all of them)."""
        return self._ctx.eval_batch(seqs, logits)

    def generate(self, prompt: Prompt, **kw) -> Any:
        """Generates text after the prompt; see Context.generate."""
        return self._ctx.generate(prompt, **kw)

    def stream(self, prompt: Prompt, **kw) -> Iterator[str]:
        """Yields the generated text piece by piece; see Context.stream."""
        return self._ctx.stream(prompt, **kw)

    def loglikelihood(self, context: str, continuations: Sequence[str]) -> list[tuple[float, bool]]:
        """lm-evaluation-harness's loglikelihood of each continuation after the context."""
        return self._ctx.loglikelihood_batch([(context, continuations)])[0]

    def loglikelihood_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[tuple[float, bool]]]:
        return self._ctx.loglikelihood_batch(requests)

    def save_gguf(self, path: str | os.PathLike, type: str = "f16", progress=None) -> None:
        """Writes the model as a GGUF file (f32, f16, bf16, q8_0, q4_0, q4_K), atomically."""
        from .training import _write_gguf

        _write_gguf(self, str(path), type, progress)

    def apply_chat_template(self, messages: Sequence[dict], template: str | None = None,
                            add_assistant: bool = True) -> str:
        """The messages ({"role", "content"}) as the text the model's chat template makes."""
        return self._ctx.apply_chat_template(messages, template, add_assistant)

    def chat_template(self) -> str:
        """The built-in template the checkpoint's tokenizer_config.json names (else chatml)."""
        cfg = os.path.join(self.info.dir, "tokenizer_config.json")
        jinja = None
        if os.path.exists(cfg):
            try:
                with open(cfg, encoding="utf-8") as f:
                    t = json.load(f).get("chat_template")
                jinja = t if isinstance(t, str) else None
            except (OSError, ValueError):
                jinja = None
        name = lib.mambac_chat_template_name(jinja.encode()) if jinja else None
        return name.decode() if name else "chatml"


class _ModelObject:
    """A library object made from a model (a state, a context): freed with the model, and
    refusing use afterwards instead of handing the library a dangling pointer."""

    _what = "object"
    _free = None  # the library's free function

    def _own(self, model: "Model", handle: C.c_void_p) -> None:
        self._handle_ = handle
        self.model = model
        model._children.add(self)

    def close(self) -> None:
        h = getattr(self, "_handle_", None)
        if h:
            with getattr(self, "_lock", _NO_LOCK):
                type(self)._free(h)
                self._handle_ = None

    def __del__(self):
        self.close()

    @property
    def _h(self):
        if not self._handle_:
            raise MambacInvalidArgument(f"the {self._what} was freed (its model was closed)")
        return self._handle_


class State(_ModelObject):
    """The fixed-size recurrent state of one sequence (conv windows and SSM states), in the
    memory of the model's backend. Cheap to copy, save and pickle."""

    _what = "state"
    _free = staticmethod(lib.mambac_state_free)

    def __init__(self, model: Model):
        err = _lib.Error()
        h = C.c_void_p()
        check(lib.mambac_state_new(model._handle(), C.byref(h), C.byref(err)), err)
        self._own(model, h)

    @property
    def n_tokens(self) -> int:
        """Tokens consumed since the last reset."""
        return lib.mambac_state_n_tokens(self._h)

    def reset(self) -> None:
        lib.mambac_state_reset(self._h)

    def copy(self) -> "State":
        s = State(self.model)
        s.copy_from(self)
        return s

    __copy__ = copy

    def __deepcopy__(self, memo) -> "State":
        return self.copy()

    def copy_from(self, other: "State") -> None:
        err = _lib.Error()
        check(lib.mambac_state_copy(self._h, other._h, C.byref(err)), err)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the state file (atomically)."""
        err = _lib.Error()
        check(lib.mambac_state_save(self._h, str(path).encode(), C.byref(err)), err)

    def load(self, path: str | os.PathLike) -> "State":
        """Reads a state file of a model of this shape into this state (unchanged on error)."""
        err = _lib.Error()
        check(lib.mambac_state_load(self._h, str(path).encode(), C.byref(err)), err)
        return self

    def to_bytes(self) -> bytes:
        n = lib.mambac_state_file_bytes(self.model._handle())
        buf = C.create_string_buffer(n)
        err = _lib.Error()
        check(lib.mambac_state_to_bytes(self._h, buf, n, C.byref(err)), err)
        return buf.raw

    @classmethod
    def from_bytes(cls, model: Model, data: bytes) -> "State":
        s = cls(model)
        err = _lib.Error()
        data = bytes(data)
        check(lib.mambac_state_from_bytes(s._h, data, len(data), C.byref(err)), err)
        return s

    @classmethod
    def from_file(cls, model: Model, path: str | os.PathLike) -> "State":
        return cls(model).load(path)

    def __reduce__(self):
        return (State.from_bytes, (self.model, self.to_bytes()))

    def __repr__(self) -> str:
        return f"State(n_tokens={self.n_tokens}, {self.model.info.state_bytes} bytes)"


@dataclass
class GenerateResult:
    """What generate(..., details=True) returns."""

    text: str
    tokens: list[int]
    finish_reason: str  # "length", "eos", "stop" or "callback"
    n_prompt: int
    n_generated: int
    prefill_seconds: float
    decode_seconds: float


class Context(_ModelObject):
    """Scratch memory and a thread pool for evaluating a model's tokens. One call at a time
    (a lock orders callers); the GIL is released while it computes, so contexts driven by
    different Python threads run in parallel."""

    _what = "context"
    _free = staticmethod(lib.mambac_context_free)

    def __init__(self, model: Model, threads: int = 0, isa: str | None = None, max_ubatch: int = 0):
        p = lib.mambac_context_default_params()
        p.n_threads = int(threads)
        if max_ubatch:
            p.max_ubatch = int(max_ubatch)
        p.isa = isa.encode() if isa else None
        err = _lib.Error()
        h = C.c_void_p()
        check(lib.mambac_context_new(model._handle(), C.byref(p), C.byref(h), C.byref(err)), err)
        self._lock = threading.Lock()
        self._rows = model.info.n_vocab_rows
        # eval's reusable pieces (used under the lock): an error buffer, a one-token input,
        # and a one-sequence batch whose greedy id lands in _tok1
        self._err = _lib.Error()
        self._one = (C.c_int32 * 1)()
        self._tok1 = C.c_int32()
        self._seq1 = _lib.Seq(mode=3, logits=None, token=C.pointer(self._tok1))
        self._own(model, h)

    @property
    def isa(self) -> str:
        return lib.mambac_context_isa(self._h).decode()

    @property
    def threads(self) -> int:
        return lib.mambac_context_threads(self._h)

    def _prompt(self, prompt: Prompt) -> np.ndarray:
        if isinstance(prompt, (str, bytes)):
            return np.asarray(self.model._need_tokenizer().encode(prompt), dtype=np.int32)
        return _ids_array(prompt)

    def _check_state(self, state: State) -> None:
        if not isinstance(state, State):
            raise MambacInvalidArgument(f"expected a mambac.State, not {type(state).__name__}")
        if state.model is not self.model:
            raise MambacInvalidArgument("the state belongs to another model")

    def logits(self, ids: Prompt, state: State | None = None, last_only: bool = False) -> np.ndarray:
        a = self._prompt(ids)
        if len(a) == 0:
            raise MambacInvalidArgument("no tokens to evaluate")
        st = state if state is not None else State(self.model)
        self._check_state(st)
        out = np.empty(self._rows if last_only else (len(a), self._rows), dtype=np.float32)
        err = _lib.Error()
        with self._lock:
            check(lib.mambac_eval(self._h, st._h, a.ctypes.data, len(a), 1 if last_only else 2, out.ctypes.data, C.byref(err)),
                  err)
        return out

    def eval(self, ids: Prompt, state: State, logits: str = "last"):
        """Feeds ids to state, continuing from it. Returns "last": the last token's logits
        (n_vocab_rows float32), "all": every token's (n_tokens x n_vocab_rows), "greedy": the
        last token's argmax id (computed where the model runs), "none": None."""
        mode = _LOGITS_MODES.get(logits)
        if mode is None:
            raise MambacInvalidArgument(f"logits must be one of {', '.join(_LOGITS_MODES)}, not {logits!r}")
        self._check_state(state)
        one = type(ids) is list and len(ids) == 1 and type(ids[0]) is int
        if one:  # a decode step: the context's one-token buffer, no array made
            self._one[0] = ids[0]
            a, n, addr = None, 1, C.addressof(self._one)
        else:
            a = self._prompt(ids)
            n, addr = len(a), a.ctypes.data
        err = self._err
        with self._lock:
            if mode == 3:  # the argmax where the model runs: one id back
                seq = self._seq1
                seq.state, seq.ids, seq.n_tokens = state._h, C.cast(addr, C.POINTER(C.c_int32)), n
                check(lib.mambac_eval_batch(self._h, C.byref(seq), 1, C.byref(err)), err)
                return self._tok1.value
            out = None if mode == 0 else np.empty(self._rows if mode == 1 else (n, self._rows), dtype=np.float32)
            check(lib.mambac_eval(self._h, state._h, addr, n, mode, out.ctypes.data if out is not None else None,
                                  C.byref(err)), err)
        return out

    def eval_batch(self, seqs: Sequence[tuple[State, Prompt]], logits: str = "last") -> list:
        """Feeds every (state, ids) pair in one mambac_eval_batch call. Returns per sequence:
        "last": an n_vocab_rows array; "all": n_tokens x n_vocab_rows; "greedy": the argmax
        id of the last token; "none": None."""
        if logits not in _LOGITS_MODES:
            raise MambacInvalidArgument(f"logits must be one of {', '.join(_LOGITS_MODES)}, not {logits!r}")
        mode = _LOGITS_MODES[logits]
        n = len(seqs)
        arr = (_lib.Seq * max(n, 1))()
        keep, outs = [], []
        tokens = np.zeros(max(n, 1), dtype=np.int32)
        for i, (state, ids) in enumerate(seqs):
            self._check_state(state)
            a = self._prompt(ids)
            keep.append(a)
            out = None
            if mode == 1:
                out = np.empty(self._rows, dtype=np.float32)
            elif mode == 2:
                out = np.empty((len(a), self._rows), dtype=np.float32)
            outs.append(out)
            arr[i].state = state._h
            arr[i].ids = _i32p(a)
            arr[i].n_tokens = len(a)
            arr[i].mode = mode
            arr[i].logits = _f32p(out)
            arr[i].token = C.cast(tokens.ctypes.data + 4 * i, C.POINTER(C.c_int32)) if mode == 3 else None
        err = _lib.Error()
        with self._lock:
            check(lib.mambac_eval_batch(self._h, arr, n, C.byref(err)), err)
        if mode == 3:
            return [int(tokens[i]) for i in range(n)]
        return outs if mode != 0 else [None] * n

    # ---- generation ---------------------------------------------------------------------

    def _generate_params(self, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed,
                         stop, ignore_eos, feed_last):
        gp = lib.mambac_generate_default_params()
        sp = gp.sampling
        if temperature is not None:
            sp.temp = float(temperature)
        if top_k is not None:
            sp.top_k = int(top_k)
        if top_p is not None:
            sp.top_p = float(top_p)
        if min_p is not None:
            sp.min_p = float(min_p)
        if repeat_penalty is not None:
            sp.repeat_penalty = float(repeat_penalty)
        if repeat_last_n is not None:
            sp.repeat_last_n = int(repeat_last_n)
        sp.seed = int(seed) if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
        gp.sampling = sp
        gp.max_tokens = int(max_tokens)
        gp.ignore_eos = 1 if ignore_eos else 0
        gp.feed_last = 1 if feed_last else 0
        stops = [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in ([stop] if isinstance(stop, str) else (stop or []))]
        if any(len(s) == 0 for s in stops):
            raise MambacInvalidArgument("a stop string is empty")
        stop_arr = (C.c_char_p * max(len(stops), 1))(*stops)
        gp.stop = stop_arr
        gp.n_stop = len(stops)
        return gp, stop_arr

    def _run_generate(self, prompt, state, on_piece, params) -> tuple[GenerateResult, list[int]]:
        a = self._prompt(prompt)
        if len(a) == 0:
            raise MambacInvalidArgument("the prompt is empty")
        st = state if state is not None else State(self.model)
        self._check_state(st)
        gp, _keep = self._generate_params(**params)
        chunks: list[bytes] = []
        toks: list[int] = []
        failure: list[BaseException] = []

        def piece(user, token, text, n):
            try:
                if token >= 0:
                    toks.append(token)
                b = C.string_at(text, n) if n else b""
                if b:
                    chunks.append(b)
                return 1 if (on_piece is not None and on_piece(b)) else 0
            except BaseException as e:  # noqa: BLE001 (ctypes would print and drop it)
                failure.append(e)
                return 1

        cb = _lib.PIECE_FN(piece)
        tok = self.model.tokenizer._h if self.model.tokenizer is not None else None
        res = _lib.GenerateResult()
        err = _lib.Error()
        with self._lock:
            status = lib.mambac_generate(self._h, st._h, tok, _i32p(a), len(a), C.byref(gp), cb, None, C.byref(res),
                                         C.byref(err))
        if failure:
            raise failure[0]
        check(status, err)
        text = b"".join(chunks).decode("utf-8", "replace")
        return GenerateResult(text=text, tokens=toks, finish_reason=_FINISH.get(res.finish, "length"),
                              n_prompt=res.n_prompt, n_generated=res.n_generated,
                              prefill_seconds=res.prefill_seconds, decode_seconds=res.decode_seconds), toks

    def generate(self, prompt: Prompt, max_tokens: int = 128, temperature: float | None = None, top_k: int | None = None,
                 top_p: float | None = None, min_p: float | None = None, repeat_penalty: float | None = None,
                 repeat_last_n: int | None = None, seed: int | None = None, stop: str | Sequence[str] | None = None,
                 ignore_eos: bool = False, state: State | None = None, feed_last: bool = False,
                 details: bool = False) -> str | GenerateResult:
        """Samples up to max_tokens after the prompt (text or ids) and returns the text.

        Sampling defaults are the CLI's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05;
        temperature 0 is greedy); seed None takes a random one; the same seed gives the same
        tokens as `mambac generate --seed`. stop strings end the text (they are not in it).
        state: continue from it and advance it (feed_last: it then holds every generated
        token too). details: return a GenerateResult with tokens and finish reason.
        """
        params = {k: v for k, v in locals().items() if k in _GENERATE_OPTIONS}
        res, _ = self._run_generate(prompt, state, None, params)
        return res if details else res.text

    def stream(self, prompt: Prompt, max_tokens: int = 128, temperature: float | None = None, top_k: int | None = None,
               top_p: float | None = None, min_p: float | None = None, repeat_penalty: float | None = None,
               repeat_last_n: int | None = None, seed: int | None = None, stop: str | Sequence[str] | None = None,
               ignore_eos: bool = False, state: State | None = None, feed_last: bool = False) -> Iterator[str]:
        """Like generate, yielding the text as it becomes printable (whole UTF-8 characters,
        never part of a stop string). Closing the generator early stops the generation."""
        params = {k: v for k, v in locals().items() if k in _GENERATE_OPTIONS}
        q: "queue.Queue[tuple[str, Any]]" = queue.Queue()
        cancel = threading.Event()

        def on_piece(b: bytes) -> bool:
            q.put(("piece", b))
            return cancel.is_set()

        def run():
            try:
                res, _ = self._run_generate(prompt, state, on_piece, params)
                q.put(("done", res))
            except BaseException as e:  # noqa: BLE001 (re-raised in the consumer)
                q.put(("error", e))

        worker = threading.Thread(target=run, name="mambac-stream", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = q.get()
                if kind == "piece":
                    yield value.decode("utf-8", "replace")
                elif kind == "done":
                    return value
                else:
                    raise value
        finally:
            cancel.set()
            worker.join()

    # ---- scoring ------------------------------------------------------------------------

    def loglikelihood_batch(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[tuple[float, bool]]]:
        """For each (context, continuations): lm-evaluation-harness's loglikelihood of every
        continuation (sum of natural-log probabilities, and whether each token was greedy)."""
        tok = self.model._need_tokenizer()
        n = len(requests)
        reqs = (_lib.LLRequest * max(n, 1))()
        keep = []
        for i, (context, conts) in enumerate(requests):
            cb = context.encode("utf-8")
            cs = [c.encode("utf-8") for c in conts]
            carr = (C.c_char_p * max(len(cs), 1))(*cs)
            larr = (C.c_size_t * max(len(cs), 1))(*[len(c) for c in cs])
            out = (_lib.Loglik * max(len(cs), 1))()
            keep.append((cb, cs, carr, larr, out))
            reqs[i].context = cb
            reqs[i].context_len = len(cb)
            reqs[i].conts = carr
            reqs[i].cont_lens = larr
            reqs[i].n_conts = len(cs)
            reqs[i].out = out
        err = _lib.Error()
        with self._lock:
            check(lib.mambac_loglikelihood_batch(self._h, tok._h, reqs, n, C.byref(err)), err)
        return [[(k[4][j].logprob, bool(k[4][j].greedy)) for j in range(len(k[1]))] for k in keep]

    def apply_chat_template(self, messages: Sequence[dict], template: str | None = None, add_assistant: bool = True) -> str:
        tmpl = (template or self.model.chat_template()).encode()
        keep = [(m["role"].encode(), m["content"].encode("utf-8")) for m in messages]
        arr = (_lib.ChatMessage * max(len(keep), 1))(*[_lib.ChatMessage(r, c) for r, c in keep])
        out = C.c_void_p()
        n = C.c_size_t()
        err = _lib.Error()
        check(lib.mambac_chat_apply(tmpl, arr, len(keep), 1 if add_assistant else 0, C.byref(out), C.byref(n),
                                    C.byref(err)), err)
        try:
            return C.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            lib.mambac_free(out)


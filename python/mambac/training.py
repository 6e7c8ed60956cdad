"""Training, random initialization and quantization: the library's CLI-free entry points."""

from __future__ import annotations

import ctypes as C
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from . import _lib
from .errors import MambacInvalidArgument, check

lib = _lib.lib

_DTYPES = {"f32": 0, "f16": 1, "bf16": 2, "q8_0": 3, "q4_0": 4, "q4_K": 5}
_ARCHS = {"mamba": 1, "mamba1": 1, "mamba2": 2}


@dataclass(frozen=True)
class TrainProgress:
    """One optimizer step's report (val_loss is None on steps without an evaluation)."""

    step: int
    steps: int
    tokens: int
    train_loss: float
    val_loss: float | None
    lr: float
    grad_norm: float
    tok_s: float
    elapsed: float
    eta: float


def _arch(name: str) -> int:
    if name not in _ARCHS:
        raise MambacInvalidArgument(f"arch must be mamba or mamba2, not {name!r}")
    return _ARCHS[name]


def _dtype(name: str) -> int:
    if name not in _DTYPES:
        raise MambacInvalidArgument(f"type must be one of {', '.join(_DTYPES)}, not {name!r}")
    return _DTYPES[name]


_INIT_FIELDS = ("d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand", "dt_rank", "head_dim", "n_groups",
                "chunk_size")
_TRAIN_FIELDS = ("batch", "seq", "steps", "warmup", "accum", "eval_every", "eval_windows", "save_every", "stop_at", "lr",
                 "min_lr", "weight_decay", "clip", "beta1", "beta2", "val_frac", "time_limit", "seed", "threads")


def train(data: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *, arch: str | None = None,
          tokenizer: str | os.PathLike | None = None, init_from: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None, progress: Callable[[TrainProgress], bool | None] | None = None,
          device: str | None = None, precision: str | None = None, **options) -> None:
    """Trains a model on a text file, as `mambac train` does: on the CPU, or with
    device="cuda" / "cuda:N" on a GPU (a CUDA build; precision "f32", "tf32" or "bf16").

    A new model (arch "mamba" or "mamba2", shapes from d_model=, n_layer=, d_state=, expand=,
    d_conv=, dt_rank=, head_dim=, n_groups=, chunk_size=, vocab_size=; small CPU defaults),
    a fine-tune of init_from, or resume=DIR to continue a checkpoint. Options as the CLI's:
    batch, seq, steps, warmup, accum, eval_every, eval_windows, save_every, stop_at, lr,
    min_lr, weight_decay, clip, beta1, beta2, val_frac, time_limit, seed, threads.
    progress(p) is called after every step; returning True stops the run after saving.
    Ctrl-C (KeyboardInterrupt) also saves a checkpoint before it is raised.
    """
    unknown = set(options) - set(_INIT_FIELDS) - set(_TRAIN_FIELDS)
    if unknown:
        raise MambacInvalidArgument(f"unknown training option(s): {', '.join(sorted(unknown))}")
    p = lib.mambac_train_default_params(_arch(arch or "mamba"))
    init_given = arch is not None
    for k in _INIT_FIELDS:
        if k in options:
            setattr(p.init, k, int(options[k]))
            init_given = True
    for k in _TRAIN_FIELDS:
        if k in options:
            setattr(p, k, type(getattr(p, k))(options[k]))
    if "seed" in options:
        p.init.seed = int(options["seed"])
    p.init_set = 1 if init_given else 0
    enc = lambda v: os.fsencode(str(v)) if v is not None else None  # noqa: E731
    keep = [enc(data), enc(out), enc(tokenizer), enc(init_from), enc(resume), enc(device), enc(precision)]
    p.data, p.out, p.tokenizer, p.init_from, p.resume, p.device, p.precision = keep
    raised: list[BaseException] = []

    def relay(user, pr):
        try:
            c = pr.contents
            r = TrainProgress(c.step, c.steps, c.tokens, c.train_loss, None if math.isnan(c.val_loss) else c.val_loss,
                              c.lr, c.grad_norm, c.tok_s, c.elapsed, c.eta)
            return 1 if (progress is not None and progress(r)) else 0
        except BaseException as e:  # noqa: BLE001 (KeyboardInterrupt too: stop, save, re-raise)
            raised.append(e)
            return 1

    cb = _lib.TRAIN_PROGRESS_FN(relay)
    err = _lib.Error()
    status = lib.mambac_train(C.byref(p), cb, None, C.byref(err))
    if raised:
        raise raised[0]
    check(status, err)


def init_model(out: str | os.PathLike, preset: str | None = None, *, arch: str = "mamba", dtype: str = "f32",
               seed: int = 0, **shapes) -> None:
    """Writes a randomly initialized model (mamba_ssm's init) to a new folder: the shapes of
    a released checkpoint (preset "mamba-130m" ... "mamba2-2.7b") or given ones."""
    err = _lib.Error()
    if preset is not None:
        p = _lib.InitParams()
        check(lib.mambac_init_preset(preset.encode(), C.byref(p), C.byref(err)), err)
    else:
        p = lib.mambac_init_default_params(_arch(arch))
    for k, v in shapes.items():
        if k not in _INIT_FIELDS:
            raise MambacInvalidArgument(f"unknown shape {k!r}")
        setattr(p, k, int(v))
    p.dtype = _dtype(dtype)
    p.seed = int(seed)
    check(lib.mambac_model_write_init(C.byref(p), os.fsencode(str(out)), C.byref(err)), err)


def presets() -> list[str]:
    """Names of the released checkpoints' shapes init_model knows."""
    out, i = [], 0
    while (n := lib.mambac_preset_name(i)) is not None:
        out.append(n.decode())
        i += 1
    return out


def _write_gguf(model, path: str, type: str, progress) -> None:
    def relay(user, done, total, name):
        if progress is not None:
            progress(done, total, name.decode() if name else "")

    cb = _lib.GGUF_PROGRESS_FN(relay)
    err = _lib.Error()
    check(lib.mambac_model_write_gguf_ex(model._handle(), os.fsencode(path), _dtype(type), cb, None, C.byref(err)), err)


def quantize(model: str | os.PathLike, out: str | os.PathLike, type: str = "q8_0",
             progress: Callable[[int, int, str], None] | None = None) -> None:
    """Writes `model` (any format mambac loads) as a GGUF file of that type, atomically (as
    `mambac quantize`): f32, f16, bf16, q8_0, q4_0, q4_K."""
    from .model import Model

    with Model(model, threads=1) as m:
        _write_gguf(m, str(out), type, progress)

"""mambac: Mamba and Mamba-2 language models in C, from Python.

    import mambac
    m = mambac.Model()                        # the embedded default model; or a folder / .gguf
    print(m.generate("It was a dark night, and", max_tokens=40, seed=1))
    logits = m.logits(m.encode("To be"))      # numpy float32, n_tokens x n_vocab_rows

No PyTorch: the package drives libmambac (built from this repository by `pip install .`)
through ctypes; evaluation releases the GIL. docs/PYTHON.md has the whole API.
"""

from . import _lib
from .errors import (MambacError, MambacFormatError, MambacInvalidArgument, MambacIOError, MambacMemoryError,
                     MambacUnsupportedError)
from .model import Context, GenerateResult, Model, ModelInfo, State, default_model_path
from .tokenizer import Tokenizer
from .training import TrainProgress, init_model, presets, quantize, train

__version__ = _lib.lib.mambac_version().decode()


def kernel_set() -> str:
    """The CPU kernel set contexts use by default ("avx512", "avx2", "scalar", ...)."""
    return _lib.lib.mambac_kernel_set_default().decode()


__all__ = [
    "Model", "ModelInfo", "Context", "State", "Tokenizer", "GenerateResult", "TrainProgress",
    "train", "init_model", "presets", "quantize", "default_model_path", "kernel_set",
    "MambacError", "MambacIOError", "MambacFormatError", "MambacUnsupportedError", "MambacInvalidArgument",
    "MambacMemoryError", "__version__",
]

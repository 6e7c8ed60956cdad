"""The model's byte-level BPE tokenizer (HF tokenizer.json: the same ids as HF tokenizers)."""

from __future__ import annotations

import ctypes as C
from collections.abc import Sequence

from . import _lib
from .errors import check

lib = _lib.lib


class Tokenizer:
    """Encodes text to ids and back. Thread safe: several threads may use one tokenizer."""

    def __init__(self, path: str):
        """Loads a tokenizer.json, a folder holding one, or the tokenizer of a GGUF file."""
        err = _lib.Error()
        h = C.c_void_p()
        check(lib.mambac_tokenizer_load(str(path).encode(), C.byref(h), C.byref(err)), err)
        self._h = h
        self.path = str(path)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            lib.mambac_tokenizer_free(h)
            self._h = None

    @property
    def n_vocab(self) -> int:
        """1 + the largest id (vocabulary and added tokens)."""
        return lib.mambac_tokenizer_n_vocab(self._h)

    def encode(self, text: str | bytes) -> list[int]:
        """Text (str, or any bytes: invalid UTF-8 is encoded byte by byte) to ids."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        ids = C.POINTER(C.c_int32)()
        n = C.c_size_t()
        err = _lib.Error()
        check(lib.mambac_tokenize(self._h, data, len(data), C.byref(ids), C.byref(n), C.byref(err)), err)
        try:
            return ids[: n.value]
        finally:
            lib.mambac_free(ids)

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """Ids to the bytes they stand for (a token may hold part of a UTF-8 character)."""
        arr = (C.c_int32 * len(ids))(*ids)
        out = C.c_void_p()
        n = C.c_size_t()
        err = _lib.Error()
        check(lib.mambac_detokenize(self._h, arr, len(ids), C.byref(out), C.byref(n), C.byref(err)), err)
        try:
            return C.string_at(out, n.value)
        finally:
            lib.mambac_free(out)

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Ids to text (bytes that are not UTF-8 become U+FFFD unless errors says otherwise)."""
        return self.decode_bytes(ids).decode("utf-8", errors)

    def token_bytes(self, id: int) -> bytes | None:
        """The bytes of one id, or None for an id the tokenizer does not have."""
        n = C.c_size_t()
        p = lib.mambac_token_bytes(self._h, int(id), C.byref(n))
        return C.string_at(p, n.value) if p else None

    def is_special(self, id: int) -> bool:
        return bool(lib.mambac_token_is_special(self._h, int(id)))

    def find(self, text: str) -> int | None:
        """The id of a vocabulary entry or added token given as text ("<|endoftext|>"), or None."""
        i = lib.mambac_tokenizer_find(self._h, text.encode("utf-8"))
        return None if i < 0 else i

    def __len__(self) -> int:
        return self.n_vocab

    def __repr__(self) -> str:
        return f"Tokenizer({self.path!r}, n_vocab={self.n_vocab})"

"""The library's errors as Python exceptions: each carries the library's one-line message."""

from __future__ import annotations

from . import _lib


class MambacError(Exception):
    """A failed libmambac call. `status` is the library's status name ("io", "format", ...)."""

    status = "error"


class MambacIOError(MambacError, OSError):
    """A file could not be opened, read, written or mapped."""

    status = "io"


class MambacFormatError(MambacError, ValueError):
    """A file is malformed or inconsistent."""

    status = "format"


class MambacUnsupportedError(MambacError):
    """Well-formed, but not something mambac handles."""

    status = "unsupported"


class MambacInvalidArgument(MambacError, ValueError):
    """A bad argument (a token id outside the vocabulary, a state of another model, ...)."""

    status = "invalid_argument"


class MambacMemoryError(MambacError, MemoryError):
    """An allocation failed."""

    status = "nomem"


_BY_STATUS = {1: MambacIOError, 2: MambacFormatError, 3: MambacUnsupportedError, 4: MambacInvalidArgument,
              5: MambacMemoryError}


def check(status: int, err: _lib.Error) -> None:
    """Raises the exception of a nonzero status with the library's message."""
    if status != 0:
        raise _BY_STATUS.get(status, MambacError)(err.msg.decode("utf-8", "replace"))

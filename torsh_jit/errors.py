"""The error tree. Every error a user can cause is a TorshJitError subclass.

User errors say what was wrong, where (the user's file and line, when known) and
what works instead. InternalError says it is a bug in torsh-jit.
"""
from __future__ import annotations

import os
import sys

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class TorshJitError(Exception):
    """Base of every error torsh-jit raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None):
        self.message = message
        self.hint = hint
        self.where = where
        text = message
        if where:
            text = f"{where}: {text}"
        if hint:
            text = f"{text}\n  hint: {hint}"
        super().__init__(text)


class TraceError(TorshJitError):
    """The function could not be traced (control flow on a traced value, bad Python)."""


class UnsupportedOpError(TorshJitError):
    """An operation or numpy function torsh-jit does not implement."""


class DTypeError(TorshJitError):
    """A dtype that is not supported, or not supported by this op or target."""


class ShapeError(TorshJitError):
    """Shapes that do not broadcast, or do not fit the operation."""


class ArgumentError(TorshJitError):
    """A kernel was called with the wrong number, kind or dtype of arguments."""


class DomainError(TorshJitError, ValueError):
    """A value numpy refuses for an operation (an integer raised to a negative integer
    power). A ValueError too, as numpy's own error is."""


class TargetError(TorshJitError):
    """An unknown target name, or a target that cannot run on this machine."""


class RunnerError(TargetError):
    """A target's runner (emulator, cross compiler, linker, wasm engine) is missing or failed."""


class CompileError(TorshJitError):
    """Generated code failed to build. Raised as a bug report unless the cause is the user's."""


class CacheError(TorshJitError):
    """The cache directory cannot be used."""


class TuneError(TorshJitError):
    """Autotuning was asked for something it cannot do (a bad argument spec, a config field
    that does not exist, a target this machine cannot time)."""


class InternalError(TorshJitError):
    """A bug in torsh-jit: the message says so and asks for a report."""

    def __init__(self, message: str, **kw):
        super().__init__(
            f"internal error (a bug in torsh-jit, please report it with this message): {message}", **kw
        )


def located(err: TorshJitError, where: str | None) -> TorshJitError:
    """err as it would read raised at `where` (the user's call site), if it names no place yet."""
    if err.where or not where:
        return err
    import copy
    new = copy.copy(err)
    TorshJitError.__init__(new, err.message, hint=err.hint, where=where)
    return new


def user_frame() -> str | None:
    """'file:line' of the innermost stack frame outside the torsh_jit package.

    Walks frames directly (not traceback.extract_stack): it runs once per traced op.
    """
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_PKG_DIR) and not fn.startswith("<frozen"):
            return f"{fn}:{f.f_lineno}"
        f = f.f_back
    return None


def source_line(where: str | None) -> str:
    """The text of the user's line named by 'file:line', or ''."""
    if not where or ":" not in where:
        return ""
    import linecache
    fn, _, line = where.rpartition(":")
    try:
        return linecache.getline(fn, int(line)).strip()
    except ValueError:
        return ""


class CacheWarning(UserWarning):
    """The cache could not be used (unwritable directory, a lock held too long, a remote
    store that is down); work goes on."""

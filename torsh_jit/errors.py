"""The error tree. Every error a user can cause is a TorshJitError subclass.

User errors say what was wrong, where (the user's file and line, when known) and
what works instead. InternalError says it is a bug in torsh-jit.
"""
from __future__ import annotations

import os
import sys
import traceback

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


class TargetError(TorshJitError):
    """An unknown target name, or a target that cannot run on this machine."""


class CompileError(TorshJitError):
    """Generated code failed to build. Raised as a bug report unless the cause is the user's."""


class CacheError(TorshJitError):
    """The cache directory cannot be used."""


class InternalError(TorshJitError):
    """A bug in torsh-jit: the message says so and asks for a report."""

    def __init__(self, message: str, **kw):
        super().__init__(
            f"internal error (a bug in torsh-jit, please report it with this message): {message}", **kw
        )


def user_frame() -> str | None:
    """'file:line' of the innermost stack frame outside the torsh_jit package."""
    for frame in reversed(traceback.extract_stack()):
        fn = os.path.abspath(frame.filename)
        if not fn.startswith(_PKG_DIR) and "importlib" not in fn:
            return f"{frame.filename}:{frame.lineno}"
    return None


def user_frame_line() -> tuple[str, str] | None:
    """('file:line', source line text) of the innermost user frame."""
    for frame in reversed(traceback.extract_stack()):
        fn = os.path.abspath(frame.filename)
        if not fn.startswith(_PKG_DIR) and "importlib" not in fn:
            return f"{frame.filename}:{frame.lineno}", (frame.line or "").strip()
    return None

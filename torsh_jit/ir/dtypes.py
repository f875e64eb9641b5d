"""dtypes torsh-jit knows, and numpy's promotion rules (NEP 50) applied to them.

Promotion is numpy's own: result dtypes are obtained by asking numpy (on empty
arrays), so torsh-jit and numpy can never disagree about a result type.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError

# Names are numpy's. float16/bfloat16 are declared for GPU targets; CPU kernels reject them.
DTYPES = ("bool", "int32", "int64", "float32", "float64", "float16", "bfloat16")
CPU_DTYPES = frozenset({"bool", "int32", "int64", "float32", "float64"})

ITEMSIZE = {"bool": 1, "int32": 4, "int64": 8, "float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}


def family(dtype: str) -> str:
    """'b' (bool), 'i' (signed int) or 'f' (float)."""
    if dtype == "bool":
        return "b"
    if dtype.startswith("int"):
        return "i"
    return "f"


HALF_DTYPES = ("float16", "bfloat16")


def from_numpy(dt, *, where: str | None = None, what: str | None = None,
               half: bool = False) -> str:
    """The torsh-jit dtype name of a numpy dtype, or a DTypeError naming what works.

    what: the value the dtype belongs to, for the message ("argument 0 ('x')"). half: the
    16-bit floats are accepted too (casts inside a kernel; the target is checked at planning)."""
    if half and isinstance(dt, str) and dt in HALF_DTYPES:
        return dt
    try:
        dt = np.dtype(dt)
    except TypeError:
        raise DTypeError(f"{dt!r} is not a dtype",
                         hint="use one of " + ", ".join(sorted(CPU_DTYPES)), where=where) from None
    name = dt.name
    if name in CPU_DTYPES or (half and name in HALF_DTYPES):
        return name
    if dt.kind == "c":
        instead = "pass the real and imaginary parts as two float arrays (x.real, x.imag)"
    elif dt.kind == "f":
        instead = f"cast it, x.astype(np.float32){' (half floats are for GPU targets)' if dt.itemsize == 2 else ''}"
    elif dt.kind in "iu":
        instead = "cast it, x.astype(np.int32) or x.astype(np.int64)"
    else:
        instead = "pass a numeric array"
    raise DTypeError(
        f"{what + ' has ' if what else ''}dtype {name}, which torsh-jit does not support",
        hint=f"supported dtypes: {', '.join(sorted(CPU_DTYPES))}; {instead}",
        where=where,
    )


def to_numpy(dtype: str) -> np.dtype:
    if dtype == "bfloat16":
        # numpy has no bfloat16; ml_dtypes adds it, with numpy's promotion and ufuncs
        try:
            import ml_dtypes
        except ImportError:
            raise DTypeError("bfloat16 needs the ml_dtypes package (numpy has no bfloat16)",
                             hint="pip install ml_dtypes; bfloat16 runs on GPU targets only") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def weak_example(dtype: str):
    """A Python scalar standing for a 'weak' value of this kind (NEP 50)."""
    return {"b": False, "i": 0, "f": 0.0}[family(dtype)]


def python_scalar_dtype(value) -> str:
    """The dtype a Python scalar gets on its own (it stays weak in promotion)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    raise DTypeError(f"unsupported Python scalar {value!r} of type {type(value).__name__}",
                     hint="use bool, int or float")

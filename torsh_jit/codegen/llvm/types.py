"""LLVM spellings of torsh-jit dtypes: scalar, memory and vector types, intrinsic suffixes
and constant literals. Bools are i1 in registers and i8 in memory."""
from __future__ import annotations

import struct

from ...ir.dtypes import family

SCALAR = {"bool": "i1", "int32": "i32", "int64": "i64", "float32": "float", "float64": "double"}
MEMTYPE = {"bool": "i8", "int32": "i32", "int64": "i64", "float32": "float", "float64": "double"}
SUFFIX = {"i1": "i1", "i8": "i8", "i32": "i32", "i64": "i64", "float": "f32", "double": "f64"}


def fconst(value: float, dtype: str) -> str:
    """An LLVM float literal: hex of the double (exact for float32 values)."""
    v = float(value)
    if dtype == "float32":
        v = struct.unpack("f", struct.pack("f", v))[0]
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", v))[0]


def sconst(value, dtype: str) -> str:
    f = family(dtype)
    if f == "f":
        return fconst(value, dtype)
    if f == "b":
        return "true" if value else "false"
    return str(int(value))


def vty(dtype: str, w: int) -> str:
    return f"<{w} x {SCALAR[dtype]}>"


def vsuffix(dtype: str, w: int) -> str:
    return f"v{w}{SUFFIX[SCALAR[dtype]]}"

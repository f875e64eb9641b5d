"""`--arg` texts as argument specs: `f32[4096,1024]`, `i64` (a scalar), and symbolic sizes.

A dimension is an integer or a name (`f32[n,1024]`, `f32[batch,seq,64]`): the bundle's C
function then takes the size as an `int64_t` parameter, and one object serves every value.
The same name in two arguments is one size. The code is traced and planned at a *hint* for
each name, 64 unless the text gives one (`f32[n=4096,1024]`): planning answers its size
questions from the hint and records each answer as a guard, which the C function checks per
call. 64 is not 0 or 1 (sizes that broadcast or vanish, which specialise code), and is a
size where row kernels take their general path; a kernel whose choices depend on the size
(a column reduction's split, a row length past the one-pass limit) records a range for it,
and a different hint picks the other range.
"""
from __future__ import annotations

import re

from .. import errors as E
from ..ir.symbols import Sym
from ..ir.tracer import ArgSpec

DEFAULT_HINT = 64

_SHORT = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64", "bool": "bool",
          "b": "bool", "float32": "float32", "float64": "float64", "int32": "int32",
          "int64": "int64", "f16": "float16", "float16": "float16", "bf16": "bfloat16",
          "bfloat16": "bfloat16"}      # 16-bit floats: GPU targets
_SPEC = re.compile(r"\s*([a-z0-9]+)\s*(?:\[([^\]]*)\])?\s*")
_DIM = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*(\d+))?)\s*")
# names a C function's parameters cannot take (C and C++ keywords, the header's own names)
_RESERVED = frozenset("""auto bool break case char class const constexpr continue default delete
    do double else enum explicit extern false float for friend goto if inline int long mutable
    namespace new noexcept nullptr operator private protected public register restrict return
    short signed sizeof static struct switch template this throw true try typedef typename
    union unsigned using virtual void volatile while int64_t size_t NULL""".split())


def _spec_error(text: str, what: str) -> E.ArgumentError:
    return E.ArgumentError(f"cannot read argument spec {text!r}: {what}", where=f"--arg {text}",
                           hint="write dtype[shape], e.g. f32[4096,1024], i64[7], f64 (a scalar); "
                                "a dimension is an integer or a name for a size the C function "
                                "takes at run time (f32[n,1024], with a tracing size: f32[n=4096,1024]); "
                                "dtypes: f32 f64 i32 i64 bool, and f16 bf16 for GPU targets")


def _read(text: str):
    """(dtype, dims or None for a scalar); a dim is an int or (name, hint or None)."""
    m = _SPEC.fullmatch(text)
    if not m or m.group(1) not in _SHORT:
        raise _spec_error(text, "unknown dtype" if m else "not dtype[shape]")
    body = m.group(2)
    if body is None or not body.strip():
        return _SHORT[m.group(1)], None
    dims = []
    for item in body.split(","):
        if not item.strip():
            continue
        d = _DIM.fullmatch(item)
        if d is None:
            raise _spec_error(text, f"dimension {item.strip()!r} is neither an integer nor a name")
        if d.group(1) is not None:
            dims.append(int(d.group(1)))
            continue
        name = d.group(2)
        if name in _RESERVED or name.startswith("tj_"):
            raise _spec_error(text, f"{name!r} cannot name a size (a C keyword or a name the "
                                    "header uses itself)")
        dims.append((name, int(d.group(3)) if d.group(3) is not None else None))
    return _SHORT[m.group(1)], dims


def short_dtype(dtype: str) -> str:
    """The --arg spelling of a dtype (f32 for float32)."""
    return next(k for k, v in _SHORT.items() if v == dtype)


def parse_args(texts) -> tuple[ArgSpec, ...]:
    """The specs of a call's `--arg` texts; a name used in several is one symbol (its hint
    written once, or the same everywhere)."""
    read = [(t, *_read(t)) for t in texts]
    hints: dict = {}
    for text, _, dims in read:
        for d in dims or ():
            if isinstance(d, tuple) and d[1] is not None:
                if hints.setdefault(d[0], d[1]) != d[1]:
                    raise E.ArgumentError(
                        f"the size {d[0]} is given two tracing sizes, {hints[d[0]]} and {d[1]}",
                        where=f"--arg {text}", hint=f"write {d[0]}=<size> once (or the same everywhere)")
    syms = {}
    out = []
    for _, dtype, dims in read:
        if dims is None:
            out.append(ArgSpec("scalar", (), dtype))
            continue
        shape = []
        for d in dims:
            if isinstance(d, tuple):
                d = syms.setdefault(d[0], Sym.symbol(d[0], hints.get(d[0], DEFAULT_HINT)))
            shape.append(d)
        out.append(ArgSpec("array", tuple(shape), dtype))
    return tuple(out)


def parse_arg(text: str) -> ArgSpec:
    """'f32[4096,1024]' -> an array spec; 'f32[]' or 'f32' -> a scalar spec; 'f32[n,1024]'
    -> an array spec whose first dimension is the symbol n (parse_args shares names)."""
    return parse_args([text])[0]

"""Vector math library: exp, log, sin, ... as LLVM IR, rendered from Jinja templates.

LLVM has no vector math library on our targets (``llvm.exp.v16f32`` becomes sixteen
scalar ``expf`` calls), so elementwise kernels call these instead. They are built
from ``llvm.fma``, integer bit manipulation of the exponent field and minimax
polynomials, and never call libm. Lanes never branch: each lane's special cases are
``select``s. Where rare inputs need much more work (sin/cos/tan of huge arguments,
log of zero, negative, denormal or non-finite numbers), one vector-wide test sends a
vector holding any such lane down the longer select-based path, so ordinary vectors
do not pay for it. Accuracy: float32 within 4 ulp of numpy's float64 result rounded
to float32, float64 within 4 ulp of a long double reference; special values (inf,
nan, signed zeros, denormals, huge trigonometric arguments) as numpy has them.

One template per function lives in ``templates/llvm/vmath/<func>.ll.j2`` and holds
both dtypes; shared pieces are macros in ``_*.ll.j2``. A function that calls another
(sigmoid calls exp, float32 pow the float64 log2 and exp2, ...) names it in
``_DEPENDS``, so ``render_vmath`` emits each definition once however many functions
share it. The IR needs an LLVM 20+ parser (``splat`` constants, intrinsics declared
on first use); it is tested with llvmlite 0.50 / LLVM 22.

``benchmarks/vmath.py`` times every function against numpy;
``tests/codegen/test_vmath.py`` checks accuracy and special values.
"""
from __future__ import annotations

import functools
import struct
from typing import Iterable

import jinja2

from ...errors import DTypeError, TorshJitError, UnsupportedOpError
from ...target import data_dir
from ..jinja_env import environment
from .types import fconst

VMATH_FUNCS: frozenset[str] = frozenset(
    {"exp", "exp2", "log", "log2", "log1p", "expm1", "sin", "cos", "tan",
     "tanh", "sigmoid", "erf", "pow"})

# Functions taking two arguments (x, y); all others take one.
BINARY_FUNCS: frozenset[str] = frozenset({"pow"})

WIDTHS = (1, 2, 4, 8, 16)

__all__ = ["VMATH_FUNCS", "BINARY_FUNCS", "WIDTHS", "vmath_name", "render_vmath",
           "two_over_pi_words"]


class _Ty:
    """LLVM spellings for one (dtype, width): what a template needs to write IR."""

    def __init__(self, dtype: str, width: int):
        f32 = dtype == "float32"
        self.dtype = dtype
        self.W = width
        self.S = "float" if f32 else "double"          # scalar element type
        self.IS = "i32" if f32 else "i64"              # integer of the same size
        self.bits = 32 if f32 else 64
        self.mant = 23 if f32 else 52                  # explicit mantissa bits
        self.bias = 127 if f32 else 1023
        self.short = "f32" if f32 else "f64"
        self.V = f"<{width} x {self.S}>"
        self.I = f"<{width} x {self.IS}>"
        self.M = f"<{width} x i1>"
        self.vs = f"v{width}{self.short}"              # intrinsic suffix: llvm.fma.v16f32
        self.ivs = f"v{width}{self.IS}"
        # bits(inf) - bits(smallest normal): x is a positive normal finite number
        # exactly when bits(x) - bits(smallest normal) is below this, unsigned
        self.normal_span = (2 ** (self.bits - 1 - self.mant) - 2) << self.mant

    def k(self, value) -> str:
        """A splat constant of this dtype. ``value`` is a number, a decimal string or a
        C99 hex float string ("0x1.62e43p-1"); float32 values are rounded to float32
        first. LLVM spells float constants of both widths as a double's hex bits."""
        return f"splat ({self.S} {fconst(_to_float(value), self.dtype)})"

    def ki(self, value: int) -> str:
        """A splat integer constant of the same size as the element; values are taken
        modulo 2^bits, so a 32-bit word 0xA2F9836E is written as the i32 it is."""
        v = int(value) & ((1 << self.bits) - 1)
        if v >> (self.bits - 1):
            v -= 1 << self.bits
        return f"splat ({self.IS} {v})"

    def kb(self, value) -> str:
        """The bit pattern of a float constant, as a splat integer of the same size."""
        v = _to_float(value)
        if self.S == "float":
            bits = struct.unpack("<i", struct.pack("<f", v))[0]
        else:
            bits = struct.unpack("<q", struct.pack("<d", v))[0]
        return f"splat ({self.IS} {bits})"


def _to_float(value) -> float:
    if isinstance(value, str):
        s = value.strip()
        if "x" in s.lower() and "p" in s.lower():
            return float.fromhex(s)
        return float(s)
    return float(value)


def _arctan_inv(x: int, one: int) -> int:
    """arctan(1/x) * one, in integers (Machin's series)."""
    total = term = one // x
    x2, k, sign = x * x, 1, -1
    while term:
        term //= x2
        total += sign * (term // (2 * k + 1))
        sign, k = -sign, k + 1
    return total


@functools.lru_cache(maxsize=None)
def two_over_pi_words(nwords: int, wordbits: int = 32) -> tuple[int, ...]:
    """The first nwords * wordbits fraction bits of 2/pi (0xA2F9836E 0x4E441529 ...),
    most significant word first, for Payne-Hanek range reduction. Computed from
    Machin's formula with 64 guard bits rather than pasted, so the table can grow."""
    nbits = nwords * wordbits
    guard = 64
    one = 1 << (nbits + guard)
    pi = 4 * (4 * _arctan_inv(5, one) - _arctan_inv(239, one))   # pi * 2^(nbits+guard)
    bits = ((2 << (2 * (nbits + guard))) // pi) >> guard           # floor(2/pi * 2^nbits)
    mask = (1 << wordbits) - 1
    return tuple((bits >> (nbits - wordbits * (i + 1))) & mask for i in range(nwords))


def vmath_name(func: str, dtype: str, width: int) -> str:
    """LLVM symbol, e.g. vmath_name("exp", "float32", 16) == "tj_vm_exp_f32x16" (no '@')."""
    _check(func, dtype, width)
    return f"tj_vm_{func}_{_Ty(dtype, width).short}x{width}"


def _check(func: str, dtype: str, width: int) -> None:
    if func not in VMATH_FUNCS:
        raise UnsupportedOpError(
            f"vmath has no function {func!r}",
            hint=f"known functions: {', '.join(sorted(VMATH_FUNCS))}")
    if dtype not in ("float32", "float64"):
        raise DTypeError(f"vmath supports float32 and float64, not {dtype!r}")
    if width not in WIDTHS:
        raise TorshJitError(f"vmath vector width must be one of {WIDTHS}, not {width!r}")


# What each function's template uses besides itself: (func, dtype) at the same width,
# or a width-independent helper (a name starting with "_", rendered from
# "<name>.ll.j2" once per fragment). Data, so the renderer needs no knowledge of any
# one function.
_DEPENDS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("sigmoid", "float32"): (("exp", "float32"),),
    ("sigmoid", "float64"): (("exp", "float64"),),
    ("erf", "float32"): (("exp", "float32"),),
    ("erf", "float64"): (("exp", "float64"),),
    # float32 pow is float64 exp2(y * log2(x)): 29 spare bits absorb the error of
    # the product without a double-double log.
    ("pow", "float32"): (("log2", "float64"), ("exp2", "float64")),
    # float64 Payne-Hanek reduction gathers its window from a table of 2/pi
    ("sin", "float64"): (("_two_over_pi", ""),),
    ("cos", "float64"): (("_two_over_pi", ""),),
    ("tan", "float64"): (("_two_over_pi", ""),),
}

# The table of 2/pi bits for the float64 Payne-Hanek reduction: one zero word, then
# enough 32-bit words for a 192-bit window at the largest exponent (see _trig.ll.j2).
_TWO_OVER_PI_TABLE = "@tj_vm__two_over_pi"
_TWO_OVER_PI_WORDS = 37


def _env() -> jinja2.Environment:
    return environment(str(data_dir("templates") / "llvm" / "vmath"))


def _closure(funcs: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    seen: set[tuple[str, str, int]] = set()
    todo = list(funcs)
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        func, dtype, width = item
        for f, d in _DEPENDS.get((func, dtype), ()):
            todo.append((f, d, 0) if f.startswith("_") else (f, d, width))
    return sorted(seen)


def _render_one(func: str, dtype: str, width: int) -> str:
    if func.startswith("_"):        # a width-independent helper (a table)
        ctx = {
            "two_over_pi_table": _TWO_OVER_PI_TABLE,
            "two_over_pi_words": two_over_pi_words,
            "nwords": _TWO_OVER_PI_WORDS,
        }
    else:
        ctx = {
            "name": "@" + vmath_name(func, dtype, width),
            "func": func,
            "dtype": dtype,
            "f32": dtype == "float32",
            "t": _Ty(dtype, width),
            # the same width in the other dtypes, for templates that widen internally
            "t32": _Ty("float32", width),
            "t64": _Ty("float64", width),
            "callee": lambda f, d=dtype: "@" + vmath_name(f, d, width),
            "two_over_pi_words": two_over_pi_words,
            "two_over_pi_table": _TWO_OVER_PI_TABLE,
            "two_over_pi_len": _TWO_OVER_PI_WORDS + 1,
        }
    tmpl = _env().get_template(f"{func}.ll.j2")
    # Macros leave blank lines behind; IR does not need them.
    lines = [line for line in tmpl.render(**ctx).splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=256)
def _render_cached(key: tuple[tuple[str, str, int], ...]) -> str:
    # validated here, on a cache miss only: a bad request raises and is not cached
    for item in key:
        _check(*item)
    parts = [f"; torsh-jit vmath: {', '.join(vmath_name(*k) for k in key)}\n"]
    parts += [_render_one(*item) for item in _closure(key)]
    return "\n".join(parts)


def render_vmath(funcs: Iterable[tuple[str, str, int]]) -> str:
    """LLVM IR text (a fragment to be pasted into a module, no target triple/datalayout)
    defining every requested (func, dtype, width) plus anything they depend on, each
    exactly once. dtype is "float32" or "float64"; width is any power of two 1..16
    (width 1 = ``<1 x float>``). Each function is
    ``define internal <W x T> @NAME(<W x T> %x) noinline`` (one copy per module: inlining
    every call site tripled LLVM time and was no faster) (pow takes x, y).

    Calls to LLVM intrinsics (``llvm.fma.*`` and friends) are left undeclared: the IR
    parser declares intrinsics on first use, so the fragment never clashes with a
    module that declares them itself.
    """
    return _render_cached(tuple(sorted({(f, d, int(w)) for f, d, w in funcs})))

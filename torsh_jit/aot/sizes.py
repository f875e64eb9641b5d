"""A symbolic bundle's sizes: where each symbol comes from, which of the plan's guards a C
caller can be held to, and their spelling in C and in the manifest.

The guards are what the code assumes of the sizes (answers recorded at the tracing hint);
the C function checks them per call and returns -3 when one fails. A bound (`m <= 4096`) or
an excluded value (`n != 0`) leaves the object useful for a range of sizes; a guard that
holds a size to one value or to a few (`n == 64`, `(15+n)//16 == 4`, `n % 16 == 0`) would
ship a kernel for exact sizes under a symbolic name, so the compile refuses it and says
which argument dimension asked for it.
"""
from __future__ import annotations

from .. import errors as E
from ..ir.symbols import Sym, is_symbolic
from .specs import short_dtype

_INT32 = 2 ** 31


def origins(specs, names) -> dict[str, list[tuple[str, int]]]:
    """symbol -> the (argument name, axis) pairs whose size holds it, in argument order."""
    out: dict = {}
    for n, s in zip(names, specs):
        for axis, d in enumerate(s.shape):
            if is_symbolic(d):
                for sym in sorted(d.symbols):
                    out.setdefault(sym, []).append((n, axis))
    return out


def hints(specs) -> dict[str, int]:
    """symbol -> its tracing size (from a dimension that is the symbol alone)."""
    out = {}
    for s in specs:
        for d in s.shape:
            if is_symbolic(d) and len(d.terms) == 1:
                (m, c), = d.terms
                if c == 1 and len(m) == 1 and isinstance(m[0], str):
                    out.setdefault(m[0], d.hint)
    return out


def _has_mod(x) -> bool:
    return is_symbolic(x) and any(not isinstance(a, str) and (a[0] == "%" or _has_mod(a[1]))
                                  for m, _ in x.terms for a in m)


def confining(guard) -> bool:
    """Whether the guard allows a symbol only one value, a small window or a residue class
    (other symbols held fixed): an equation in a single symbol, or a residue excluded."""
    diff = guard.lhs - guard.rhs
    if not is_symbolic(diff):
        return False
    if guard.op == "==":
        return len(diff.symbols) == 1
    return guard.op == "!=" and _has_mod(diff)


def check_guards(guards, specs, names, target_name: str) -> None:
    """A ShapeError for the first guard that confines a size (see the module docstring)."""
    where, hint = origins(specs, names), hints(specs)
    for g in guards:
        if not confining(g):
            continue
        syms = sorted((g.lhs - g.rhs).symbols)
        dims = ", ".join(f"{a} axis {ax}" for s in syms for a, ax in where.get(s, []))
        at = ", ".join(f"{s}={hint[s]}" for s in syms if s in hint)
        first = syms[0]
        spec = next((s for s in specs if any(is_symbolic(d) and first in d.symbols for d in s.shape)), None)
        other = 4096 if hint.get(first) != 4096 else 64
        raise E.ShapeError(
            f"the code for {target_name} holds only where {g!r} (decided at the tracing size "
            f"{at}): the size {' and '.join(syms)} ({dims}) would not be free, so one object "
            f"could not serve every size",
            where=f"--arg {_text(spec)}" if spec else None,
            hint=f"give another tracing size, e.g. --arg '{_text(spec, first, other)}' (the bundle "
                 f"then serves the sizes on that side of what the code decides), or compile exact "
                 f"sizes" if spec else "compile exact sizes")


def _text(spec, name=None, hint=None) -> str:
    """An --arg text for the spec, with name's tracing size written out."""
    dims = [f"{d}={hint}" if name is not None and is_symbolic(d) and repr(d) == name else str(d)
            for d in spec.shape]
    return f"{short_dtype(spec.dtype)}[{','.join(dims)}]"


def c_size(x) -> str:
    """A size as a C int64_t expression over the symbol parameters."""
    if not is_symbolic(x):
        return _literal(int(x))
    parts = []
    for m, c in x.terms:
        factors = [a if isinstance(a, str) else
                   f"tj_{'floordiv' if a[0] == '//' else 'mod'}_({c_size(a[1])}, {a[2]})"
                   for a in m]
        if c != 1 or not factors:
            factors.insert(0, _literal(c))
        parts.append(" * ".join(factors))
    text = " + ".join(parts).replace("+ -", "- ")
    return text if len(parts) == 1 and "-" not in text else f"({text})"


def _literal(c: int) -> str:
    return str(c) if -_INT32 <= c < _INT32 else f"INT64_C({c})"


def c_guard(guard) -> str:
    return f"{c_size(guard.lhs)} {guard.op} {c_size(guard.rhs)}"


# floor division and remainder as Python (and the IR) define them, for any sign of a
HELPERS = """\
#ifndef TJ_SIZE_HELPERS_
#define TJ_SIZE_HELPERS_
static inline int64_t tj_floordiv_(int64_t a, int64_t d) { int64_t q = a / d; return (a % d != 0 && a < 0) ? q - 1 : q; }
static inline int64_t tj_mod_(int64_t a, int64_t d) { return a - d * tj_floordiv_(a, d); }
static inline size_t tj_bytes_(int64_t count, size_t item) { return (size_t)(count > 0 ? count : 1) * item; }
#endif
"""


def describe(x):
    """A size for the manifest: an int, or the expression (Python's integer syntax)."""
    return repr(x) if isinstance(x, Sym) else int(x)


def manifest_fields(specs, names, symbols, guards, table_index: int) -> dict:
    """What a symbolic entry adds to the manifest: the symbols in parameter order (each with
    its hint and the argument dimensions it sizes), the guards, and the size table's slot."""
    where, hint = origins(specs, names), hints(specs)
    return {
        "symbols": [{"name": s, "hint": hint.get(s),
                     "dims": [{"argument": a, "axis": ax} for a, ax in where.get(s, [])]}
                    for s in symbols],
        "guards": [repr(g) for g in guards],
        # the entry's buffer table ends with this: one int64 per symbol, in "symbols" order
        "size_table": {"index": table_index, "dtype": "int64"},
    }

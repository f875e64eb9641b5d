"""Symbolic sizes in C-style kernels (CUDA C, MSL, WGSL): while a symbolic plan renders,
`str(sym)` (an f-string in the emitter, `{{ sym }}` in a template) spells the size as an
expression of the kernel's size locals `sz_<symbol>`, which every kernel reads at its top
from the size table: the buffer after the last temporary (`plan.n_buffers - 1`), one
integer per symbol in the plan's symbol order, of the language's `size_dtype` (int64 for
CUDA and MSL; WGSL has no 64-bit integers, so its launcher uploads an int32 table and
refuses sizes that do not fit).

Symbolic groups index in int below a recorded 2^31 bound, else in the size type
(language.index_type); the size locals take the kernel's index type, so every spelled size
is already of it. Floor division and remainder atoms are spelled with Python's
floor semantics: their inner polynomial may be negative (`(n - 1) // 4` at n = 0), where
C's and WGSL's `/` truncate.
"""
from __future__ import annotations

import contextlib
import contextvars

from ...ir.symbols import Sym, rendering

_TABLE: contextvars.ContextVar = contextvars.ContextVar("torsh_jit_cstyle_sizes", default=None)


class SizeTable:
    """The size table of one symbolic plan being rendered in one language."""

    def __init__(self, lang, symbols: tuple[str, ...], slot: int):
        self.L = lang
        self.symbols = tuple(symbols)
        self.slot = slot

    @property
    def ctype(self) -> str:
        return self.L.types[self.L.size_dtype]

    def spell(self, s: Sym) -> str:
        parts = []
        for m, c in s.terms:
            factors = [f"sz_{a}" if isinstance(a, str) else self._atom(a) for a in m]
            if c != 1 or not factors:
                factors.insert(0, str(c) if c >= 0 else f"({c})")
            parts.append(" * ".join(factors))
        return "(" + " + ".join(parts) + ")"

    def _atom(self, a) -> str:
        op, inner, d = a
        x = self.spell(inner)
        if non_negative(inner):          # the common case (a ceiling's `(n + d-1) // d`)
            return f"({x} / {d})" if op == "//" else f"({x} % {d})"
        q = self.L.size_floordiv.format(x=x, d=d, dm1=d - 1)
        return q if op == "//" else f"({x} - {q} * {d})"

    def lets(self, index: str | None = None) -> str:
        """The size locals, read from the table at the top of a kernel: of the kernel's index
        type where that is the 32-bit int (its offsets are guarded below 2^31, so are the
        sizes they are made of), else of the table's."""
        T = index if index == self.L.types["int32"] else self.ctype
        return "\n".join(
            self.L.size_let.format(T=T, n=f"sz_{name}",
                              x=self.L.convert.format(T=T, x=self.L.elem.format(
                                  buf=self.slot, ro="0", i=str(k))))
            for k, name in enumerate(self.symbols))

    @contextlib.contextmanager
    def active(self):
        token = _TABLE.set(self)
        try:
            with rendering(self.spell):
                yield self
        finally:
            _TABLE.reset(token)


def non_negative(s: Sym) -> bool:
    """Whether s is >= 0 for all sizes (symbols are never negative), asking nothing."""
    for m, c in s.terms:
        if c < 0 or any(not isinstance(a, str) and a[0] == "//" and not non_negative(a[1])
                        for a in m):
            return False
    return True


def symbolic_group(group) -> bool:
    """The group's sizes, strides or offsets hold symbols."""
    accs = list(group.loads) + [s.access for s in group.stores] + list(group.mm)
    vals = list(group.domain) + [group.k] + [x for a in accs for x in (a.offset, *a.strides)]
    return any(isinstance(v, Sym) for v in vals)


def current() -> SizeTable | None:
    """The size table of the symbolic plan rendering now (None: exact shapes)."""
    return _TABLE.get()


def size_lets(index: str | None = None) -> str:
    t = _TABLE.get()
    return t.lets(index) if t is not None else ""


@contextlib.contextmanager
def sizes_of(lang, p):
    """Render plan p's kernels with its size table (nothing for a plan of exact shapes)."""
    if not p.symbols:
        yield None
        return
    with SizeTable(lang, p.symbols, p.n_buffers - 1).active() as t:
        yield t

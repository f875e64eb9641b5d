"""Symbolic sizes: a dimension that is not known until the kernel is called.

A `Sym` is an integer polynomial over named symbols (`n`, `batch`, `s0`), with floor
division and remainder by positive constants as atoms (`(n+15)//16`), so the sizes,
strides and work counts derived from a symbolic shape stay exact expressions. Every Sym
also carries its *hint*: its value at the call that traced it.

Arithmetic is symbolic and records nothing. Anything that asks a Sym a question (is
`n == 1`, `n < 4096`, `int(n)`, `range(n)`) answers from the hint and records that answer
as a `Guard` in the active `ShapeEnv`: the compiled code is valid exactly for the calls
whose sizes satisfy every guard, and a call that fails one compiles another variant. So
no decision taken while planning can silently depend on a size: the worst a size-blind
stage can do is specialise the symbol (the guard `n == 37`). Stages that know better ask
without recording (`statically_one`, `statically_zero`).

When a renderer is active (`rendering`), `str(sym)` and `f"{sym}"` give the renderer's
spelling of the value (an LLVM SSA name, a C expression) instead of a specialisation.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import operator
from dataclasses import dataclass

from .. import errors as E

_ENV: contextvars.ContextVar = contextvars.ContextVar("torsh_jit_shape_env", default=None)
_RENDER: contextvars.ContextVar = contextvars.ContextVar("torsh_jit_sym_render", default=None)


def _atom_key(a) -> str:
    return a if isinstance(a, str) else f"~{a[0]}{a[1]!r}{a[2]}"


class Sym:
    """An integer-valued expression of symbols. Immutable and hashable."""
    __slots__ = ("terms", "hint")

    def __init__(self, terms, hint: int):
        # terms: ((monomial, coef), ...) sorted; monomial: tuple of atoms sorted by _atom_key;
        # an atom is a symbol name or ("//" | "%", Sym, divisor)
        self.terms = terms
        self.hint = int(hint)

    # -- construction ----------------------------------------------------------------------
    @staticmethod
    def symbol(name: str, hint: int) -> "Sym":
        return Sym((((name,), 1),), hint)

    @staticmethod
    def _make(acc: dict, hint: int):
        terms = tuple(sorted(((m, c) for m, c in acc.items() if c),
                             key=lambda mc: [_atom_key(a) for a in mc[0]]))
        if not terms:
            return 0
        if len(terms) == 1 and terms[0][0] == ():
            return terms[0][1]
        return Sym(terms, hint)

    @staticmethod
    def _terms_of(x) -> dict:
        if isinstance(x, Sym):
            return dict(x.terms)
        return {(): int(x)} if x else {}

    # -- arithmetic (symbolic; no guards) ----------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, (Sym, int)):
            return NotImplemented
        acc = self._terms_of(self)
        for m, c in self._terms_of(other).items():
            acc[m] = acc.get(m, 0) + c
        return Sym._make(acc, self.hint + hint_of(other))

    __radd__ = __add__

    def __neg__(self):
        return Sym._make({m: -c for m, c in self.terms}, -self.hint)

    def __sub__(self, other):
        if not isinstance(other, (Sym, int)):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other):
        if not isinstance(other, (Sym, int)):
            return NotImplemented
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, (Sym, int)):
            return NotImplemented
        acc: dict = {}
        for m1, c1 in self._terms_of(self).items():
            for m2, c2 in self._terms_of(other).items():
                m = tuple(sorted(m1 + m2, key=_atom_key))
                acc[m] = acc.get(m, 0) + c1 * c2
        return Sym._make(acc, self.hint * hint_of(other))

    __rmul__ = __mul__

    def __floordiv__(self, d):
        """Floor division by a positive int: exact division where every coefficient divides,
        else an atom. (Sizes are never negative, so floor and truncation agree.)"""
        if isinstance(d, Sym):
            return self // int(d)            # a size over a size: specialise the divisor
        if not isinstance(d, int):
            return NotImplemented
        if d <= 0:
            raise E.InternalError(f"symbolic size {self} divided by {d}")
        if d == 1:
            return self
        if all(c < 0 for m, c in self.terms if m):     # -(-x // d), a ceiling: keep atoms >= 0
            return -((-self + (d - 1)) // d)
        if all(c % d == 0 for _, c in self.terms):
            return Sym._make({m: c // d for m, c in self.terms}, self.hint // d)
        return Sym(((( ("//", self, d),), 1),), self.hint // d)

    def __mod__(self, d):
        if isinstance(d, Sym):
            return self % int(d)
        if not isinstance(d, int):
            return NotImplemented
        if d <= 0:
            raise E.InternalError(f"symbolic size {self} modulo {d}")
        if d == 1 or all(c % d == 0 for _, c in self.terms):
            return 0
        return Sym(((( ("%", self, d),), 1),), self.hint % d)

    def __rfloordiv__(self, other):
        return int(other) // int(self)           # a constant over a size: specialise

    def __rmod__(self, other):
        return int(other) % int(self)

    # -- questions (answered from the hint, recorded as guards) -----------------------------
    def _ask(self, op: str, other) -> bool:
        if isinstance(other, Sym) and other.terms == self.terms:
            result = op in ("==", "<=", ">=")
            return result
        if not isinstance(other, (Sym, int)):
            if op == "==":
                return False
            if op == "!=":
                return True
            raise TypeError(f"cannot compare a symbolic size with {type(other).__name__}")
        result = _OPS[op](self.hint, hint_of(other))
        record(Guard(op if result else _NEGATE[op], self, other))
        return result

    def __eq__(self, other):
        return self._ask("==", other)

    def __ne__(self, other):
        return self._ask("!=", other)

    def __lt__(self, other):
        return self._ask("<", other)

    def __le__(self, other):
        return self._ask("<=", other)

    def __gt__(self, other):
        return self._ask(">", other)

    def __ge__(self, other):
        return self._ask(">=", other)

    def __bool__(self):
        return self._ask("!=", 0)

    def __index__(self):
        record(Guard("==", self, self.hint))
        return self.hint

    __int__ = __index__

    def __float__(self):             # a size used as a number (x / x.shape[0]): specialise
        return float(self.__index__())

    def __truediv__(self, other):
        return float(self) / other

    def __rtruediv__(self, other):
        return other / float(self)

    def __hash__(self):
        return hash(self.terms)

    # -- evaluation and spelling ---------------------------------------------------------------
    @property
    def symbols(self) -> frozenset:
        out = set()
        for m, _ in self.terms:
            for a in m:
                out |= {a} if isinstance(a, str) else a[1].symbols
        return frozenset(out)

    def subs(self, values: dict) -> int:
        """The value for the symbols' values (a dict name -> int)."""
        total = 0
        for m, c in self.terms:
            v = c
            for a in m:
                if isinstance(a, str):
                    v *= values[a]
                else:
                    inner = a[1].subs(values)
                    v *= inner // a[2] if a[0] == "//" else inner % a[2]
            total += v
        return total

    def spell(self, atom=str, mul="*", add="+") -> str:
        """The expression as text; `atom` spells a symbol name."""
        parts = []
        for m, c in self.terms:
            factors = [atom(a) if isinstance(a, str)
                       else f"(({a[1].spell(atom, mul, add)}){a[0]}{a[2]})" for a in m]
            if c == -1 and factors:
                factors[0] = "-" + factors[0]
            elif c != 1 or not factors:
                factors.insert(0, str(c))
            parts.append(mul.join(factors))
        return add.join(parts).replace("+-", "-")

    def __repr__(self):
        return self.spell()

    def __str__(self):
        r = _RENDER.get()
        return r(self) if r is not None else self.spell()

    def __format__(self, spec):
        if spec:
            return format(int(self), spec)
        return str(self)


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def hint_of(x) -> int:
    """The value of a size at the call that traced it (an int is its own hint)."""
    return x.hint if isinstance(x, Sym) else int(x)


def is_symbolic(x) -> bool:
    return isinstance(x, Sym)


def statically_one(x) -> bool:
    """Whether x is the constant 1, without recording a guard: a symbolic size is not
    known to be 1 (code for it must work when it is 1)."""
    return not isinstance(x, Sym) and x == 1


def statically_zero(x) -> bool:
    return not isinstance(x, Sym) and x == 0


def divides(V: int, K) -> bool:
    """Whether rows of K elements stay aligned to groups of V. A symbolic K is asked (a
    guard, true or false at the traced size: Triton's divisibility specialisation), so a
    schedule and the code rendered from it answer alike, and a row length that is not a
    multiple compiles the V = 1 variant."""
    return V == 1 or bool(K % V == 0)


def same(a, b) -> bool:
    """Whether two sizes (or tuples of them) are the same expression, asking nothing: what
    holds for every value of the symbols."""
    return repr(a) == repr(b)


def prod(xs):
    return math.prod(xs, start=1)


def evaluate(x, values: dict) -> int:
    return x.subs(values) if isinstance(x, Sym) else x


def evaluate_shape(shape, values: dict) -> tuple[int, ...]:
    return tuple(s.subs(values) if isinstance(s, Sym) else s for s in shape)


# -- guards and the environment that records them -------------------------------------------
@dataclass(frozen=True)
class Guard:
    """What a compiled variant assumes of its sizes: `lhs op rhs`, true at the traced call."""
    op: str
    lhs: object
    rhs: object

    def holds(self, values: dict) -> bool:
        return _OPS[self.op](evaluate(self.lhs, values), evaluate(self.rhs, values))

    def __repr__(self):
        return f"{self.lhs!r} {self.op} {self.rhs!r}"

    def __eq__(self, other):
        return isinstance(other, Guard) and repr(self) == repr(other)

    def __hash__(self):
        return hash(repr(self))


class ShapeEnv:
    """The guards recorded while one variant is planned and rendered, in order.
    recompiles: the variant is one of a kernel's, which compiles another where a guard fails,
    so a schedule may ask a question only for speed (narrowing_allowed). An AOT bundle or a
    compiled Graph runs every size it will ever see: there such a guard would refuse sizes."""

    def __init__(self, recompiles: bool = False):
        self.guards: list[Guard] = []
        self._seen: set = set()
        self.recompiles = recompiles

    def add(self, g: Guard) -> None:
        k = repr(g)
        if k not in self._seen:
            self._seen.add(k)
            self.guards.append(g)

    @contextlib.contextmanager
    def active(self):
        token = _ENV.set(self)
        try:
            yield self
        finally:
            _ENV.reset(token)


def current_env() -> ShapeEnv | None:
    return _ENV.get()


def narrowing_allowed() -> bool:
    """Whether the variant being planned may take a guard that only narrows its sizes for
    speed (see ShapeEnv)."""
    env = _ENV.get()
    return env is not None and env.recompiles


def record(g: Guard) -> None:
    env = _ENV.get()
    if env is None:
        raise E.InternalError(f"a question about the symbolic size {g.lhs!r} was asked outside "
                              f"of planning (guard {g!r})")
    env.add(g)


@contextlib.contextmanager
def rendering(spell):
    """While active, str(sym) is spell(sym): the renderer's text for that value."""
    token = _RENDER.set(spell)
    try:
        yield
    finally:
        _RENDER.reset(token)


@contextlib.contextmanager
def not_rendering():
    """Spell symbols by name again (messages and comments inside a render)."""
    token = _RENDER.set(None)
    try:
        yield
    finally:
        _RENDER.reset(token)


def as_size(s):
    """A dimension as the IR holds it: a Sym as it is, anything else as a Python int."""
    return s if isinstance(s, Sym) else int(s)


def broadcast_shapes(*shapes):
    """numpy's broadcasting of shapes that may hold Syms, or None where they do not
    broadcast. A size-1 constant takes the other size; a symbol meeting another size
    decides (and guards) which of the two it is."""
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for j in range(nd):
        dims = [s[len(s) - nd + j] for s in shapes if len(s) - nd + j >= 0]
        cur = 1
        for d in dims:
            if statically_one(d) or (isinstance(d, Sym) and isinstance(cur, Sym)
                                     and d.terms == cur.terms):
                continue
            if statically_one(cur):
                cur = d
            elif d == cur:                 # records the guard where a symbol is involved
                cur = cur if isinstance(cur, Sym) else d
            elif d == 1:
                continue
            elif cur == 1:
                cur = d
            else:
                return None
        out.append(cur)
    return tuple(out)


def pins(guards, hints: dict) -> dict:
    """Symbols the guards fix: `s == 4` pins s to 4, `t == s` pins t to s (the later symbol
    to the earlier). Code planned under such a guard can depend on it in ways no other
    guard records (a size-1 axis that broadcasts), so the symbol is replaced and the
    function traced again."""
    order = list(hints)
    out: dict = {}
    for g in guards:
        if g.op != "==" or not isinstance(g.lhs, Sym):
            continue
        if isinstance(g.rhs, int):
            solved = _solve(g.lhs, g.rhs)
            if solved is not None:
                out.setdefault(*solved)
        elif _pure(g.lhs) and _pure(g.rhs):
            name, other = next(iter(g.lhs.symbols)), next(iter(g.rhs.symbols))
            a, b = sorted((name, other), key=lambda n: order.index(n) if n in order else len(order))
            out.setdefault(b, Sym.symbol(a, hints.get(a, g.rhs.hint)))
        else:
            raise E.InternalError(f"guard {g!r} ties sizes in a way that cannot be solved for "
                                  "one of them")
    return out


def _solve(lhs: Sym, rhs: int):
    """(symbol, value) from `a*s + b == rhs` (the symbol is then that constant); None for a
    guard that only narrows the sizes (`n % 8 == 0`, `(n + 15) // 16 == 4`). One that may
    decide a size of 0 or 1 (a broadcast) and cannot be solved: InternalError (the caller
    compiles exact shapes)."""
    lin = {m: c for m, c in lhs.terms}
    const = lin.pop((), 0)
    if len(lin) == 1:
        (m, a), = lin.items()
        if len(m) == 1 and isinstance(m[0], str) and (rhs - const) % a == 0:
            return m[0], (rhs - const) // a
    if len(lhs.terms) == 1 and lhs.terms[0][1] == 1 and len(lhs.terms[0][0]) == 1 \
            and not isinstance(lhs.terms[0][0][0], str) and lhs.terms[0][0][0][0] == "%":
        return None                   # divisibility
    if rhs in (0, 1):
        raise E.InternalError(f"guard {lhs!r} == {rhs} may decide a size of {rhs} and cannot be "
                              "solved for one symbol")
    return None


def _pure(x) -> bool:
    return isinstance(x, Sym) and len(x.terms) == 1 and x.terms[0][1] == 1 \
        and len(x.terms[0][0]) == 1 and isinstance(x.terms[0][0][0], str)


def substitute(x, mapping: dict, hints: dict):
    """x with the symbols in mapping replaced (by ints or Syms); the others keep their hints."""
    if not isinstance(x, Sym):
        return x
    total = 0
    for m, c in x.terms:
        v = c
        for a in m:
            if isinstance(a, str):
                v = v * mapping.get(a, Sym.symbol(a, hints.get(a, 0)))
            else:
                inner = substitute(a[1], mapping, hints)
                v = v * (inner // a[2] if a[0] == "//" else inner % a[2])
        total = total + v
    return total

"""How each reduction accumulates, in a shape every reduce skeleton takes: `Accumulator`
(one register and the language's reduction table), `ArgAccumulator` (argmax/argmin: a value
and its position), `ExactProdAccumulator` (float products as mantissa and exponent), and
ACCUMULATORS, which picks one per reduction.
"""
from __future__ import annotations

class Accumulator:
    """How one reduction accumulates, in a shape every reduce skeleton takes: its registers
    (one value, or a pair), their identity, how an element enters an element slot, how two
    partials combine (slots, shuffled lanes, shared memory, other blocks' workspace), and the
    row's value. A register is named by its suffix: `a<sfx><i>` a thread's partial,
    `acc<sfx><i>[q]` its element slots. The skeletons move registers and never look inside.
    This kind: one register and the language's reduction table (sum, max, any, integer prod)."""

    def __init__(self, em, i: int):
        self.em, self.L, self.i, self.e = em, em.L, i, em.g.exprs[i]

    def regs(self) -> list[tuple[str, str]]:
        """(register type, suffix) of a thread's partial."""
        return [(self.L.types[self.em.acc_dtype(self.i)], "")]

    def slot_types(self) -> list[str]:
        """Register types of the element slots (float32 short sums: narrower than a<i>)."""
        return [self.L.types[self.em.slot_dtype(self.i)]]

    def value_dtype(self) -> str:
        """The dtype an element is converted to before it enters a slot."""
        return self.em.slot_dtype(self.i)

    def identity(self, slot: bool = False) -> list[str]:
        return [self.em.identity_of(self.i, slot)]

    def widen(self, regs: list[str]) -> list[str]:
        """A slot's registers as a partial's."""
        return [self.L.cast(regs[0], self.em.slot_dtype(self.i), self.em.acc_dtype(self.i))]

    def step(self, dst: list[str], x: str, kidx: str) -> list[str]:
        """Statements: element x (of value_dtype), at inner index kidx, into slot dst."""
        return [f"{dst[0]} = {self.em.combine(self.i, dst[0], x, slot=True)};"]

    def merge(self, dst: list[str], src: list[str]) -> list[str]:
        """Statements: dst = dst combined with src (each src expression is read once)."""
        return [f"{dst[0]} = {self.em.combine(self.i, dst[0], src[0])};"]

    def finish(self, regs: list[str]) -> tuple[str, str]:
        """(register type, expression) of the row's value."""
        e = self.e
        return self.L.types[e.dtype], self.L.cast(regs[0], self.em.acc_dtype(self.i), e.dtype)


class ArgAccumulator(Accumulator):
    """argmax/argmin: the best value and its position (-1: none yet)."""

    def regs(self):
        return super().regs() + [(self.L.arg_index, "i")]

    def slot_types(self):
        return super().slot_types() + [self.L.arg_index]

    def identity(self, slot=False):
        return super().identity(slot) + ["-1"]

    def widen(self, regs):
        return list(regs)

    def _take(self, dst, b, bi) -> str:
        return self.L.fmt(self.L.arg_take[self.e.op], self.em.acc_dtype(self.i),
                          a=dst[0], ai=dst[1], b=b, bi=bi)

    def step(self, dst, x, kidx):
        t = self.em.fresh("x")
        k = self.L.convert.format(T=self.L.arg_index, x=kidx)
        return [self.L.let.format(T=self.L.types[self.value_dtype()], n=t, x=x),
                f"if ({self._take(dst, t, k)}) {{ {dst[0]} = {t}; {dst[1]} = {k}; }}"]

    def merge(self, dst, src):
        return [f"if ({src[1]} >= 0 && ({dst[1]} < 0 || {self._take(dst, src[0], src[1])})) "
                f"{{ {dst[0]} = {src[0]}; {dst[1]} = {src[1]}; }}"]

    def finish(self, regs):
        # an empty row has no argmax (numpy raises before); -1 never escapes here
        return self.L.arg_index, regs[1]


class ExactProdAccumulator(Accumulator):
    """A float product as a mantissa in [0.5, 1) and an integer exponent, renormalised after
    every multiply: threads, lanes and blocks multiply in another order than numpy, and a
    partial of the huge factors (inf) times one of the tiny factors (0) gave NaN where the
    whole product is finite. Each factor is taken apart first, so a multiply of two mantissas
    (in [0.25, 1)) never leaves the normal range, subnormal factors included; the row's value
    is rounded once (ldexp). 0, inf and NaN stay in the mantissa with exponent 0: they are
    the product, inf * 0 = NaN included."""

    def __init__(self, em, i):
        super().__init__(em, i)
        self.m = self.L.prod_mantissa.get(self.e.dtype, self.e.dtype)
        self.x = self.L.prod_exponent.get(self.m, "int32")

    def regs(self):
        return [(self.L.types[self.m], ""), (self.L.types[self.x], "e")]

    def slot_types(self):
        return [t for t, _ in self.regs()]

    def value_dtype(self):
        return self.m

    def identity(self, slot=False):
        return [self.L.literal(1.0, self.m), self.L.literal(0, self.x)]

    def widen(self, regs):
        return list(regs)

    def _spell(self, key, **ops) -> str:
        return self.L.fmt(self.L.exact_prod[key], self.m, **ops)

    def _times(self, dst, mant: str, exps: list[str]) -> list[str]:
        """dst *= mant 2^(sum of exps): the mantissas' product taken apart again."""
        L = self.L
        t = self.em.fresh("pm")
        mul = L.fmt(L.reductions["prod"]["f"][1], self.m, a=dst[0], b=mant)
        e = dst[1]
        for x in exps + [self._spell("expo", a=t)]:
            e = L.fmt(L.code_for_op["add"]["i"], self.x, a=e, b=x)
        return [L.let.format(T=L.types[self.m], n=t, x=mul),
                f"{dst[0]} = {self._spell('frac', a=t)};", f"{dst[1]} = {e};"]

    def step(self, dst, x, kidx):
        t = self.em.fresh("pf")
        return [self.L.let.format(T=self.L.types[self.m], n=t, x=x)] + \
            self._times(dst, self._spell("frac", a=t), [self._spell("expo", a=t)])

    def merge(self, dst, src):
        return self._times(dst, src[0], [src[1]])

    def finish(self, regs):
        val = self._spell("ldexp", a=regs[0], b=regs[1])
        return self.L.types[self.e.dtype], self.L.cast(val, self.m, self.e.dtype)


# reduction op, or (op, result family) -> accumulator kind (others: Accumulator)
ACCUMULATORS = {"argmax": ArgAccumulator, "argmin": ArgAccumulator,
                ("prod", "f"): ExactProdAccumulator}

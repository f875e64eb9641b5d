"""The statements of a group's reductions, as the reduce skeletons place them: accumulator
registers and their identity, an element into a slot, slots folded into a thread's partial,
partials combined from elsewhere (lanes, shared memory, other blocks), and the row's value.
A mixin of CEmitter (emitter.py), which gives it values, names and the language.
"""
from __future__ import annotations

from ...ir.dtypes import family
from .accumulators import ACCUMULATORS, Accumulator
from ...ir.ops import ARG_REDUCTIONS


class ReductionSteps:
    """Reduction statements of a CEmitter (self.L the language, self.g the group)."""

    def acc_dtype(self, i: int) -> str:
        """The accumulator dtype of reduction i: float sums accumulate in float64."""
        e = self.g.exprs[i]
        src = self.g.exprs[e.args[0]].dtype
        if e.op in ARG_REDUCTIONS:
            return "int32" if src == "bool" else src
        if e.op in ("any", "all"):
            return "bool"
        if e.op == "sum" and family(e.dtype) == "f":
            return self.L.float_sum_dtype
        return e.dtype

    def slot_dtype(self, i: int) -> str:
        """The dtype of reduction i's per-thread accumulators (acc<i>[q])."""
        e = self.g.exprs[i]
        if self.short_sums and e.op == "sum" and self.g.exprs[e.args[0]].dtype == "float32":
            return "float32"
        return self.acc_dtype(i)

    def identity_of(self, i: int, slot: bool = False) -> str:
        e = self.g.exprs[i]
        acc = self.slot_dtype(i) if slot else self.acc_dtype(i)
        if e.op in ARG_REDUCTIONS:
            if family(acc) == "f":
                return self.L.literal(float("-inf") if e.op == "argmax" else float("inf"), acc)
            return self.L.identity("MIN" if e.op == "argmax" else "MAX", acc)
        return self.L.identity(self.L.reductions[e.op][family(acc)][0], acc)

    def combine(self, i: int, a: str, b: str, slot: bool = False) -> str:
        e = self.g.exprs[i]
        acc = self.slot_dtype(i) if slot else self.acc_dtype(i)
        return self.L.fmt(self.L.reductions[e.op][family(acc)][1], acc, a=a, b=b)

    def acc(self, i: int) -> Accumulator:
        """Reduction i's accumulator kind (ACCUMULATORS)."""
        e = self.g.exprs[i]
        kind = ACCUMULATORS.get((e.op, family(e.dtype))) or ACCUMULATORS.get(e.op, Accumulator)
        return kind(self, i)

    def regs_of(self, i: int, stem: str, slot: str = "") -> list[str]:
        return [f"{stem}{sfx}{i}{slot}" for _, sfx in self.acc(i).regs()]

    def acc_vars(self, level: int) -> list[tuple[str, str]]:
        """(register type, name) of every per-thread accumulator register of a pass."""
        return [(t, f"a{sfx}{i}") for i in self.reductions_of(level) for t, sfx in self.acc(i).regs()]

    def acc_init(self, level: int, lanes: int) -> str:
        """Accumulators of a pass: `acc<i>[lanes]` per element slot (independent chains)."""
        out = []
        for i in self.reductions_of(level):
            k = self.acc(i)
            names = self.regs_of(i, "acc")
            out += [self.L.array.format(T=t, n=n, V=lanes) for t, n in zip(k.slot_types(), names)]
            init = " ".join(f"{n}[q] = {x};" for n, x in zip(names, k.identity(slot=True)))
            out.append(self.L.for_loop("q", 0, lanes, init))
        return "\n".join(out)

    def accumulate(self, level: int, ctx, slot: str, kidx: str, keep=None) -> str:
        """One element into slot `slot` of the pass's accumulators (kidx: its inner index).
        keep: {expr: lvalue} element values later passes read again, written to registers."""
        lines: list[str] = []
        memo: dict = {}
        for i in self.reductions_of(level):
            k = self.acc(i)
            src = self.g.exprs[i].args[0]
            v = self.L.cast(self.value(lines, src, ctx, memo), self.g.exprs[src].dtype, k.value_dtype())
            lines += k.step(self.regs_of(i, "acc", f"[{slot}]"), v, kidx)
        for eid, lvalue in (keep or {}).items():
            lines.append(f"{lvalue} = {self.value(lines, eid, ctx, memo)};")
        return "\n".join(lines)

    def acc_fold(self, level: int, lanes: int) -> str:
        """Fold the slots into one per-thread value a<i> (in slot order: deterministic)."""
        out = []
        for i in self.reductions_of(level):
            k = self.acc(i)
            names = self.regs_of(i, "a")
            first = k.widen(self.regs_of(i, "acc", "[0]"))
            out += [self.L.var.format(T=t, n=n, x=x) for (t, _), n, x in zip(k.regs(), names, first)]
            if lanes > 1:
                body = " ".join(k.merge(names, k.widen(self.regs_of(i, "acc", "[q]"))))
                out.append(self.L.for_loop("q", 1, lanes, body))
        return "\n".join(out)

    def acc_reset(self, level: int) -> str:
        """Every per-thread accumulator of a pass back to its identity."""
        return "\n".join(f"{n} = {x};" for i in self.reductions_of(level)
                         for n, x in zip(self.regs_of(i, "a"), self.acc(i).identity()))

    def combine_from(self, level: int, other) -> str:
        """a<i> = combine(a<i>, other(name)) for every accumulator; other maps a register's
        name and type to the expression of the same register elsewhere (another lane, shared
        memory...). Every other register is read first: a shuffle must run on every lane,
        and a combine's || or && or if would skip it on some."""
        out = []
        for i in self.reductions_of(level):
            k = self.acc(i)
            lets, got = [], []
            for (t, _), n in zip(k.regs(), self.regs_of(i, "a")):
                o = self.fresh("o")
                lets.append(self.L.let.format(T=t, n=o, x=other(n, t)))
                got.append(o)
            out.append("{ " + " ".join(lets + k.merge(self.regs_of(i, "a"), got)) + " }")
        return "\n".join(out)

    def finish_pass(self, level: int) -> str:
        """The pass's reductions become row-level values r<i>."""
        out = []
        for i in self.reductions_of(level):
            t, val = self.acc(i).finish(self.regs_of(i, "a"))
            out.append(self.L.let.format(T=t, n=f"r{i}", x=val))
            self.row_memo[i] = f"r{i}"
        return "\n".join(out)

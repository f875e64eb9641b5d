"""What a group's exprs do along the inner axis, for a thread that takes V elements of a row at
a time: which values and stores vary per element, which loads each reduction pass (and the
final stores) read, which row-level values are ready after a pass, and which element values a
later pass reads again. Language-free: the C-style emitter (codegen/cstyle/) builds on it and
the GPU schedule (schedule/gpu.py) asks it which loads to keep in registers.
"""
from __future__ import annotations

from ..ir.dtypes import ITEMSIZE
from ..ir.ops import REDUCE_OPS
from ..ir.symbols import divides
from .layout import plan_axes, inner_mode, varying, AxisPlan


class GroupAnalysis:
    """One group seen by a thread that takes groups of V elements along the inner axis."""

    def __init__(self, group, *, V: int = 1, ax: AxisPlan | None = None):
        self.g = group
        self.V = V
        self.ax = ax or plan_axes(group)
        self.red = [i for i, e in enumerate(group.exprs) if e.op in REDUCE_OPS]
        self.passes = sorted({group.exprs[i].level for i in self.red})
        self.modes = {key: inner_mode(self.ax.inner, st) for key, st in self.ax.inner_strides.items()}
        self.varies = self.varying_exprs()
        self.vec_static = {key: self.vector_static(key) for key in self.modes}

    # -- accesses ---------------------------------------------------------------------------
    def access(self, key):
        kind, i = key
        return self.g.loads[i] if kind == "l" else self.g.stores[i].access

    def modes_of_load(self, li: int) -> str:
        return inner_mode(self.ax.inner, self.ax.inner_strides[("l", li)])[0]

    def vector_static(self, key) -> bool:
        """Groups of V along the inner axis are V-aligned in this access, whatever the row. A
        symbolic offset, stride or row length is asked to be a multiple of V (a guard, true
        or false at the traced sizes, as Triton specialises on divisibility by 16): the
        kernel of a length that is not compiles another variant."""
        if self.V == 1 or self.modes[key][0] != "contig":
            return False
        acc = self.access(key)
        if not divides(self.V, acc.offset) or \
                not all(divides(self.V, s) for s in self.ax.outer_strides[key]):
            return False
        return not self.ax.outer or divides(self.V, self.ax.K)

    def wide_accesses(self, scalar_bufs=frozenset()) -> list:
        """Accesses read or written V at a time: (key, buffer, required pointer alignment)."""
        out = []
        for key, ok in sorted(self.vec_static.items()):
            if ok and self.access(key).buf not in scalar_bufs:
                acc = self.access(key)
                out.append((key, acc.buf, min(16, self.V * ITEMSIZE[acc.dtype])))
        return out

    def buffers(self) -> list[int]:
        bufs = {a.buf for a in self.g.loads} | {s.access.buf for s in self.g.stores}
        bufs |= {a.buf for a in self.g.mm}
        return sorted(bufs)

    def written(self) -> set[int]:
        return {s.access.buf for s in self.g.stores}

    def buffer_dtype(self, buf: int) -> str:
        from .. import errors as E
        for a in list(self.g.loads) + [s.access for s in self.g.stores] + list(self.g.mm):
            if a.buf == buf:
                return a.dtype
        raise E.InternalError(f"buffer {buf} is not used by this group")

    def load_used(self, li: int) -> bool:
        return any(e.op == "load" and dict(e.attrs)["access"] == li for e in self.g.exprs)

    # -- what varies ------------------------------------------------------------------------
    def varying_exprs(self) -> list[bool]:
        return varying(self.g, self.ax)

    def varying_loads(self, exprs=None) -> list[int]:
        """Loads that differ along the inner axis (read per element), of the given exprs' cone."""
        want = set(range(len(self.g.exprs))) if exprs is None else self.cone(exprs)
        out = []
        for i in sorted(want):
            e = self.g.exprs[i]
            if e.op == "load":
                li = dict(e.attrs)["access"]
                if self.modes_of_load(li) != "invariant" and li not in out:
                    out.append(li)
        return sorted(out)

    def cone(self, roots) -> set[int]:
        """Exprs the roots depend on, not looking through reductions already known per row."""
        seen, stack = set(), list(roots)
        while stack:
            x = stack.pop()
            if x in seen:
                continue
            seen.add(x)
            e = self.g.exprs[x]
            if e.op in REDUCE_OPS and x not in roots:
                continue
            stack.extend(e.args)
        return seen

    def varying_stores(self) -> list[int]:
        return [si for si in range(len(self.g.stores)) if self.store_varies(si)]

    def store_varies(self, si: int) -> bool:
        """Store si writes per element: its value varies along the inner axis, or its place does."""
        return self.varies[self.g.stores[si].expr] or self.modes[("s", si)][0] != "invariant"

    # -- passes -----------------------------------------------------------------------------
    def reductions_of(self, level: int) -> list[int]:
        return [i for i in self.red if self.g.exprs[i].level == level]

    def ready(self, i, avail) -> bool:
        """Expr i is known per row once the reductions in `avail` are."""
        e = self.g.exprs[i]
        if e.op in REDUCE_OPS:
            return i in avail
        if e.op == "matmul":
            return False
        return all(self.ready(a, avail) for a in e.args)

    def hoistable(self, level: int) -> list[int]:
        """Row-level exprs computable once the reductions of passes < level are done."""
        avail = {i for i in self.red if self.g.exprs[i].level < level}
        return [i for i, e in enumerate(self.g.exprs)
                if not (self.varies[i] or e.op in REDUCE_OPS or e.op in ("const", "size", "matmul"))
                and self.ready(i, avail)]

    def load_users(self) -> dict[int, set]:
        """For each varying load: the passes (levels) and 'final' that read it per element."""
        use: dict[int, set] = {}
        for lvl in self.passes:
            for i in self.reductions_of(lvl):
                for li in self.varying_loads([self.g.exprs[i].args[0]]):
                    use.setdefault(li, set()).add(lvl)
        roots = [self.g.stores[si].expr for si in self.varying_stores()]
        for li in self.varying_loads(roots) if roots else []:
            use.setdefault(li, set()).add("final")
        return use

    def kept_values(self, cached, J: int, V: int, budget: int = 96) -> dict[int, int]:
        """With rows in registers (`cached` loads, J groups of V a thread): the element values
        a pass reduces that a later pass or the stores read again (softmax's exp(x - max)),
        each with the pass that computes it, while the registers they take stay in `budget`
        values a thread. Kept values are written by that pass and read, not recomputed, later."""
        kept: dict[int, int] = {}
        if not cached:
            return kept
        finals = [self.g.stores[si].expr for si in self.varying_stores()]
        for p in self.passes:
            later = [self.g.exprs[i].args[0] for q in self.passes if q > p for i in self.reductions_of(q)]
            cone = self.cone(later + finals)
            for i in self.reductions_of(p):
                src = self.g.exprs[i].args[0]
                if self.g.exprs[src].op not in ("load", "const", "size") and src in cone and src not in kept \
                        and J * V * (len(cached) + len(kept) + 1) <= budget:
                    kept[src] = p
        return kept

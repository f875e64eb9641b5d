"""CEmitter: the statements of one kernel body in a CStyleLanguage, for the skeletons to place.

The unit of work of a thread is a *group* of V consecutive elements along the innermost
(collapsed) domain axis, inside one row. Arrays of V values (`l3[v]`) hold loads, values
are computed per element in a loop over v, and stores write V values at once (one wide
access where the layout and the pointer's alignment allow, else V scalar accesses). What
varies, which loads each pass reads and what is ready when: schedule/analysis.py; the
reductions' statements: reductions.py.
"""
from __future__ import annotations

import math

from ... import errors as E
from ...fuse import Group, Expr
from ...ir.ops import REDUCE_OPS
from ...ir.dtypes import family
from ...ir.ops import COMPARISONS, LOGICAL, operand_dtypes
from ...ir.symbols import statically_one, statically_zero
from ...schedule.analysis import GroupAnalysis
from ...schedule.layout import AxisPlan
from .compare import compare_by_value
from .language import CStyleLanguage
from .reductions import ReductionSteps
from .sizes import current as size_table

# ops that give one of their operands, zero, or its sign flipped: exact in the operands' type
EXACT_OPS = frozenset({"neg", "abs", "relu", "maximum", "minimum", "where"})


class Ctx:
    """How an element context reads loads: `load(li)` gives the C expression of load li."""

    def __init__(self, load, seed=None):
        self.load = load
        self.seed = seed or {}


class CEmitter(ReductionSteps, GroupAnalysis):
    """Statements of one kernel body in a CStyleLanguage, for the templates to place.

    Names: `b<k>` buffer k (pointer, or a by-value scalar), `ro_<key>` an access's row offset,
    `lr<i>` a row-invariant load, `l<i>` an array of V loaded values, `r<e>` the row-level
    value of expr e (reduction results and what is computed from them), `s<i>` an array of V
    values to store, `acc<e>` / `a<e>` reduction accumulators."""

    def __init__(self, lang: CStyleLanguage, group: Group, *, V: int = 1, index: str = "int",
                 scalar_bufs=frozenset(), ax: AxisPlan | None = None, short_sums: bool = False):
        super().__init__(group, V=V, ax=ax)
        self.L = lang
        # short_sums: a thread adds few elements (the skeleton knows how many), so its float32
        # sums run in float32 and only the per-thread totals are combined in the wide type
        self.short_sums = short_sums
        self.I = index
        self.scalar_bufs = frozenset(scalar_bufs)
        self.n = 0
        self.row_memo: dict[int, str] = {}
        self.stored_rows: set[int] = set()
        for e in group.exprs:
            if e.dtype not in lang.types:
                raise E.DTypeError(f"dtype {e.dtype} is not supported by the {lang.name} target")

    # -- bookkeeping ----------------------------------------------------------------------
    def fresh(self, stem="t") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def vector_accesses(self) -> list:
        """Accesses read or written V at a time: (key, buffer, required pointer alignment)."""
        return self.wide_accesses(self.scalar_bufs)

    def vec_ok_expr(self) -> str:
        """C condition: every vector access's pointer is aligned for its wide loads/stores."""
        terms = []
        for key, buf, align in self.vector_accesses():
            if self.L.aligned:
                terms.append(self.L.aligned.format(buf=buf, mask=align - 1))
        return " && ".join(sorted(set(terms))) or "true"

    def buffers(self) -> list[int]:
        """The buffers the kernel binds; a symbolic plan's size table last."""
        t = size_table()
        return super().buffers() + ([t.slot] if t is not None else [])

    def buffer_dtype(self, buf: int) -> str:
        t = size_table()
        return self.L.size_dtype if t is not None and buf == t.slot else super().buffer_dtype(buf)

    def params(self) -> list[str]:
        """The kernel's parameters: device pointers, and scalars by value."""
        out = []
        written = self.written()
        restrict = f" {self.L.restrict}" if self.L.restrict else ""
        for i, b in enumerate(self.buffers()):
            mt = self.L.mem_types[self.buffer_dtype(b)]
            if b in self.scalar_bufs:
                decl = self.L.scalar_param.format(T=mt, name=f"b{b}")
            elif b in written:
                decl = self.L.global_ptr.format(T=mt) + f"{restrict} b{b}"
            else:
                decl = self.L.const_ptr.format(T=mt) + f"{restrict} b{b}"
            out.append(decl + self.L.param_attr.format(i=i))
        return out

    # -- addressing -----------------------------------------------------------------------
    def row_offset(self, key, o: str) -> str:
        """The element offset of an access at the start of row `o` (C expression)."""
        acc = self.access(key)
        outer = self.ax.outer
        terms = [str(acc.offset)] if not statically_zero(acc.offset) else []
        cur = o
        for d in range(len(outer) - 1, -1, -1):
            st = self.ax.outer_strides[key][d]
            coord = cur if d == 0 else f"({cur} % {outer[d]})"
            if not statically_zero(st):
                terms.append(f"{coord} * {st}" if not statically_one(st) else coord)
            cur = f"({cur} / {outer[d]})"
        return self.L.convert.format(T=self.I, x=' + '.join(terms) if terms else "0")

    def inner_offset(self, key, k: str) -> str:
        """The element offset of inner index k (C expression) relative to the row."""
        mode = self.modes[key]
        if mode[0] == "invariant":
            return "0"
        if mode[0] == "contig":
            return k
        if mode[0] == "strided":
            return f"({k}) * {mode[1]}"
        inner, st = self.ax.inner, self.ax.inner_strides[key]
        terms, cur = [], f"({k})"
        for d in range(len(inner) - 1, -1, -1):
            coord = cur if d == 0 else f"({cur} % {inner[d]})"
            if not statically_zero(st[d]):
                terms.append(f"{coord} * {st[d]}")
            cur = f"({cur} / {inner[d]})"
        return "(" + " + ".join(terms or ["0"]) + ")"

    def row_setup(self, o: str, tag: str = "", skip=()) -> str:
        """Row offsets of every access and the row-invariant loads, for row `o`; none for the
        access keys in `skip` (accesses the template addresses another way)."""
        lines = []
        keys = [("l", i) for i in range(len(self.g.loads))] + [("s", i) for i in range(len(self.g.stores))]
        for key in keys:
            acc = self.access(key)
            if acc.buf in self.scalar_bufs or key in skip:
                continue
            if key[0] == "l" and self.modes[key][0] == "invariant" and not self.load_used(key[1]):
                continue
            lines.append(self.L.let.format(T=self.I, n=f"ro_{key[0]}{key[1]}{tag}",
                                           x=self.row_offset(key, o)))
        for li, acc in enumerate(self.g.loads):
            if self.modes[("l", li)][0] == "invariant" and self.load_used(li):
                src = f"b{acc.buf}" if acc.buf in self.scalar_bufs else \
                    self.L.elem.format(buf=acc.buf, ro=f"ro_l{li}{tag}", i="0")
                conv = self.L.load_conv.get(acc.dtype, "{x}").format(x=src)
                lines.append(self.L.let.format(T=self.L.types[acc.dtype], n=f"lr{li}{tag}", x=conv))
        return "\n".join(lines)

    # -- loads and stores of one group of V elements ----------------------------------------
    def load_group(self, li: int, k: str, dst: str, *, guard: str | None, vec: str,
                   decl: bool = True, tag: str = "") -> str:
        """Fill `dst[0..V)` (register values) with load li at inner indices k..k+V-1.

        guard: condition that all V are inside the row (None: always); vec: condition
        for the wide path (the pointer's alignment)."""
        acc = self.g.loads[li]
        key = ("l", li)
        V, L = self.V, self.L
        rt, mt = L.types[acc.dtype], L.mem_types[acc.dtype]
        conv = L.load_conv.get(acc.dtype, "{x}")
        out = [L.array.format(T=rt, n=dst, V=V)] if decl else []
        ro = f"ro_l{li}{tag}"
        kk = "(" + k + " + v)"
        read = conv.format(x=L.elem.format(buf=acc.buf, ro=ro, i=self.inner_offset(key, kk)))
        if guard is not None:
            body = f"{dst}[v] = {L.convert.format(T=rt, x='0')}; if ({kk} < {self.ax.K}) {{ {dst}[v] = {read}; }}"
        else:
            body = f"{dst}[v] = {read};"
        scalar = L.for_loop("v", 0, V, body)
        if self.vec_static[key]:
            t = self.fresh("m")
            wide = (L.wide_load.format(mt=mt, V=V, t=t, buf=acc.buf, ro=ro, k=k) + "\n"
                    + L.for_loop("v", 0, V, f"{dst}[v] = {conv.format(x=f'{t}[v]')};"))
            cond = vec if guard is None else f"({vec}) && ({guard})"
            out.append(f"if ({cond}) {{\n{indent(wide)}\n}} else {{\n{indent(scalar)}\n}}")
        else:
            out.append(scalar)
        return "\n".join(out)

    def store_group(self, si: int, k: str, src: str, *, guard: str | None, vec: str,
                    tag: str = "") -> str:
        """Write `src[0..V)` (memory values) to store si at inner indices k..k+V-1.
        A store whose place does not move along the inner axis is written once per row."""
        acc = self.g.stores[si].access
        key = ("s", si)
        L = self.L
        V, mt = self.V, L.mem_types[acc.dtype]
        ro = f"ro_s{si}{tag}"
        if self.modes[key][0] == "invariant":
            return f"if ({k} == 0) {{ {L.elem.format(buf=acc.buf, ro=ro, i='0')} = {src}[0]; }}"
        kk = "(" + k + " + v)"
        body = f"{L.elem.format(buf=acc.buf, ro=ro, i=self.inner_offset(key, kk))} = {src}[v];"
        scalar = L.for_loop("v", 0, V, f"if ({kk} < {self.ax.K}) {{ {body} }}" if guard is not None else body)
        if self.vec_static[key]:
            cond = vec if guard is None else f"({vec}) && ({guard})"
            wide = L.wide_store.format(mt=mt, V=V, buf=acc.buf, ro=ro, k=k, src=src)
            return f"if ({cond}) {{\n  {wide}\n}} else {{\n{indent(scalar)}\n}}"
        return scalar

    # -- expressions ------------------------------------------------------------------------
    def value(self, lines: list, eid: int, ctx: Ctx, memo: dict) -> str:
        """The C expression of expr eid in an element context (statements go to lines)."""
        if eid in ctx.seed:
            return ctx.seed[eid]
        if eid in self.row_memo:
            return self.row_memo[eid]
        if eid in memo:
            return memo[eid]
        e = self.g.exprs[eid]
        if e.op == "const":
            return self.L.literal(dict(e.attrs)["value"], e.dtype)
        if e.op == "size":        # spelled from the kernel's size locals (cstyle/sizes.py)
            return self.L.convert.format(T=self.L.types[e.dtype], x=str(dict(e.attrs)["value"]))
        if e.op == "load":
            li = dict(e.attrs)["access"]
            return ctx.load(li)
        if e.op in REDUCE_OPS:
            raise E.InternalError(f"reduction %{eid} used before its pass finished")
        if e.op == "cast":
            a = e.args[0]
            text = self.operand(self.value(lines, a, ctx, memo), a, e.dtype)
        else:
            text = self.apply(e, [self.value(lines, a, ctx, memo) for a in e.args])
        t = self.fresh()
        lines.append(self.L.let.format(T=self.L.types[e.dtype], n=t, x=text))
        memo[eid] = t
        return t

    def operand(self, v: str, a: int, dst: str) -> str:
        """Expr a (written v) converted to dst. A Python int meets a float as its value (a
        register of the int's own dtype may not hold it: 2**31 on a target without int64)."""
        x = self.g.exprs[a]
        if x.op == "const" and family(dst) == "f" and family(x.dtype) == "i":
            return self.L.literal(dict(x.attrs)["value"], dst)
        if x.op == "const" and family(dst) == family(x.dtype) == "f" and \
                self.L.types[dst] != self.L.types[x.dtype]:
            c = float(dict(x.attrs)["value"])
            if not math.isnan(c) and self.L.round_value(c, dst) != c:
                # a number dst cannot hold (too large, too small, or between two of its
                # values) is written as dst's value of it, as numpy casts it, not left to the
                # compiler (NVRTC 13.0 warns #221-D, "value does not fit", at 1e40 and 1e-50)
                return self.L.literal(c, dst)
        return self.L.cast(v, x.dtype, dst)

    def apply(self, e: Expr, vals: list[str]) -> str:
        cts, cdt = operand_dtypes(e.op, dict(e.attrs), e.dtype, len(vals))
        if e.op in COMPARISONS and not self.L.holds(cdt):
            return self.compare_by_value(e, vals, cdt)
        conv = [self.operand(v, a, ct) for v, a, ct in zip(vals, e.args, cts)]
        spell = self.L.code_for_op.get(e.op, {}).get(family(cdt))
        if spell is None:
            raise E.DTypeError(f"{e.op} is not supported for {cdt} on {self.L.name} targets")
        text = self.L.fmt(spell, cdt, **dict(zip("abc", conv)))
        if (e.op in COMPARISONS or e.op in LOGICAL) and e.dtype == "bool":
            return text
        if e.op in EXACT_OPS and cdt == e.dtype:
            # the result is one of the operands (or 0, or a sign flip), already a value of the
            # 16-bit type: no second rounding
            return text
        return self.L.rounded(text, e.dtype)

    def compare(self, op: str, dtype: str, a: str, b: str) -> str:
        """a OP b, both already of dtype."""
        return self.L.fmt(self.L.code_for_op[op][family(dtype)], dtype, a=a, b=b)

    def compare_by_value(self, e: Expr, vals: list[str], ct: str) -> str:
        return compare_by_value(self, e, vals, ct)

    def compute_stores(self, ctx: Ctx, dsts: dict[int, str], v: str = "v") -> str:
        """Per element: every varying store's value, converted to memory, into dsts[si][v]."""
        lines: list[str] = []
        memo: dict = {}
        for si, s in enumerate(self.g.stores):
            if si in dsts:
                val = self.value(lines, s.expr, ctx, memo)
                acc = s.access
                val = self.L.cast(val, self.g.exprs[s.expr].dtype, acc.dtype)
                conv = self.L.store_conv.get(acc.dtype, "{x}").format(x=val)
                lines.append(f"{dsts[si]}[{v}] = {conv};")
        return "\n".join(lines)

    def store_arrays(self, tag: str = "") -> tuple[str, dict[int, str]]:
        """Declarations of the V-value arrays of the varying stores, and their names."""
        names = {si: f"s{si}{tag}" for si in self.varying_stores()}
        decl = "\n".join(self.L.array.format(T=self.L.mem_types[self.g.stores[si].access.dtype],
                                              n=n, V=self.V) for si, n in names.items())
        return decl, names

    # -- row-level values (reductions and what follows from them) -----------------------------
    def hoist(self, level: int) -> str:
        """Row-level values computable once the reductions of passes < level are done."""
        lines: list[str] = []
        ctx = Ctx(lambda li: f"lr{li}")
        for i in self.hoistable(level):
            if i not in self.row_memo:
                self.row_memo[i] = self.value(lines, i, ctx, {})
        return "\n".join(lines)

    def row_stores(self, tag: str = "") -> str:
        """Stores of row-level values, once they are known (one thread of the row runs this)."""
        lines: list[str] = []
        ctx = Ctx(lambda li: f"lr{li}")
        for si, s in enumerate(self.g.stores):
            if si in self.stored_rows or self.store_varies(si):
                continue
            if s.expr not in self.row_memo and self.g.exprs[s.expr].op not in ("const", "size") and \
                    not self.ready(s.expr, set(self.red)):
                continue
            val = self.value(lines, s.expr, ctx, {})
            acc = s.access
            val = self.L.cast(val, self.g.exprs[s.expr].dtype, acc.dtype)
            conv = self.L.store_conv.get(acc.dtype, "{x}").format(x=val)
            lines.append(f"{self.L.elem.format(buf=acc.buf, ro=f'ro_s{si}{tag}', i='0')} = {conv};")
            self.stored_rows.add(si)
        return "\n".join(lines)


def indent(text: str, n: int = 2) -> str:
    pad = " " * n
    return "\n".join(pad + l if l else l for l in text.split("\n"))

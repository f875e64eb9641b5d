"""KernelEmitter: the code of one kernel's loop bodies, as LLVM IR text, for the templates.

The templates (templates/llvm/) lay out loops, passes and the signature; they call back
into a KernelEmitter for the code of one loop body, which spells each IR op with the op
table (ops.py). Values are vectors of `lanes` elements; values that do not vary along the
inner region are computed once per row (hoisted) and splatted. Memory access, the
reduction code paths and column mode are mixins (memory.py, reduce.py, columns.py).
"""
from __future__ import annotations

from ... import errors as E
from ...fuse import Group, Expr
from ...ir.dtypes import ITEMSIZE, family
from ...ir.ops import REDUCE_OPS, INT_LIMITS, operand_dtypes
from ...ir.symbols import statically_zero
from ...schedule.config import Config
from ...schedule.layout import inner_mode, plan_axes, varying, vector_sets
from . import ops as T
from .columns import ColumnMixin
from .memory import MemoryMixin
from .reduce import ReductionMixin
from .types import MEMTYPE, SCALAR, sconst, vsuffix, vty
from .vmath import VMATH_FUNCS, vmath_name


class KernelEmitter(MemoryMixin, ReductionMixin, ColumnMixin):
    """Emits the code of one kernel: row setup, loop bodies and reductions, as text.

    Values are vectors of `lanes` elements; values that do not vary along the inner
    region are computed once per row (hoisted) and splatted.
    """

    def __init__(self, group: Group, config: Config, module):
        self.g = group
        self.cfg = config
        self.m = module
        self.W = config.lanes
        self.ax = plan_axes(group, columns=True)
        self.col = self.ax.column
        self.U = vector_sets(self.ax, config)     # accumulator sets (vectors side by side)
        self.col_memos: dict[int, dict] = {}
        self.col_stored: dict[int, set] = {}
        self.col_parts: dict[str, tuple[str, int]] = {}   # column position -> (c0, offset)
        self.vpos: str | None = None      # column mode: the block's first column
        self.vmask: str | None = None     # column mode: lanes inside the row
        self.loop_index: str | None = None
        self.n = 0
        self.row_memo: dict[int, str] = {}
        self.varies = varying(group, self.ax)
        self.stored_rows: set[int] = set()
        self.red = [i for i, e in enumerate(group.exprs) if e.op in REDUCE_OPS]
        self.passes = sorted({group.exprs[i].level for i in self.red})

    # -- small helpers -----------------------------------------------------------------------
    def fresh(self, stem="t") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def ty(self, dtype) -> str:
        return vty(dtype, self.W)

    def splat(self, lines, scalar: str, dtype: str) -> str:
        s = SCALAR[dtype]
        t = self.fresh("sp")
        lines.append(f"%{t}.i = insertelement <{self.W} x {s}> poison, {s} {scalar}, i64 0")
        lines.append(f"%{t} = shufflevector <{self.W} x {s}> %{t}.i, <{self.W} x {s}> poison, "
                     f"<{self.W} x i32> zeroinitializer")
        return f"%{t}"

    def const_vec(self, value, dtype) -> str:
        return f"splat ({SCALAR[dtype]} {sconst(value, dtype)})"

    def iota(self) -> str:
        return "<" + ", ".join(f"i64 {i}" for i in range(self.W)) + ">"

    def snippet(self, lines, text: str, dtype: str, **ops) -> str:
        t = self.fresh()
        s = SCALAR[dtype]
        lo, hi = INT_LIMITS.get(dtype, (0, 0))
        text = text.replace("{vm:", "{vm_")
        vm = {}
        for fn in VMATH_FUNCS:
            if "{vm_" + fn + "}" in text:
                self.m.need_vmath(fn, dtype, self.W)
                vm["vm_" + fn] = vmath_name(fn, dtype, self.W)
        if "@tj_ipow_" in text:
            self.m.need_ipow(dtype, self.W)
        fmt = dict(t=t, T=self.ty(dtype), S=s, B=f"<{self.W} x i1>", W=self.W,
                   VT=vsuffix(dtype, self.W), MIN=lo, MAX=hi, **vm, **ops)
        lines.extend(text.format(**fmt).split("\n"))
        return f"%{t}"

    def convert(self, lines, val: str, src: str, dst: str) -> str:
        if src == dst:
            return val
        fs, fd = family(src), family(dst)
        text = T.CASTS[(fs, fd)]
        ext = ""
        if fs == fd == "f":
            ext = "fpext" if ITEMSIZE[dst] > ITEMSIZE[src] else "fptrunc"
        if fs == fd == "i":
            ext = "sext" if ITEMSIZE[dst] > ITEMSIZE[src] else "trunc"
        return self.snippet(lines, text, dst, a=val, F=self.ty(src), VF=vsuffix(src, self.W),
                            fext=ext, iext=ext)

    # -- expressions ---------------------------------------------------------------------------
    def value(self, lines, eid: int, k, mask, memo: dict) -> str:
        """The vector SSA value of expr eid (emitting it if needed)."""
        if eid in self.row_memo:
            return self.row_memo[eid]
        if eid in memo:
            return memo[eid]
        e = self.g.exprs[eid]
        if e.op == "const":
            return self.const_vec(dict(e.attrs)["value"], e.dtype)
        if e.op == "size":        # an i64 of the size table (llvm/sizes.py), as e.dtype
            t = self.fresh()
            lines.append(f"%{t} = sitofp i64 {dict(e.attrs)['value']} to {SCALAR[e.dtype]}")
            r = memo[eid] = self.splat(lines, f"%{t}", e.dtype)
            return r
        if e.op == "load":
            r = self.load(lines, dict(e.attrs)["access"], k, mask)
        elif e.op in REDUCE_OPS:
            raise E.InternalError(f"reduction %{eid} used before its pass finished")
        elif e.op == "cast":
            a = e.args[0]
            r = self.convert(lines, self.value(lines, a, k, mask, memo), self.g.exprs[a].dtype, e.dtype)
        else:
            r = self.apply(lines, e, [self.value(lines, a, k, mask, memo) for a in e.args])
        memo[eid] = r
        return r

    def apply(self, lines, e: Expr, vals: list[str]) -> str:
        ctypes, cdt = operand_dtypes(e.op, dict(e.attrs), e.dtype, len(vals))
        conv = [self.convert(lines, v, self.g.exprs[a].dtype, ct)
                for v, a, ct in zip(vals, e.args, ctypes)]
        spell = T.OPS[e.op].get(family(cdt))
        if spell is None:
            raise E.DTypeError(f"{e.op} is not supported for {cdt} on LLVM targets")
        names = dict(zip("abc", conv))
        return self.snippet(lines, spell, cdt, **names)

    def hoist(self, level: int) -> str:
        """Row-level values computable once the reductions of passes < level are done."""
        lines: list[str] = []
        avail = {i for i in self.red if self.g.exprs[i].level < level}
        for i, e in enumerate(self.g.exprs):
            if self.varies[i] or i in self.row_memo or e.op in REDUCE_OPS or e.op in ("const", "size"):
                continue
            if self._ready(i, avail):
                self.row_memo[i] = self.value(lines, i, self.vpos, self.vmask, {})
        return "\n".join("  " + l for l in lines)

    def _ready(self, i, avail) -> bool:
        e = self.g.exprs[i]
        if e.op in REDUCE_OPS:
            return i in avail
        return all(self._ready(a, avail) for a in e.args)

    def row_stores(self) -> str:
        """Stores of row-level values, once they are known."""
        lines: list[str] = []
        for si, s in enumerate(self.g.stores):
            if si in self.stored_rows or self.store_varies(si) or s.expr not in self.row_memo \
                    and self.g.exprs[s.expr].op not in ("const", "size"):
                continue
            val = self.value(lines, s.expr, self.vpos, self.vmask, {})
            if self.col:     # a row of column results: one vector store along the row
                self.store(lines, si, val, self.vpos, self.vmask)
                self.stored_rows.add(si)
                continue
            acc = s.access
            mt = MEMTYPE[acc.dtype]
            sc = self.fresh("x")
            lines.append(f"%{sc} = extractelement {self.ty(acc.dtype)} {val}, i64 0")
            if acc.dtype == "bool":
                z = self.fresh("zb")
                lines.append(f"%{z} = zext i1 %{sc} to i8")
                sc = z
            p = self.ptr(lines, acc, self.ooff[("s", si)])
            lines.append(f"store {mt} %{sc}, ptr {p}, align {ITEMSIZE[acc.dtype]}")
            self.stored_rows.add(si)
        return "\n".join("  " + l for l in lines)

    def body(self, k: str, masked: bool, mask: str = "", seed: dict | None = None) -> str:
        """One vector step of the final pass: compute and store every varying output.

        seed: values already computed (a matmul's accumulator is expr 0)."""
        lines: list[str] = []
        m = mask if masked else None
        memo: dict = dict(seed or {})
        for si, s in enumerate(self.g.stores):
            if self.store_varies(si):
                self.store(lines, si, self.value(lines, s.expr, k, m, memo), k, m)
        return "\n".join("  " + l for l in lines)

    # -- pieces for templates that lay out their own loops (matmul) -------------------------
    def code_splat(self, scalar: str, dtype: str) -> tuple[str, str]:
        lines: list[str] = []
        v = self.splat(lines, scalar, dtype)
        return "\n".join("  " + l for l in lines), v

    def code_from_memory(self, val: str, dtype: str, lanes: int | None = None) -> tuple[str, str]:
        """A value as loaded from memory, in its register type: bools are stored as i8 and
        computed as i1 (lanes=None: a scalar, else a vector of that many lanes)."""
        if dtype != "bool":
            return "", val
        b = self.fresh("mb")
        ty = MEMTYPE[dtype] if lanes is None else f"<{lanes} x {MEMTYPE[dtype]}>"
        zero = "0" if lanes is None else "zeroinitializer"
        return f"  %{b} = icmp ne {ty} {val}, {zero}", f"%{b}"

    def code_convert(self, val: str, src: str, dst: str) -> tuple[str, str]:
        lines: list[str] = []
        v = self.convert(lines, val, src, dst)
        return "\n".join("  " + l for l in lines), v

    def code_snippet(self, text: str, dtype: str, **ops) -> tuple[str, str]:
        lines: list[str] = []
        v = self.snippet(lines, text, dtype, **ops)
        return "\n".join("  " + l for l in lines), v

    def has_varying_stores(self) -> bool:
        return any(self.store_varies(si) for si in range(len(self.g.stores)))

    def store_varies(self, si: int) -> bool:
        """Store si writes a vector per step: its value varies along the inner region, or its
        place does (a row-level value broadcast into a full-size output)."""
        if self.col:
            return self.varies[self.g.stores[si].expr] or not statically_zero(self.ax.loop_strides[("s", si)])
        st = self.ax.inner_strides[("s", si)]
        return self.varies[self.g.stores[si].expr] or inner_mode(self.ax.inner, st)[0] != "invariant"

    def mask(self, k: str, kend: str) -> tuple[str, str]:
        lines: list[str] = []
        kv = self.splat(lines, k, "int64")
        ke = self.splat(lines, kend, "int64")
        ki, mk = self.fresh("ki"), self.fresh("mask")
        lines.append(f"%{ki} = add <{self.W} x i64> {kv}, {self.iota()}")
        lines.append(f"%{mk} = icmp ult <{self.W} x i64> %{ki}, {ke}")
        return "\n".join("  " + l for l in lines), f"%{mk}"

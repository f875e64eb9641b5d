"""Render groups to LLVM IR: Jinja skeletons (templates/llvm/) + the op table (llvm_ops.py).

The templates lay out loops, passes and the signature; they call back into a
`KernelEmitter` for the code of one loop body, which spells each IR op with the
op table. Every kernel has the signature

    void NAME(ptr %args, i64 %start, i64 %end)

where %args points at the buffer table (one data pointer per graph input, output
and temporary) and [start, end) is this call's share of the work: elements of
the flattened domain for elementwise groups, rows for reductions, output tiles
for matmul. The runtime splits work across threads by calling it on sub-ranges.
"""
from __future__ import annotations

import struct

from .. import errors as E
from ..fuse import Group, Access, Expr
from ..ir.dtypes import ITEMSIZE, family
from ..ir.ops import REDUCE_OPS as _REDUCE_OPS, operand_dtypes
from ..schedule.config import Config
from . import llvm_ops as T
from .jinja_env import template
from .vmath import render_vmath, vmath_name
from ..schedule.layout import plan_axes, inner_mode, work_units
from .llvm_lowering import soft_fma

SCALAR = {"bool": "i1", "int32": "i32", "int64": "i64", "float32": "float", "float64": "double"}
MEMTYPE = {"bool": "i8", "int32": "i32", "int64": "i64", "float32": "float", "float64": "double"}
SUFFIX = {"i1": "i1", "i8": "i8", "i32": "i32", "i64": "i64", "float": "f32", "double": "f64"}
INT_LIMITS = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}




def fconst(value: float, dtype: str) -> str:
    """An LLVM float literal: hex of the double (exact for float32 values)."""
    v = float(value)
    if dtype == "float32":
        v = struct.unpack("f", struct.pack("f", v))[0]
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", v))[0]


def sconst(value, dtype: str) -> str:
    f = family(dtype)
    if f == "f":
        return fconst(value, dtype)
    if f == "b":
        return "true" if value else "false"
    return str(int(value))


def vty(dtype: str, w: int) -> str:
    return f"<{w} x {SCALAR[dtype]}>"


def vsuffix(dtype: str, w: int) -> str:
    return f"v{w}{SUFFIX[SCALAR[dtype]]}"


# -- the emitter ---------------------------------------------------------------------------
class KernelEmitter:
    """Emits the code of one kernel: row setup, loop bodies and reductions, as text.

    Values are vectors of `lanes` elements; values that do not vary along the inner
    region are computed once per row (hoisted) and splatted.
    """

    def __init__(self, group: Group, config: Config, name: str, module: "ModuleBuilder"):
        self.g = group
        self.cfg = config
        self.name = name
        self.m = module
        self.W = config.lanes
        self.ax = plan_axes(group, columns=True)
        self.col = self.ax.column
        if self.col:
            # `unroll` vectors of columns side by side, each its own accumulators
            from ..schedule.layout import column_vectors
            self.cfg = config.replace(unroll=column_vectors(self.ax, config), block=0)
        self.col_memos: dict[int, dict] = {}
        self.col_stored: dict[int, set] = {}
        self.vpos: str | None = None      # column mode: the block's first column
        self.vmask: str | None = None     # column mode: lanes inside the row
        self.loop_index: str | None = None
        self.n = 0
        self.row_memo: dict[int, str] = {}
        self.varies = self._varies()
        self.stored_rows: set[int] = set()
        self.red = [i for i, e in enumerate(group.exprs) if e.op in _REDUCE_OPS]
        self.passes = sorted({group.exprs[i].level for i in self.red})

    # -- small helpers -----------------------------------------------------------------------
    def fresh(self, stem="t") -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def _varies(self) -> list[bool]:
        out = []
        for i, e in enumerate(self.g.exprs):
            if e.op == "load" and self.col:
                out.append(self.ax.loop_strides[("l", dict(e.attrs)["access"])] != 0)
            elif e.op == "load":
                st = self.ax.inner_strides[("l", dict(e.attrs)["access"])]
                out.append(inner_mode(self.ax.inner, st)[0] != "invariant")
            elif e.op == "matmul":
                out.append(True)
            elif e.op in _REDUCE_OPS or e.op == "const":
                out.append(False)
            else:
                out.append(any(out[a] for a in e.args))
        return out

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
        for fn in ("exp", "exp2", "log", "log2", "log1p", "expm1", "sin", "cos", "tan", "tanh",
                   "sigmoid", "erf", "pow"):
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

    # -- memory ------------------------------------------------------------------------------------
    def buffers(self) -> list[int]:
        bufs = {a.buf for a in self.g.loads} | {s.access.buf for s in self.g.stores}
        for a in self.g.mm:
            bufs.add(a.buf)
        return sorted(bufs)

    def unpack(self) -> str:
        out = []
        for b in self.buffers():
            out.append(f"  %bp{b} = getelementptr ptr, ptr %args, i64 {b}")
            out.append(f"  %buf{b} = load ptr, ptr %bp{b}")   # ABI alignment: 4 on wasm32
        return "\n".join(out)

    def row_setup(self, o: str, prefix: str = "") -> str:
        """Outer coordinates of row `o`, the outer offset of every access, hoisted values."""
        lines: list[str] = []
        outer = self.ax.outer
        coords = []
        cur = o
        for d in range(len(outer) - 1, -1, -1):
            if d == 0:
                coords.append(cur)
                break
            c, q = self.fresh("oc"), self.fresh("oq")
            lines.append(f"%{c} = urem i64 {cur}, {outer[d]}")
            lines.append(f"%{q} = udiv i64 {cur}, {outer[d]}")
            coords.append(f"%{c}")
            cur = f"%{q}"
        coords.reverse()
        self.ooff = {}
        accesses = [(("l", i), a) for i, a in enumerate(self.g.loads)] + \
                   [(("s", i), s.access) for i, s in enumerate(self.g.stores)]
        for key, acc in accesses:
            name = f"%{prefix}off.{key[0]}{key[1]}"
            lines.append(f"{name}.0 = add i64 0, {acc.offset}")
            prev = f"{name}.0"
            for j, (c, st) in enumerate(zip(coords, self.ax.outer_strides[key])):
                if st == 0:
                    continue
                m, s = f"{name}.m{j}", f"{name}.s{j}"
                lines.append(f"{m} = mul i64 {c}, {st}")
                lines.append(f"{s} = add i64 {prev}, {m}")
                prev = s
            self.ooff[key] = prev
        self.row_memo = {}
        self.col_memos, self.col_stored = {}, {}
        self.stored_rows = set()
        return "\n".join("  " + l for l in lines)

    def _ptr(self, lines, key, acc: Access, idx: str) -> str:
        p = self.fresh("p")
        lines.append(f"%{p} = getelementptr {MEMTYPE[acc.dtype]}, ptr %buf{acc.buf}, i64 {idx}")
        return f"%{p}"

    def _lane_offsets(self, lines, key, k: str, mode) -> str:
        """<W x i64> element offsets (relative to the row offset) of lanes k..k+W-1."""
        W = self.W
        kv = self.splat(lines, k, "int64")
        ki = self.fresh("ki")
        lines.append(f"%{ki} = add <{W} x i64> {kv}, {self.iota()}")
        st = self.ax.inner_strides[key]
        if mode[0] == "strided":
            r = self.fresh("lo")
            lines.append(f"%{r} = mul <{W} x i64> %{ki}, splat (i64 {mode[1]})")
            return f"%{r}"
        # general: per-lane coordinates of the inner region
        cur, total = f"%{ki}", None
        inner = self.ax.inner
        for d in range(len(inner) - 1, -1, -1):
            c, q, t = self.fresh("ic"), self.fresh("iq"), self.fresh("it")
            lines.append(f"%{c} = urem <{W} x i64> {cur}, splat (i64 {inner[d]})")
            lines.append(f"%{q} = udiv <{W} x i64> {cur}, splat (i64 {inner[d]})")
            lines.append(f"%{t} = mul <{W} x i64> %{c}, splat (i64 {st[d]})")
            if total is None:
                total = f"%{t}"
            else:
                a = self.fresh("ia")
                lines.append(f"%{a} = add <{W} x i64> {total}, %{t}")
                total = f"%{a}"
            cur = f"%{q}"
        return total

    def load(self, lines, li: int, k: str | None, mask: str | None) -> str:
        acc = self.g.loads[li]
        key = ("l", li)
        W, mt = self.W, MEMTYPE[acc.dtype]
        mode = inner_mode(self.ax.inner, self.ax.inner_strides[key])
        vt = f"<{W} x {mt}>"
        if mode[0] == "invariant":
            p = self._ptr(lines, key, acc, self.ooff[key])
            s = self.fresh("ld")
            lines.append(f"%{s} = load {mt}, ptr {p}, align {ITEMSIZE[acc.dtype]}")
            if acc.dtype == "bool":
                b = self.fresh("lb")
                lines.append(f"%{b} = icmp ne i8 %{s}, 0")
                return self.splat(lines, f"%{b}", "bool")
            return self.splat(lines, f"%{s}", acc.dtype)
        v = self.fresh("v")
        al = ITEMSIZE[acc.dtype]
        if mode[0] == "contig":
            idx = self.fresh("ix")
            lines.append(f"%{idx} = add i64 {self.ooff[key]}, {k}")
            p = self._ptr(lines, key, acc, f"%{idx}")
            if mask is None:
                lines.append(f"%{v} = load {vt}, ptr {p}, align {al}")
            else:
                lines.append(f"%{v} = call {vt} @llvm.masked.load.v{W}{SUFFIX[mt]}.p0(ptr {p}, i32 {al}, "
                             f"<{W} x i1> {mask}, {vt} zeroinitializer)")
        else:
            offs = self._lane_offsets(lines, key, k, mode)
            base = self._ptr(lines, key, acc, self.ooff[key])
            ps = self.fresh("ps")
            lines.append(f"%{ps} = getelementptr {mt}, ptr {base}, <{W} x i64> {offs}")
            m = mask or f"splat (i1 true)"
            lines.append(f"%{v} = call {vt} @llvm.masked.gather.v{W}{SUFFIX[mt]}.v{W}p0(<{W} x ptr> %{ps}, "
                         f"i32 {al}, <{W} x i1> {m}, {vt} zeroinitializer)")
        if acc.dtype == "bool":
            b = self.fresh("lb")
            lines.append(f"%{b} = icmp ne {vt} %{v}, zeroinitializer")
            return f"%{b}"
        return f"%{v}"

    def store(self, lines, si: int, val: str, k: str, mask: str | None):
        st = self.g.stores[si]
        acc = st.access
        key = ("s", si)
        W, mt = self.W, MEMTYPE[acc.dtype]
        vt = f"<{W} x {mt}>"
        if acc.dtype == "bool":
            z = self.fresh("zb")
            lines.append(f"%{z} = zext <{W} x i1> {val} to {vt}")
            val = f"%{z}"
        mode = inner_mode(self.ax.inner, self.ax.inner_strides[key])
        al = ITEMSIZE[acc.dtype]
        if mode[0] == "contig":
            idx = self.fresh("ix")
            lines.append(f"%{idx} = add i64 {self.ooff[key]}, {k}")
            p = self._ptr(lines, key, acc, f"%{idx}")
            if mask is None:
                nt = ", !nontemporal !{i32 1}" if self.cfg.nontemporal else ""
                lines.append(f"store {vt} {val}, ptr {p}, align {al}{nt}")
            else:
                lines.append(f"call void @llvm.masked.store.v{W}{SUFFIX[mt]}.p0({vt} {val}, ptr {p}, "
                             f"i32 {al}, <{W} x i1> {mask})")
        else:
            offs = self._lane_offsets(lines, key, k, mode) if mode[0] != "invariant" else "zeroinitializer"
            base = self._ptr(lines, key, acc, self.ooff[key])
            ps = self.fresh("ps")
            lines.append(f"%{ps} = getelementptr {mt}, ptr {base}, <{W} x i64> {offs}")
            m = mask or "splat (i1 true)"
            lines.append(f"call void @llvm.masked.scatter.v{W}{SUFFIX[mt]}.v{W}p0({vt} {val}, "
                         f"<{W} x ptr> %{ps}, i32 {al}, <{W} x i1> {m})")

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
        if e.op == "load":
            r = self.load(lines, dict(e.attrs)["access"], k, mask)
        elif e.op in _REDUCE_OPS:
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
            if self.varies[i] or i in self.row_memo or e.op in _REDUCE_OPS or e.op == "const":
                continue
            if self._ready(i, avail):
                self.row_memo[i] = self.value(lines, i, self.vpos, self.vmask, {})
        return "\n".join("  " + l for l in lines)

    def _ready(self, i, avail) -> bool:
        e = self.g.exprs[i]
        if e.op in _REDUCE_OPS:
            return i in avail
        return all(self._ready(a, avail) for a in e.args)

    def row_stores(self) -> str:
        """Stores of row-level values, once they are known."""
        lines: list[str] = []
        for si, s in enumerate(self.g.stores):
            if si in self.stored_rows or self.store_varies(si) or s.expr not in self.row_memo \
                    and self.g.exprs[s.expr].op != "const":
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
            p = self._ptr(lines, ("s", si), acc, self.ooff[("s", si)])
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
            return self.varies[self.g.stores[si].expr] or self.ax.loop_strides[("s", si)] != 0
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

    # -- reductions ---------------------------------------------------------------------------
    def reductions_of(self, level: int) -> list[int]:
        return [i for i in self.red if self.g.exprs[i].level == level]

    def red_info(self, i: int):
        """(accumulate dtype, wide dtype, identity) of reduction i."""
        e = self.g.exprs[i]
        src = self.g.exprs[e.args[0]].dtype
        if e.op in ("argmax", "argmin"):
            # bools compare as 0/1 (as i1, true is -1 to signed compares)
            acc = "int32" if src == "bool" else src
            return acc, acc, None
        if e.op in ("any", "all"):
            return "bool", "bool", "false" if e.op == "any" else "true"
        if self.exact_prod(i):
            return "float64", "float64", "1.0"
        acc = e.dtype
        wide = "float64" if (e.op == "sum" and family(acc) == "f") else acc
        fam = family(acc)
        ident = T.REDUCTIONS[e.op][fam][0]
        return acc, wide, ident

    def exact_prod(self, i: int) -> bool:
        """A float product, accumulated as a double mantissa and an i64 exponent (PROD_RENORM)."""
        e = self.g.exprs[i]
        return e.op == "prod" and family(e.dtype) == "f"

    def _renorm(self, lines, val: str, w: int) -> tuple[str, str]:
        """(mantissa, exponent) of a <w x double> product: PROD_RENORM."""
        saved, self.W = self.W, w
        m = self.snippet(lines, T.PROD_RENORM, "float64", a=val)
        self.W = saved
        return m, f"{m}.de"

    def _ldexp(self, lines, val: str, exp: str, w: int) -> str:
        saved, self.W = self.W, w
        r = self.snippet(lines, T.PROD_LDEXP, "float64", a=val, b=exp)
        self.W = saved
        return r

    def identity(self, op: str, dtype: str, ident) -> str:
        if ident in ("MIN", "MAX"):
            lo, hi = INT_LIMITS[dtype]
            return self.const_vec(lo if ident == "MIN" else hi, dtype)
        if ident in ("true", "false"):
            return f"splat (i1 {ident})"
        if ident in ("-inf", "inf"):
            return self.const_vec(float(ident), dtype)
        if ident == "0.0" and op == "sum":
            return self.const_vec(-0.0, dtype)
        return self.const_vec(float(ident) if family(dtype) == "f" else int(float(ident)), dtype)

    def acc_decls(self, level: int) -> str:
        """allocas of the block and wide accumulators of one pass (promoted to registers by SROA)."""
        out = []
        U = self.cfg.unroll
        for i in self.reductions_of(level):
            acc, wide, _ = self.red_info(i)
            for u in range(U):
                out.append(f"  %acc{i}.{u} = alloca {self.ty(acc)}, align 64")
                if self.g.exprs[i].op in ("argmax", "argmin"):
                    out.append(f"  %aix{i}.{u} = alloca <{self.W} x i64>, align 64")
            out.append(f"  %wide{i} = alloca {vty(wide, 1)}, align 16")
            if self.exact_prod(i):
                out += [f"  %pe{i}.{u} = alloca <{self.W} x i64>, align 64" for u in range(U)]
                out.append(f"  %pwe{i} = alloca <1 x i64>, align 16")
            if self.g.exprs[i].op in ("argmax", "argmin"):
                out.append(f"  %wix{i} = alloca <1 x i64>, align 16")
        return "\n".join(out)

    def acc_init(self, level: int, which: str) -> str:
        """Store identities: which='block' (vector accumulators) or 'wide'."""
        out = []
        for i in self.reductions_of(level):
            e = self.g.exprs[i]
            acc, wide, ident = self.red_info(i)
            if e.op in ("argmax", "argmin"):
                first = "-inf" if e.op == "argmax" else "inf"
                if family(acc) == "i":
                    first = "MIN" if e.op == "argmax" else "MAX"
                if which == "block":
                    for u in range(self.cfg.unroll):
                        out.append(f"  store {self.ty(acc)} {self.identity('max', acc, first)}, "
                                   f"ptr %acc{i}.{u}")
                        out.append(f"  store <{self.W} x i64> splat (i64 -1), ptr %aix{i}.{u}")
                else:
                    out.append(f"  store {vty(acc, 1)} {self._scalar_ident(acc, first)}, ptr %wide{i}")
                    out.append(f"  store <1 x i64> splat (i64 -1), ptr %wix{i}")
                continue
            if which == "block":
                for u in range(self.cfg.unroll):
                    out.append(f"  store {self.ty(acc)} {self.identity(e.op, acc, ident)}, ptr %acc{i}.{u}")
                    if self.exact_prod(i):
                        out.append(f"  store <{self.W} x i64> zeroinitializer, ptr %pe{i}.{u}")
            else:
                out.append(f"  store {vty(wide, 1)} {self._scalar_ident(wide, ident, e.op)}, ptr %wide{i}")
                if self.exact_prod(i):
                    out.append(f"  store <1 x i64> zeroinitializer, ptr %pwe{i}")
        return "\n".join(out)

    def _scalar_ident(self, dtype, ident, op=""):
        if ident in ("MIN", "MAX"):
            lo, hi = INT_LIMITS[dtype]
            v = lo if ident == "MIN" else hi
            return f"splat ({SCALAR[dtype]} {v})"
        if ident in ("true", "false"):
            return f"splat (i1 {ident})"
        if family(dtype) == "f":
            v = float(ident)
            if op == "sum" and v == 0:
                v = -0.0
            return f"splat ({SCALAR[dtype]} {fconst(v, dtype)})"
        return f"splat ({SCALAR[dtype]} {int(float(ident))})"

    def accumulate(self, level: int, k: str, masked: bool, mask: str, u: int) -> str:
        """One vector step of a reduction pass into accumulator set u."""
        lines: list[str] = []
        memo: dict = {}
        m = mask if masked else None
        for i in self.reductions_of(level):
            e = self.g.exprs[i]
            acc, _, ident = self.red_info(i)
            src = e.args[0]
            v = self.value(lines, src, k, m, memo)
            v = self.convert(lines, v, self.g.exprs[src].dtype, acc)
            a = self.fresh("a")
            lines.append(f"%{a} = load {self.ty(acc)}, ptr %acc{i}.{u}")
            if e.op in ("argmax", "argmin"):
                ix = self.fresh("ai")
                lines.append(f"%{ix} = load <{self.W} x i64>, ptr %aix{i}.{u}")
                if self.col:
                    idx = self.splat(lines, self.loop_index, "int64")[1:]
                else:
                    kv = self.splat(lines, k, "int64")
                    idx = self.fresh("kx")
                    lines.append(f"%{idx} = add <{self.W} x i64> {kv}, {self.iota()}")
                take = self._arg_take(lines, e.op, acc, f"%{a}", v, f"%{ix}", f"%{idx}", self.W)
                if m is not None:
                    t2 = self.fresh("tk")
                    lines.append(f"%{t2} = and <{self.W} x i1> {take}, {m}")
                    take = f"%{t2}"
                nv, ni = self.fresh("nv"), self.fresh("ni")
                lines.append(f"%{nv} = select <{self.W} x i1> {take}, {self.ty(acc)} {v}, {self.ty(acc)} %{a}")
                lines.append(f"%{ni} = select <{self.W} x i1> {take}, <{self.W} x i64> %{idx}, "
                             f"<{self.W} x i64> %{ix}")
                lines.append(f"store {self.ty(acc)} %{nv}, ptr %acc{i}.{u}")
                lines.append(f"store <{self.W} x i64> %{ni}, ptr %aix{i}.{u}")
                continue
            if m is not None:
                s = self.fresh("ms")
                lines.append(f"%{s} = select <{self.W} x i1> {m}, {self.ty(acc)} {v}, {self.ty(acc)} "
                             f"{self.identity(e.op, acc, ident)}")
                v = f"%{s}"
            if self.exact_prod(i):
                pe = self.fresh("pe")
                lines.append(f"%{pe} = load <{self.W} x i64>, ptr %pe{i}.{u}")
                if self.g.exprs[src].dtype == "float64":
                    # a float32 factor is never subnormal as a double: only float64 needs this
                    n = self.snippet(lines, T.PROD_UNSUB, "float64", a=v)
                    v, dv = self._renorm(lines, n, self.W)
                    lines.append(f"%{pe}.k = add <{self.W} x i64> %{pe}, {n}.k")
                    lines.append(f"%{pe}.v = add <{self.W} x i64> %{pe}.k, {dv}")
                    pe = f"{pe}.v"
                p = self.fresh("pm")
                lines.append(f"%{p} = fmul {self.ty(acc)} %{a}, {v}")
                mant, d = self._renorm(lines, f"%{p}", self.W)
                lines.append(f"%{pe}.n = add <{self.W} x i64> %{pe}, {d}")
                lines.append(f"store <{self.W} x i64> %{pe}.n, ptr %pe{i}.{u}")
                lines.append(f"store {self.ty(acc)} {mant}, ptr %acc{i}.{u}")
                continue
            fam = family(acc)
            r = self.snippet(lines, T.REDUCTIONS[e.op][fam][1], acc, a=f"%{a}", b=v)
            lines.append(f"store {self.ty(acc)} {r}, ptr %acc{i}.{u}")
        return "\n".join("  " + l for l in lines)

    def _arg_take(self, lines, op, dtype, best, v, bidx, vidx, w) -> str:
        """Lanes where (v, vidx) beats (best, bidx): numpy's first occurrence, NaN first."""
        B = f"<{w} x i1>"
        T_ = vty(dtype, w)
        t = self.fresh("tk")
        if family(dtype) == "f":
            cmp = "ogt" if op == "argmax" else "olt"
            lines += [f"%{t}.gt = fcmp {cmp} {T_} {v}, {best}",
                      f"%{t}.eq = fcmp oeq {T_} {v}, {best}",
                      f"%{t}.vn = fcmp uno {T_} {v}, {v}",
                      f"%{t}.bn = fcmp uno {T_} {best}, {best}",
                      f"%{t}.lt = icmp ult <{w} x i64> {vidx}, {bidx}",
                      f"%{t}.e2 = and {B} %{t}.eq, %{t}.lt",
                      f"%{t}.nb = xor {B} %{t}.bn, splat (i1 true)",
                      f"%{t}.n1 = and {B} %{t}.vn, %{t}.nb",
                      f"%{t}.nn = and {B} %{t}.vn, %{t}.bn",
                      f"%{t}.n2 = and {B} %{t}.nn, %{t}.lt",
                      f"%{t}.gb = and {B} %{t}.gt, %{t}.nb",
                      f"%{t}.o1 = or {B} %{t}.gb, %{t}.e2",
                      f"%{t}.o2 = or {B} %{t}.o1, %{t}.n1",
                      f"%{t}.o3 = or {B} %{t}.o2, %{t}.n2",
                      f"%{t}.ui = icmp eq <{w} x i64> {bidx}, splat (i64 -1)",
                      f"%{t} = or {B} %{t}.o3, %{t}.ui"]
        else:
            cmp = "sgt" if op == "argmax" else "slt"
            lines += [f"%{t}.gt = icmp {cmp} {T_} {v}, {best}",
                      f"%{t}.eq = icmp eq {T_} {v}, {best}",
                      f"%{t}.lt = icmp ult <{w} x i64> {vidx}, {bidx}",
                      f"%{t}.e2 = and {B} %{t}.eq, %{t}.lt",
                      f"%{t}.o1 = or {B} %{t}.gt, %{t}.e2",
                      f"%{t}.ui = icmp eq <{w} x i64> {bidx}, splat (i64 -1)",
                      f"%{t} = or {B} %{t}.o1, %{t}.ui"]
        return f"%{t}"

    def fold_block(self, level: int) -> str:
        """Combine the U block accumulators, reduce horizontally, fold into the wide accumulator."""
        lines: list[str] = []
        for i in self.reductions_of(level):
            e = self.g.exprs[i]
            acc, wide, ident = self.red_info(i)
            if e.op in ("argmax", "argmin"):
                self._fold_arg(lines, i, e, acc)
                continue
            if self.exact_prod(i):
                self._fold_exact_prod(lines, i)
                continue
            fam = family(acc)
            comb = T.REDUCTIONS[e.op][fam][1]
            cur = self.fresh("c")
            lines.append(f"%{cur} = load {self.ty(acc)}, ptr %acc{i}.0")
            cur = f"%{cur}"
            for u in range(1, self.cfg.unroll):
                o = self.fresh("c")
                lines.append(f"%{o} = load {self.ty(acc)}, ptr %acc{i}.{u}")
                cur = self.snippet(lines, comb, acc, a=cur, b=f"%{o}")
            h = self.fresh("h")
            kind = T.REDUCTIONS[e.op][fam][2]
            sc = SCALAR[acc]
            if kind in ("fadd", "fmul"):
                start = fconst(-0.0 if kind == "fadd" else 1.0, acc)
                lines.append(f"%{h} = call reassoc {sc} @llvm.vector.reduce.{kind}.{vsuffix(acc, self.W)}("
                             f"{sc} {start}, {self.ty(acc)} {cur})")
            else:
                lines.append(f"%{h} = call {sc} @llvm.vector.reduce.{kind}.{vsuffix(acc, self.W)}("
                             f"{self.ty(acc)} {cur})")
            hv = self.fresh("hv")
            lines.append(f"%{hv} = insertelement <1 x {sc}> poison, {sc} %{h}, i64 0")
            hv = f"%{hv}"
            if wide != acc:
                x = self.fresh("hw")
                lines.append(f"%{x} = fpext <1 x {sc}> {hv} to {vty(wide, 1)}")
                hv = f"%{x}"
            w0 = self.fresh("w")
            lines.append(f"%{w0} = load {vty(wide, 1)}, ptr %wide{i}")
            saved = self.W
            self.W = 1
            r = self.snippet(lines, comb, wide, a=f"%{w0}", b=hv)
            self.W = saved
            lines.append(f"store {vty(wide, 1)} {r}, ptr %wide{i}")
        return "\n".join("  " + l for l in lines)

    def _fold_exact_prod(self, lines, i):
        """Exact-range product: multiply the U block mantissas and the W lanes, renormalising
        and adding exponents at each step (mantissas in [0.5, 1): no step can overflow)."""
        W, vt = self.W, self.ty("float64")
        cur, ex = self.fresh("c"), self.fresh("ce")
        lines.append(f"%{cur} = load {vt}, ptr %acc{i}.0")
        lines.append(f"%{ex} = load <{W} x i64>, ptr %pe{i}.0")
        cur, ex = f"%{cur}", f"%{ex}"
        for u in range(1, self.cfg.unroll):
            o, oe = self.fresh("c"), self.fresh("ce")
            lines.append(f"%{o} = load {vt}, ptr %acc{i}.{u}")
            lines.append(f"%{oe} = load <{W} x i64>, ptr %pe{i}.{u}")
            lines.append(f"%{o}.p = fmul {vt} {cur}, %{o}")
            cur, d = self._renorm(lines, f"%{o}.p", W)
            lines.append(f"%{oe}.s = add <{W} x i64> {ex}, %{oe}")
            lines.append(f"%{oe}.t = add <{W} x i64> %{oe}.s, {d}")
            ex = f"%{oe}.t"
        h = self.fresh("h")
        lines.append(f"%{h} = call double @llvm.vector.reduce.fmul.{vsuffix('float64', W)}("
                     f"double 1.0, {vt} {cur})")
        lines.append(f"%{h}.e = call i64 @llvm.vector.reduce.add.v{W}i64(<{W} x i64> {ex})")
        lines.append(f"%{h}.v = insertelement <1 x double> poison, double %{h}, i64 0")
        w0 = self.fresh("w")
        lines.append(f"%{w0} = load <1 x double>, ptr %wide{i}")
        lines.append(f"%{w0}.p = fmul <1 x double> %{w0}, %{h}.v")
        m, d = self._renorm(lines, f"%{w0}.p", 1)
        lines.append(f"%{w0}.e = load <1 x i64>, ptr %pwe{i}")
        lines.append(f"%{w0}.ev = insertelement <1 x i64> poison, i64 %{h}.e, i64 0")
        lines.append(f"%{w0}.e1 = add <1 x i64> %{w0}.e, %{w0}.ev")
        lines.append(f"%{w0}.e2 = add <1 x i64> %{w0}.e1, {d}")
        lines.append(f"store <1 x i64> %{w0}.e2, ptr %pwe{i}")
        lines.append(f"store <1 x double> {m}, ptr %wide{i}")

    def _fold_arg(self, lines, i, e, acc):
        """argmax/argmin: walk every lane of every accumulator (scalar; once per block)."""
        W = self.W
        for u in range(self.cfg.unroll):
            va, vi = self.fresh("av"), self.fresh("ax")
            lines.append(f"%{va} = load {self.ty(acc)}, ptr %acc{i}.{u}")
            lines.append(f"%{vi} = load <{W} x i64>, ptr %aix{i}.{u}")
            for lane in range(W):
                x, xi = self.fresh("lv"), self.fresh("li")
                lines.append(f"%{x}.s = extractelement {self.ty(acc)} %{va}, i64 {lane}")
                lines.append(f"%{x} = insertelement <1 x {SCALAR[acc]}> poison, {SCALAR[acc]} %{x}.s, i64 0")
                lines.append(f"%{xi}.s = extractelement <{W} x i64> %{vi}, i64 {lane}")
                lines.append(f"%{xi} = insertelement <1 x i64> poison, i64 %{xi}.s, i64 0")
                b, bi = self.fresh("bv"), self.fresh("bi")
                lines.append(f"%{b} = load <1 x {SCALAR[acc]}>, ptr %wide{i}")
                lines.append(f"%{bi} = load <1 x i64>, ptr %wix{i}")
                take = self._arg_take(lines, e.op, acc, f"%{b}", f"%{x}", f"%{bi}", f"%{xi}", 1)
                valid = self.fresh("vd")
                lines.append(f"%{valid} = icmp ne <1 x i64> %{xi}, splat (i64 -1)")
                t2 = self.fresh("tk")
                lines.append(f"%{t2} = and <1 x i1> {take}, %{valid}")
                nv, ni = self.fresh("nv"), self.fresh("ni")
                lines.append(f"%{nv} = select <1 x i1> %{t2}, <1 x {SCALAR[acc]}> %{x}, <1 x {SCALAR[acc]}> %{b}")
                lines.append(f"%{ni} = select <1 x i1> %{t2}, <1 x i64> %{xi}, <1 x i64> %{bi}")
                lines.append(f"store <1 x {SCALAR[acc]}> %{nv}, ptr %wide{i}")
                lines.append(f"store <1 x i64> %{ni}, ptr %wix{i}")

    # -- column mode -----------------------------------------------------------------------------
    def set_columns(self, c0: str, mask: str, u: int = 0) -> str:
        """Column mode: emit for the u-th vector of columns from now on."""
        self.vpos, self.vmask, self.vblock = c0, mask, u
        self.row_memo = self.col_memos.setdefault(u, {})
        self.stored_rows = self.col_stored.setdefault(u, set())
        return ""

    def loop_offsets(self, kk: str) -> str:
        """Offsets of every access at reduced element kk (column mode); restore_offsets undoes."""
        lines: list[str] = []
        self._saved_ooff = dict(self.ooff)
        self.loop_index = kk
        for key, st in self.ax.loop_strides.items():
            if st:
                m, s = self.fresh("lm"), self.fresh("ls")
                lines.append(f"%{m} = mul i64 {kk}, {st}")
                lines.append(f"%{s} = add i64 {self.ooff[key]}, %{m}")
                self.ooff[key] = f"%{s}"
        return "\n".join("  " + l for l in lines)

    def restore_offsets(self) -> str:
        self.ooff = self._saved_ooff
        return ""

    def finish_columns(self, level: int) -> str:
        """Column mode: each lane's accumulator is its column's result."""
        lines: list[str] = []
        u = self.vblock
        for i in self.reductions_of(level):
            e = self.g.exprs[i]
            acc, _, _ = self.red_info(i)
            x = self.fresh("r")
            if e.op in ("argmax", "argmin"):
                lines.append(f"%{x} = load <{self.W} x i64>, ptr %aix{i}.{u}")
                self.row_memo[i] = f"%{x}"
                continue
            lines.append(f"%{x} = load {self.ty(acc)}, ptr %acc{i}.{u}")
            val = f"%{x}"
            if self.exact_prod(i):
                lines.append(f"%{x}.e = load <{self.W} x i64>, ptr %pe{i}.{u}")
                val = self._ldexp(lines, val, f"%{x}.e", self.W)
            self.row_memo[i] = self.convert(lines, val, acc, e.dtype)
        return "\n".join("  " + l for l in lines)

    def finish_pass(self, level: int) -> str:
        """The pass's reductions become row-level values (splats of the final result)."""
        lines: list[str] = []
        for i in self.reductions_of(level):
            e = self.g.exprs[i]
            acc, wide, _ = self.red_info(i)
            if e.op in ("argmax", "argmin"):
                x = self.fresh("r")
                lines.append(f"%{x}.v = load <1 x i64>, ptr %wix{i}")
                lines.append(f"%{x}.s = extractelement <1 x i64> %{x}.v, i64 0")
                # an empty row has no argmax; numpy raises before, and -1 never escapes here
                self.row_memo[i] = self.splat(lines, f"%{x}.s", "int64")
                continue
            x = self.fresh("r")
            lines.append(f"%{x}.v = load {vty(wide, 1)}, ptr %wide{i}")
            val = f"%{x}.v"
            if self.exact_prod(i):
                lines.append(f"%{x}.e = load <1 x i64>, ptr %pwe{i}")
                val = self._ldexp(lines, val, f"%{x}.e", 1)
            if wide != e.dtype:
                saved = self.W
                self.W = 1
                val = self.convert(lines, val, wide, e.dtype)
                self.W = saved
            s = self.fresh("rs")
            lines.append(f"%{s} = extractelement {vty(e.dtype, 1)} {val}, i64 0")
            self.row_memo[i] = self.splat(lines, f"%{s}", e.dtype)
        return "\n".join("  " + l for l in lines)


class ModuleBuilder:
    """Collects kernels and the shared functions they need (vector math, helpers)."""

    def __init__(self, target):
        self.target = target
        self.unoptimized = False         # a kernel uses attributes #1 (optnone)
        self.vm: set[tuple[str, str, int]] = set()
        self.ipow: set[tuple[str, int]] = set()

    def need_vmath(self, fn, dtype, w):
        self.vm.add((fn, dtype, w))

    def need_ipow(self, dtype, w):
        self.ipow.add((dtype, w))

    def shared_code(self) -> str:
        parts = []
        if self.vm:
            parts.append(render_vmath(sorted(self.vm)))
        for dtype, w in sorted(self.ipow):
            parts.append(template("llvm/ipow.ll.j2").render(
                S=SCALAR[dtype], T=vty(dtype, w), W=w, name=f"tj_ipow_{SCALAR[dtype]}x{w}"))
        return "\n".join(parts)


def optimiser_miscompiles(em, target) -> bool:
    """A kernel that LLVM's optimiser (llvmlite's LLVM, -O1 and up) turns into wrong code for
    the target, so it is built unoptimised (attributes #1: optnone): an argmax/argmin of
    integers or bools on AArch64 (NEON and SVE, under qemu) took a later tie's position
    instead of the first (found by the differential fuzzer: bool argmax of 39 elements gave
    37, numpy 1). The same IR unoptimised, and on every other triple, gives numpy's."""
    return target.triple.startswith("aarch64") and any(
        e.op in ("argmax", "argmin") and family(em.red_info(i)[0]) != "f"
        for i, e in enumerate(em.g.exprs))


def render_group(group: Group, config: Config, name: str, module: ModuleBuilder) -> str:
    """LLVM IR text of one kernel function."""
    for e in group.exprs:
        if e.dtype not in SCALAR:
            raise E.DTypeError(f"dtype {e.dtype} is not supported on CPU targets",
                               hint="use float32 or float64")
    if group.kind == "matmul":
        from .llvm_matmul import render_matmul
        return render_matmul(group, config, name, module)
    em = KernelEmitter(group, config, name, module)
    tpl = "llvm/elementwise.ll.j2" if group.kind == "elementwise" else "llvm/reduce.ll.j2"
    ax = em.ax
    attrs = 0
    if group.kind != "elementwise" and optimiser_miscompiles(em, module.target):
        attrs = 1
        module.unoptimized = True
    if ax.column:
        U = em.cfg.unroll
        return template("llvm/reduce_cols.ll.j2").render(
            em=em, name=name, C=ax.K, rows=ax.rows, L=ax.loop, W=config.lanes, U=U,
            NB=-(-ax.K // (config.lanes * U)), levels=em.passes, attrs=attrs)
    block = config.block if config.block and config.block < ax.K else 0
    if block:
        step = config.lanes * config.unroll
        block = max(step, block // step * step)
    return template(tpl).render(em=em, name=name, K=ax.K, rows=ax.rows, W=config.lanes,
                                U=config.unroll, levels=em.passes, block=block,
                                vector_bits=module.target.vector_bits, attrs=attrs)


def render_module(kernels: list[tuple[str, Group, Config]], target, module_name: str,
                  n_buffers: int, plan_text: str = "") -> str:
    """One LLVM module holding every kernel of a function, plus a serial entry point."""
    mb = ModuleBuilder(target)
    bodies = [render_group(g, c, n, mb) for n, g, c in kernels]
    text = template("llvm/module.ll.j2").render(
        module_name=module_name, triple=target.triple, target=target,
        bodies=bodies, shared=mb.shared_code(), plan_text=plan_text, n_buffers=n_buffers,
        unoptimized=mb.unoptimized,
        entries=[(n, work_units(g, c)) for n, g, c in kernels], size_t=f"i{target.pointer_bits}")
    return text if target.fused_multiply_add else soft_fma(text)

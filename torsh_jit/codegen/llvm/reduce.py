"""The reduction code paths of a kernel: accumulators (declared, initialised, updated each
vector step), the fold of a block into the wide accumulator, and a pass's final values.

Per op: sum, prod, max, min, any, all through the op table's REDUCTIONS (ops.py); float
products exactly, as a mantissa and an exponent (PROD_RENORM); argmax/argmin as a value
and an index per lane, numpy's first occurrence. A mixin of KernelEmitter (emitter.py).
"""
from __future__ import annotations

from ...ir.dtypes import family
from ...ir.ops import ARG_REDUCTIONS, INT_LIMITS
from . import ops as T
from .types import SCALAR, fconst, vsuffix, vty


class ReductionMixin:
    """Reads the emitter's group (g), its reductions (red), lanes (W) and accumulator sets
    per step (U)."""

    def reductions_of(self, level: int) -> list[int]:
        return [i for i in self.red if self.g.exprs[i].level == level]

    def pass_reductions(self, level: int):
        """(index, expr, accumulate dtype, wide dtype, identity) of each reduction of a pass."""
        for i in self.reductions_of(level):
            yield (i, self.g.exprs[i], *self.red_info(i))

    def red_info(self, i: int):
        """(accumulate dtype, wide dtype, identity) of reduction i."""
        e = self.g.exprs[i]
        src = self.g.exprs[e.args[0]].dtype
        if e.op in ARG_REDUCTIONS:
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

    def renorm(self, lines, val: str, w: int) -> tuple[str, str]:
        """(mantissa, exponent) of a <w x double> product: PROD_RENORM."""
        saved, self.W = self.W, w
        m = self.snippet(lines, T.PROD_RENORM, "float64", a=val)
        self.W = saved
        return m, f"{m}.de"

    def ldexp(self, lines, val: str, exp: str, w: int) -> str:
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
        U = self.U
        for i in self.reductions_of(level):
            acc, wide, _ = self.red_info(i)
            for u in range(U):
                out.append(f"  %acc{i}.{u} = alloca {self.ty(acc)}, align 64")
                if self.g.exprs[i].op in ARG_REDUCTIONS:
                    out.append(f"  %aix{i}.{u} = alloca <{self.W} x i64>, align 64")
            out.append(f"  %wide{i} = alloca {vty(wide, 1)}, align 16")
            if self.exact_prod(i):
                out += [f"  %pe{i}.{u} = alloca <{self.W} x i64>, align 64" for u in range(U)]
                out.append(f"  %pwe{i} = alloca <1 x i64>, align 16")
            if self.g.exprs[i].op in ARG_REDUCTIONS:
                out.append(f"  %wix{i} = alloca <1 x i64>, align 16")
        return "\n".join(out)

    def acc_init(self, level: int, which: str) -> str:
        """Store identities: which='block' (vector accumulators) or 'wide'."""
        out = []
        for i, e, acc, wide, ident in self.pass_reductions(level):
            if e.op in ARG_REDUCTIONS:
                first = "-inf" if e.op == "argmax" else "inf"
                if family(acc) == "i":
                    first = "MIN" if e.op == "argmax" else "MAX"
                if which == "block":
                    for u in range(self.U):
                        out.append(f"  store {self.ty(acc)} {self.identity('max', acc, first)}, "
                                   f"ptr %acc{i}.{u}")
                        out.append(f"  store <{self.W} x i64> splat (i64 -1), ptr %aix{i}.{u}")
                else:
                    out.append(f"  store {vty(acc, 1)} {self.identity('max', acc, first)}, ptr %wide{i}")
                    out.append(f"  store <1 x i64> splat (i64 -1), ptr %wix{i}")
                continue
            if which == "block":
                for u in range(self.U):
                    out.append(f"  store {self.ty(acc)} {self.identity(e.op, acc, ident)}, ptr %acc{i}.{u}")
                    if self.exact_prod(i):
                        out.append(f"  store <{self.W} x i64> zeroinitializer, ptr %pe{i}.{u}")
            else:
                out.append(f"  store {vty(wide, 1)} {self.identity(e.op, wide, ident)}, ptr %wide{i}")
                if self.exact_prod(i):
                    out.append(f"  store <1 x i64> zeroinitializer, ptr %pwe{i}")
        return "\n".join(out)

    def accumulate(self, level: int, k: str, masked: bool, mask: str, u: int) -> str:
        """One vector step of a reduction pass into accumulator set u."""
        lines: list[str] = []
        memo: dict = {}
        m = mask if masked else None
        for i, e, acc, _, ident in self.pass_reductions(level):
            src = e.args[0]
            v = self.value(lines, src, k, m, memo)
            v = self.convert(lines, v, self.g.exprs[src].dtype, acc)
            a = self.fresh("a")
            lines.append(f"%{a} = load {self.ty(acc)}, ptr %acc{i}.{u}")
            if e.op in ARG_REDUCTIONS:
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
                    v, dv = self.renorm(lines, n, self.W)
                    lines.append(f"%{pe}.k = add <{self.W} x i64> %{pe}, {n}.k")
                    lines.append(f"%{pe}.v = add <{self.W} x i64> %{pe}.k, {dv}")
                    pe = f"{pe}.v"
                p = self.fresh("pm")
                lines.append(f"%{p} = fmul {self.ty(acc)} %{a}, {v}")
                mant, d = self.renorm(lines, f"%{p}", self.W)
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
        for i, e, acc, wide, _ in self.pass_reductions(level):
            if e.op in ARG_REDUCTIONS:
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
            for u in range(1, self.U):
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
        for u in range(1, self.U):
            o, oe = self.fresh("c"), self.fresh("ce")
            lines.append(f"%{o} = load {vt}, ptr %acc{i}.{u}")
            lines.append(f"%{oe} = load <{W} x i64>, ptr %pe{i}.{u}")
            lines.append(f"%{o}.p = fmul {vt} {cur}, %{o}")
            cur, d = self.renorm(lines, f"%{o}.p", W)
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
        m, d = self.renorm(lines, f"%{w0}.p", 1)
        lines.append(f"%{w0}.e = load <1 x i64>, ptr %pwe{i}")
        lines.append(f"%{w0}.ev = insertelement <1 x i64> poison, i64 %{h}.e, i64 0")
        lines.append(f"%{w0}.e1 = add <1 x i64> %{w0}.e, %{w0}.ev")
        lines.append(f"%{w0}.e2 = add <1 x i64> %{w0}.e1, {d}")
        lines.append(f"store <1 x i64> %{w0}.e2, ptr %pwe{i}")
        lines.append(f"store <1 x double> {m}, ptr %wide{i}")

    def _fold_arg(self, lines, i, e, acc):
        """argmax/argmin: walk every lane of every accumulator (scalar; once per block)."""
        W = self.W
        for u in range(self.U):
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


    def finish_pass(self, level: int) -> str:
        """The pass's reductions become row-level values (splats of the final result)."""
        lines: list[str] = []
        for i, e, acc, wide, _ in self.pass_reductions(level):
            if e.op in ARG_REDUCTIONS:
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
                val = self.ldexp(lines, val, f"%{x}.e", 1)
            if wide != e.dtype:
                saved = self.W
                self.W = 1
                val = self.convert(lines, val, wide, e.dtype)
                self.W = saved
            s = self.fresh("rs")
            lines.append(f"%{s} = extractelement {vty(e.dtype, 1)} {val}, i64 0")
            self.row_memo[i] = self.splat(lines, f"%{s}", e.dtype)
        return "\n".join("  " + l for l in lines)

"""Memory access of a kernel: the buffer table, per-row offsets, and vector loads and
stores (contiguous, masked, gathered or scattered, by how each access walks the inner
region: schedule/layout.py inner_mode). A mixin of KernelEmitter (emitter.py)."""
from __future__ import annotations

from ...fuse import Access
from ...ir.dtypes import ITEMSIZE
from ...ir.symbols import is_symbolic, statically_zero
from ...schedule.layout import inner_mode
from .types import MEMTYPE, SUFFIX


class MemoryMixin:
    """Loads and stores of one kernel; reads the emitter's group (g), axis plan (ax),
    lanes (W) and the row offsets (ooff) that row_setup computes."""

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

    def coordinates(self, lines: list, flat: str, dims, stem: str) -> list[str]:
        """The coordinates over `dims` (outermost first) of the flat index `flat`, an i64
        value; the urem/udiv steps go to lines."""
        coords, cur = [], flat
        for d in range(len(dims) - 1, 0, -1):
            c, q = self.fresh(stem + "c"), self.fresh(stem + "q")
            lines.append(f"%{c} = urem i64 {cur}, {dims[d]}")
            lines.append(f"%{q} = udiv i64 {cur}, {dims[d]}")
            coords.append(f"%{c}")
            cur = f"%{q}"
        if dims:
            coords.append(cur)
        return coords[::-1]

    def row_setup(self, o: str, prefix: str = "") -> str:
        """Outer coordinates of row `o`, the outer offset of every access, hoisted values."""
        lines: list[str] = []
        coords = self.coordinates(lines, o, self.ax.outer, "o")
        self.ooff = {}
        accesses = [(("l", i), a) for i, a in enumerate(self.g.loads)] + \
                   [(("s", i), s.access) for i, s in enumerate(self.g.stores)]
        for key, acc in accesses:
            name = f"%{prefix}off.{key[0]}{key[1]}"
            lines.append(f"{name}.0 = add i64 0, {acc.offset}")
            prev = f"{name}.0"
            for j, (c, st) in enumerate(zip(coords, self.ax.outer_strides[key])):
                if statically_zero(st):
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

    def segment_offsets(self, sg: str) -> str:
        """Segmented rows: every access's offset at the start of segment sg (its coordinates
        over the segment axes, outermost first); restore_offsets undoes."""
        lines: list[str] = []
        self._saved_ooff = dict(self.ooff)
        coords = self.coordinates(lines, sg, self.ax.segs, "s")
        for key, sts in sorted(self.ax.seg_strides.items()):
            prev = self.ooff[key]
            for c, st in zip(coords, sts):
                if statically_zero(st):
                    continue
                m, a = self.fresh("sm"), self.fresh("so")
                lines.append(f"%{m} = mul i64 {c}, {st}")
                lines.append(f"%{a} = add i64 {prev}, %{m}")
                prev = f"%{a}"
            self.ooff[key] = prev
        return "\n".join("  " + l for l in lines)

    def ptr(self, lines, acc: Access, idx: str) -> str:
        p = self.fresh("p")
        lines.append(f"%{p} = getelementptr {MEMTYPE[acc.dtype]}, ptr %buf{acc.buf}, i64 {idx}")
        return f"%{p}"

    def row_ptr(self, lines, key, acc: Access, k: str) -> str:
        """Pointer to element k of the row (a contiguous access)."""
        return self.column_ptr(lines, acc, self.ooff[key], k)

    def column_ptr(self, lines, acc: Access, index: str, k: str) -> str:
        """Pointer to element index + k. A column position (k = c0 + a constant, column_at)
        addresses from the block's first column by the constant, so the U vectors of a step
        share one pointer and differ by displacements; added into one index, a symbolic row
        stride kept U separate offsets live and spilled them."""
        c0, off = self.col_parts.get(k, (k, 0))
        idx = self.fresh("ix")
        lines.append(f"%{idx} = add i64 {index}, {c0}")
        p = self.ptr(lines, acc, f"%{idx}")
        if not off:
            return p
        q = self.fresh("p")
        lines.append(f"%{q} = getelementptr {MEMTYPE[acc.dtype]}, ptr {p}, i64 {off}")
        return f"%{q}"

    def lane_ptrs(self, lines, key, acc: Access, offs: str) -> str:
        """<W x ptr> to the row's elements at lane offsets offs (a gather or scatter)."""
        base = self.ptr(lines, acc, self.ooff[key])
        ps = self.fresh("ps")
        lines.append(f"%{ps} = getelementptr {MEMTYPE[acc.dtype]}, ptr {base}, <{self.W} x i64> {offs}")
        return f"%{ps}"

    def lane_offsets(self, lines, key, k: str, mode) -> str:
        """<W x i64> element offsets (relative to the row offset) of lanes k..k+W-1."""
        W = self.W
        kv = self.splat(lines, k, "int64")
        ki = self.fresh("ki")
        lines.append(f"%{ki} = add <{W} x i64> {kv}, {self.iota()}")
        st = self.ax.inner_strides[key]
        if mode[0] == "strided":
            r = self.fresh("lo")
            lines.append(f"%{r} = mul <{W} x i64> %{ki}, {self.index_vec(lines, mode[1])}")
            return f"%{r}"
        # general: per-lane coordinates of the inner region
        cur, total = f"%{ki}", None
        inner = self.ax.inner
        for d in range(len(inner) - 1, -1, -1):
            c, q, t = self.fresh("ic"), self.fresh("iq"), self.fresh("it")
            size = self.index_vec(lines, inner[d])
            lines.append(f"%{c} = urem <{W} x i64> {cur}, {size}")
            lines.append(f"%{q} = udiv <{W} x i64> {cur}, {size}")
            lines.append(f"%{t} = mul <{W} x i64> %{c}, {self.index_vec(lines, st[d])}")
            if total is None:
                total = f"%{t}"
            else:
                a = self.fresh("ia")
                lines.append(f"%{a} = add <{W} x i64> {total}, %{t}")
                total = f"%{a}"
            cur = f"%{q}"
        return total

    def lane_base(self, lines, key, k: str, stride: int) -> str:
        """Element index of lane 0 of a strided access at inner position k."""
        m, a = self.fresh("lb"), self.fresh("lb")
        lines.append(f"%{m} = mul i64 {k}, {stride}")
        lines.append(f"%{a} = add i64 {self.ooff[key]}, %{m}")
        return f"%{a}"

    def index_vec(self, lines, x) -> str:
        """<W x i64> of x in every lane: a constant, or a splat of a symbolic size's value."""
        if is_symbolic(x):
            return self.splat(lines, str(x), "int64")
        return f"splat (i64 {x})"

    def load(self, lines, li: int, k: str | None, mask: str | None) -> str:
        acc = self.g.loads[li]
        key = ("l", li)
        W, mt = self.W, MEMTYPE[acc.dtype]
        mode = inner_mode(self.ax.inner, self.ax.inner_strides[key])
        vt = f"<{W} x {mt}>"
        if mode[0] == "invariant":
            p = self.ptr(lines, acc, self.ooff[key])
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
            p = self.row_ptr(lines, key, acc, k)
            if mask is None:
                lines.append(f"%{v} = load {vt}, ptr {p}, align {al}")
            else:
                lines.append(f"%{v} = call {vt} @llvm.masked.load.v{W}{SUFFIX[mt]}.p0(ptr {p}, i32 {al}, "
                             f"<{W} x i1> {mask}, {vt} zeroinitializer)")
        elif mode[0] == "strided" and isinstance(mode[1], int) and 2 <= mode[1] <= 4:
            # a small constant stride (x[:, ::2], x[:, ::3]): one contiguous load of the
            # (W-1)*s+1 elements spanned, then a shuffle keeps every s-th. A gather issues one
            # load per lane: a[:, ::3] + b of 4096x1024 float32 took 8.9 ms, numba 2.8 ms.
            s = mode[1]
            span = (W - 1) * s + 1
            p = self.ptr(lines, acc, self.lane_base(lines, key, k, s))
            wide = self.fresh("vw")
            if mask is None:
                lines.append(f"%{wide} = load <{span} x {mt}>, ptr {p}, align {al}")
            else:     # the row's tail: lane i's mask bit on element i*s, the rest off
                spread = ", ".join(f"i32 {j // s}" if j % s == 0 else f"i32 {W}" for j in range(span))
                lines.append(f"%{wide}.m = shufflevector <{W} x i1> {mask}, <{W} x i1> zeroinitializer, "
                             f"<{span} x i32> <{spread}>")
                lines.append(f"%{wide} = call <{span} x {mt}> @llvm.masked.load.v{span}{SUFFIX[mt]}.p0("
                             f"ptr {p}, i32 {al}, <{span} x i1> %{wide}.m, <{span} x {mt}> zeroinitializer)")
            pick = ", ".join(f"i32 {i * s}" for i in range(W))
            lines.append(f"%{v} = shufflevector <{span} x {mt}> %{wide}, <{span} x {mt}> poison, <{W} x i32> <{pick}>")
        else:
            ps = self.lane_ptrs(lines, key, acc, self.lane_offsets(lines, key, k, mode))
            m = mask or "splat (i1 true)"
            lines.append(f"%{v} = call {vt} @llvm.masked.gather.v{W}{SUFFIX[mt]}.v{W}p0(<{W} x ptr> {ps}, "
                         f"i32 {al}, <{W} x i1> {m}, {vt} zeroinitializer)")
        if acc.dtype == "bool":
            b = self.fresh("lb")
            lines.append(f"%{b} = icmp ne {vt} %{v}, zeroinitializer")
            return f"%{b}"
        return f"%{v}"

    def store(self, lines, si: int, val: str, k: str, mask: str | None):
        acc = self.g.stores[si].access
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
            p = self.row_ptr(lines, key, acc, k)
            if mask is None:
                nt = ", !nontemporal !{i32 1}" if self.cfg.nontemporal else ""
                lines.append(f"store {vt} {val}, ptr {p}, align {al}{nt}")
            else:
                lines.append(f"call void @llvm.masked.store.v{W}{SUFFIX[mt]}.p0({vt} {val}, ptr {p}, "
                             f"i32 {al}, <{W} x i1> {mask})")
        else:
            offs = self.lane_offsets(lines, key, k, mode) if mode[0] != "invariant" else "zeroinitializer"
            ps = self.lane_ptrs(lines, key, acc, offs)
            m = mask or "splat (i1 true)"
            lines.append(f"call void @llvm.masked.scatter.v{W}{SUFFIX[mt]}.v{W}p0({vt} {val}, "
                         f"<{W} x ptr> {ps}, i32 {al}, <{W} x i1> {m})")

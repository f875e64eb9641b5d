"""CUDA C: the C-style renderer's data for CUDA, and the kernels of a plan as one .cu file.

The language is data (`CudaLanguage`); the skeletons are templates/cuda/*.cu.j2: elementwise
(groups of V elements, 16-byte accesses, a block per T x U groups and one step per thread;
the block size from the device's occupancy), reduce (a thread, a warp or a block per row,
the row kept in registers across passes; a split of long rows across blocks), matmul
(mma.sync tensor cores for float16/bfloat16 with float32 accumulation; on Hopper, wgmma fed
by cp.async or, warp-specialised, by the TMA; a SIMT path for the rest), each with the
group's elementwise epilogue fused. `launches()` says how each kernel
is launched: plain data the backend reads together with the device's properties.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .. import errors as E
from ..fuse import Group
from ..ir.dtypes import ITEMSIZE, family
from ..schedule.gpu import GpuConfig, arch_number, arch_specific  # noqa: F401 (re-exported)
from .cstyle import batch_offset, CStyleLanguage, CEmitter, Ctx, _indent
from ..schedule.layout import plan_axes
from .jinja_env import template


class CudaLanguage(CStyleLanguage):
    name = "cuda"
    file_suffix = ".cu"
    kernel_prefix = 'extern "C" __global__'
    global_ptr = "{T}*"
    const_ptr = "const {T}*"
    shared = "__shared__"
    barrier = "__syncthreads()"
    thread_index = {"local": "threadIdx.x", "group": "blockIdx.x", "local_size": "blockDim.x",
                    "groups": "gridDim.x"}
    shuffle_xor = "__shfl_xor_sync(0xffffffffu, {x}, {o})"
    shuffle_bool = "(__shfl_xor_sync(0xffffffffu, (int)({x}), {o}) != 0)"
    load_conv = {**CStyleLanguage.load_conv, "float16": "tj_h2f({x})", "bfloat16": "tj_b2f({x})"}
    store_conv = {**CStyleLanguage.store_conv, "float16": "tj_f2h({x})", "bfloat16": "tj_f2b({x})"}
    round_to = {"float16": "tj_rh({x})", "bfloat16": "tj_rb({x})"}
    special_floats = {("float", "inf"): "__int_as_float(0x7f800000)",
                      ("float", "-inf"): "__int_as_float(0xff800000)",
                      ("float", "nan"): "__int_as_float(0x7fc00000)",
                      ("double", "inf"): "__longlong_as_double(0x7ff0000000000000LL)",
                      ("double", "-inf"): "__longlong_as_double(0xfff0000000000000LL)",
                      ("double", "nan"): "__longlong_as_double(0x7ff8000000000000LL)"}
    # float -> int casts saturate like the hardware's cvt.rzi (NaN gives 0)
    cast_overrides = {("float32", "int32"): "__float2int_rz({a})", ("float64", "int32"): "__double2int_rz({a})",
                      ("float32", "int64"): "__float2ll_rz({a})", ("float64", "int64"): "__double2ll_rz({a})",
                      ("float16", "int32"): "__float2int_rz({a})", ("bfloat16", "int32"): "__float2int_rz({a})",
                      ("float16", "int64"): "__float2ll_rz({a})", ("bfloat16", "int64"): "__float2ll_rz({a})"}
    # (source-of-truth spellings are CStyleLanguage.code_for_op; CUDA's libdevice has every one;
    # sin, cos and tan are the prelude's, out of line: NVRTC time)
    code_for_op = {**CStyleLanguage.code_for_op,
                   **{fn: {"f": f"tj_{fn}({{a}})"} for fn in ("sin", "cos", "tan")}}


LANG = CudaLanguage()


# -- launches: plain data for the backend ------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    name: str
    kind: str                      # elementwise | reduce | matmul
    threads: int
    params: tuple                  # ((buffer, "ptr" | "scalar", dtype), ...) in signature order
    grid: tuple                    # ("stride", blocks) | ("rows", blocks) | ("split", rows, max_parts)
                                   # | ("tiles", x, y, z) | ("persistent", work items)
    smem: int = 0                  # dynamic shared memory, bytes
    workspace: int = 0             # split: 8-byte slots per (pass, row, part); counters besides
    passes: int = 0                # split: passes that exchange partials
    barrier: bool = False          # split: blocks of a row wait for each other (co-resident)
    align: tuple = ()              # ((buffer, bytes), ...) this kernel needs, else `fallback`
    fallback: str = ""             # (none, for an elementwise kernel: the module rendered with
                                   # aligned=False, built on first need)
    standby: bool = False          # a fallback: launched only in place of another kernel
    tmaps: tuple = ()              # tensor maps passed first, by value: ((buffer, offset, dims,
                                   # strides, box, element bytes), ...) in elements, innermost
                                   # first; the backend encodes them for each call's pointers
    cluster: int = 1               # blocks per thread-block cluster (compiled in: __cluster_dims__);
                                   # the grid's blocks are a multiple of it

    def describe(self) -> str:
        g = self.grid
        if g[0] == "stride":
            grid = f"{g[1]} blocks, one step per thread"
        elif g[0] == "rows":
            grid = f"{g[1]} blocks (rows)"
        elif g[0] == "split":
            grid = f"{g[1]} row(s) x parts (launch: from SMs x resident blocks, at most {g[2]})"
        elif g[0] == "persistent":
            grid = f"{g[1]} tiles on a persistent grid (launch: SMs x resident blocks, at most {g[1]})"
        else:
            grid = f"{g[1]}x{g[2]}x{g[3]} tiles"
        if self.cluster > 1:
            grid += f" in clusters of {self.cluster} blocks"
        extra = f", {self.smem} B dynamic shared memory" if self.smem else ""
        if self.tmaps:
            extra += f", {len(self.tmaps)} tensor maps (TMA boxes " + \
                ", ".join("x".join(map(str, t[4][:2])) for t in self.tmaps) + ")"
        if self.fallback:
            extra += f", falls back to {self.fallback} when pointers are not " \
                     f"{max(b for _, b in self.align)}-byte aligned"
        elif self.align:
            extra += f"; wide accesses only: pointers not {max(b for _, b in self.align)}-byte " \
                     "aligned run a variant with scalar accesses, compiled on first need"
        return f"{self.name}: {self.kind}, {self.threads} threads/block, {grid}{extra}"


def _index_type(group: Group, lang: CStyleLanguage = LANG) -> str:
    """int where every offset fits in 31 bits, else the language's 64-bit integer."""
    big = math.prod(group.domain) if group.domain else 1
    dom = group.domain
    accs = list(group.loads) + [s.access for s in group.stores]
    for a in accs:
        span = abs(a.offset) + sum((d - 1) * abs(s) for d, s in zip(dom, a.strides))
        big = max(big, span + 1)
    for a in group.mm:
        span = abs(a.offset) + sum((d - 1) * abs(s) for d, s in zip(tuple(dom) + (group.k,), a.strides))
        big = max(big, span + 1)
    return "int" if big < 2**31 - 1 else lang.types["int64"]


def _params(em: CEmitter, specs_scalar) -> tuple:
    out = []
    for b in em.buffers():
        out.append((b, "scalar" if b in specs_scalar else "ptr", em.buffer_dtype(b)))
    return tuple(out)


# -- the skeletons: one per kind, filled for any C-style language (its templates/<name>/) ------
def skeleton(lang: CStyleLanguage, kind: str):
    return template(f"{lang.name}/{kind}{lang.file_suffix}.j2")


# -- elementwise -------------------------------------------------------------------------------
def render_elementwise(group: Group, cfg: GpuConfig, name: str, scalars,
                       lang: CStyleLanguage = LANG, aligned: bool = False) -> tuple[str, Launch]:
    """aligned: the kernel has only the wide accesses and says which pointers they need
    aligned (Launch.align); else it checks them at run time and has scalar accesses besides.
    The scalar half was a tenth of NVRTC's time for a chain of three inputs."""
    ax = plan_axes(group)
    V = cfg.vec
    K = ax.K
    if ax.outer and K % V:
        V = 1
    em = CEmitter(lang, group, V=V, index=_index_type(group, lang), scalar_bufs=scalars, ax=ax)
    per_row = -(-K // V)
    G = ax.rows * per_row
    U = cfg.unroll
    loads = em.varying_loads()
    tail = bool(K % V)          # only with a single row: the last group is partial
    units = []
    for u in range(U):
        tag = f"_{u}"
        ctx = Ctx(lambda li, tag=tag: f"lr{li}{tag}" if em.modes_of_load(li) == "invariant"
                  else f"l{li}{tag}[v]")
        names_all = {si: f"s{si}{tag}" for si in range(len(group.stores))}
        decl = "\n".join(f"{lang.mem_types[group.stores[si].access.dtype]} {n}[{V}];"
                         for si, n in names_all.items())
        guard = f"k{tag} + {V} <= {K}" if tail else None
        units.append(dict(
            tag=tag,
            setup=em.row_setup(f"o{tag}", tag),
            loads="\n".join(em.load_group(li, f"k{tag}", f"l{li}{tag}", guard=guard, vec="vec_ok", tag=tag)
                            for li in loads),
            decl=decl,
            compute=em.compute_stores(ctx, names_all),
            stores="\n".join(em.store_group(si, f"k{tag}", n, guard=guard, vec="vec_ok", tag=tag)
                             for si, n in names_all.items()),
        ))
    align = tuple(sorted({(buf, al) for _, buf, al in em.vector_accesses()})) if aligned else ()
    src = skeleton(lang, "elementwise").render(
        name=name, T=cfg.threads, V=V, U=U, G=G, K=K, per_row=per_row, rows=ax.rows, I=em.I,
        params=", ".join(em.params()), vec_ok="true" if align else em.vec_ok_expr(), units=units,
        indent=_indent)
    blocks = max(1, -(-G // (cfg.threads * U)))
    return src, Launch(name, "elementwise", cfg.threads, _params(em, scalars), ("stride", blocks),
                       align=align)


# -- reductions --------------------------------------------------------------------------------
def render_reduce(group: Group, cfg: GpuConfig, name: str, scalars,
                  lang: CStyleLanguage = LANG) -> tuple[str, Launch]:
    ax = plan_axes(group)
    V, K, rows = cfg.vec, ax.K, ax.rows
    if K % V:
        V = 1
    tpr = cfg.tpr or 1
    T = cfg.threads
    split = cfg.split
    if split:
        tpr = T
    # a thread sums at most 64 elements of a row: in float32, then float64 across threads
    short = not split and -(-K // (tpr * V)) * V <= 64
    em = CEmitter(lang, group, V=V, index=_index_type(group, lang), scalar_bufs=scalars, ax=ax,
                  short_sums=short)
    rpb = T // tpr
    users = em.load_users()
    J = cfg.cache if not split else 0
    cached = sorted(li for li, u in users.items() if J and len(u) >= 2)
    step = tpr * V
    exact = J and J * step == K
    W = max(1, T // 32)

    kept = em.kept_values(cached, J, V)         # expr -> the pass that computes it

    def ctx_for(pass_loads, level=None):
        def load(li):
            if em.modes_of_load(li) == "invariant":
                return f"lr{li}"
            return f"c{li}[j][v]" if li in cached else f"l{li}[v]"
        seed = {e: f"k{e}[j][v]" for e, p in kept.items() if level is None or p < level}
        return Ctx(load, seed)

    def loop_loads(lis, k):
        return "\n".join(em.load_group(li, k, f"l{li}", guard=None, vec="vec_ok")
                         for li in lis if li not in cached)

    nslot = max([len(em.acc_vars(p)) for p in em.passes] or [1])
    passes = []
    for p in em.passes:
        roots = [group.exprs[i].args[0] for i in em.reductions_of(p)]
        lis = em.varying_loads(roots)
        passes.append(dict(
            level=p,
            hoist=em.hoist(p),
            init=em.acc_init(p, V),
            loads=loop_loads(lis, "k"),
            accumulate=em.accumulate(p, ctx_for(lis, p), "v", "k + v",
                                     keep={e: f"k{e}[j][v]" for e, q in kept.items() if q == p}),
            fold=em.acc_fold(p, V),
            accs=em.acc_vars(p),
            shfl=em.combine_from(p, lambda n, t: lang.shuffle(n, "o", t)),
            from_smem=em.combine_from(p, lambda n, t: f"sh_{n}[w]"),
            from_ws=em.combine_from(p, lambda n, t, p=p: f"*(volatile {t}*)(ws + ((({em.passes.index(p)}LL * {rows} + row) * S + s) * {nslot} + {slot_of(em, p, n)}))"),
            reset=em.acc_reset(p),
            pi=em.passes.index(p),
        ))
        passes[-1]["finish"] = em.finish_pass(p)    # later passes read its results (r<i>)
    final_hoist = em.hoist(len(em.passes) and max(em.passes) + 1)
    row_stores = em.row_stores()
    vst = em.varying_stores()
    decl, names = em.store_arrays()
    roots = [group.exprs[group.stores[si].expr] for si in vst]
    final_lis = em.varying_loads([group.stores[si].expr for si in vst]) if vst else []
    final = dict(
        decl=decl,
        loads=loop_loads(final_lis, "k"),
        compute=em.compute_stores(ctx_for(final_lis), names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec="vec_ok") for si, n in names.items()),
    ) if vst else None
    cache_fill = "\n".join(
        em.load_group(li, "k", f"c{li}[j]", guard=None, vec="vec_ok", decl=False) for li in cached)
    cache_decl = "\n".join([f"{lang.types[group.loads[li].dtype]} c{li}[{J}][{V}];" for li in cached] +
                           [f"{lang.types[group.exprs[e].dtype]} k{e}[{J}][{V}];" for e in kept])
    smem_accs = [a for p in em.passes for a in em.acc_vars(p)] if tpr > 32 else []
    barrier = split and (len(em.passes) > 1 or bool(vst))
    src = skeleton(lang, "reduce").render(
        name=name, T=T, V=V, K=K, ROWS=rows, tpr=tpr, rpb=rpb, W=W, J=J, exact=exact, step=step,
        I=em.I, params=", ".join(em.params() + (["unsigned long long* __restrict__ ws_raw"] if split else [])),
        vec_ok=em.vec_ok_expr(), setup=em.row_setup("row"), passes=passes, final_hoist=final_hoist,
        row_stores=row_stores, final=final, cache_fill=cache_fill, cache_decl=cache_decl,
        smem_accs=smem_accs, split=split, barrier=barrier, nslot=nslot, cached=bool(cached),
        indent=_indent)
    if split:
        grid = ("split", rows, max(1, -(-K // (T * V * 4))))
        ws = nslot
    else:
        grid = ("rows", -(-rows // rpb))
        ws = 0
    return src, Launch(name, "reduce", T, _params(em, scalars), grid, workspace=ws,
                       passes=len(em.passes) if split else 0, barrier=barrier)


def slot_of(em, p, name) -> int:
    return [n for _, n in em.acc_vars(p)].index(name)


# -- matmul ------------------------------------------------------------------------------------
def mma_eligible(group: Group, target) -> bool:
    """Tensor cores (mma.sync m16n8k16, float32 accumulation) take this matmul: 16-bit float
    operands of one dtype, A contiguous along K, B along N or K, every 16-byte chunk aligned."""
    if arch_number(target.arch) < 80 or not group.mm:
        return False
    A, B = group.mm
    if A.dtype != B.dtype or A.dtype not in ("float16", "bfloat16"):
        return False
    nb = len(group.domain) - 2
    M, N = group.domain[-2:]
    K = group.k
    if K % 8 or N % 8 or K == 0:
        return False
    a_b, a_m, a_k = A.strides[:nb], A.strides[nb], A.strides[nb + 2]
    b_b, b_n, b_k = B.strides[:nb], B.strides[nb + 1], B.strides[nb + 2]
    if a_k != 1 or (M > 1 and a_m % 8) or A.offset % 8 or any(s % 8 for s in a_b):
        return False
    if B.offset % 8 or any(s % 8 for s in b_b):
        return False
    return (b_n == 1 and b_k % 8 == 0) or (b_k == 1 and b_n % 8 == 0)


def wgmma_eligible(group: Group, target) -> bool:
    """Hopper's warpgroup tensor cores take this matmul: the target is sm_90a exactly and the
    operands are what mma.sync takes (16-bit floats, 16-byte chunks along K, or along N for B)."""
    return (arch_number(target.arch) == 90 and arch_specific(target.arch)
            and mma_eligible(group, target))


def _batch_axis(strides, batch) -> int | None:
    """The one element stride that walks an operand's batch dims in order (0: broadcast
    along all of them), or None when they do not collapse into one axis."""
    dims = [(d, s) for d, s in zip(batch, strides) if d != 1]
    if not dims:
        return 0
    if all(s == 0 for _, s in dims):
        return 0
    for (d0, s0), (d1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * d1:
            return None
    return dims[-1][1] if dims[-1][1] > 0 else None


def tma_eligible(group: Group, target) -> bool:
    """The TMA can feed this matmul: wgmma takes it, each operand's batch dims collapse into
    one axis (or broadcast), and the tensor maps' limits hold (16-byte strides, at most 2^32
    elements along an axis; the work items, tiles times batches, counted in an int)."""
    if not wgmma_eligible(group, target):
        return False
    nb, batch, M, N, K, A, B = _mm_common(group, None)
    Z = math.prod(batch) if batch else 1
    za, zb = _batch_axis(A.strides[:nb], batch), _batch_axis(B.strides[:nb], batch)
    if za is None or zb is None or max(M, N, K, Z) >= 2**32 or -(-M // 64) * -(-N // 64) * Z >= 2**31:
        return False
    b_outer = B.strides[nb + 2] if B.strides[nb + 1] == 1 else B.strides[nb + 1]
    return all(s % 8 == 0 and 0 <= s * 2 < 2**40 for s in (za, zb, A.strides[nb], b_outer))


def tma_store_map(group: Group) -> tuple | None:
    """The tensor map spec (buffer, offset, dims, strides, box, element bytes) of a matmul's
    output when the TMA can write it (templates/cuda/matmul_tma.cu.j2, TMA_STORE): one
    output, float16, bfloat16 or float32, rows contiguous with a 16-byte multiple stride,
    batch dims in one axis; else None. Boxes of 64 rows of 128 bytes, innermost first."""
    if len(group.stores) != 1:
        return None
    nb, batch, M, N, K, A, B = _mm_common(group, None)
    out = group.stores[0].access
    st = out.strides
    if out.dtype not in ("float16", "bfloat16", "float32") or len(st) != nb + 2 or st[nb + 1] != 1:
        return None
    es = ITEMSIZE[out.dtype]
    Z = math.prod(batch) if batch else 1
    zs = _batch_axis(st[:nb], batch)
    if zs is None or (Z > 1 and zs == 0) or st[nb] * es % 16 or not 0 < st[nb] * es < 2**40 or \
            zs * es % 16 or zs * es >= 2**40 or max(M, N, Z) >= 2**32:
        return None
    return (out.buf, out.offset, (N, M, Z if zs else 1), (st[nb], zs if zs else st[nb] * M),
            (128 // es, 64, 1), es)


def _mm_common(group: Group, scalars):
    nb = len(group.domain) - 2
    batch = group.domain[:nb]
    M, N = group.domain[-2:]
    A, B = group.mm
    return nb, batch, M, N, group.k, A, B


def _epilogue(em: CEmitter, acc_expr: str, V: int, hoist: tuple = (), chunks: int = 0,
              stored_by_tma: bool = False) -> dict:
    """Code of the fused epilogue for V accumulators acc_expr(v) at row `row`, inner `k`.
    hoist: loads that do not depend on the row within a tile (a bias along N), read before the
    epilogue's chunks into pl<li>[chunk][v] (`pre`: for row `prow`, inner `k`, chunk `ch`).
    stored_by_tma: the template writes the stores' values (s<si>) itself: no store offsets."""
    mdt = em.g.exprs[0].dtype
    seed = {0: em.L.cast(acc_expr, "float32" if family(mdt) == "f" and mdt not in ("float64",)
                         else mdt, mdt)}
    lis = [li for li in em.varying_loads() if li not in hoist]

    def load(li):
        if em.modes_of_load(li) == "invariant":
            return f"lr{li}"
        return f"pl{li}[ch][v]" if li in hoist else f"l{li}[v]"
    ctx = Ctx(load, seed)
    names = {si: f"s{si}" for si in range(len(em.g.stores))}
    decl = "\n".join(f"{em.L.mem_types[em.g.stores[si].access.dtype]} s{si}[{V}];" for si in names)
    # hoisted loads have the pre-loads' row offsets (ro_l<li>p), not the row's
    skip = {("l", li) for li in hoist} | \
        ({("s", si) for si in names} if stored_by_tma else set())
    setup = em.row_setup("row", skip=skip)
    pre_decl = "\n".join(f"{em.L.types[em.g.loads[li].dtype]} pl{li}[{chunks}][{V}];" for li in hoist)
    pre = "\n".join([em.L.let.format(T=em.I, n=f"ro_l{li}p", x=em.row_offset(("l", li), "prow"))
                     for li in hoist] +
                    [em.load_group(li, "k", f"pl{li}[ch]", guard=None, vec="vec_ok", decl=False,
                                   tag="p") for li in hoist])
    return dict(
        setup=setup,
        loads="\n".join(em.load_group(li, "k", f"l{li}", guard=None, vec="vec_ok") for li in lis),
        decl=decl,
        compute=em.compute_stores(ctx, names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec="vec_ok") for si, n in names.items()),
        pre_decl=pre_decl, pre=pre,
    )


def render_matmul_simt(group: Group, cfg: GpuConfig, name: str, scalars,
                       lang: CStyleLanguage = LANG) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = _mm_common(group, scalars)
    em = CEmitter(lang, group, V=1, index=_index_type(group, lang), scalar_bufs=scalars)
    mdt = group.exprs[0].dtype
    acc_dt = "float32" if mdt in ("float16", "bfloat16") else mdt
    fam = family(acc_dt)
    BM, BN, BK = cfg.tile_m or 64, cfg.tile_n or 64, cfg.tile_k or 16
    T = 256
    TM, TN = BM // 16, BN // 16
    ident = lang.literal(False if fam == "b" else 0, acc_dt)
    conv = lambda acc: lang.cast(lang.load_conv.get(acc.dtype, "{x}").format(x="{x}"), acc.dtype, acc_dt)
    muladd = lang.fmt(lang.muladd[fam], acc_dt, a="a[i]", b="bb[j]", c="acc[i][j]")
    epi = _epilogue(em, "acc[i][j]", 1)
    wide = lang.types["int64"]
    src = skeleton(lang, "matmul_simt").render(
        name=name, T=T, BM=BM, BN=BN, BK=BK, TM=TM, TN=TN, M=M, N=N, K=K, NZ=max(1, math.prod(batch)),
        AT=lang.types[acc_dt], ident=ident, params=", ".join(em.params()),
        a_off=batch_offset(A, batch, nb, "bz", wide), b_off=batch_offset(B, batch, nb, "bz", wide),
        a_m=A.strides[nb], a_k=A.strides[nb + 2], b_n=B.strides[nb + 1], b_k=B.strides[nb + 2],
        A=A, B=B, a_conv=conv(A), b_conv=conv(B), muladd=muladd, epi=epi, I=em.I, indent=_indent)
    grid = ("tiles", -(-N // BN), -(-M // BM), max(1, math.prod(batch)))
    return src, Launch(name, "matmul", T, _params(em, scalars), grid)


def render_matmul_mma(group: Group, cfg: GpuConfig, name: str, scalars, fallback: str
                      ) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = _mm_common(group, scalars)
    em = CEmitter(LANG, group, V=2, index=_index_type(group), scalar_bufs=scalars)
    BM, BN, BK = cfg.tile_m, cfg.tile_n, cfg.tile_k
    WM, WN = cfg.warps_m, cfg.warps_n
    T = 32 * WM * WN
    WTM, WTN = BM // WM, BN // WN
    MI, NI = WTM // 16, WTN // 8
    b_row = B.strides[nb + 1] == 1          # B contiguous along N (x @ w); else along K (x @ w.T)
    kind = "bf16" if A.dtype == "bfloat16" else "f16"
    a_stage = BM * BK * 2
    b_stage = BK * BN * 2
    smem = cfg.stages * (a_stage + b_stage)
    epi = _epilogue(em, "cv[v]", 2)
    src = template("cuda/matmul_mma.cu.j2").render(
        name=name, T=T, BM=BM, BN=BN, BK=BK, WM=WM, WN=WN, WTM=WTM, WTN=WTN, MI=MI, NI=NI,
        STAGES=cfg.stages, M=M, N=N, K=K, kind=kind, b_row=b_row, params=", ".join(em.params()),
        a_off=batch_offset(A, batch, nb, "bz"), b_off=batch_offset(B, batch, nb, "bz"),
        a_m=A.strides[nb], b_n=B.strides[nb + 1], b_k=B.strides[nb + 2], A=A, B=B,
        a_stage=a_stage, b_stage=b_stage, epi=epi, I=em.I, indent=_indent,
        fragments=cfg.fragments or 1,
        acc_dtype=group.exprs[0].dtype)
    align = tuple(sorted({(A.buf, 16), (B.buf, 16)} |
                         {(b, al) for _, b, al in em.vector_accesses()}))
    grid = ("tiles", -(-N // BN), -(-M // BM), max(1, math.prod(batch)))
    return src, Launch(name, "matmul", T, _params(em, scalars), grid, smem=smem, align=align,
                       fallback=fallback)


def render_matmul_wgmma(group: Group, cfg: GpuConfig, name: str, scalars, fallback: str,
                        target) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = _mm_common(group, scalars)
    em = CEmitter(LANG, group, V=2, index=_index_type(group), scalar_bufs=scalars)
    BM, BN = cfg.tile_m, cfg.tile_n
    if cfg.tile_k != 64 or BM % 64 or BN % 64 or not 64 <= BN <= 256 or cfg.stages < 2 + cfg.inflight:
        raise E.TargetError(f"wgmma schedule {cfg} is not one the template lays out",
                            hint="tile_k 64, tile_m a multiple of 64, tile_n 64..256 in steps of 64, "
                                 "stages >= 2 + inflight")
    WG = BM // 64
    b_row = B.strides[nb + 1] == 1          # B contiguous along N (x @ w); else along K (x @ w.T)
    kind = "bf16" if A.dtype == "bfloat16" else "f16"
    a_stage, b_stage = BM * 128, BN * 128
    smem = cfg.stages * (a_stage + b_stage) + 1024
    limit = target.limit("max_shared_memory_per_block", 0)
    if limit and smem > limit:
        raise E.TargetError(f"wgmma schedule {cfg} needs {smem} B of shared memory per block, "
                            f"{target.name} allows {limit}", hint="fewer stages or a smaller tile")
    epi = _epilogue(em, "cv[v]", 2)
    src = template("cuda/matmul_wgmma.cu.j2").render(
        name=name, T=128 * WG, WG=WG, BM=BM, BN=BN, STAGES=cfg.stages, INFLIGHT=cfg.inflight,
        M=M, N=N, K=K, kind=kind, b_row=b_row, params=", ".join(em.params()),
        a_off=batch_offset(A, batch, nb, "bz"), b_off=batch_offset(B, batch, nb, "bz"),
        a_m=A.strides[nb], b_n=B.strides[nb + 1], b_k=B.strides[nb + 2], A=A, B=B,
        a_stage=a_stage, b_stage=b_stage, epi=epi, I=em.I, indent=_indent)
    align = tuple(sorted({(A.buf, 16), (B.buf, 16)} |
                         {(b, al) for _, b, al in em.vector_accesses()}))
    grid = ("tiles", -(-N // BN), -(-M // BM), max(1, math.prod(batch)))
    return src, Launch(name, "matmul", 128 * WG, _params(em, scalars), grid, smem=smem, align=align,
                       fallback=fallback)


def tma_registers(CW: int) -> tuple[int, int]:
    """(producer, consumer) registers per thread after setmaxnreg, for CW consumer warpgroups
    and one producer: the block's registers at entry (the launch bound's cap, a multiple of 8,
    times the threads) shared out, the producer keeping 40 (24 beside three consumers)."""
    T = 128 * (CW + 1)
    entry = min(255, 65536 // T) // 8 * 8
    prod = 40 if CW <= 2 else 24
    cons = min(240, (T * entry - 128 * prod) // (128 * CW) // 8 * 8)
    return prod, cons


TMA_STAGING = 64 * 40 * 4      # bytes per consumer warpgroup: 64 rows x 32 columns of float32, padded


def render_matmul_tma(group: Group, cfg: GpuConfig, name: str, scalars, fallback: str,
                      target) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = _mm_common(group, scalars)
    BM, BN = cfg.tile_m, cfg.tile_n
    CW, C = BM // 64, max(1, cfg.cluster)
    # tma_store where the output allows it (else the epilogue stores, as for any output)
    c_map = tma_store_map(group) if cfg.tma_store else None
    # the epilogue runs on 4 columns a thread through the staging buffer, or on a thread's
    # pairs of accumulators in place for the TMA's stores (N is a multiple of 8: mma_eligible)
    em = CEmitter(LANG, group, V=2 if c_map else 4, index=_index_type(group), scalar_bufs=scalars)
    if cfg.tile_k != 64 or BM % 64 or not 1 <= CW <= 3 or BN % 64 or not 64 <= BN <= 256 or \
            cfg.stages < 2 + cfg.inflight or cfg.inflight > 1 or C not in (1, 2) or \
            (BN // 64) % C:
        raise E.TargetError(f"TMA schedule {cfg} is not one the template lays out",
                            hint="tile_k 64, tile_m 64..192 in steps of 64, tile_n 64..256 in steps "
                                 "of 64, inflight 0 or 1, stages >= 2 + inflight, cluster 0, 1 or "
                                 "2 (2: tile_n 128 or 256)")
    b_row = B.strides[nb + 1] == 1          # B contiguous along N (x @ w); else along K (x @ w.T)
    kind = "bf16" if A.dtype == "bfloat16" else "f16"
    smem = cfg.stages * (BM + BN) * 128 + CW * (64 * BN * 2 if c_map else TMA_STAGING) + 1024
    limit = target.limit("max_shared_memory_per_block", 0)
    if limit and smem + 1024 > limit:          # + the barriers (static, 1 KiB-aligned)
        raise E.TargetError(f"TMA schedule {cfg} needs {smem} B of shared memory per block, "
                            f"{target.name} allows {limit}",
                            hint="fewer stages or a smaller tile" +
                                 (" (the TMA's stores hold a whole tile)" if c_map else ""))
    Z = math.prod(batch) if batch else 1
    za, zb = _batch_axis(A.strides[:nb], batch), _batch_axis(B.strides[:nb], batch)
    if za is None or zb is None:
        raise E.TargetError(f"TMA schedule {cfg}: the operands' batch dims do not collapse into "
                            "one axis", hint="a wgmma schedule without tma")
    reg_p, reg_c = tma_registers(CW)
    # loads that stay the same down a tile's rows (stride 0 along M, a bias along N) are read
    # once a tile into registers by the staged epilogue, not once per row pass
    hoist = () if c_map else tuple(li for li in em.varying_loads()
                                   if em.g.loads[li].strides[nb] == 0)
    epi = _epilogue(em, "cv[v]", 2 if c_map else 4, hoist=hoist, chunks=BN // 32,
                    stored_by_tma=bool(c_map))
    raster = max(1, cfg.raster or 1)
    src = template("cuda/matmul_tma.cu.j2").render(
        name=name, T=128 * (CW + 1), CW=CW, BM=BM, BN=BN, STAGES=cfg.stages, INFLIGHT=cfg.inflight,
        RASTER=raster, REG_P=reg_p, REG_C=reg_c, M=M, N=N, K=K, kind=kind, b_row=b_row,
        a_z=bool(za), b_z=bool(zb), Z=Z, PERSIST=cfg.persistent, CLUSTER=C,
        TMA_STORE=bool(c_map), out_var="s0",
        OUT_BYTES=ITEMSIZE[group.stores[0].access.dtype] if c_map else 0,
        params=", ".join(em.params()), epi=epi, I=em.I, indent=_indent)

    def tmap(acc, inner, inner_n, outer, outer_n, z, box):
        # innermost first: (inner, outer, batch); a batch of one (or a broadcast operand)
        # gets one z slice whose stride is never used, any multiple of 16 bytes
        zs = z if z else outer * outer_n
        return (acc.buf, acc.offset, (inner_n, outer_n, Z if z else 1), (outer, zs), box, 2)
    a_map = tmap(A, 1, K, A.strides[nb], M, za, (64, BM, 1))
    if b_row:
        b_map = tmap(B, 1, N, B.strides[nb + 2], K, zb, (64, 64, 1))
    else:
        b_map = tmap(B, 1, K, B.strides[nb + 1], N, zb, (64, BN // C, 1))
    align = tuple(sorted({(A.buf, 16), (B.buf, 16)} | ({(c_map[0], 16)} if c_map else set()) |
                         {(b, al) for _, b, al in em.vector_accesses()}))
    blocks = -(-N // BN) * -(-M // (BM * C)) * Z * C         # C blocks to each work item
    grid = ("persistent", blocks) if cfg.persistent else ("tiles", blocks, 1, 1)
    return src, Launch(name, "matmul", 128 * (CW + 1), _params(em, scalars), grid,
                       smem=smem, align=align, fallback=fallback,
                       tmaps=(a_map, b_map) + ((c_map,) if c_map else ()), cluster=C)


# -- the module --------------------------------------------------------------------------------
def render_kernels(kernels, target, scalars, aligned=True) -> tuple[list[str], list[Launch]]:
    """Source of every kernel and how to launch it. kernels: (name, group, config)."""
    bodies, launches = [], []
    for name, g, c in kernels:
        if g.kind == "elementwise":
            s, l = render_elementwise(g, c, name, scalars, aligned=aligned)
        elif g.kind == "reduce":
            s, l = render_reduce(g, c, name, scalars)
        elif c.mma or c.wgmma:
            simt = GpuConfig(threads=256, tile_m=64, tile_n=64, tile_k=16)
            s2, l2 = render_matmul_simt(g, simt, name + "_simt", scalars)
            l2 = dataclasses.replace(l2, standby=True)
            if c.tma:
                s, l = render_matmul_tma(g, c, name, scalars, l2.name, target)
            elif c.wgmma:
                s, l = render_matmul_wgmma(g, c, name, scalars, l2.name, target)
            else:
                s, l = render_matmul_mma(g, c, name, scalars, fallback=l2.name)
            bodies.append(s2)
            launches.append(l2)
        else:
            s, l = render_matmul_simt(g, c, name, scalars)
        bodies.append(s)
        launches.append(l)
    return bodies, launches


def scalar_buffers(specs) -> frozenset:
    return frozenset(i for i, s in enumerate(specs) if s.kind == "scalar")


def render_plan(p, aligned: bool = True) -> tuple[str, tuple[Launch, ...]]:
    """(the .cu text of every kernel of the plan, their launches). aligned=False: the module
    that elementwise kernels fall back to when their pointers are not aligned."""
    scalars = scalar_buffers(p.specs)
    kernels = list(zip(p.kernel_names(), p.part.groups, p.configs))
    bodies, launches = render_kernels(kernels, p.target, scalars, aligned)
    dtypes = {a.dtype for g in p.part.groups
              for a in (*g.loads, *(s.access for s in g.stores), *g.mm)} | \
        {e.dtype for g in p.part.groups for e in g.exprs}
    src = template("cuda/module.cu.j2").render(
        module_name=p.module_name, target=p.target, plan_text=p.describe(), bodies=bodies,
        launches=[l.describe() for l in launches], half=bool(dtypes & {"float16", "bfloat16"}),
        trig=any(e.op in ("sin", "cos", "tan") for g in p.part.groups for e in g.exprs),
        tma=any(l.tmaps for l in launches))
    return src, tuple(launches)

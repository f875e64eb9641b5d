"""WGSL (WebGPU): the C-style renderer's data for WGSL, and the kernels of a plan as one module.

The language is data (`WgslLanguage`); the skeletons are templates/wgsl/*.wgsl.j2:
elementwise (groups of 4 elements read and written as vec4, a grid-stride loop), reduce (a
workgroup per row, its loads kept in registers across passes, combining by subgroup
shuffles or through workgroup memory; or a thread per row when rows lie along memory),
tiled matmul through workgroup memory, each with the group's elementwise epilogue fused.
WGSL has f32, i32, u32 and bool registers; bool lives in memory (buffers and workgroup
memory) as u32.
Every buffer is declared `array<vec4<T>>` (allocations are padded to 16 bytes), so a group
of 4 is one access and a single element is `b[i >> 2][i & 3]`. Scalars share one binding
of 32-bit words. `launches()` data says how each entry point is dispatched.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .. import errors as E
from ..fuse import Group
from ..ir.dtypes import family
from .cstyle import ARG_REDUCTIONS, batch_offset, CStyleLanguage, CEmitter, Ctx, _indent
from ..schedule.layout import plan_axes
from .jinja_env import template


class WgslLanguage(CStyleLanguage):
    name = "wgsl"
    file_suffix = ".wgsl"
    barrier = "workgroupBarrier()"
    types = {"bool": "bool", "int32": "i32", "float32": "f32"}
    mem_types = {"bool": "u32", "int32": "i32", "float32": "f32"}
    unsigned = {"int32": "u32"}
    math_suffix: dict = {}
    load_conv = {"bool": "({x} != 0u)"}
    store_conv = {"bool": "select(0u, 1u, {x})"}
    literal_suffix = {"float32": "f", "int32": "i"}
    special_floats = {("f32", "inf"): "tj_inf()", ("f32", "-inf"): "(-tj_inf())",
                      ("f32", "nan"): "tj_nan()"}
    let = "let {n}: {T} = {x};"
    var = "var {n}: {T} = {x};"
    array = "var {n}: array<{T}, {V}>;"
    loop = "for (var {i}: i32 = {lo}; {i} < {hi}; {i}++)"
    unroll_loops = True
    convert = "{T}({x})"
    arg_index = "i32"
    float_sum_dtype = "float32"
    elem = "b{buf}[({ro} + {i}) >> 2u][({ro} + {i}) & 3]"
    wide_load = "let {t} = b{buf}[({ro} + {k}) >> 2u];"
    wide_store = "b{buf}[({ro} + {k}) >> 2u] = vec4<{mt}>({src}[0], {src}[1], {src}[2], {src}[3]);"
    aligned = ""                       # every binding starts at offset 0 of our own buffer

    # no ternary, no overloading: select(), and helpers of the prelude; i32 arithmetic wraps
    # in WGSL, and `!=` is an ordered comparison on some drivers (NaN != NaN is false there)
    code_for_op = {
        **CStyleLanguage.code_for_op,
        "neg": {"f": "(-{a})", "i": "(-{a})"},
        "abs": {"f": "abs({a})", "i": "abs({a})", "b": "{a}"},
        "round": {"f": "round({a})"},
        "floor": {"f": "tj_floor({a})", "i": "{a}", "b": "{a}"},
        "ceil": {"f": "tj_ceil({a})", "i": "{a}", "b": "{a}"},
        "sign": {"f": "tj_sign({a})", "i": "(i32({a} > 0) - i32({a} < 0))"},
        "rsqrt": {"f": "(1.0f / sqrt({a}))"},
        # negative by the bits (not -0.0, not NaN): a driver that flushes subnormal inputs
        # (NVIDIA's) would call -1e-45 >= 0 true
        "relu": {"f": "select({a}, 0.0f, bitcast<u32>({a}) > 0x80000000u && !tj_isnan({a}))",
                 "i": "max({a}, 0i)", "b": "{a}"},
        "add": {"f": "({a} + {b})", "i": "({a} + {b})", "b": "({a} || {b})"},
        "sub": {"f": "({a} - {b})", "i": "({a} - {b})"},
        "mul": {"f": "({a} * {b})", "i": "({a} * {b})", "b": "({a} && {b})"},
        "pow": {"f": "tj_pow({a}, {b})", "i": "tj_ipow({a}, {b})"},
        "maximum": {"f": "tj_fmax({a}, {b})", "i": "max({a}, {b})", "b": "({a} || {b})"},
        "minimum": {"f": "tj_fmin({a}, {b})", "i": "min({a}, {b})", "b": "({a} && {b})"},
        "ne": {k: "(!({a} == {b}))" for k in "fib"},
        # WGSL orders no bools; numpy's False < True, spelled in logic
        **{op: {**CStyleLanguage.code_for_op[op], "b": b} for op, b in (
            ("lt", "(!({a}) && {b})"), ("le", "(!({a}) || {b})"),
            ("gt", "({a} && !({b}))"), ("ge", "({a} || !({b}))"))},
        "where": {k: "select({c}, {b}, {a})" for k in "fib"},
        "sigmoid": {"f": "tj_sigmoid({a})"},
        "tanh": {"f": "tj_tanh({a})"},
        **{fn: {"f": "tj_" + fn + "({a})"} for fn in ("exp", "exp2", "log", "log2", "log1p", "expm1",
                                                      "sin", "cos", "tan", "erf")},
    }
    casts = {("f", "f"): "{a}", ("i", "i"): "{a}", ("i", "f"): "f32({a})", ("f", "i"): "i32({a})",
             ("b", "i"): "i32({a})", ("b", "f"): "f32({a})", ("i", "b"): "({a} != 0i)",
             ("f", "b"): "(!({a} == 0.0f))"}
    reductions = {
        "sum": {"f": ("-0.0", "({a} + {b})"), "i": ("0", "({a} + {b})")},
        "prod": {"f": ("1.0", "({a} * {b})"), "i": ("1", "({a} * {b})")},
        "max": {"f": ("-inf", "tj_fmax({a}, {b})"), "i": ("MIN", "max({a}, {b})"),
                "b": ("false", "({a} || {b})")},
        "min": {"f": ("inf", "tj_fmin({a}, {b})"), "i": ("MAX", "min({a}, {b})"),
                "b": ("true", "({a} && {b})")},
        "any": {"b": ("false", "({a} || {b})")},
        "all": {"b": ("true", "({a} && {b})")},
    }
    arg_take = {"argmax": "tj_arg_take_max_{T}({a}, {ai}, {b}, {bi})",
                "argmin": "tj_arg_take_min_{T}({a}, {ai}, {b}, {bi})"}
    muladd = {"f": "fma({a}, {b}, {c})", "i": "({c} + {a} * {b})", "b": "({c} || ({a} && {b}))"}
    shuffle_xor = "subgroupShuffleXor({x}, {o})"
    shuffle_bool = "(subgroupShuffleXor(select(0u, 1u, {x}), {o}) != 0u)"


LANG = WgslLanguage()


# -- launches: plain data for the backend ------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    name: str
    kind: str                      # elementwise | reduce | matmul
    threads: int                   # workgroup size
    grid: tuple                    # ("stride", workgroups wanted) | ("rows", workgroups wanted)
                                   # | ("tiles", x, y, z): the backend caps x at the adapter's limit
    buffers: tuple                 # buffer numbers this entry point binds (scalars excluded)
    scalars: bool                  # it reads the scalar words

    def describe(self) -> str:
        g = self.grid
        if g[0] in ("stride", "rows"):
            what = "grid-stride over elements" if g[0] == "stride" else "grid-stride over rows"
            grid = f"{g[1]} workgroup(s) wanted ({what}; at most the adapter's " \
                   f"maxComputeWorkgroupsPerDimension)"
        else:
            grid = f"{g[1]}x{g[2]}x{g[3]} workgroups (tiles)"
        return f"{self.name}: {self.kind}, workgroup {self.threads}, {grid}, " \
               f"{len(self.buffers) + self.scalars} storage binding(s)"


MAX_INDEX = 2**31 - 1


def _check_index(group: Group) -> None:
    """WGSL has no 64-bit integers: every element offset must fit in i32."""
    big = math.prod(group.domain) if group.domain else 1
    accs = list(group.loads) + [s.access for s in group.stores]
    for a in accs:
        big = max(big, abs(a.offset) + sum((d - 1) * abs(s) for d, s in zip(group.domain, a.strides)) + 1)
    if big >= MAX_INDEX:
        raise E.TargetError(f"an array of {big} elements is too large for the wgsl target "
                            "(WGSL indexes with 32-bit integers)",
                            hint="split the work, or use a CPU or CUDA target")


def _scalar_lets(em: CEmitter, order: list) -> str:
    out = []
    for b in em.buffers():
        if b in em.scalar_bufs:
            mt = LANG.mem_types[em.buffer_dtype(b)]
            out.append(f"let b{b}: {mt} = bitcast<{mt}>(tj_sc[{order.index(b)}]);")
    return "\n".join(out)


def _launch(em: CEmitter, name, kind, threads, grid) -> Launch:
    bufs = tuple(b for b in em.buffers() if b not in em.scalar_bufs)
    return Launch(name, kind, threads, grid, bufs, any(b in em.scalar_bufs for b in em.buffers()))


def _ctx(em: CEmitter, seed=None) -> Ctx:
    return Ctx(lambda li: f"lr{li}" if em.modes_of_load(li) == "invariant" else f"l{li}[v]", seed)


# -- elementwise -------------------------------------------------------------------------------
def render_elementwise(group: Group, cfg, name: str, scalars, order) -> tuple[str, Launch]:
    ax = plan_axes(group)
    V, K = cfg.vec, ax.K
    if ax.outer and K % V:
        V = 1
    em = CEmitter(LANG, group, V=V, index="i32", scalar_bufs=scalars, ax=ax)
    per_row = -(-K // V)
    G = ax.rows * per_row
    T, U = cfg.threads, max(1, cfg.unroll)
    tail = bool(K % V)
    names = {si: f"s{si}" for si in range(len(group.stores))}
    units = []
    for u in range(U):                 # U groups per thread per step, T apart: U loads in flight
        tag, k = f"_{u}", f"k_{u}"
        guard = f"{k} + {V} <= {K}" if tail else None
        ctx = Ctx(lambda li, tag=tag: f"lr{li}{tag}" if em.modes_of_load(li) == "invariant"
                  else f"l{li}{tag}[v]")
        units.append(dict(
            u=u, o=f"o_{u}", k=k, setup=em.row_setup(f"o_{u}", tag),
            loads="\n".join(em.load_group(li, k, f"l{li}{tag}", guard=guard, vec="true", tag=tag)
                            for li in em.varying_loads()),
            decl="\n".join(LANG.array.format(T=LANG.mem_types[group.stores[si].access.dtype], n=n, V=V)
                           for si, n in names.items()),
            compute=em.compute_stores(ctx, {si: f"{n}" for si, n in names.items()}),
            stores="\n".join(em.store_group(si, k, n, guard=guard, vec="true", tag=tag)
                             for si, n in names.items())))
    src = template("wgsl/elementwise.wgsl.j2").render(
        name=name, T=T, U=U, V=V, G=G, K=K, per_row=per_row, rows=ax.rows,
        scalars=_scalar_lets(em, order), units=units, indent=_indent)
    return src, _launch(em, name, "elementwise", T, ("stride", max(1, -(-G // (T * U)))))


# -- reductions --------------------------------------------------------------------------------
def _wg_slots(em: CEmitter, p, name: str) -> list[dict]:
    """A pass's accumulators in workgroup memory (bools as u32): register name, array, its
    memory type, the value to write, and how to read slot 0."""
    dt = {t: d for d, t in LANG.types.items()}
    out = []
    for t, n in em.acc_vars(p):
        d = dt[t]
        out.append(dict(n=n, sh=f"sh_{name}_{n}", mt=LANG.mem_types[d],
                        put=LANG.store_conv.get(d, "{x}").format(x=n),
                        get0=LANG.load_conv.get(d, "{x}").format(x=f"sh_{name}_{n}[0]")))
    return out


def _from_wg(name: str, idx: str):
    dt = {t: d for d, t in LANG.types.items()}
    return lambda n, t: LANG.load_conv.get(dt[t], "{x}").format(x=f"sh_{name}_{n}[{idx}]")


def render_reduce(group: Group, cfg, name: str, scalars, order) -> tuple[str, Launch]:
    ax = plan_axes(group)
    V, K, rows = cfg.vec, ax.K, ax.rows
    if K % V:
        V = 1
    em = CEmitter(LANG, group, V=V, index="i32", scalar_bufs=scalars, ax=ax)
    T, tpr = cfg.threads, cfg.tpr
    step = tpr * V
    sg = bool(cfg.subgroups) and tpr > 1
    J = cfg.cache if tpr > 1 and cfg.cache * step >= K else 0
    users = em.load_users()
    cached = sorted(li for li, u in users.items() if J and len(u) >= 2)
    kept = em.kept_values(cached, J, V)

    def ctx_for(level=None):
        def load(li):
            if em.modes_of_load(li) == "invariant":
                return f"lr{li}"
            return f"c{li}[j][v]" if li in cached else f"l{li}[v]"
        return Ctx(load, {e: f"k{e}[j][v]" for e, p in kept.items() if level is None or p < level})

    def loads(lis):
        return "\n".join(em.load_group(li, "k", f"l{li}", guard=None, vec="true")
                         for li in lis if li not in cached)

    passes = []
    for p in em.passes:
        roots = [group.exprs[i].args[0] for i in em.reductions_of(p)]
        passes.append(dict(
            hoist=em.hoist(p), init=em.acc_init(p, V), loads=loads(em.varying_loads(roots)),
            accumulate=em.accumulate(p, ctx_for(p), "v", "k + v",
                                     keep={e: f"k{e}[j][v]" for e, q in kept.items() if q == p}),
            fold=em.acc_fold(p, V),
            accs=_wg_slots(em, p, name),
            shfl=em.combine_from(p, lambda n, t: LANG.shuffle(n, "o", t)),
            from_w=em.combine_from(p, _from_wg(name, "w")),
            from_ts=em.combine_from(p, _from_wg(name, "t + s")),
        ))
        passes[-1]["finish"] = em.finish_pass(p)
    final_hoist = em.hoist(len(em.passes) and max(em.passes) + 1)
    row_stores = em.row_stores()
    vst = em.varying_stores()
    decl, names = em.store_arrays()
    final = dict(
        decl=decl, loads=loads(em.varying_loads([group.stores[si].expr for si in vst])),
        compute=em.compute_stores(ctx_for(), names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec="true") for si, n in names.items()),
    ) if vst else None
    cache_decl = "\n".join([f"var c{li}: array<array<{LANG.types[group.loads[li].dtype]}, {V}>, {J}>;"
                            for li in cached] +
                           [f"var k{e}: array<array<{LANG.types[group.exprs[e].dtype]}, {V}>, {J}>;"
                            for e in kept])
    cache_fill = "\n".join(em.load_group(li, "k", f"c{li}[j]", guard=None, vec="true", decl=False)
                           for li in cached)
    src = template("wgsl/reduce.wgsl.j2").render(
        name=name, T=T, V=V, K=K, ROWS=rows, tpr=tpr, step=step, J=J if cached else 0,
        exact=J * step == K, subgroups=sg, scalars=_scalar_lets(em, order),
        setup=em.row_setup("row"), passes=passes, final_hoist=final_hoist, row_stores=row_stores,
        final=final, cache_decl=cache_decl, cache_fill=cache_fill, indent=_indent)
    wanted = rows if tpr > 1 else -(-rows // T)
    return src, _launch(em, name, "reduce", T, ("rows", max(1, wanted)))


# -- matmul ------------------------------------------------------------------------------------
def render_matmul(group: Group, cfg, name: str, scalars, order) -> tuple[str, Launch]:
    nb = len(group.domain) - 2
    batch = group.domain[:nb]
    M, N = group.domain[-2:]
    K = group.k
    A, B = group.mm
    em = CEmitter(LANG, group, V=1, index="i32", scalar_bufs=scalars)
    mdt = group.exprs[0].dtype
    fam = family(mdt)
    BM, BN, BK = cfg.tile_m, cfg.tile_n, cfg.tile_k
    T = cfg.threads
    TM, TN = BM // 16, BN // 16
    AT = LANG.types[mdt]

    def read(acc, idx):
        x = LANG.load_conv.get(acc.dtype, "{x}").format(x=LANG.elem.format(buf=acc.buf, ro="0", i=idx))
        return LANG.cast(x, acc.dtype, mdt)
    seed = {0: "acc[i][j]"}
    names = {si: f"s{si}" for si in range(len(group.stores))}
    epi = dict(
        setup=em.row_setup("row"),
        loads="\n".join(em.load_group(li, "k", f"l{li}", guard=None, vec="true") for li in em.varying_loads()),
        decl="\n".join(LANG.array.format(T=LANG.mem_types[group.stores[si].access.dtype], n=n, V=1)
                       for si, n in names.items()),
        compute=em.compute_stores(_ctx(em, seed), names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec="true") for si, n in names.items()))
    src = template("wgsl/matmul.wgsl.j2").render(
        name=name, T=T, BM=BM, BN=BN, BK=BK, TM=TM, TN=TN, M=M, N=N, K=K, AT=AT,
        ident=LANG.literal(False if fam == "b" else 0, mdt),
        a_off=batch_offset(A, batch, nb, "bz", None), b_off=batch_offset(B, batch, nb, "bz", None),
        a_read=read(A, f"a_base + m * {A.strides[nb]} + k * {A.strides[nb + 2]}"),
        b_read=read(B, f"b_base + n * {B.strides[nb + 1]} + k * {B.strides[nb + 2]}"),
        muladd=LANG.fmt(LANG.muladd[fam], mdt, a="a[i]", b="bb[j]", c="acc[i][j]"),
        scalars=_scalar_lets(em, order), epi=epi, indent=_indent)
    grid = ("tiles", -(-N // BN), -(-M // BM), max(1, math.prod(batch)))
    return src, _launch(em, name, "matmul", T, grid)


# -- the module --------------------------------------------------------------------------------
RENDER = {"elementwise": render_elementwise, "reduce": render_reduce, "matmul": render_matmul}


def scalar_buffers(specs) -> frozenset:
    return frozenset(i for i, s in enumerate(specs) if s.kind == "scalar")


def narrow_weak_scalars(group: Group, specs) -> Group:
    """Python numbers arrive as weak float64/int64 scalars and constants (NEP 50) and are cast
    to the array's dtype at use; WGSL holds them as f32/i32 from the start (the cast becomes
    the identity). A 64-bit value that is not weak keeps its dtype (and is refused)."""
    narrow = {"float64": "float32", "int64": "int32"}
    weak = {i for i, s in enumerate(specs) if s.kind == "scalar" and s.weak and s.dtype in narrow}
    loads = tuple(dataclasses.replace(a, dtype=narrow[a.dtype]) if a.buf in weak else a
                  for a in group.loads)
    exprs: list = []
    pos: set = set()          # argmax/argmin positions (int64 in numpy) and casts of them
    for i, e in enumerate(group.exprs):
        if e.op == "load":
            e = dataclasses.replace(e, dtype=loads[dict(e.attrs)["access"]].dtype)
        elif e.op in ARG_REDUCTIONS or (e.op == "cast" and e.args[0] in pos and e.dtype == "int64"):
            # i32 here, widened when read back
            pos.add(i)
            e = dataclasses.replace(e, dtype="int32")
        elif e.op == "const" and e.dtype in narrow:
            e = dataclasses.replace(e, dtype=narrow[e.dtype])
        exprs.append(e)
    stores = tuple(dataclasses.replace(s, access=dataclasses.replace(s.access, dtype="int32"))
                   if s.access.dtype == "int64" and s.expr in pos else s for s in group.stores)
    return dataclasses.replace(group, loads=loads, exprs=tuple(exprs), stores=stores)


def buffer_decls(p, groups) -> list[tuple[int, str, str]]:
    """(buffer, access mode, memory type) of every array buffer the kernels bind."""
    b = p.part.buffers
    scal = scalar_buffers(p.specs)
    dtypes: dict = {}
    for g in groups:
        for a in (*g.loads, *(s.access for s in g.stores), *g.mm):
            dtypes[a.buf] = a.dtype
    out = []
    for buf, dt in sorted(dtypes.items()):
        if buf in scal:
            continue
        if dt not in LANG.mem_types:
            raise E.DTypeError(f"dtype {dt} is not supported by the wgsl target",
                               hint="cast to float32 or int32, or use a CPU target")
        out.append((buf, "read" if buf < b.n_inputs else "read_write", LANG.mem_types[dt]))
    return out


def render_plan(p) -> tuple[str, tuple[Launch, ...]]:
    """(the WGSL module of every kernel of the plan, how each is dispatched)."""
    scalars = scalar_buffers(p.specs)
    order = sorted(scalars)
    groups = [narrow_weak_scalars(g, p.specs) for g in p.part.groups]
    for g in groups:
        for e in g.exprs:
            if e.dtype not in LANG.types:
                raise E.DTypeError(f"this function computes a {e.dtype} value, which the wgsl target "
                                   "does not have (WGSL has 32-bit floats and integers)",
                                   hint="cast to float32 or int32 (x.astype(np.float32)), or use a "
                                        "CPU target such as 'host'")
        _check_index(g)
    bodies, launches = [], []
    for name, g, c in zip(p.kernel_names(), groups, p.configs):
        s, l = RENDER[g.kind](g, c, name, scalars, order)
        bodies.append(s)
        launches.append(l)
    src = template("wgsl/module.wgsl.j2").render(
        module_name=p.module_name, target=p.target, plan_text=p.describe(), bodies=bodies,
        launches=[l.describe() for l in launches], buffers=buffer_decls(p, groups),
        scalar_binding=(max([b for b, _, _ in buffer_decls(p, groups)] + [-1]) + 1) if order else None,
        n_buffers=p.part.buffers.n_inputs + len(p.part.buffers.outputs) + len(p.part.buffers.temps))
    return src, tuple(launches)

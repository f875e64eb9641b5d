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
of 32-bit words. The skeleton fillers are the shared ones (cstyle/skeletons.py); what
differs is this file's data. `launches()` data says how each entry point is dispatched.
"""
from __future__ import annotations

import dataclasses
import math

from .. import errors as E
from ..fuse import Group
from ..ir.ops import ARG_REDUCTIONS
from .cstyle.language import CStyleLanguage
from .cstyle.launch import Launch
from .cstyle.sizes import sizes_of, symbolic_group
from .cstyle.skeletons import render_elementwise, render_matmul_simt, render_reduce, scalar_buffers
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
        "rsqrt": {"f": "tj_div(1.0f, sqrt({a}))"},
        "truediv": {"f": "tj_div({a}, {b})"},
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

    # the shared skeletons (cstyle/skeletons.py): every binding starts at offset 0 of our own
    # buffer (wide accesses need no test), units and rows in blocks of their own, registers
    # hold whole rows only, scalars unpacked from one binding of 32-bit words
    vec_flag = "true"
    array2 = "var {n}: array<array<{T}, {V}>, {J}>;"
    units_scoped = True
    cache_whole_rows = True

    # no 64-bit integers: the launcher uploads the size table as int32 (and refuses what
    # does not fit); select(false value, true value, condition)
    size_dtype = "int32"
    size_let = "let {n}: {T} = {x};"
    size_floordiv = "select(({x} - {dm1}) / {d}, {x} / {d}, {x} >= 0)"

    def index_type(self, group) -> str:
        return "i32"                   # render_plan refuses what does not fit (check_index)

    def scalar_lets(self, em) -> str:
        order = sorted(em.scalar_bufs)
        out = []
        for b in em.buffers():
            if b in em.scalar_bufs:
                mt = self.mem_types[em.buffer_dtype(b)]
                out.append(f"let b{b}: {mt} = bitcast<{mt}>(tj_sc[{order.index(b)}]);")
        return "\n".join(out)

    def pass_accs(self, em, p, name: str) -> list[dict]:
        """A pass's accumulators in workgroup memory (bools as u32): register name, array, its
        memory type, the value to write, and how to read slot 0."""
        dt = {t: d for d, t in self.types.items()}
        out = []
        for t, n in em.acc_vars(p):
            d = dt[t]
            out.append(dict(n=n, sh=f"sh_{name}_{n}", mt=self.mem_types[d],
                            put=self.store_conv.get(d, "{x}").format(x=n),
                            get0=self.load_conv.get(d, "{x}").format(x=f"sh_{name}_{n}[0]")))
        return out

    def pass_exchange(self, em, p, name: str, rows: int, nslot: int) -> dict:
        dt = {t: d for d, t in self.types.items()}

        def from_wg(idx: str):
            return lambda n, t: self.load_conv.get(dt[t], "{x}").format(x=f"sh_{name}_{n}[{idx}]")
        return dict(from_w=em.combine_from(p, from_wg("w")), from_ts=em.combine_from(p, from_wg("t + s")))

    def describe_launch(self, l) -> str:
        g = l.grid
        if g[0] in ("stride", "rows"):
            what = "grid-stride over elements" if g[0] == "stride" else "grid-stride over rows"
            grid = f"{g[1]} workgroup(s) wanted ({what}; at most the adapter's " \
                   f"maxComputeWorkgroupsPerDimension)"
        else:
            grid = f"{g[1]}x{g[2]}x{g[3]} workgroups (tiles)"
        return f"{l.name}: {l.kind}, workgroup {l.threads}, {grid}, " \
               f"{len(l.buffers) + l.scalars} storage binding(s)"


LANG = WgslLanguage()


MAX_INDEX = 2**31 - 1


def check_index(group: Group) -> None:
    """WGSL has no 64-bit integers: every element offset must fit in i32 (of a symbolic
    group: checked by the launcher at each call's sizes)."""
    if symbolic_group(group):
        return
    big = math.prod(group.domain) if group.domain else 1
    accs = list(group.loads) + [s.access for s in group.stores]
    for a in accs:
        big = max(big, abs(a.offset) + sum((d - 1) * abs(s) for d, s in zip(group.domain, a.strides)) + 1)
    if big >= MAX_INDEX:
        raise E.TargetError(f"an array of {big} elements is too large for the wgsl target "
                            "(WGSL indexes with 32-bit integers)",
                            hint="split the work, or use a CPU or CUDA target")


# -- the module --------------------------------------------------------------------------------
RENDER = {"elementwise": render_elementwise, "reduce": render_reduce, "matmul": render_matmul_simt}


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
    if p.symbols:                      # the size table, int32 (LANG.size_dtype)
        out.append((p.n_buffers - 1, "read", LANG.mem_types[LANG.size_dtype]))
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
        check_index(g)
    bodies, launches = [], []
    with sizes_of(LANG, p):
        for name, g, c in zip(p.kernel_names(), groups, p.configs):
            s, l = RENDER[g.kind](g, c, name, scalars, LANG)
            bodies.append(s)
            launches.append(l)
    # scalars: the binding after the buffer table's last entry (a symbolic plan's size table)
    src = template("wgsl/module.wgsl.j2").render(
        module_name=p.module_name, target=p.target, plan_text=p.describe(), bodies=bodies,
        launches=[l.describe() for l in launches], buffers=buffer_decls(p, groups),
        scalar_binding=(max([b for b, _, _ in buffer_decls(p, groups)] + [-1]) + 1) if order else None,
        n_buffers=p.n_buffers)
    return src, tuple(launches)

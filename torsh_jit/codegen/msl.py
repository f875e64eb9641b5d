"""Metal Shading Language: the C-style renderer's data for MSL, and a plan as one .metal file.

MSL is C++14 with address spaces, so the shared skeleton fillers (cstyle/skeletons.py's
render_elementwise / render_reduce / render_matmul_simt) write its kernels from
templates/msl/*.metal.j2. What differs is data: `device` / `constant` / `threadgroup`,
`[[buffer(i)]]` bindings and the thread-position parameters, no double (float sums
accumulate in float, argmax positions are int), `metal::` math without an `f` suffix, and
three functions MSL lacks (log1p, expm1, erf), written in the prelude in MSL itself.
Every skeleton is a stride loop over its work (elements, row blocks, tiles), so any number
of threadgroups is correct: Metal dispatches one per piece, the Linux harness a few.
"""
from __future__ import annotations

from .. import errors as E
from .cstyle.language import CStyleLanguage
from .cstyle.sizes import sizes_of
from .cstyle.skeletons import render_elementwise, render_reduce, render_matmul_simt, scalar_buffers
from .jinja_env import template


class MslLanguage(CStyleLanguage):
    name = "msl"
    file_suffix = ".metal"
    kernel_prefix = "kernel"
    global_ptr = "device {T}*"
    const_ptr = "const device {T}*"
    restrict = ""
    scalar_param = "constant {T}& {name}"
    param_attr = " [[buffer({i})]]"
    shared = "threadgroup"
    barrier = "threadgroup_barrier(mem_flags::mem_threadgroup)"
    # every skeleton's signature ends with these (the harness's thunks pass them in this order)
    thread_index = {"local": "tid", "group": "gid", "groups": "ngroups"}
    shuffle_xor = shuffle_bool = "tj_shfl_xor({x}, (ushort)({o}))"   # prelude: 64-bit as two halves
    # no double: a float64 computation is refused before rendering (backends/metal.py); what
    # remains float64 are weak Python-float constants, which NEP 50 casts to float32 before
    # use, so they are written as float literals (rounded once, by the compiler)
    types = {"bool": "bool", "int32": "int", "int64": "long", "float32": "float", "float64": "float"}
    narrowed = frozenset({"float64"})
    mem_types = {"bool": "uchar", "int32": "int", "int64": "long", "float32": "float"}
    unsigned = {"int32": "uint", "int64": "ulong"}
    math_suffix = {"float32": "", "float64": ""}       # metal:: functions are overloaded
    store_conv = {"bool": "(uchar)({x})"}
    literal_suffix = {"float32": "f", "float64": "f", "int32": "", "int64": "L"}
    special_floats = {("float", "inf"): "INFINITY", ("float", "-inf"): "(-INFINITY)",
                      ("float", "nan"): "NAN"}
    arg_index = "int"
    size_let = "const {T} {n} = {x};"
    float_sum_dtype = "float32"
    code_for_op = {**CStyleLanguage.code_for_op,
                   **{fn: {"f": f"tj_{fn}({{a}})"} for fn in ("log1p", "expm1", "erf")}}

    def describe_launch(self, l) -> str:
        return (f"{l.name}: {l.kind}, {l.threads} threads/threadgroup, {groups_needed(l)} "
                f"threadgroup(s) of work ({l.grid[0]})")


LANG = MslLanguage()


def render_kernels(kernels, scalars, target):
    bodies, launches = [], []
    for name, g, c in kernels:
        if c.vec != 1 or c.split or c.mma:
            raise E.InternalError(f"MSL kernels take one element per thread step, whole rows per "
                                  f"threadgroup and no tensor cores; config {c} asks otherwise")
        if g.kind == "reduce":
            s, l = render_reduce(g, c, name, scalars, LANG, warp=target.limit("warp_size", 32))
        else:
            render = {"elementwise": render_elementwise, "matmul": render_matmul_simt}[g.kind]
            s, l = render(g, c, name, scalars, LANG)
        bodies.append(s)
        launches.append(l)
    return bodies, launches


def render_plan(p):
    """(the .metal text of every kernel of the plan, their launches: cstyle.launch.Launch values)."""
    scalars = scalar_buffers(p.specs)
    kernels = list(zip(p.kernel_names(), p.part.groups, p.configs))
    with sizes_of(LANG, p):
        bodies, launches = render_kernels(kernels, scalars, p.target)
    src = template("msl/module.metal.j2").render(
        module_name=p.module_name, target=p.target, plan_text=p.describe(), bodies=bodies,
        launches=[describe(l) for l in launches])
    return src, tuple(launches)


def groups_needed(l) -> int:
    """Threadgroups that give every piece of work its own (grid-stride skeletons take fewer)."""
    return grid_groups(l.grid)


def grid_groups(g) -> int:
    """groups_needed of a grid (a symbolic plan's: one of plan.units at a call's sizes)."""
    return g[1] * g[2] * g[3] if g[0] == "tiles" else g[1]


def describe(l) -> str:
    return LANG.describe_launch(l)

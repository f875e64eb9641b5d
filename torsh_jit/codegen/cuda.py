"""CUDA C: the C-style renderer's data for CUDA, and the kernels of a plan as one .cu file.

The language is data (`CudaLanguage`); the skeletons are templates/cuda/*.cu.j2: elementwise
(groups of V elements, 16-byte accesses, a block per T x U groups and one step per thread;
the block size from the device's occupancy), reduce (a thread, a warp or a block per row,
the row kept in registers across passes; a split of long rows across blocks), matmul
(mma.sync tensor cores for float16/bfloat16 with float32 accumulation; on Hopper, wgmma fed
by cp.async or, warp-specialised, by the TMA: cuda_matmul.py; a SIMT path for the rest),
each with the group's elementwise epilogue fused. The shared fillers: cstyle/skeletons.py.
`launches()` says how each kernel is launched: plain data the backend reads together with
the device's properties.
"""
from __future__ import annotations

import dataclasses

from ..schedule.gpu import GpuConfig
from .cstyle.language import CStyleLanguage
from .cstyle.launch import Launch
from .cstyle.sizes import sizes_of
from .cstyle.skeletons import (launch_grids as simt_grids, render_elementwise, render_elementwise_tiles,
                               render_matmul_simt,
                               render_reduce, scalar_buffers, tiles_grid)
from .cuda_matmul import render_matmul_mma, render_matmul_tma, render_matmul_wgmma, tma_grid
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

    def describe_launch(self, l) -> str:
        g = l.grid
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
        if l.cluster > 1:
            grid += f" in clusters of {l.cluster} blocks"
        extra = f", {l.smem} B dynamic shared memory" if l.smem else ""
        if l.tmaps:
            extra += f", {len(l.tmaps)} tensor maps (TMA boxes " + \
                ", ".join("x".join(map(str, t[4][:2])) for t in l.tmaps) + ")"
        if l.fallback:
            extra += f", falls back to {l.fallback} when pointers are not " \
                     f"{max(b for _, b in l.align)}-byte aligned"
        elif l.align:
            extra += f"; wide accesses only: pointers not {max(b for _, b in l.align)}-byte " \
                     "aligned run a variant with scalar accesses, compiled on first need"
        return f"{l.name}: {l.kind}, {l.threads} threads/block, {grid}{extra}"


LANG = CudaLanguage()


# -- the module --------------------------------------------------------------------------------
def render_kernels(kernels, target, scalars, aligned=True) -> tuple[list[str], list[Launch]]:
    """Source of every kernel and how to launch it. kernels: (name, group, config)."""
    bodies, launches = [], []
    for name, g, c in kernels:
        if g.kind == "elementwise" and c.columns:
            s, l = render_elementwise_tiles(g, c, name, scalars, LANG)
        elif g.kind == "elementwise":
            s, l = render_elementwise(g, c, name, scalars, LANG, aligned=aligned)
        elif g.kind == "reduce":
            s, l = render_reduce(g, c, name, scalars, LANG, warp=target.limit("warp_size", 32))
        elif c.mma or c.wgmma:
            simt = GpuConfig(threads=256, tile_m=64, tile_n=64, tile_k=16)
            s2, l2 = render_matmul_simt(g, simt, name + "_simt", scalars, LANG)
            l2 = dataclasses.replace(l2, standby=True)
            if c.tma:
                s, l = render_matmul_tma(g, c, name, scalars, l2.name, target, LANG)
            elif c.wgmma:
                s, l = render_matmul_wgmma(g, c, name, scalars, l2.name, target, LANG)
            else:
                s, l = render_matmul_mma(g, c, name, scalars, l2.name, LANG)
            bodies.append(s2)
            launches.append(l2)
        else:
            s, l = render_matmul_simt(g, c, name, scalars, LANG)
        bodies.append(s)
        launches.append(l)
    return bodies, launches


def launch_grids(group, cfg) -> tuple:
    """The grids of the group's kernels as render_kernels launches them (a tensor-core
    matmul: its SIMT standby, then itself): Backend.launch_sizes, ints and Syms."""
    if group.kind != "matmul" or not (cfg.mma or cfg.wgmma):
        return simt_grids(group, cfg)
    main = tma_grid(group, cfg) if cfg.tma else tiles_grid(group, cfg.tile_m, cfg.tile_n)
    return (tiles_grid(group, 64, 64), main)


def render_plan(p, aligned: bool = True) -> tuple[str, tuple[Launch, ...]]:
    """(the .cu text of every kernel of the plan, their launches). aligned=False: the module
    that elementwise kernels fall back to when their pointers are not aligned."""
    scalars = scalar_buffers(p.specs)
    kernels = list(zip(p.kernel_names(), p.part.groups, p.configs))
    with sizes_of(LANG, p):
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

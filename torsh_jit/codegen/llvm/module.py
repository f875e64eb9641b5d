"""One LLVM module per compiled function: each group rendered as a kernel of its kind
(elementwise, row or column reduction: templates/llvm/*.ll.j2 driven by a KernelEmitter;
matmul: matmul.py), the shared functions they call (vector math, integer pow), the
serial and Python entry points (templates/llvm/module.ll.j2), and the target's rewrites
(lowering.py).

Every kernel has the signature

    void NAME(ptr %args, i64 %start, i64 %end)

where %args points at the buffer table (one data pointer per graph input, output and
temporary) and [start, end) is this call's share of the work: elements of the flattened
domain for elementwise groups, rows for reductions, output tiles for matmul. The runtime
splits work across threads by calling it on sub-ranges.
"""
from __future__ import annotations

import math

from ... import errors as E
from ...fuse import Group
from ...ir.dtypes import family
from ...ir.ops import ARG_REDUCTIONS
from ...ir.symbols import statically_zero
from ...schedule.config import Config
from ...schedule.layout import column_blocks, column_prefetch, reduce_block, work_units
from ..jinja_env import template
from .emitter import KernelEmitter
from .lowering import soft_fma
from .matmul import render_matmul
from .sizes import SizeValues
from .types import SCALAR, vty
from .vmath import render_vmath


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
        e.op in ARG_REDUCTIONS and family(em.red_info(i)[0]) != "f"
        for i, e in enumerate(em.g.exprs))


def render_group(group: Group, config: Config, name: str, module: ModuleBuilder) -> str:
    """LLVM IR text of one kernel function."""
    for e in group.exprs:
        if e.dtype not in SCALAR:
            raise E.DTypeError(f"dtype {e.dtype} is not supported on CPU targets",
                               hint="use float32 or float64")
    if group.kind == "matmul":
        return render_matmul(group, config, name, module)
    em = KernelEmitter(group, config, module)
    tpl = "llvm/elementwise.ll.j2" if group.kind == "elementwise" else "llvm/reduce.ll.j2"
    ax = em.ax
    attrs = 0
    if group.kind != "elementwise" and optimiser_miscompiles(em, module.target):
        attrs = 1
        module.unoptimized = True
    if ax.column:
        return template("llvm/reduce_cols.ll.j2").render(
            em=em, name=name, C=ax.K, rows=ax.rows, L=ax.loop, W=config.lanes, U=em.U,
            NB=column_blocks(ax, config), levels=em.passes, attrs=attrs,
            split=not statically_zero(ax.K % (em.U * config.lanes)),
            prefetch=column_prefetch(config))
    return template(tpl).render(em=em, name=name, K=ax.K, rows=ax.rows, W=config.lanes,
                                U=em.U, levels=em.passes, block=reduce_block(ax, config),
                                segs=ax.segs, nseg=math.prod(ax.segs),
                                vector_bits=module.target.vector_bits, attrs=attrs)


def render_module(kernels: list[tuple[str, Group, Config]], target, module_name: str,
                  n_buffers: int, plan_text: str = "", symbols: tuple[str, ...] = ()) -> str:
    """One LLVM module holding every kernel of a function, plus a serial entry point.
    symbols: the plan's symbolic sizes, whose values the buffer table's last entry holds
    (n_buffers counts it)."""
    mb = ModuleBuilder(target)
    sizes = SizeValues(symbols, n_buffers - 1)
    with sizes.active():
        bodies = [render_group(g, c, n, mb) for n, g, c in kernels]
        text = template("llvm/module.ll.j2").render(
            module_name=module_name, triple=target.triple, target=target,
            bodies=bodies, shared=mb.shared_code(), plan_text=plan_text, n_buffers=n_buffers,
            unoptimized=mb.unoptimized,
            entries=[(n, work_units(g, c)) for n, g, c in kernels], size_t=f"i{target.pointer_bits}")
    text = sizes.define_sizes(text)
    return text if target.fused_multiply_add else soft_fma(text)

"""The default schedules of the two small GPU targets, WGSL and Metal, as GpuConfig values.

WGSL: groups of 4 (vec4 accesses), a workgroup per row whose groups stay in registers
across passes, subgroup shuffles where the adapter has them (the backend says). Metal: the
CUDA rules under the target's limits, with what MSL kernels take (one element per thread
step, whole rows per threadgroup).
"""
from __future__ import annotations

from .gpu import GpuConfig, access_layout, default_config, pow2_at_least
from ..ir.symbols import hint_of, is_symbolic, statically_one, statically_zero
from .layout import plan_axes


def wgsl_config(group, target, subgroups: bool = False) -> GpuConfig:
    """subgroups: the adapter has subgroup operations (the backend asks the device)."""
    T = min(256, target.limit("max_threads_per_block", 256))
    if group.kind == "matmul":
        return GpuConfig(threads=256, tile_m=64, tile_n=64, tile_k=16)
    ax = plan_axes(group)
    contig, column = access_layout(group, ax)
    # (a guess from the traced size: groups of 4 are correct for every length)
    V = 4 if contig and hint_of(ax.K) >= 4 else 1
    if group.kind == "elementwise":
        # one group per thread per step: the dispatch alone keeps enough loads in flight
        # (our CUDA C reaches the copy bandwidth so); unroll=U gives a thread U of them, and
        # was 12% slower on lavapipe
        return GpuConfig(threads=T, vec=V, unroll=1)
    if not statically_zero(ax.K % V):
        V = 1
    if column or statically_one(ax.K):
        return GpuConfig(threads=min(64, T), vec=1, tpr=1)   # a thread per row, rows along memory
    # a workgroup per row; a thread's groups (at most 8 of V) stay in registers across passes
    # (threads from the traced length; registers hold rows of a fixed length only)
    groups = -(-ax.K // V)
    t = max(32, min(T, pow2_at_least(-(-hint_of(groups) // 4))))
    J = -(-groups // t)
    cache = J if not is_symbolic(J) and J <= 8 else 0
    return GpuConfig(threads=t, vec=V, tpr=t, cache=cache, subgroups=subgroups)


def metal_config(group, target) -> GpuConfig:
    c = default_config(group, target)
    if c.split:
        c = c.replace(split=False, tpr=c.threads)
    return c.replace(vec=1) if c.vec != 1 else c

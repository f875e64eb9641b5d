"""Kernel layout shared by code generation and launch: how a group's domain axes
collapse into rows x inner elements, how each access walks them, and how many
work units a kernel's [start, end) ranges over. No template machinery here: the
launch path imports this without loading Jinja.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..fuse import Group
from ..ir.ops import REDUCE_OPS
from ..ir.symbols import (hint_of, is_symbolic, narrowing_allowed, same, statically_one,
                          statically_zero)
from .config import Config


# -- axes after collapsing ------------------------------------------------------------
@dataclass(frozen=True)
class AxisPlan:
    outer: tuple[int, ...]
    inner: tuple[int, ...]
    outer_strides: dict      # access key -> tuple per outer axis
    inner_strides: dict      # access key -> tuple per inner axis
    # column reductions (the reduced axis is not the contiguous one): the vectors run
    # along the last outer axis (`inner` above) and a scalar loop walks the `loop`
    # reduced elements, so memory streams row after row instead of being gathered
    column: bool = False
    loop: int = 0
    loop_strides: dict | None = None   # access key -> stride along the reduced axis
    # segmented row reductions (x.sum(axis=(0, 2)) of a C-order array): the reduced axes do
    # not merge into one run, so a row is `segs` segments of K contiguous elements; the
    # kernel walks the segments and vectorises along each (`seg_strides`: access key ->
    # stride per segment axis)
    segs: tuple[int, ...] = ()
    seg_strides: dict | None = None

    @property
    def rows(self) -> int:
        return math.prod(self.outer)

    @property
    def K(self) -> int:
        return math.prod(self.inner)


def plan_axes(group: Group, *, columns: bool = False) -> AxisPlan:
    """Drop size-1 axes and merge neighbours every access walks linearly.

    columns=True lets a reduction whose reduced axis is not contiguous come back in column
    form (`AxisPlan.column`); renderers without a column template leave it False."""
    accesses = {("l", i): a.strides for i, a in enumerate(group.loads)}
    accesses.update({("s", i): s.access.strides for i, s in enumerate(group.stores)})
    dom = list(group.domain)

    def collapse(axes):
        axes = [d for d in axes if not statically_one(dom[d])]
        runs: list[list[int]] = []
        for d in axes:
            if runs:
                prev = runs[-1][-1]
                # merged where every access walks them as one axis, for every size: symbolic
                # strides must be the same expression (not merging is always correct)
                if all(same(st[prev], st[d] * dom[d]) for st in accesses.values()):
                    runs[-1].append(d)
                    continue
            runs.append([d])
        return runs

    if group.kind == "matmul":
        # rows are (batch..., M); the inner axis is N, the micro-tile's vector axis
        outer_runs = collapse(range(len(dom) - 1))
        inner_runs = [[len(dom) - 1]]
    else:
        outer_runs = collapse(range(group.n_outer))
        inner_runs = collapse(range(group.n_outer, len(dom)))
        if group.kind == "elementwise" and outer_runs:
            inner_runs = [outer_runs.pop()]

    def sizes(runs):
        return tuple(math.prod(dom[d] for d in r) for r in runs)

    def strides(runs, st):
        return tuple(st[r[-1]] for r in runs)
    if columns and group.kind == "reduce" and outer_runs and len(inner_runs) == 1:
        red, last = inner_runs[0][-1], outer_runs[-1][-1]
        # decided by the loads: a softmax of x.T reads x once per pass and writes once, so its
        # loads stream rows and its stores are scattered along the columns. A load that does
        # not move along the columns (layernorm's weight) is one scalar per reduced element.
        walking = [st for k, st in accesses.items() if not statically_zero(st[red]) and k[0] == "l"]
        rows = [st for st in walking if not statically_zero(st[last])]
        if rows and all(not statically_one(st[red]) and statically_one(st[last]) for st in rows):
            return AxisPlan(sizes(outer_runs[:-1]), sizes(outer_runs[-1:]),
                            {k: strides(outer_runs[:-1], st) for k, st in accesses.items()},
                            {k: strides(outer_runs[-1:], st) for k, st in accesses.items()},
                            column=True, loop=sizes(inner_runs)[0],
                            loop_strides={k: st[red] for k, st in accesses.items()})
    if columns and group.kind == "reduce" and len(inner_runs) > 1 and _segmentable(accesses, inner_runs, dom):
        return AxisPlan(sizes(outer_runs), sizes(inner_runs[-1:]),
                        {k: strides(outer_runs, st) for k, st in accesses.items()},
                        {k: strides(inner_runs[-1:], st) for k, st in accesses.items()},
                        segs=sizes(inner_runs[:-1]),
                        seg_strides={k: strides(inner_runs[:-1], st) for k, st in accesses.items()})
    return AxisPlan(sizes(outer_runs), sizes(inner_runs),
                    {k: strides(outer_runs, st) for k, st in accesses.items()},
                    {k: strides(inner_runs, st) for k, st in accesses.items()})


def _segmentable(accesses, inner_runs, dom) -> bool:
    """A row of several reduced runs can be walked as segments of its last run: every load
    is contiguous along that run (or reads one value for the whole row), no store moves
    inside the row (the kernel has no segmented final pass), and a segment holds at least
    a vector's worth. Otherwise each element's place is computed and gathered: sum(axis=(0,2))
    of 512x512x64 float32 took 21.6 ms that way, numba 6.6 ms."""
    last = inner_runs[-1]
    n = math.prod(dom[d] for d in last)
    if is_symbolic(n) or n < 16:
        return False
    for k, st in accesses.items():
        moves = [not statically_zero(st[d]) for r in inner_runs for d in r]
        if k[0] == "s" and any(moves):
            return False
        if k[0] == "l" and any(moves) and not statically_one(st[last[-1]]):
            return False
    return True


def inner_mode(inner: tuple[int, ...], st: tuple[int, ...]):
    """How an access walks the inner region: invariant, contig, strided (stride), or general."""
    if not inner or all(statically_zero(s) for s in st):
        return ("invariant", 0)
    linear = all(st[i] == st[i + 1] * inner[i + 1] for i in range(len(st) - 1))
    if linear:
        return ("contig", 1) if statically_one(st[-1]) else ("strided", st[-1])
    return ("general", 0)


def varying(group: Group, ax: AxisPlan) -> list[bool]:
    """Per expr of the group: whether its value changes along the kernel's vectors (the
    inner region; in a column reduction, the reduced loop). Those that do not are computed
    once per row and broadcast."""
    out: list[bool] = []
    for e in group.exprs:
        if e.op == "load" and ax.column:
            out.append(not statically_zero(ax.loop_strides[("l", dict(e.attrs)["access"])]))
        elif e.op == "load":
            st = ax.inner_strides[("l", dict(e.attrs)["access"])]
            out.append(inner_mode(ax.inner, st)[0] != "invariant")
        elif e.op == "matmul":
            out.append(True)
        elif e.op in REDUCE_OPS or e.op in ("const", "size"):
            out.append(False)
        else:
            out.append(any(out[a] for a in e.args))
    return out


def column_vectors(ax: AxisPlan, config: Config) -> int:
    """Column reductions: vectors side by side in one work unit. Sixteen AVX-512 vectors
    read 1 KiB of each row per step: sum(axis=0) of 4096x4096 float32 went from 9.4 ms
    (one vector) and 7.2 ms (eight) to 3.1 ms, numpy 3.7 ms, on this 2-core Zen 4."""
    return max(1, min(16, -(-hint_of(ax.K) // config.lanes)))   # a row of any length is right


def column_prefetch(config: Config) -> int:
    """Column reductions: how many reduced elements (rows) ahead each step prefetches, 0 for
    none. Eight by default: 4, 8 and 16 gave 0.25, 0.21 and 0.22 ms for sum(axis=0) of
    4096x1024 float32 (none: 1.38 ms) on this 2-core Zen 4; the tuner tries the others."""
    return 8 if config.prefetch == 0 else max(0, config.prefetch)


def column_blocks(ax: AxisPlan, config: Config) -> int:
    """Column reductions: blocks of `column_vectors` vectors of columns along a row."""
    return -(-ax.K // (config.lanes * column_vectors(ax, config)))


def vector_sets(ax: AxisPlan, config: Config) -> int:
    """Vectors side by side per step of a kernel, each with its own accumulators: the
    config's unroll, or in a column reduction its `column_vectors`."""
    return column_vectors(ax, config) if ax.column else config.unroll


def reduce_block(ax: AxisPlan, config: Config) -> int:
    """Elements per block of a row reduction as its kernel runs it: 0 (the whole row) unless
    the config's block is shorter than the row, then rounded down to whole vector steps (at
    least one)."""
    # a row of symbolic length in a kernel's variant asks (a guard): blocked for every length
    # would cost a short row the block loop and the float64 fold (sum over the rows of
    # 8192x128 float32 with dynamic=True: 0.142 ms, exact shapes 0.057), so a row up to a
    # block compiles unblocked and a longer one the blocked variant. Code that cannot
    # recompile (an AOT bundle, a Graph) blocks any symbolic row: it runs every length
    cannot_ask = is_symbolic(ax.K) and not narrowing_allowed()
    block = config.block if config.block and (cannot_ask or config.block < ax.K) else 0
    if block:
        step = config.lanes * config.unroll
        block = max(step, block // step * step)
    return block


def matmul_column_block(group: Group, config: Config) -> int:
    """Columns of B per packed block (NC) as the matmul kernel runs it: whole panels of NR
    vectors, no more than N rounded up to a panel, at least one panel."""
    nrw = config.nr * config.lanes
    n = group.domain[-1]
    # the kernel clips each block to the columns left, so a symbolic N takes its hint's block
    return max(nrw, min(-(-hint_of(n) // nrw) * nrw, config.nc // nrw * nrw))


def matmul_dims(group: Group):
    """(batch dims, M, N, K) of a matmul group."""
    batch = group.domain[:-2]
    m, n = group.domain[-2:]
    return batch, m, n, group.k


def work_units(group: Group, config: Config) -> int:
    """How many units [start, end) ranges over for this kernel."""
    if group.kind == "matmul":
        batch, m, n, k = matmul_dims(group)
        return math.prod(batch) * -(-m // config.mr)
    ax = plan_axes(group, columns=True)
    if ax.column:
        return ax.rows * column_blocks(ax, config)     # (row, column block)
    return ax.rows * ax.K if group.kind == "elementwise" else ax.rows

"""Kernel layout shared by code generation and launch: how a group's domain axes
collapse into rows x inner elements, how each access walks them, and how many
work units a kernel's [start, end) ranges over. No template machinery here: the
launch path imports this without loading Jinja.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..fuse import Group
from ..schedule.config import Config


# -- axes after collapsing ------------------------------------------------------------
@dataclass(frozen=True)
class AxisPlan:
    outer: tuple[int, ...]
    inner: tuple[int, ...]
    outer_strides: dict      # access key -> tuple per outer axis
    inner_strides: dict      # access key -> tuple per inner axis

    @property
    def rows(self) -> int:
        return math.prod(self.outer)

    @property
    def K(self) -> int:
        return math.prod(self.inner)


def plan_axes(group: Group) -> AxisPlan:
    """Drop size-1 axes and merge neighbours every access walks linearly."""
    accesses = {("l", i): a.strides for i, a in enumerate(group.loads)}
    accesses.update({("s", i): s.access.strides for i, s in enumerate(group.stores)})
    dom = list(group.domain)

    def collapse(axes):
        axes = [d for d in axes if dom[d] != 1]
        runs: list[list[int]] = []
        for d in axes:
            if runs:
                prev = runs[-1][-1]
                if all(st[prev] == st[d] * dom[d] for st in accesses.values()):
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
    return AxisPlan(sizes(outer_runs), sizes(inner_runs),
                    {k: strides(outer_runs, st) for k, st in accesses.items()},
                    {k: strides(inner_runs, st) for k, st in accesses.items()})


def inner_mode(inner: tuple[int, ...], st: tuple[int, ...]):
    """How an access walks the inner region: invariant, contig, strided (stride), or general."""
    if not inner or all(s == 0 for s in st):
        return ("invariant", 0)
    linear = all(st[i] == st[i + 1] * inner[i + 1] for i in range(len(st) - 1))
    if linear:
        return ("contig", 1) if st[-1] == 1 else ("strided", st[-1])
    return ("general", 0)



def work_units(group: Group, config: Config) -> int:
    """How many units [start, end) ranges over for this kernel."""
    if group.kind == "matmul":
        from .llvm_matmul import matmul_units
        return matmul_units(group, config)
    ax = plan_axes(group)
    return ax.rows * ax.K if group.kind == "elementwise" else ax.rows

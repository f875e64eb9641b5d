"""Launch: how one rendered kernel is launched, as plain data the backend reads together with
the device's properties. One type for every C-style language; the language's own words
describe it (CStyleLanguage.describe_launch: blocks, threadgroups or workgroups).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ...ir.symbols import ShapeEnv, evaluate


@dataclass(frozen=True)
class Launch:
    name: str
    kind: str                      # elementwise | reduce | matmul
    threads: int                   # threads per block (threadgroup, workgroup)
    params: tuple                  # ((buffer, "ptr" | "scalar", dtype), ...) in signature order
    grid: tuple                    # ("stride", blocks) | ("rows", blocks) | ("split", rows, max_parts)
                                   # | ("tiles", x, y, z) | ("persistent", work items)
    smem: int = 0                  # dynamic shared memory, bytes
    workspace: int = 0             # split: 8-byte slots per (pass, row, part); counters besides
                                   # (a matmul's split K: slots per (tile, part))
    passes: int = 0                # split: passes that exchange partials (matmul: the K parts)
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
    lang: object = field(default=None, compare=False, repr=False)   # whose words describe() uses

    @property
    def buffers(self) -> tuple:
        """Buffer numbers bound as arrays (scalars excluded), in signature order."""
        return tuple(b for b, kind, _ in self.params if kind != "scalar")

    @property
    def scalars(self) -> bool:
        """The kernel reads scalar arguments."""
        return any(kind == "scalar" for _, kind, _ in self.params)

    def describe(self) -> str:
        return self.lang.describe_launch(self)


def plan_launches(p, render_plan) -> tuple:
    """(source, launches) of a plan, from its language's render_plan. A symbolic plan's source
    is the one rendered while planning (p.source); its launches come from rendering again in a
    scratch environment (the same questions, whose guards the plan holds already), their
    grids expressions that `at_sizes` evaluates."""
    if not p.symbols:
        return render_plan(p)
    with ShapeEnv().active():
        src, launches = render_plan(p)
    return (p.source if p.source is not None else src), tuple(launches)


def at_sizes(launches, units, values: dict) -> tuple:
    """The launches of a symbolic plan at a call's sizes: each grid from the plan's units
    (Backend.launch_sizes, one grid per launch, in order) evaluated at `values`."""
    grids = [g for u in units for g in u]
    ev = lambda xs: tuple(evaluate(x, values) for x in xs)
    return tuple(replace(l, grid=ev(g), tmaps=tuple((t[0], evaluate(t[1], values), ev(t[2]), ev(t[3]),
                                                     t[4], t[5]) for t in l.tmaps))
                 for l, g in zip(launches, grids))

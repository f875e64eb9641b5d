"""The values fusion hands to the scheduler and code generator: a Group is one kernel.

A Group's exprs are its computation (op-table names over loads and constants), its loads
and stores are Accesses (a buffer, an element offset and one stride per domain axis), and a
Partition is the groups in order plus the buffer table they share.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.ops import REDUCE_OPS


@dataclass(frozen=True)
class Access:
    """Where a group reads or writes: buffer index, element offset, a stride per domain axis."""
    buf: int
    offset: int
    strides: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Expr:
    """One value inside a group. op is an op-table name, 'load' (attrs: access index) or 'const'."""
    op: str
    args: tuple[int, ...]
    attrs: tuple
    dtype: str
    full: bool          # varies along the reduced axes (computed inside the row loops)
    level: int          # reductions: pass index; row-level values: pass after which known


@dataclass(frozen=True)
class Store:
    expr: int
    access: Access


@dataclass(frozen=True)
class Group:
    kind: str                     # "elementwise" | "reduce" | "matmul"
    domain: tuple[int, ...]       # outer axes first, then reduced axes (or matmul's M, N last)
    n_outer: int                  # number of outer (non-reduced) domain axes
    exprs: tuple[Expr, ...]
    loads: tuple[Access, ...]
    stores: tuple[Store, ...]
    nodes: tuple[int, ...] = field(default=(), compare=False)   # graph nodes, for explain
    k: int = 0                    # matmul: the contraction length
    mm: tuple = ()                # matmul: (A access, B access) with strides over (domain..., K)

    @property
    def n_levels(self) -> int:
        return 1 + max((e.level for e in self.exprs if e.op in REDUCE_OPS), default=-1)

    def describe(self) -> str:
        red = f", reduce over {self.domain[self.n_outer:]}" if self.kind == "reduce" else ""
        return (f"{self.kind} group: nodes {list(self.nodes)}, domain {self.domain}{red}, "
                f"{len(self.loads)} loads, {len(self.stores)} stores")


@dataclass(frozen=True)
class BufferPlan:
    """The kernels' shared buffer table: graph inputs, outputs, then temporaries."""
    n_inputs: int
    outputs: tuple[tuple[tuple[int, ...], str], ...]    # (shape, dtype) of each graph output
    temps: tuple[tuple[tuple[int, ...], str], ...]

    @property
    def count(self) -> int:
        """How many buffers a launch passes: inputs, outputs and temporaries."""
        return self.n_inputs + len(self.outputs) + len(self.temps)


@dataclass(frozen=True)
class Partition:
    groups: tuple[Group, ...]
    buffers: BufferPlan

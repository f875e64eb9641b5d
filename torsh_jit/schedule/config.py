"""Config: the schedule of one group on one target, as a hashable value.

The default heuristics read only the group's kind and sizes and the target's
declared limits (vector width, registers); the tuner searches the same fields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict, replace

from ..ir.dtypes import ITEMSIZE, family
from ..ir.symbols import hint_of, is_symbolic


@dataclass(frozen=True)
class Config:
    lanes: int                 # vector lanes
    unroll: int = 1            # vectors per loop step (independent accumulators in reductions)
    block: int = 0             # reductions: elements per block folded into a wide accumulator (0: whole row)
    grain: int = 1 << 16       # work units (elements, or rows x row length) below which one thread runs
    nontemporal: bool = False  # streaming stores for outputs much larger than the last-level cache
    prefetch: int = 0          # column reductions: rows prefetched ahead (0: the default, -1: none)
    # matmul only: micro-tile rows x vectors, and cache blocks
    mr: int = 0
    nr: int = 0
    mc: int = 0
    kc: int = 0
    nc: int = 0

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}

    def replace(self, **kw) -> "Config":
        return replace(self, **kw)

    def __str__(self):
        return "Config(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


def group_lanes(group, target) -> int:
    """Lanes for a group: the target's vector width in its narrowest non-bool dtype."""
    sizes = [ITEMSIZE[e.dtype] for e in group.exprs if e.dtype != "bool"]
    sizes += [ITEMSIZE[a.dtype] for a in group.loads if a.dtype != "bool"]
    isz = min(sizes) if sizes else 4
    return max(1, target.vector_bits // (8 * isz))


def default_config(group, target) -> Config:
    lanes = group_lanes(group, target)
    if group.kind == "matmul":
        isz = ITEMSIZE[group.exprs[0].dtype]
        vl = max(1, target.vector_bits // (8 * isz))
        # MR x NR accumulators + NR vectors of B + one broadcast of A must fit the registers.
        # NR is the widest panel that pads N least: N=16 in panels of 4 x 16 lanes computed
        # four columns for each one kept (bmm 256x(16x16) 0.142 ms, numpy 0.028; gemm
        # 4096x1024@1024x16 2.2 ms, numpy 1.3, on this 2-core Zen 4)
        top = 4 if target.vector_registers >= 32 else 2
        n = hint_of(group.domain[-1])
        nr = min(range(top, 0, -1), key=lambda r: -(-n // (r * vl)) * r * vl)
        mr = max(1, min(6 if nr > 2 else 8, (target.vector_registers - nr - 1) // nr))
        # a column block of B (K x NC) sized to stay in a 1 MiB share of L2
        nc = max(nr * vl, (1 << 20) // max(1, hint_of(group.k) * isz) // (nr * vl) * (nr * vl))
        return Config(lanes=vl, mr=mr, nr=nr, nc=nc, grain=1 << 15)
    # the heuristics read sizes as hints (a symbolic size's value at the traced call): a
    # config is correct for every size, so choosing one records no guard
    work = hint_of(math.prod(group.domain)) if group.domain else 1
    if group.kind == "reduce":
        inner = math.prod(group.domain[group.n_outer:])
        # independent accumulators hide the add latency; blocks keep float sums exact to
        # ~1 ulp of the row by folding every `block` elements into a float64 accumulator (a
        # row of symbolic length keeps the block: layout.reduce_block applies it past a block)
        # eight for a float max/min where the registers allow: its step (llvm.maximum: NaN
        # and signed-zero aware) is a chain of ~8 cycles, and four chains left the max pass
        # of a softmax latency-bound, worst once its trip count was symbolic (4096x1024
        # float32 on one thread: exact 3.96 -> 3.52 ms, dynamic=True 4.36 -> 3.92 ms). Not
        # for argmax (index vectors beside: 1.21 -> 1.84 ms) nor rows of a few steps
        chains = any(e.op in ("max", "min") and family(e.dtype) == "f" for e in group.exprs)
        many = chains and target.vector_registers >= 32 and hint_of(inner) >= 32 * lanes
        unroll = 8 if many else 4 if hint_of(inner) >= 4 * lanes else 1
        block = 4096 if is_symbolic(inner) or inner > 4096 else 0
        return Config(lanes=lanes, unroll=unroll, block=block, grain=1 << 15)
    unroll = 2 if work >= 8 * lanes else 1
    # streaming stores are the tuner's to try (space.py: outputs past twice the last-level cache)
    return Config(lanes=lanes, unroll=unroll, grain=1 << 16)

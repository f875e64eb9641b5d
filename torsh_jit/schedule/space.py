"""Search spaces of the LLVM CPU targets: which Config values the tuner may try for a group.

A space holds only parameters that change the generated code or its launch for *this* group
on *this* target, with values derived from the target's declared limits:

| kind | axes | from |
|---|---|---|
| elementwise | lanes, unroll, threads (grain), nontemporal | vector_bits; work size; output vs last-level cache |
| reduce (rows) | lanes, unroll, threads (grain), block (rows > 4096 only) | vector_bits; row length |
| reduce (columns) | lanes, prefetch distance, threads (grain) | vector_bits (unroll and block are fixed by the column template) |
| matmul | mr x nr micro-tile, nc column block, threads (grain) | vector_registers (mr*nr accumulators + nr B vectors + 1 broadcast fit), L2 share |

`grain` only decides how many threads a launch uses (backends/llvm/threads.py: parts =
min(threads, units // grain)), so it is searched as a thread count and only where the work
is small enough for that to matter (below 2^20 elements, above the 2^16 serial path).
`block` is an accuracy knob (rows summed in float64 every `block` elements), so the space
only offers blocks no longer than the default's. Candidates that give identical code are
deduplicated through `effective()`; the default config is always the first candidate.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from ..ir.dtypes import ITEMSIZE
from .config import Config, default_config, group_lanes
from .layout import column_prefetch, matmul_column_block, plan_axes, reduce_block, work_units
from .threads import num_threads


@dataclass(frozen=True)
class GroupSpace:
    """The candidates of one group: the default first, then the rest (deduplicated), and the
    ordered value list of each axis (what the guided search steps along)."""
    default: object
    configs: tuple
    axes: tuple[tuple[str, tuple], ...]

    def __len__(self):
        return len(self.configs)


def _work(group, cfg: Config) -> tuple[int, int, int]:
    """(elements of work, work units, elements per unit) of a group's launch."""
    elems = math.prod(group.domain) if group.domain else 1
    if group.kind == "matmul":
        elems *= max(group.k, 1)
    units = max(1, work_units(group, cfg))
    return elems, units, max(1, elems // units)


def _grain_values(group, cfg: Config) -> list[int]:
    """Grains giving each useful thread count (1, 2, 4 ... threads), or [] where the work is
    too small (serial path) or so large that fewer threads can only lose."""
    elems, units, per_unit = _work(group, cfg)
    n = num_threads()
    if n == 1 or elems < (1 << 16) or elems > (1 << 20):
        return []
    counts = sorted({min(n, 1 << i) for i in range(n.bit_length() + 1)})
    return [max(1, -(-units // p)) * per_unit for p in counts]


def _parts(group, cfg: Config) -> int:
    """Threads a launch of this config uses (backends/llvm/threads.py's split)."""
    elems, units, per_unit = _work(group, cfg)
    if elems < (1 << 16):
        return 1
    return min(num_threads(), max(1, units // max(1, cfg.grain // per_unit)))


def effective(group, cfg: Config, target) -> tuple:
    """What the generated code and launch depend on: two configs with equal values here
    compile to the same kernel (the column block, block and vector sets that the kernel
    derives from them are schedule/layout.py's, read here as the renderer reads them)."""
    if group.kind == "matmul":
        return ("mm", cfg.lanes, cfg.mr, cfg.nr, matmul_column_block(group, cfg), _parts(group, cfg))
    ax = plan_axes(group, columns=True)
    if ax.column:
        return ("col", cfg.lanes, column_prefetch(cfg), _parts(group, cfg))
    if group.kind == "reduce":
        return ("red", cfg.lanes, cfg.unroll, reduce_block(ax, cfg), _parts(group, cfg))
    return ("ew", cfg.lanes, cfg.unroll, cfg.nontemporal, _parts(group, cfg))


def _lane_values(vl: int) -> list[int]:
    # half and one register's worth (wider is what unroll does, and vmath stops at 16)
    return sorted({max(1, vl // 2), vl})


def llc_bytes() -> int:
    """This machine's last-level cache in bytes (32 MiB where the kernel does not say)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            s = f.read().strip()
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
        return int(s.rstrip("KMG")) * mult
    except (OSError, ValueError):
        return 32 << 20


def _axes(group, target, d: Config) -> dict[str, list]:
    vl = group_lanes(group, target)
    if group.kind == "matmul":
        isz = ITEMSIZE[group.exprs[0].dtype]
        K = max(group.k, 1)
        # columns of B per block so that K x NC stays in 256 KiB .. 2 MiB of L2
        ncs = sorted({max(1, (kb << 10) // (K * isz)) for kb in (256, 512, 1024, 2048)} | {d.nc})
        return {"nr": list(range(1, 7)), "mr": list(range(1, 9)), "nc": ncs,
                "grain": _grain_values(group, d)}
    ax = plan_axes(group, columns=True)
    if ax.column:
        return {"lanes": _lane_values(vl), "prefetch": [0, 4, 16, -1], "grain": _grain_values(group, d)}
    if group.kind == "reduce":
        K = ax.K
        blocks = [b for b in (1024, 2048, 4096) if b <= (d.block or K)] if d.block and d.block < K else []
        unrolls = [u for u in (1, 2, 4, 8) if u == 1 or u * max(1, vl // 2) <= K]
        return {"lanes": _lane_values(vl), "unroll": unrolls, "block": blocks,
                "grain": _grain_values(group, d)}
    out_bytes = sum(math.prod(group.domain) * ITEMSIZE[s.access.dtype] for s in group.stores)
    return {"lanes": _lane_values(vl), "unroll": [1, 2, 4], "grain": _grain_values(group, d),
            "nontemporal": [False, True] if out_bytes > 2 * llc_bytes() else []}


def valid(group, cfg: Config, target) -> bool:
    """The config fits the target's declared limits."""
    if group.kind == "matmul":
        # MR x NR accumulators, NR vectors of B and one broadcast of A in registers
        return cfg.mr * cfg.nr + cfg.nr + 1 <= target.vector_registers and cfg.mr * cfg.nr >= 2
    return cfg.lanes >= 1 and cfg.unroll >= 1


def tune_space(group, target, default=None) -> GroupSpace:
    """Every candidate config of `group` on the LLVM CPU `target` (default first)."""
    d = default if default is not None else default_config(group, target)
    axes = {k: v for k, v in _axes(group, target, d).items() if v}
    names = list(axes)
    seen = {effective(group, d, target)}
    out = [d]
    for values in itertools.product(*(axes[n] for n in names)):
        c = d.replace(**dict(zip(names, values)))
        if not valid(group, c, target):
            continue
        e = effective(group, c, target)
        if e not in seen:
            seen.add(e)
            out.append(c)
    return GroupSpace(d, tuple(out), tuple((n, tuple(axes[n])) for n in names))


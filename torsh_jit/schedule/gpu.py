"""GpuConfig: the schedule of one group on a GPU target, as a hashable value.

The defaults read the group's kind, sizes and layouts and the target's declared limits;
nothing here reads a device. What depends on the device (how many blocks run at once, so
the grid of an elementwise kernel and the split of a long row) is decided at launch by the
backend from the device's properties and the compiled kernel's registers and shared memory.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, asdict, replace

from ..ir.dtypes import ITEMSIZE
from ..ir.symbols import divides, hint_of, is_symbolic, statically_one, statically_zero
from .analysis import GroupAnalysis
from .gpu_rules import (TMA_STAGING, mm_common, mma_eligible, thread_registers,
                        tma_eligible, tma_registers, tma_store_map, wgmma_eligible)
from .layout import plan_axes, inner_mode

__all__ = ["GpuConfig", "access_layout", "default_config",
           "matmul_config", "matmul_tune_space", "pow2_at_least", "tune_space", "vector_width"]


@dataclass(frozen=True)
class GpuConfig:
    threads: int = 256          # threads per block
    vec: int = 1                # elements per thread group (16-byte accesses where aligned)
    unroll: int = 1             # elementwise: groups per thread per step (loads in flight)
    tpr: int = 0                # reduce: threads per row (1, 2..32: inside a warp; threads: block)
    cache: int = 0              # reduce: groups per thread kept in registers across passes (0: re-read)
    split: bool = False         # reduce: rows split across blocks (few, long rows)
    columns: bool = False       # reduce: rows along memory (x.sum(axis=0)): lanes take adjacent
                                # rows, a row's tpr threads lie in different warps and combine
                                # through shared memory; elementwise: the loads along rows are
                                # read through 32 x 32 shared-memory tiles
    subgroups: bool = False     # wgsl: subgroup operations (shuffles, votes) where the adapter has them
    # matmul: block tile, warps, pipeline depth; mma: tensor cores (mma.sync, float32 accumulate)
    tile_m: int = 0
    tile_n: int = 0
    tile_k: int = 0
    warps_m: int = 0
    warps_n: int = 0
    stages: int = 0
    parts: int = 0              # matmul (SIMT): K split across this many blocks a tile, the last
                                # to finish summing the partial tiles (few tiles, a long K)
    mma: bool = False
    fragments: int = 0          # mma: register sets of operand fragments (2: next k step read during this one's mma)
    wgmma: bool = False         # Hopper warpgroup tensor cores (sm_90a): 64-row warpgroups, 64-deep k tiles
    inflight: int = 0           # wgmma: commit groups left running while the next tile's copies are issued
    tma: bool = False           # wgmma fed by the tensor memory accelerator: a producer warpgroup and
                                # tile_m / 64 consumer warpgroups (matmul_tma.cu.j2)
    raster: int = 0             # tma: block-rows per group in the block order (tiles shared in L2)
    persistent: bool = False    # tma: one block per SM looping over the tiles (the next tile's copies
                                # overlap the epilogue)
    cluster: int = 0            # tma: blocks per thread-block cluster (2: two tiles stacked along M,
                                # each block multicasting half of their shared B tile; 0: none)
    tma_store: bool = False     # tma: the output written by the TMA from shared memory, drained while
                                # the next tile runs (16-bit: the whole tile; float32: two halves);
                                # where the output allows (gpu_rules.tma_store_map), else the
                                # epilogue's own stores

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}

    def replace(self, **kw) -> "GpuConfig":
        return replace(self, **kw)

    def __str__(self):
        return "GpuConfig(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


def pow2_at_least(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def vector_width(group, target, accesses) -> int:
    """Elements per group: the target's widest access (16 bytes) in the narrowest dtype read
    or written along the inner axis, at most 8 (so bools and 16-bit floats make 8)."""
    sizes = [ITEMSIZE[a.dtype] for a in accesses] or [4]
    return max(1, min(8, (target.vector_bits // 8) // min(sizes)))


def access_layout(group, ax):
    """(the accesses contiguous along the inner axis, whether the rows lie along memory: every
    load that varies along a row steps by one element from one row to the next)."""
    keys = [("l", i) for i in range(len(group.loads))] + [("s", i) for i in range(len(group.stores))]
    acc = {("l", i): a for i, a in enumerate(group.loads)}
    acc.update({("s", i): s.access for i, s in enumerate(group.stores)})
    contig = [acc[k] for k in keys if inner_mode(ax.inner, ax.inner_strides[k])[0] == "contig"]
    full = [k for k in keys if k[0] == "l" and inner_mode(ax.inner, ax.inner_strides[k])[0] != "invariant"]
    # the loads that vary along both axes decide (x in a layernorm over x.T, not w and b,
    # which are the same for every row)
    full = [k for k in full if any(not statically_zero(s) for s in ax.outer_strides[k])] or full
    row_contig = any(inner_mode(ax.inner, ax.inner_strides[k])[0] == "contig" for k in full)
    column = bool(not row_contig and full and ax.outer and
                  all(ax.outer_strides[k] and ax.outer_strides[k][-1] == 1 for k in full))
    return contig, column


def tiled_loads(group, ax) -> list[int]:
    """The loads of a 2-D elementwise group whose rows lie along memory (a stride of 1 along
    the last outer axis, another along the inner one): x.T in x.T + y, every input of a
    Fortran-order chain into a C-order result."""
    out = []
    for li in range(len(group.loads)):
        st, ost = ax.inner_strides[("l", li)], ax.outer_strides[("l", li)]
        if inner_mode(ax.inner, st)[0] in ("strided", "general") and ost and ost[-1] == 1:
            out.append(li)
    return out


def default_config(group, target) -> GpuConfig:
    ax = plan_axes(group)
    max_threads = target.limit("max_threads_per_block", 1024)
    warp = target.limit("warp_size", 32)
    contig, column = access_layout(group, ax)
    if group.kind == "matmul":
        return matmul_config(group, target)
    V = vector_width(group, target, contig) if contig else 1
    K = ax.K
    if group.kind == "elementwise":
        if ax.outer and target.limit("threads_per_column", 1) > 1 and tiled_loads(group, ax) \
                and hint_of(K) >= 16 and hint_of(ax.rows) >= 16:
            # operands that disagree on the layout meet in shared-memory tiles: x + y.T at
            # 4096^2 float32 read y 32 rows apart, 0.133 ms on the H200 (torch.compile 0.051)
            return GpuConfig(threads=256, vec=1, columns=True)
        if ax.outer and not divides(V, K):
            V = 1
        # one group of V per thread per step: on an H100 the chain (64M float32) ran at copy
        # speed either way (0.361 ms against 0.365 with two), and NVRTC takes 108 ms, not 175
        return GpuConfig(threads=min(256, max_threads), vec=V, unroll=1)
    # reductions: who owns a row. The sizes of a symbolic plan choose by their traced values
    # (hint_of): every choice below is correct for every size but the registers' (`cache`),
    # which hold rows of a fixed length only
    if not divides(V, K):
        V = 1
    rows = ax.rows
    if column and not statically_one(K) and target.limit("threads_per_column", 1) > 1:
        n_red = len(GroupAnalysis(group, V=1, ax=ax).red)
        return column_config(rows, K, n_red, target)
    if column or statically_one(K):
        # rows lie along memory (x.sum(axis=0)): a thread per row reads coalesced across the warp
        return GpuConfig(threads=min(256, max_threads), vec=1, tpr=1)
    groups = -(-hint_of(K) // V)
    if not is_symbolic(rows) and rows < 64 and groups >= 4 * 256:
        # (not for a symbolic row count: the blocks of a split row must be co-resident, which
        # holds for few rows only, and a call may bring many)
        # few long rows: blocks share a row (the split count is the device's to decide)
        return GpuConfig(threads=min(512, max_threads), vec=V, tpr=min(512, max_threads), split=True)
    if groups <= warp * 8:
        tpr = min(warp, pow2_at_least(-(-groups // 8)))
        threads = min(256, max_threads)
    else:
        # a block per row, at most 8 groups a thread; up to 256 threads, 4 a thread (an H100,
        # rows of 4096 float32: layernorm 50.3 us against 52.2 with 128 threads, softmax 49.3/49.6)
        tpr = threads = min(max_threads, max(64, pow2_at_least(-(-groups // 8)),
                                             min(256, pow2_at_least(-(-groups // 4)))))
    J = -(-groups // tpr)
    # registers hold the loads that more than one pass reads (x in softmax, not w in layernorm)
    users = GroupAnalysis(group, V=V, ax=ax).load_users()
    n_cached = max(1, sum(1 for u in users.values() if len(u) >= 2))
    cache = J if J * V * n_cached <= 64 and J <= 16 else 0
    reread = any(len(u) >= 2 for u in users.values())
    if cache and is_symbolic(K) and (not reread or not K <= J * tpr * V):
        cache = 0     # (asked: a row of symbolic length is cached below this guard only; a
        #              longer one compiles a variant with more registers, or none)
    return GpuConfig(threads=threads, vec=V, tpr=tpr, cache=cache)


def column_config(rows, K, n_red, target) -> GpuConfig:
    """Rows along memory (x.sum(axis=0), a softmax over a transposed input): a warp's lanes
    take 32 adjacent rows, so each step of the row reads 128 contiguous bytes, and tpr
    threads share a row, enough that the device has work (a thread per row left 8192
    threads for sum(axis=0) of 8192x8192 float32 on the H200: 0.93 ms, torch 0.068) while
    each still reads 32 elements or more."""
    tmax = min(target.limit("threads_per_column", 1), target.limit("max_threads_per_block", 1024) // 32)
    # each reduction's partials meet in shared memory, up to 16 bytes a thread
    tmax = min(tmax, max(1, target.limit("shared_memory_per_block", 49152) // (16 * 32 * max(1, n_red))))
    n_rows, length = hint_of(rows), hint_of(K)
    tpr = 1
    while tpr < tmax and n_rows * tpr < 131072 and length >= 64 * tpr:
        tpr *= 2
    # few rows, long ones (x.sum(axis=0) of 2^20 x 32, mean(axis=0) of 3000 x 777): blocks
    # share each block of rows, 8 threads a row, as many blocks as the device holds and each
    # thread's part at least 32 long (decided at launch). Not for a symbolic row count (a
    # split's blocks must be co-resident when passes follow, which holds for few rows only)
    split = not is_symbolic(rows) and n_rows * tpr < 32768 and length >= 512
    if split:
        tpr = min(tpr, 8)
    threads = max(256, 32 * tpr)
    return GpuConfig(threads=threads, vec=1, tpr=tpr, columns=True, split=split)


def matmul_config(group, target) -> GpuConfig:
    # tiles by the traced sizes (every tile is correct for every size)
    M, N = (hint_of(d) for d in group.domain[-2:])
    if tma_eligible(group, target) and M >= 128 and N >= 256 and not group.loads and \
            tma_store_map(group) is not None and group.stores[0].access.dtype != "float32":
        # as below, with a 16-bit output that the TMA writes from a whole tile in shared memory
        # while the next tile runs (which leaves room for three stages). Measured on an H100
        # at 4096^3: bf16 out 0.1786 ms against 0.1820 for the epilogue's own stores, f16 out
        # 0.1841 against 0.1878 (cuBLAS 0.1746, 0.1818). Not with other loads in the epilogue:
        # relu(x @ w + b) f16 out, 0.1955 against 0.1920 ms (the bias loads are per thread
        # pair there; the staged epilogue reads it once a tile, 4 columns a load). Nor for
        # float32, which goes out in two parts (the buffer holds half): bf16 4096 with
        # float32 out 0.1825 against 0.1820 ms, a tie
        return GpuConfig(threads=384, tile_m=128, tile_n=256, tile_k=64, stages=3, wgmma=True,
                         inflight=0, tma=True, raster=16, persistent=True, tma_store=True)
    if tma_eligible(group, target) and M >= 128 and N >= 128:
        # warp-specialised (matmul_tma.cu.j2): a TMA producer warpgroup and two consumer
        # warpgroups of 64 x BN accumulators, four 48 KiB stages with no wgmma left in flight,
        # a persistent grid. Measured on an H100, bf16 4096^3 (benchmarks/results/gpu-h100.txt,
        # tune-h100.txt): 741 TFLOP/s (cuBLAS 795); the tuner's candidates around it within 1%
        # (3 stages with one wgmma group in flight 0.2-1.3% slower, groups of 8, clusters of
        # two sharing B), a block per tile 1-2% slower, 128x192 11% and 64x256 8% slower; the
        # cp.async wgmma kernel 585 TFLOP/s
        return GpuConfig(threads=384, tile_m=128, tile_n=256 if N >= 256 else 128, tile_k=64,
                         stages=4 if N >= 256 else 6, wgmma=True, inflight=0 if N >= 256 else 1,
                         tma=True, raster=16, persistent=True)
    if wgmma_eligible(group, target) and M >= 128 and N >= 128:
        # warpgroups of 64 x BN accumulators; four 48 KiB stages, two of them being copied while
        # the tensor cores work on a third. Measured on an H100 (bf16 4096^3, benchmarks/gpu.py
        # --only sweep): 256x128 (4 warpgroups) 583 TFLOP/s, 128x256 554, 128x128 503
        if M >= 256:
            return GpuConfig(threads=512, tile_m=256, tile_n=128, tile_k=64, stages=4, wgmma=True,
                             inflight=1)
        return GpuConfig(threads=256, tile_m=128, tile_n=256 if N >= 256 else 128, tile_k=64,
                         stages=3, wgmma=True, inflight=0)
    if mma_eligible(group, target):
        if M >= 128 and N >= 128:
            # 4 warps of 64x64 accumulators, 32-deep k steps, 4 cp.async stages: two blocks per
            # SM. Measured on an H100 (bf16 4096^3): 405 TFLOP/s, against 336 for 128x256 tiles
            # of 8 warps, 386 for 128x256x64 with 3 stages, 331 with double-buffered fragments
            return GpuConfig(threads=128, tile_m=128, tile_n=128, tile_k=32, warps_m=2, warps_n=2,
                             stages=4, mma=True)
        return GpuConfig(threads=128, tile_m=64, tile_n=64, tile_k=32, warps_m=2, warps_n=2,
                         stages=3, mma=True)
    wide = any(e.dtype in ("float64", "int64") for e in group.exprs)
    if M >= 128 and N >= 128 and not wide:
        # 8 x 8 outputs a thread: each shared-memory read feeds 8 multiply-adds, not 4 (64 x 64
        # tiles ran float32 4096^3 at 21 TFLOP/s on the H200, cuBLAS 51)
        cfg = GpuConfig(threads=256, tile_m=128, tile_n=128, tile_k=8)
    else:
        cfg = GpuConfig(threads=256, tile_m=64, tile_n=64, tile_k=16)
    return cfg.replace(parts=split_k(group, cfg, target))


def split_k(group, cfg, target) -> int:
    """K parts for few output tiles over a long K (x.T @ y of two tall matrices): 64 x 64 x
    65536 float32 was one block on the H200, 6.8 ms (cuBLAS 0.03). Parts of at least 1024,
    up to 512 blocks; float accumulators only (the partials are added)."""
    nb, batch, M, N, K, A, B = mm_common(group)
    most = target.limit("matmul_split_k", 1)       # the parts the target's SIMT skeleton takes
    if most <= 1 or is_symbolic(K) or not group.exprs[0].dtype.startswith(("float", "bfloat")):
        return 0
    tiles = -(-hint_of(M) // cfg.tile_m) * -(-hint_of(N) // cfg.tile_n) * \
        hint_of(math.prod(batch))
    parts = 1
    while parts < most and K >= 2048 * parts and tiles * parts * 2 <= 512:
        parts *= 2
    return parts if parts > 1 else 0


# -- tuning ------------------------------------------------------------------------------------
def matmul_tune_space(group, target, default: GpuConfig) -> list[GpuConfig]:
    """Candidate matmul configs the CUDA templates accept, within the target's declared limits.

    This is the function to adjust when templates/cuda/matmul_*.cu.j2 change. What it
    encodes from the templates as they are:
    - mma (matmul_mma.cu.j2): BK in {32, 64} (16-deep k steps; at most 8 16-byte chunks per
      swizzled row), BN >= 64 when B is read along N (the XOR swizzle takes 8 chunks), warp
      tiles WTM x WTN multiples of 16 x 16 (ldmatrix x4 pairs), at most 128 float
      accumulators per thread (WTM * WTN / 32), 32 * WM * WN threads within
      max_threads_per_block, STAGES in 2..5 and STAGES x (BM + BN) x BK x 2 bytes within
      max_shared_memory_per_block, one or two fragment register sets;
    - wgmma (matmul_wgmma.cu.j2, sm_90a) and tma (matmul_tma.cu.j2, sm_90a, operands the TMA
      can read): see below; mma configs stay candidates beside them;
    - SIMT (matmul_simt.cu.j2): 256 threads in a 16 x 16 grid, BM and BN multiples of 16,
      at most 64 accumulators per thread, static shared memory within shared_memory_per_block.
    Tiles much larger than the problem are left out.
    """
    M, N = group.domain[-2:]
    cap_m = max(64, 1 << max(0, (M - 1).bit_length()))
    cap_n = max(64, 1 << max(0, (N - 1).bit_length()))
    out = [default]
    if default.wgmma:
        # matmul_wgmma.cu.j2: 64-row warpgroups (BM / 64 of them), BN a multiple of 64 up to 256,
        # 64-deep k tiles, STAGES x (BM + BN) x 128 bytes + 1 KiB of shared memory, and the BN / 2
        # float accumulators of a thread plus ~64 other registers within 65536 / threads
        smem_max = target.limit("max_shared_memory_per_block", 49152)
        max_t = target.limit("max_threads_per_block", 1024)
        for bm, bn, st, inf in itertools.product((64, 128, 192, 256), (64, 128, 192, 256),
                                                 (2, 3, 4, 5, 6), (0, 1)):
            t = 2 * bm
            if bm > cap_m or bn > cap_n or t > max_t or st < 2 + inf:
                continue
            if st * (bm + bn) * 128 + 1024 > smem_max or bn // 2 + 64 > thread_registers(target, t):
                continue
            out.append(GpuConfig(threads=t, tile_m=bm, tile_n=bn, tile_k=64, stages=st, wgmma=True,
                                 inflight=inf))
    if default.tma:
        # matmul_tma.cu.j2: tile_m / 64 consumer warpgroups (1 to 3) and a producer, BN a
        # multiple of 64 up to 256, STAGES x (BM + BN) x 128 bytes, the epilogue's staging
        # (gpu_rules.TMA_STAGING per consumer) and 2 KiB of shared memory,
        # a consumer's BN / 2 accumulators plus ~40 other registers within what setmaxnreg
        # gives it (gpu_rules.tma_registers), block-rows grouped by 1, 8 or 16, a block
        # per tile or a persistent grid, no cluster or clusters of two blocks along M
        # (tile_n 128 or 256: each block multicasts half of the B tile, whole 64-column boxes),
        # and for an output the TMA can write (gpu_rules.tma_store_map) its stores from a
        # tile in shared memory (BM x BN x 2 bytes in place of the staging: a 16-bit tile, or
        # half of a float32 one at a time)
        smem_max = target.limit("max_shared_memory_per_block", 49152)
        stores = (False, True) if tma_store_map(group) is not None else (False,)
        for bm, bn, st, inf, r, pe, cl, ts in itertools.product(
                (64, 128, 192), (64, 128, 192, 256), (2, 3, 4, 5, 6), (0, 1), (1, 8, 16),
                (False, True), (0, 2), stores):
            if bm > cap_m or bn > cap_n or st < 2 + inf:
                continue
            out_smem = bm * bn * 2 if ts else (bm // 64) * TMA_STAGING
            if st * (bm + bn) * 128 + out_smem + 2048 > smem_max or \
                    bn // 2 + 40 > tma_registers(bm // 64, target)[1]:
                continue
            if cl and ((bn // 64) % cl or cl * bm > cap_m):
                continue
            out.append(GpuConfig(threads=128 * (bm // 64 + 1), tile_m=bm, tile_n=bn, tile_k=64,
                                 stages=st, wgmma=True, inflight=inf, tma=True, raster=r,
                                 persistent=pe, cluster=cl, tma_store=ts))
    if default.mma or default.wgmma:
        max_t = target.limit("max_threads_per_block", 1024)
        smem_max = target.limit("max_shared_memory_per_block", 49152)
        A, B = group.mm
        nb = len(group.domain) - 2
        b_row = B.strides[nb + 1] == 1
        for bm, bn, bk, wm, wn, st, fr in itertools.product(
                (64, 128, 256), (64, 128, 256), (32, 64), (1, 2, 4), (1, 2, 4), (2, 3, 4, 5), (0, 2)):
            wtm, wtn = bm // wm, bn // wn
            if bm > cap_m or bn > cap_n or wtm % 16 or wtn % 16 or wtm * wtn // 32 > 128:
                continue
            if 32 * wm * wn > max_t or st * (bm + bn) * bk * 2 > smem_max or (b_row and bn < 64):
                continue
            out.append(GpuConfig(threads=32 * wm * wn, tile_m=bm, tile_n=bn, tile_k=bk, warps_m=wm,
                                 warps_n=wn, stages=st, mma=True, fragments=fr))
    else:
        isz = 8 if any(e.dtype in ("float64", "int64") for e in group.exprs) else 4
        smem = target.limit("shared_memory_per_block", 49152)
        for bm, bn, bk in itertools.product((32, 64, 128), (32, 64, 128), (8, 16, 32)):
            if bm > cap_m or bn > cap_n or (bm // 16) * (bn // 16) > 64:
                continue
            if bk * (bm + 1 + bn + 1) * isz > smem:
                continue
            out.append(GpuConfig(threads=256, tile_m=bm, tile_n=bn, tile_k=bk))
    return list(dict.fromkeys(out))


def tune_space(group, target, default: GpuConfig):
    """The GroupSpace of a group on a CUDA target: matmul searches tiles, warps, stages and
    fragments; elementwise and reduce keep their default (their launch shape is decided from
    the device at run time, backends/cuda/launch.py)."""
    from .space import GroupSpace
    if group.kind != "matmul":
        return GroupSpace(default, (default,), ())
    configs = tuple(matmul_tune_space(group, target, default))
    axes = {}
    for name in ("tile_m", "tile_n", "tile_k", "warps_m", "warps_n", "stages", "fragments",
                 "wgmma", "inflight", "tma", "raster", "persistent", "cluster", "tma_store"):
        vals = sorted({getattr(c, name) for c in configs})
        if len(vals) > 1:
            axes[name] = tuple(vals)
    return GroupSpace(default, configs, tuple(axes.items()))

"""The tensor-core GEMM renderers of CUDA C: mma.sync (matmul_mma.cu.j2), Hopper's wgmma fed
by cp.async (matmul_wgmma.cu.j2) and the warp-specialised TMA kernel (matmul_tma.cu.j2),
each with the group's elementwise epilogue fused (cstyle/skeletons.py's epilogue). Which
of them a matmul may use: schedule/gpu_rules.py.
"""
from __future__ import annotations

import math

from .. import errors as E
from ..fuse import Group
from ..ir.dtypes import ITEMSIZE
from ..schedule.gpu import GpuConfig
from ..schedule.gpu_rules import TMA_STAGING, batch_axis, mm_common, tma_registers, tma_store_map
from .cstyle.emitter import CEmitter, indent
from .cstyle.language import CStyleLanguage
from .cstyle.launch import Launch
from .cstyle.sizes import size_lets
from .cstyle.skeletons import batch_offset, epilogue, params_of, tiles_grid
from .jinja_env import template


def render_matmul_mma(group: Group, cfg: GpuConfig, name: str, scalars, fallback: str,
                      lang: CStyleLanguage) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = mm_common(group)
    em = CEmitter(lang, group, V=2, index=lang.index_type(group), scalar_bufs=scalars)
    BM, BN, BK = cfg.tile_m, cfg.tile_n, cfg.tile_k
    WM, WN = cfg.warps_m, cfg.warps_n
    T = 32 * WM * WN
    WTM, WTN = BM // WM, BN // WN
    MI, NI = WTM // 16, WTN // 8
    b_row = B.strides[nb + 1] == 1          # B contiguous along N (x @ w); else along K (x @ w.T)
    kind = "bf16" if A.dtype == "bfloat16" else "f16"
    a_stage = BM * BK * 2
    b_stage = BK * BN * 2
    smem = cfg.stages * (a_stage + b_stage)
    epi = epilogue(em, "cv[v]", 2)
    src = template("cuda/matmul_mma.cu.j2").render(
        name=name, T=T, BM=BM, BN=BN, BK=BK, WM=WM, WN=WN, WTM=WTM, WTN=WTN, MI=MI, NI=NI,
        STAGES=cfg.stages, M=M, N=N, K=K, kind=kind, b_row=b_row, params=", ".join(em.params()),
        a_off=batch_offset(A, batch, nb, "bz"), b_off=batch_offset(B, batch, nb, "bz"),
        a_m=A.strides[nb], b_n=B.strides[nb + 1], b_k=B.strides[nb + 2], A=A, B=B,
        a_stage=a_stage, b_stage=b_stage, epi=epi, I=em.I, sizes=size_lets(em.I), indent=indent,
        fragments=cfg.fragments or 1,
        acc_dtype=group.exprs[0].dtype)
    align = tuple(sorted({(A.buf, 16), (B.buf, 16)} |
                         {(b, al) for _, b, al in em.vector_accesses()}))
    grid = tiles_grid(group, BM, BN)
    return src, Launch(name, "matmul", T, params_of(em), grid, smem=smem, align=align,
                       fallback=fallback, lang=lang)


def render_matmul_wgmma(group: Group, cfg: GpuConfig, name: str, scalars, fallback: str,
                        target, lang: CStyleLanguage) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = mm_common(group)
    em = CEmitter(lang, group, V=2, index=lang.index_type(group), scalar_bufs=scalars)
    BM, BN = cfg.tile_m, cfg.tile_n
    if cfg.tile_k != 64 or BM % 64 or BN % 64 or not 64 <= BN <= 256 or cfg.stages < 2 + cfg.inflight:
        raise E.TargetError(f"wgmma schedule {cfg} is not one the template lays out",
                            hint="tile_k 64, tile_m a multiple of 64, tile_n 64..256 in steps of 64, "
                                 "stages >= 2 + inflight")
    WG = BM // 64
    b_row = B.strides[nb + 1] == 1          # B contiguous along N (x @ w); else along K (x @ w.T)
    kind = "bf16" if A.dtype == "bfloat16" else "f16"
    a_stage, b_stage = BM * 128, BN * 128
    smem = cfg.stages * (a_stage + b_stage) + 1024
    limit = target.limit("max_shared_memory_per_block", 0)
    if limit and smem > limit:
        raise E.TargetError(f"wgmma schedule {cfg} needs {smem} B of shared memory per block, "
                            f"{target.name} allows {limit}", hint="fewer stages or a smaller tile")
    epi = epilogue(em, "cv[v]", 2)
    src = template("cuda/matmul_wgmma.cu.j2").render(
        name=name, T=128 * WG, WG=WG, BM=BM, BN=BN, STAGES=cfg.stages, INFLIGHT=cfg.inflight,
        M=M, N=N, K=K, kind=kind, b_row=b_row, params=", ".join(em.params()),
        a_off=batch_offset(A, batch, nb, "bz"), b_off=batch_offset(B, batch, nb, "bz"),
        a_m=A.strides[nb], b_n=B.strides[nb + 1], b_k=B.strides[nb + 2], A=A, B=B,
        a_stage=a_stage, b_stage=b_stage, epi=epi, I=em.I, sizes=size_lets(em.I), indent=indent)
    align = tuple(sorted({(A.buf, 16), (B.buf, 16)} |
                         {(b, al) for _, b, al in em.vector_accesses()}))
    grid = tiles_grid(group, BM, BN)
    return src, Launch(name, "matmul", 128 * WG, params_of(em), grid, smem=smem, align=align,
                       fallback=fallback, lang=lang)


def render_matmul_tma(group: Group, cfg: GpuConfig, name: str, scalars, fallback: str,
                      target, lang: CStyleLanguage) -> tuple[str, Launch]:
    nb, batch, M, N, K, A, B = mm_common(group)
    BM, BN = cfg.tile_m, cfg.tile_n
    CW, C = BM // 64, max(1, cfg.cluster)
    # tma_store where the output allows it (else the epilogue stores, as for any output)
    c_map = tma_store_map(group) if cfg.tma_store else None
    # the epilogue runs on 4 columns a thread through the staging buffer, or on a thread's
    # pairs of accumulators in place for the TMA's stores (N is a multiple of 8: mma_eligible)
    em = CEmitter(lang, group, V=2 if c_map else 4, index=lang.index_type(group), scalar_bufs=scalars)
    if cfg.tile_k != 64 or BM % 64 or not 1 <= CW <= 3 or BN % 64 or not 64 <= BN <= 256 or \
            cfg.stages < 2 + cfg.inflight or cfg.inflight > 1 or C not in (1, 2) or \
            (BN // 64) % C:
        raise E.TargetError(f"TMA schedule {cfg} is not one the template lays out",
                            hint="tile_k 64, tile_m 64..192 in steps of 64, tile_n 64..256 in steps "
                                 "of 64, inflight 0 or 1, stages >= 2 + inflight, cluster 0, 1 or "
                                 "2 (2: tile_n 128 or 256)")
    b_row = B.strides[nb + 1] == 1          # B contiguous along N (x @ w); else along K (x @ w.T)
    kind = "bf16" if A.dtype == "bfloat16" else "f16"
    smem = cfg.stages * (BM + BN) * 128 + CW * (64 * BN * 2 if c_map else TMA_STAGING) + 1024
    limit = target.limit("max_shared_memory_per_block", 0)
    if limit and smem + 1024 > limit:          # + the barriers (static, 1 KiB-aligned)
        raise E.TargetError(f"TMA schedule {cfg} needs {smem} B of shared memory per block, "
                            f"{target.name} allows {limit}",
                            hint="fewer stages or a smaller tile" +
                                 (" (the TMA's stores hold a whole tile)" if c_map else ""))
    Z = math.prod(batch) if batch else 1
    za, zb = batch_axis(A.strides[:nb], batch), batch_axis(B.strides[:nb], batch)
    if za is None or zb is None:
        raise E.TargetError(f"TMA schedule {cfg}: the operands' batch dims do not collapse into "
                            "one axis", hint="a wgmma schedule without tma")
    reg_p, reg_c = tma_registers(CW, target)
    # loads that stay the same down a tile's rows (stride 0 along M, a bias along N) are read
    # once a tile into registers by the staged epilogue, not once per row pass
    hoist = () if c_map else tuple(li for li in em.varying_loads()
                                   if em.g.loads[li].strides[nb] == 0)
    epi = epilogue(em, "cv[v]", 2 if c_map else 4, hoist=hoist, chunks=BN // 32,
                    stored_by_tma=bool(c_map))
    raster = max(1, cfg.raster or 1)
    src = template("cuda/matmul_tma.cu.j2").render(
        name=name, T=128 * (CW + 1), CW=CW, BM=BM, BN=BN, STAGES=cfg.stages, INFLIGHT=cfg.inflight,
        RASTER=raster, REG_P=reg_p, REG_C=reg_c, M=M, N=N, K=K, kind=kind, b_row=b_row,
        a_z=bool(za), b_z=bool(zb), Z=Z, PERSIST=cfg.persistent, CLUSTER=C,
        TMA_STORE=bool(c_map), out_var="s0",
        OUT_BYTES=ITEMSIZE[group.stores[0].access.dtype] if c_map else 0,
        params=", ".join(em.params()), epi=epi, I=em.I, sizes=size_lets(em.I), indent=indent)

    def tmap(acc, inner, inner_n, outer, outer_n, z, box):
        # innermost first: (inner, outer, batch); a batch of one (or a broadcast operand)
        # gets one z slice whose stride is never used, any multiple of 16 bytes
        zs = z if z else outer * outer_n
        return (acc.buf, acc.offset, (inner_n, outer_n, Z if z else 1), (outer, zs), box, 2)
    a_map = tmap(A, 1, K, A.strides[nb], M, za, (64, BM, 1))
    if b_row:
        b_map = tmap(B, 1, N, B.strides[nb + 2], K, zb, (64, 64, 1))
    else:
        b_map = tmap(B, 1, K, B.strides[nb + 1], N, zb, (64, BN // C, 1))
    align = tuple(sorted({(A.buf, 16), (B.buf, 16)} | ({(c_map[0], 16)} if c_map else set()) |
                         {(b, al) for _, b, al in em.vector_accesses()}))
    return src, Launch(name, "matmul", 128 * (CW + 1), params_of(em), tma_grid(group, cfg),
                       smem=smem, align=align, fallback=fallback,
                       tmaps=(a_map, b_map) + ((c_map,) if c_map else ()), cluster=C, lang=lang)


def tma_grid(group: Group, cfg: GpuConfig) -> tuple:
    """The TMA kernel's grid: clusters of C blocks to each BM x BN work item, or (persistent)
    the work items that blocks on every SM loop over."""
    nb, batch, M, N, K, A, B = mm_common(group)
    BM, BN, C = cfg.tile_m, cfg.tile_n, max(1, cfg.cluster)
    blocks = -(-N // BN) * -(-M // (BM * C)) * (math.prod(batch) if batch else 1) * C
    return ("persistent", blocks) if cfg.persistent else ("tiles", blocks, 1, 1)

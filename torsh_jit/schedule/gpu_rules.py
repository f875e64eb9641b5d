"""Which GPU matmul kernels a group and a target allow: the eligibility rules of the tensor-core
paths (mma.sync, Hopper's wgmma, the TMA and its stores) and the register split of the
warp-specialised kernel. Both the default schedule (schedule/gpu.py) and the CUDA renderers
(codegen/cuda_matmul.py) read them; nothing here writes code.
"""
from __future__ import annotations

import math

from ..ir.dtypes import ITEMSIZE

TMA_STAGING = 64 * 40 * 4      # bytes per consumer warpgroup: 64 rows x 32 columns of float32, padded


def arch_number(arch: str) -> int:
    """'sm_90a' -> 90."""
    digits = "".join(c for c in arch if c.isdigit())
    return int(digits) if digits else 0


def arch_specific(arch: str) -> bool:
    """'sm_90a': code for exactly this architecture (wgmma), which no later GPU runs."""
    return arch.endswith("a")


def mm_common(group):
    """(batch dims, batch, M, N, K, A, B) of a matmul group."""
    nb = len(group.domain) - 2
    batch = group.domain[:nb]
    M, N = group.domain[-2:]
    A, B = group.mm
    return nb, batch, M, N, group.k, A, B


def mma_eligible(group, target) -> bool:
    """Tensor cores (mma.sync m16n8k16, float32 accumulation) take this matmul: 16-bit float
    operands of one dtype, A contiguous along K, B along N or K, every 16-byte chunk aligned."""
    if arch_number(target.arch) < 80 or not group.mm:
        return False
    A, B = group.mm
    if A.dtype != B.dtype or A.dtype not in ("float16", "bfloat16"):
        return False
    nb = len(group.domain) - 2
    M, N = group.domain[-2:]
    K = group.k
    if K % 8 or N % 8 or K == 0:
        return False
    a_b, a_m, a_k = A.strides[:nb], A.strides[nb], A.strides[nb + 2]
    b_b, b_n, b_k = B.strides[:nb], B.strides[nb + 1], B.strides[nb + 2]
    if a_k != 1 or (a_m % 8 and M > 1) or A.offset % 8 or any(s % 8 for s in a_b):
        return False
    if B.offset % 8 or any(s % 8 for s in b_b):
        return False
    return (b_n == 1 and b_k % 8 == 0) or (b_k == 1 and b_n % 8 == 0)


def wgmma_eligible(group, target) -> bool:
    """Hopper's warpgroup tensor cores take this matmul: the target is sm_90a exactly and the
    operands are what mma.sync takes (16-bit floats, 16-byte chunks along K, or along N for B)."""
    return (arch_number(target.arch) == 90 and arch_specific(target.arch)
            and mma_eligible(group, target))


def batch_axis(strides, batch) -> int | None:
    """The one element stride that walks an operand's batch dims in order (0: broadcast
    along all of them), or None when they do not collapse into one axis."""
    dims = [(d, s) for d, s in zip(batch, strides) if d != 1]
    if not dims:
        return 0
    if all(s == 0 for _, s in dims):
        return 0
    for (d0, s0), (d1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * d1:
            return None
    return dims[-1][1] if dims[-1][1] > 0 else None


def tma_eligible(group, target) -> bool:
    """The TMA can feed this matmul: wgmma takes it, each operand's batch dims collapse into
    one axis (or broadcast), and the tensor maps' limits hold (16-byte strides, at most 2^32
    elements along an axis; the work items, tiles times batches, counted in an int)."""
    if not wgmma_eligible(group, target):
        return False
    nb, batch, M, N, K, A, B = mm_common(group)
    Z = math.prod(batch) if batch else 1
    za, zb = batch_axis(A.strides[:nb], batch), batch_axis(B.strides[:nb], batch)
    if za is None or zb is None or max(M, N, K, Z) >= 2**32 or -(-M // 64) * -(-N // 64) * Z >= 2**31:
        return False
    b_outer = B.strides[nb + 2] if B.strides[nb + 1] == 1 else B.strides[nb + 1]
    return all(s % 8 == 0 and 0 <= s * 2 < 2**40 for s in (za, zb, A.strides[nb], b_outer))


def tma_store_map(group) -> tuple | None:
    """The tensor map spec (buffer, offset, dims, strides, box, element bytes) of a matmul's
    output when the TMA can write it (templates/cuda/matmul_tma.cu.j2, TMA_STORE): one
    output, float16, bfloat16 or float32, rows contiguous with a 16-byte multiple stride,
    batch dims in one axis; else None. Boxes of 64 rows of 128 bytes, innermost first."""
    if len(group.stores) != 1:
        return None
    nb, batch, M, N, K, A, B = mm_common(group)
    out = group.stores[0].access
    st = out.strides
    if out.dtype not in ("float16", "bfloat16", "float32") or len(st) != nb + 2 or st[nb + 1] != 1:
        return None
    es = ITEMSIZE[out.dtype]
    Z = math.prod(batch) if batch else 1
    zs = batch_axis(st[:nb], batch)
    if zs is None or (Z > 1 and zs == 0) or st[nb] * es % 16 or not 0 < st[nb] * es < 2**40 or \
            zs * es % 16 or zs * es >= 2**40 or max(M, N, Z) >= 2**32:
        return None
    return (out.buf, out.offset, (N, M, Z if zs else 1), (st[nb], zs if zs else st[nb] * M),
            (128 // es, 64, 1), es)


def thread_registers(target, threads: int) -> int:
    """Registers a thread may hold when `threads` share a block: the target's registers per
    block divided out, within its registers per thread."""
    return min(target.limit("max_registers_per_thread", 255),
               target.limit("registers_per_block", 65536) // threads)


def tma_registers(CW: int, target) -> tuple[int, int]:
    """(producer, consumer) registers per thread after setmaxnreg, for CW consumer warpgroups
    and one producer: the block's registers at entry (the launch bound's cap, a multiple of 8,
    times the threads) shared out, the producer keeping 40 (24 beside three consumers)."""
    T = 128 * (CW + 1)
    entry = thread_registers(target, T) // 8 * 8
    prod = 40 if CW <= 2 else 24
    cons = min(240, (T * entry - 128 * prod) // (128 * CW) // 8 * 8)
    return prod, cons

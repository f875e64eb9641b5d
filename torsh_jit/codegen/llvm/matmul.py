"""Matmul with a fused epilogue for the LLVM targets.

Register-blocked micro-kernel: MR rows of A times NR vectors of a packed panel of
B, accumulated in MR x NR vector registers with FMA. B is packed per column block
of NC columns (K x NC, zero-padded to whole panels) so the micro-kernel streams it
with aligned vector loads; A is read in place (any strides). Work units are
(batch, MR-row tile) pairs, split across threads. The epilogue (bias, activation,
residual ...) runs on the accumulators before the only store of C.
"""
from __future__ import annotations

from ...fuse import Group
from ...ir.dtypes import ITEMSIZE, family
from ...schedule.config import Config
from ...schedule.layout import matmul_column_block, matmul_dims
from ..jinja_env import template
from . import ops as T
from .emitter import KernelEmitter
from .types import MEMTYPE, SCALAR, SUFFIX, vsuffix, vty


def render_matmul(group: Group, config: Config, name: str, module) -> str:
    em = KernelEmitter(group, config, module)
    batch, M, N, K = matmul_dims(group)
    W, MR, NR = config.lanes, config.mr, config.nr
    acc_dt = group.exprs[0].dtype
    A, B = group.mm
    nb = len(batch)

    def split(acc):
        """batch strides (collapsed to one linear batch index through divmod in the
        template), then m, n and k: the domain strides (batch..., m, n) + (k,)"""
        st = acc.strides
        return st[:nb], st[nb], st[nb + 1], st[nb + 2]
    a_b, a_m, _, a_k = split(A)
    b_b, _, b_n, b_k = split(B)
    return template("llvm/matmul.ll.j2").render(
        em=em, name=name, M=M, N=N, K=K, W=W, MR=MR, NR=NR, NRW=NR * W,
        NC=matmul_column_block(group, config),
        batch=batch, a_b=a_b, a_m=a_m, a_k=a_k, b_b=b_b, b_n=b_n, b_k=b_k,
        A=A, B=B, acc_dt=acc_dt, TA=MEMTYPE[A.dtype], TB=MEMTYPE[B.dtype],
        VT=vty(acc_dt, W), S=SCALAR[acc_dt], isz=ITEMSIZE[acc_dt],
        tiles_m=-(-M // MR), fma=T.MULADD[family(acc_dt)], vsuf=vsuffix(acc_dt, W),
        # B is loaded in its memory type (bool: i8) and at its own alignment
        sufB=f"v{W}{SUFFIX[MEMTYPE[B.dtype]]}", VB=f"<{W} x {MEMTYPE[B.dtype]}>",
        iszB=ITEMSIZE[B.dtype], size_t=f"i{module.target.pointer_bits}")

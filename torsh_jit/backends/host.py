"""Arrays in host memory that the host-side backends share: outputs aligned for vector
stores, and the random inputs a tuner times candidates on.
"""
from __future__ import annotations

import numpy as np

ROTATE_BYTES_CAP = 512 << 20


# Large outputs start on a cache line: numpy's big allocations are 16 mod 64, so every
# 64-byte vector store straddled two lines (chain on 16M float32: 15.5 -> 13.8 ms).
ALIGN_FROM = 1 << 20


def nbytes(shape, dtype) -> int:
    n = 1
    for s in shape:
        n *= s
    return n * dtype.itemsize


def aligned_empty(shape, dtype):
    """An empty array; from ALIGN_FROM bytes on, its data starts on a 64-byte line."""
    size = nbytes(shape, dtype)
    if size < ALIGN_FROM:
        return np.empty(shape, dtype)
    raw = np.empty(size + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + size].view(dtype).reshape(shape)


def random_inputs(specs, rng) -> list:
    """One set of arguments for specs: random values of each dtype, strided views as specified."""
    out = []
    for s in specs:
        if s.kind == "scalar":
            v = rng.standard_normal() if s.dtype.startswith("float") else int(rng.integers(1, 8))
            out.append(np.asarray(v if s.dtype != "bool" else True, dtype=s.dtype))
            continue
        shape = s.shape
        if s.dtype.startswith("float"):
            a = rng.standard_normal(shape).astype(s.dtype)
        elif s.dtype == "bool":
            a = rng.random(shape) < 0.5
        else:
            a = rng.integers(-64, 64, shape).astype(s.dtype)
        if s.strides is not None:
            # a view with these element strides over a larger buffer
            need = 1 + sum((d - 1) * st for d, st in zip(shape, s.strides) if d > 0)
            base = rng.standard_normal(need).astype(s.dtype) if s.dtype.startswith("float") else \
                np.zeros(need, s.dtype)
            isz = np.dtype(s.dtype).itemsize
            a = np.lib.stride_tricks.as_strided(base, shape, tuple(st * isz for st in s.strides))
        out.append(a)
    return out


def rotation_copies(bytes_per_set: int) -> int:
    from ..schedule.space import llc_bytes
    want = -(-2 * llc_bytes() // max(1, bytes_per_set))
    return int(max(1, min(8, want, ROTATE_BYTES_CAP // max(1, bytes_per_set))))

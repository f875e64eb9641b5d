"""Tensor maps for Hopper's tensor memory accelerator, and launches that pass them.

A kernel fed by the TMA (templates/cuda/matmul_tma.cu.j2) takes two tensor maps by value
(`const __grid_constant__`): 128-byte descriptors of a tile box over a global tensor, which
the driver encodes (cuTensorMapEncodeTiled) for each pointer. cupy's kernel call passes
pointers and numbers only, so these kernels launch through the driver's cuLaunchKernel, with
the same function handle and stream. Both come from libcuda through ctypes: what cupy and
torch already load, with nothing to install.

Encoded maps are kept per (pointer, layout): a training loop calls with the same buffers.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from ... import errors as E
from ...once import once

# CUtensorMap enums (cuda.h): fixed by the driver API
_UINT16 = 1                 # CU_TENSOR_MAP_DATA_TYPE_UINT16: 16-bit floats are copied as bits
_UINT32 = 2                 # CU_TENSOR_MAP_DATA_TYPE_UINT32: float32, as bits too
_INTERLEAVE_NONE = 0
_SWIZZLE_128B = 3
_L2_PROMOTION_256B = 3
_OOB_FILL_ZERO = 0          # CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE: outside the tensor reads 0
MAP_BYTES = 128
_MAX_MAPS = 256             # encoded maps kept per function


@once
def _libcuda():
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as err:
        raise E.TargetError(f"the CUDA driver library (libcuda.so.1) did not load: {err}",
                            hint="kernels fed by the TMA need the NVIDIA driver; a schedule "
                                 "without tma runs through cupy alone") from None
    enc = lib.cuTensorMapEncodeTiled
    enc.restype = ctypes.c_int
    enc.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p,
                    ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64),
                    ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32),
                    ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    launch = lib.cuLaunchKernel
    launch.restype = ctypes.c_int
    launch.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p,
                                                                   ctypes.POINTER(ctypes.c_void_p),
                                                                   ctypes.c_void_p]
    return lib


def _error_name(code: int) -> str:
    lib = _libcuda()
    s = ctypes.c_char_p()
    try:
        lib.cuGetErrorName.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        if lib.cuGetErrorName(code, ctypes.byref(s)) == 0 and s.value:
            return f"{s.value.decode()} ({code})"
    except Exception:
        pass
    return str(code)


class TensorMap:
    """One encoded CUtensorMap in 64-byte-aligned host memory."""

    __slots__ = ("_buf", "addr")

    def __init__(self):
        self._buf = np.zeros(MAP_BYTES + 64, np.uint8)
        base = self._buf.ctypes.data
        self.addr = base + (-base % 64)


def encode(ptr: int, offset: int, dims, strides, box, itemsize: int = 2) -> TensorMap:
    """A tensor map of a tiled box over the tensor at ptr + offset elements: dims and box
    innermost first (elements), strides of the outer dims in elements; 128-byte swizzle,
    zeros outside the tensor. InternalError with the driver's code if it refuses."""
    rank = len(dims)
    m = TensorMap()
    gdim = (ctypes.c_uint64 * rank)(*dims)
    gstride = (ctypes.c_uint64 * (rank - 1))(*(s * itemsize for s in strides))
    bdim = (ctypes.c_uint32 * rank)(*box)
    estride = (ctypes.c_uint32 * rank)(*([1] * rank))
    dtype = {2: _UINT16, 4: _UINT32}[itemsize]
    rc = _libcuda().cuTensorMapEncodeTiled(
        m.addr, dtype, rank, ptr + offset * itemsize, gdim, gstride, bdim, estride,
        _INTERLEAVE_NONE, _SWIZZLE_128B, _L2_PROMOTION_256B, _OOB_FILL_ZERO)
    if rc != 0:
        raise E.InternalError(f"the driver refused a tensor map (cuTensorMapEncodeTiled: "
                              f"{_error_name(rc)}) for address {ptr + offset * itemsize:#x}, dims "
                              f"{tuple(dims)}, strides {tuple(strides)} elements, box {tuple(box)}")
    return m


class MapCache:
    """Encoded maps of one function's launches, by (pointer, map spec)."""

    def __init__(self):
        self._maps: dict = {}
        self._lock = threading.Lock()

    def get(self, ptr: int, spec) -> TensorMap:
        key = (ptr, spec)
        m = self._maps.get(key)
        if m is None:
            _, offset, dims, strides, box, itemsize = spec
            m = encode(ptr, offset, dims, strides, box, itemsize)
            with self._lock:
                if len(self._maps) >= _MAX_MAPS:
                    self._maps.clear()
                self._maps[key] = m
        return m


class _LaunchConfig(ctypes.Structure):
    """CUlaunchConfig (cuda.h)."""
    _fields_ = [("grid_x", ctypes.c_uint), ("grid_y", ctypes.c_uint), ("grid_z", ctypes.c_uint),
                ("block_x", ctypes.c_uint), ("block_y", ctypes.c_uint), ("block_z", ctypes.c_uint),
                ("smem", ctypes.c_uint), ("stream", ctypes.c_void_p), ("attrs", ctypes.c_void_p),
                ("num_attrs", ctypes.c_uint)]


def max_active_clusters(fn_ptr: int, block: int, smem: int, cluster: int, sms: int) -> int:
    """Clusters of a kernel compiled with __cluster_dims__(cluster) that the device runs at
    once (cuOccupancyMaxActiveClusters: blocks of a cluster share a GPC, so this can be fewer
    than SMs / cluster). 0 when the driver does not say."""
    lib = _libcuda()
    occ = getattr(lib, "cuOccupancyMaxActiveClusters", None)
    if occ is None:
        return 0
    occ.restype = ctypes.c_int
    occ.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.POINTER(_LaunchConfig)]
    cfg = _LaunchConfig(cluster * sms, 1, 1, block, 1, 1, smem, None, None, 0)
    n = ctypes.c_int(0)
    rc = occ(ctypes.byref(n), fn_ptr, ctypes.byref(cfg))
    return n.value if rc == 0 else 0


def launch(fn_ptr: int, grid, block: int, smem: int, stream_ptr: int, maps, args) -> None:
    """cuLaunchKernel with the tensor maps first (by value), then args: ints as 64-bit
    pointers, numpy scalars as their own type."""
    vals = [np.uint64(a) if isinstance(a, int) else a for a in args]
    holders = [np.array(v) for v in vals]            # the bytes of each by-value argument
    params = (ctypes.c_void_p * (len(maps) + len(holders)))(
        *[m.addr for m in maps], *[h.ctypes.data for h in holders])
    gx, gy, gz = grid
    rc = _libcuda().cuLaunchKernel(fn_ptr, gx, gy, gz, block, 1, 1, smem, stream_ptr or None,
                                   params, None)
    if rc != 0:
        raise E.InternalError(f"launching a TMA kernel failed: {_error_name(rc)} (grid {grid}, "
                              f"{block} threads, {smem} B shared memory)")

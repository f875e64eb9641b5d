"""Arrays on the GPU: cupy arrays, torch tensors, anything with __cuda_array_interface__ or
DLPack, read as (pointer, shape, strides, dtype, device); how a CUDA kernel classifies its
arguments (spec_of) and keys them on the hot path; and the bytes a buffer or by-value
argument of each dtype is stored as."""
from __future__ import annotations

import math

import numpy as np

from ... import errors as E
from ...ir.tracer import ArgSpec, contiguous_strides, spec_of as host_spec_of
from .hardware import cupy_or_none, require_cupy

_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16",
                 "bfloat16": "bfloat16", "int32": "int32", "int64": "int64", "bool": "bool"}
SUPPORTED = ("bool", "int32", "int64", "float32", "float64", "float16", "bfloat16")


def np_dtype_name(dt) -> str | None:
    """The supported dtype name of a numpy-like dtype, or None."""
    try:
        name = np.dtype(dt).name
    except TypeError:
        return None
    return name if name in SUPPORTED else None


def is_torch(a) -> bool:
    return type(a).__module__.startswith("torch") and hasattr(a, "data_ptr")


def is_cupy(a) -> bool:
    return type(a).__module__.startswith("cupy") and hasattr(a, "data") and hasattr(a, "device")


def device_view(a):
    """(pointer, shape, element strides, dtype name, device id, family) of a device array,
    or None for what is not one. family: 'torch', 'cupy' or 'cai'."""
    if is_torch(a):
        if not a.is_cuda:
            return None
        name = str(a.dtype).replace("torch.", "")
        if name not in _TORCH_DTYPES:
            raise E.DTypeError(f"torch dtype {a.dtype} is not supported",
                               hint="use one of " + ", ".join(SUPPORTED))
        return a.data_ptr(), tuple(a.shape), tuple(a.stride()), name, a.device.index, "torch"
    if is_cupy(a):
        name = np_dtype_name(a.dtype)
        if name is None:
            raise E.DTypeError(f"cupy dtype {a.dtype} is not supported",
                               hint="use one of " + ", ".join(SUPPORTED))
        isz = a.itemsize
        return a.data.ptr, tuple(a.shape), tuple(s // isz for s in a.strides), name, \
            a.device.id, "cupy"
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is not None:
        dt = np.dtype(cai["typestr"])
        name = np_dtype_name(dt)
        if name is None:
            raise E.DTypeError(f"an array of dtype {dt} is not supported",
                               hint="use one of " + ", ".join(SUPPORTED))
        shape = tuple(cai["shape"])
        st = cai.get("strides")
        strides = tuple(s // dt.itemsize for s in st) if st else contiguous_strides(shape)
        cp = require_cupy("a __cuda_array_interface__ argument")
        ptr = cai["data"][0]
        dev = cp.cuda.runtime.pointerGetAttributes(ptr).device if ptr else 0
        return ptr, shape, strides, name, dev, "cai"
    if hasattr(a, "__dlpack__") and hasattr(a, "__dlpack_device__") and not isinstance(a, np.ndarray):
        kind, dev = a.__dlpack_device__()
        if kind == 2:     # kDLCUDA
            cp = require_cupy("a DLPack argument on a CUDA device")
            return device_view(cp.from_dlpack(a))
    return None


def array_ptr(o) -> int:
    """The device pointer of a torch tensor, cupy array or __cuda_array_interface__ array."""
    if is_torch(o):
        return o.data_ptr()
    if is_cupy(o):
        return o.data.ptr
    return o.__cuda_array_interface__["data"][0]


def spec_of(arg, *, index: int = 0, name: str | None = None, where: str | None = None) -> ArgSpec:
    """Classify an argument for a CUDA kernel: device arrays where they are; numpy arrays
    (copied to the device contiguous, so specialised as contiguous), 16-bit floats too."""
    dv = device_view(arg) if not isinstance(arg, (np.ndarray, np.generic, bool, int, float)) else None
    if dv is not None:
        _, shape, strides, dtype, _, _ = dv
        # a 0-d device array stays where it is: read through its pointer, never synchronised
        st = None if strides == contiguous_strides(shape) or math.prod(shape) <= 1 else strides
        return ArgSpec("array", shape, dtype, strides=st)
    if isinstance(arg, np.ndarray) and np_dtype_name(arg.dtype) in ("float16", "bfloat16"):
        d = np_dtype_name(arg.dtype)
        return ArgSpec("scalar", (), d) if arg.ndim == 0 else ArgSpec("array", tuple(arg.shape), d)
    if isinstance(arg, np.generic) and np_dtype_name(arg.dtype) in ("float16", "bfloat16"):
        return ArgSpec("scalar", (), np_dtype_name(arg.dtype))
    s = host_spec_of(arg, index=index, name=name, where=where)
    if s.kind == "array" and s.strides is not None:
        s = ArgSpec("array", s.shape, s.dtype)
    return s


def device_key(a):
    """The part of a call's specialisation key a device array gives (hot path)."""
    if is_torch(a):
        return (type(a), a.shape, a.stride(), a.dtype, a.device)
    return (type(a), a.shape, a.strides, a.dtype.str, a.device.id)


def register_device_keys(table: dict) -> None:
    """Tell the kernel's hot path how to key cupy arrays and torch tensors."""
    cp = cupy_or_none()
    if cp is not None:
        table[cp.ndarray] = device_key
    try:
        import sys
        torch = sys.modules.get("torch")
        if torch is not None:
            table[torch.Tensor] = device_key
    except Exception:
        pass


def storage(dtype: str):
    """numpy dtype of a buffer's bytes (bfloat16, which numpy lacks, as its bits)."""
    return np.dtype(np.uint16) if dtype == "bfloat16" else np.dtype(dtype)


def to_host(o):
    """A cupy array copied to numpy (bfloat16 bits as ml_dtypes bfloat16)."""
    h = o.get()
    if h.dtype == np.uint16:
        import ml_dtypes
        return h.view(ml_dtypes.bfloat16)
    return h


def scalar_value(a, dtype: str):
    """A by-value kernel argument of the dtype (16-bit floats as their bits)."""
    if dtype == "bfloat16":
        import ml_dtypes
        return np.asarray(a, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)[()]
    if dtype == "float16":
        return np.asarray(a, dtype=np.float16).view(np.uint16)[()]
    if dtype == "bool":
        return np.uint8(bool(a))
    if hasattr(a, "item") and not isinstance(a, np.generic):
        a = a.item()
    return np.dtype(dtype).type(a)

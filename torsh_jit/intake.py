"""A call's arguments as the kernel reads them, and its results in the caller's kind.

One reading for classification and launch, so the two can never disagree: numpy arrays
of any layout pass as they are (non-native byte order and unaligned memory converted, as
numpy's ufuncs convert them); anything array-like is read as numpy reads it (DLPack for
CPU memory, `__array_interface__`, `__array__`); torch CPU tensors come in through DLPack
without a copy and their results go back as torch tensors. Device arrays
(`__cuda_array_interface__`: cupy, torch CUDA tensors) pass as they are: the CUDA backend
places them. `out=` takes any array numpy's ufuncs take: the result is written into it
directly where its layout and dtype are the kernel's, else computed and copied in with
numpy's `same_kind` cast.
"""
from __future__ import annotations

import inspect
import sys

import numpy as np

from . import errors as E
from .backends import backend_for
from .ir.tensor import Tensor
from .ir.tracer import ArgSpec, check_arity, param_names, spec_of

_PLAIN = (bool, int, float, complex, str, bytes, np.generic)
_DLPACK_CPU = 1          # DLDeviceType kDLCPU (kDLCUDAHost, 3, is host memory too)
_HOST_DEVICES = (1, 3)


def bind_keywords(fn, args: tuple, kwargs: dict) -> tuple:
    """The positional arguments Python would bind `fn(*args, **kwargs)` to. A parameter left
    to its default before one given by keyword takes its default value as an argument."""
    where = E.user_frame()
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise E.ArgumentError(f"{getattr(fn, '__name__', 'the kernel')} takes no keyword "
                              f"arguments here (its signature cannot be read): got "
                              f"{', '.join(kwargs)}", hint="pass the arguments by position",
                              where=where) from None
    name = getattr(fn, "__name__", "kernel")
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise E.ArgumentError(f"{name}{sig}: {e}", hint="pass one array or number per parameter, "
                              "by position or by its name", where=where) from None
    params = list(sig.parameters.values())
    for p in params:
        if p.name in bound.arguments and p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
            raise E.ArgumentError(f"{name}: {p.name!r} is a keyword-only parameter, which a kernel "
                                  "cannot take (its arguments are specialised by position)",
                                  hint=f"make {p.name!r} an ordinary parameter (before any *)",
                                  where=where)
    out = []
    given = [p for p in params if p.name in bound.arguments]
    last = params.index(given[-1]) if given else -1
    for p in params[:last + 1]:
        if p.kind == p.VAR_POSITIONAL:
            out += bound.arguments.get(p.name, ())
        elif p.name in bound.arguments:
            out.append(bound.arguments[p.name])
        else:
            out.append(p.default)
    return tuple(out)


def classify_args(fn, args, target=None, *, where=None) -> tuple[ArgSpec, ...]:
    """The ArgSpec of each argument of a call of fn (ArgSpecs pass as they are), as target's
    backend classifies it (device arrays, 16-bit floats), or as the host does where target
    is None; a wrong argument count is an ArgumentError at `where`."""
    check_arity(fn, len(args), where=where)
    names = param_names(fn, len(args))
    classify = backend_for(target).spec_of if target is not None else spec_of
    return tuple(a if isinstance(a, ArgSpec) else classify(a, index=i, name=names[i], where=where)
                 for i, a in enumerate(args))


def take_args(args, on_device: bool = False) -> tuple[tuple, object]:
    """(the arguments as the kernel reads them, the torch module if any was a torch CPU
    tensor: results go back as torch tensors, else None). on_device: the target is a GPU,
    which takes device arrays as they are; elsewhere they are refused."""
    out = list(args)
    torch = None
    for i, a in enumerate(args):
        if type(a) is np.ndarray and a.dtype.isnative and a.flags.aligned:
            continue
        if isinstance(a, Tensor):
            raise E.TraceError("a torsh-jit kernel called inside another kernel's function: "
                               "kernels do not nest", hint="call the inner Python function "
                               "instead (k.fn), so it is traced into the outer kernel",
                               where=E.user_frame())
        if isinstance(a, np.ndarray):
            if not a.dtype.isnative or not a.flags.aligned:
                out[i] = np.require(a.astype(a.dtype.newbyteorder("="), copy=False), requirements="A")
            continue
        if isinstance(a, _PLAIN):
            continue                  # numbers are classified as they are
        if _on_gpu(a):
            if on_device:
                continue              # the CUDA backend places device arrays
            raise E.ArgumentError(f"argument {i} ({type(a).__name__}) is in GPU memory, and this "
                                  "kernel runs on the CPU",
                                  hint="copy it to the host (x.cpu(), cupy.asnumpy(x)), or build "
                                       "the kernel for a cuda target", where=E.user_frame())
        if type(a).__module__.split(".")[0] == "torch":
            torch = sys.modules.get("torch")
        out[i] = _read(a, f"argument {i} ({type(a).__name__})")
    return tuple(out), torch


def _on_gpu(a) -> bool:
    try:
        return hasattr(a, "__cuda_array_interface__")
    except Exception:
        return False


def _read(a, what: str) -> object:
    """numpy's reading of an array-like (anything else is returned for spec_of to refuse)."""
    if hasattr(a, "__dlpack__") and hasattr(a, "__dlpack_device__"):
        try:
            dev = a.__dlpack_device__()[0]
        except Exception as e:
            raise _unreadable(what, e) from None
        if dev not in _HOST_DEVICES:
            raise E.ArgumentError(f"{what} is in memory of DLPack device type {dev}, not the CPU's "
                                  "nor a CUDA GPU's a kernel can read",
                                  hint="copy it to the CPU first (np.asarray(x), x.cpu())",
                                  where=E.user_frame())
        try:
            return _check_readable(np.from_dlpack(a), what)
        except E.TorshJitError:
            raise
        except Exception as e:
            if not (hasattr(a, "__array_interface__") or hasattr(a, "__array__")):
                raise _unreadable(what, e) from None
            # a DLPack export the object refuses: its other protocol may still serve
    if hasattr(a, "__array_interface__") or hasattr(a, "__array__"):
        try:
            arr = np.asarray(a)
        except Exception as e:          # whatever the object raises: say which argument
            raise _unreadable(what, e) from None
        _check_extent(a, arr, what)
        return _check_readable(arr, what)
    return a


def _check_readable(arr, what: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise _unreadable(what, TypeError(f"it gave a {type(arr).__name__}"))
    if not arr.dtype.isnative or not arr.flags.aligned:
        arr = np.require(arr.astype(arr.dtype.newbyteorder("="), copy=False), requirements="A")
    return arr


def _unreadable(what: str, e: BaseException) -> E.ArgumentError:
    return E.ArgumentError(f"{what} could not be read as an array: {type(e).__name__}: {e}",
                           hint="pass a numpy array (np.asarray(x)); a torch tensor that requires "
                                "grad: x.detach(); a conjugated one: x.resolve_conj()",
                           where=E.user_frame())


def _check_extent(obj, arr: np.ndarray, what: str) -> None:
    """An `__array_interface__` whose data is a buffer object must describe memory inside that
    buffer: numpy does not check it (a shape or strides beyond the buffer read past its end).
    A raw pointer cannot be checked; numpy trusts it too."""
    try:
        iface = obj.__array_interface__
        data = iface.get("data") if isinstance(iface, dict) else None
    except Exception:
        return
    if data is None or isinstance(data, tuple):
        return
    try:
        have = memoryview(data).nbytes
    except TypeError:
        return
    lo = hi = int(iface.get("offset", 0) or 0)
    if arr.size:
        for n, s in zip(arr.shape, arr.strides):
            (hi := hi + (n - 1) * s) if s > 0 else (lo := lo + (n - 1) * s)
        hi += arr.itemsize
    if lo < 0 or hi > have:
        raise E.ArgumentError(f"{what} describes bytes {lo}..{hi} of its data in "
                              f"__array_interface__, but the buffer holds {have} bytes",
                              hint="its shape, strides or offset are wrong: fix them, or pass "
                                   "np.frombuffer(buf, dtype).reshape(shape)",
                              where=E.user_frame())


def to_torch(result, torch):
    """A kernel's result (an array, a numpy scalar, or a tuple of them) as torch tensors,
    sharing the memory; what the caller passed as out= comes back as it is."""
    if isinstance(result, tuple):
        return tuple(to_torch(r, torch) for r in result)
    if isinstance(result, (np.ndarray, np.generic)):
        return torch.from_numpy(np.asarray(result))
    return result


def out_arrays(name: str, want, out) -> tuple[list, list, list]:
    """(the arrays to write, the caller's out= objects, the outputs to compute into a fresh
    array and copy in): numpy's rules for a ufunc's out= (the exact result shape, a dtype
    the result casts to under 'same_kind', any layout, writeable)."""
    where = E.user_frame()
    given = list(out) if isinstance(out, tuple) else [out]      # numpy's rule: a tuple, one per result
    if len(given) != len(want):
        raise E.ArgumentError(f"{name}: out= has {len(given)} array(s), the kernel returns "
                              f"{len(want)}", hint="pass one array per result, as a tuple",
                              where=where)
    views, copy = [], []
    for k, (o, (shape, dtype)) in enumerate(zip(given, want)):
        what = f"{name}: out[{k}]" if isinstance(out, tuple) else f"{name}: out"
        a = o
        if not isinstance(o, np.ndarray):
            if not (hasattr(o, "__dlpack__") and hasattr(o, "__dlpack_device__")):
                raise E.ArgumentError(f"{what} is a {type(o).__name__}, not an array the kernel can "
                                      "write into (numpy arrays, and CPU arrays through DLPack "
                                      "such as torch tensors, are)",
                                      hint=f"allocate it with np.empty({tuple(shape)}, np.{dtype})",
                                      where=where)
            a = _read(o, f"out[{k}]")     # DLPack shares the memory: writes reach o
        if a.shape != tuple(shape):
            raise E.ArgumentError(f"{what} has shape {a.shape}, the result has shape {tuple(shape)}",
                                  hint=f"allocate it with np.empty({tuple(shape)}, np.{dtype})",
                                  where=where)
        if a.dtype != dtype and not np.can_cast(dtype, a.dtype, "same_kind"):
            raise E.ArgumentError(f"{what} has dtype {a.dtype}, and the {dtype} result cannot be "
                                  f"cast to it under numpy's 'same_kind' rule",
                                  hint=f"pass a {dtype} array (np.empty({tuple(shape)}, np.{dtype})), "
                                       "or cast the result yourself", where=where)
        if not a.flags.writeable:
            raise E.ArgumentError(f"{what} is read-only", hint="pass a writeable array (a.copy(), "
                                  "or np.empty)", where=where)
        if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.aligned \
                or not a.dtype.isnative:
            copy.append(k)
        views.append(a)
    return views, given, copy


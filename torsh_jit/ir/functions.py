"""torsh-jit's array functions (tj.exp, tj.sum, tj.where, tj.var, tj.matmul, ...): numpy's
semantics, recorded on traced values and computed by numpy on plain ones.
torsh_jit/__init__.py re-exports them; Tensor's methods and operators call them.
"""
from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from .. import errors as E
from . import dtypes as dt
from .builder import normalize_axes
from .symbols import is_symbolic
from .traced import Traced, first_traced, lift, record_op, record_reduce
from .views import reshape


def _unary_fn(op):
    def f(x):
        return record_op(op, x)
    f.__name__ = op
    f.__doc__ = f"Elementwise {op} (numpy semantics)."
    return f


for _name in ("exp", "exp2", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan",
              "tanh", "sigmoid", "erf", "floor", "ceil", "round", "sign", "relu", "abs", "neg",
              "logical_not"):
    globals()[_name] = _unary_fn(_name)

negative = globals()["neg"]


def _binary_fn(op):
    def f(a, b):
        return record_op(op, a, b)
    f.__name__ = op
    f.__doc__ = f"Elementwise {op} with numpy broadcasting and promotion."
    return f


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "maximum", "minimum",
              "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    globals()[_name] = _binary_fn(_name)


def where(cond, a, b):
    """Elementwise choice: a where cond is true, else b."""
    return record_op("where", cond, a, b)


def astype(x, dtype):
    """Cast to a numpy dtype; float16 and bfloat16 (ml_dtypes.bfloat16, or the names) on the
    targets that hold them (CUDA), rounded to nearest even as numpy and ml_dtypes round."""
    d = dt.from_numpy(dtype, where=E.user_frame(), half=True)
    if isinstance(x, Traced) and x.builder.nodes[x.node_id].dtype == d:
        return x
    return record_op("cast", x, dtype=d)


def clip(x, lo=None, hi=None):
    if lo is not None:
        x = record_op("maximum", x, lo)
    if hi is not None:
        x = record_op("minimum", x, hi)
    return x


def sum(x, axis=None, keepdims=False): return record_reduce("sum", x, axis, keepdims)
def prod(x, axis=None, keepdims=False): return record_reduce("prod", x, axis, keepdims)
def mean(x, axis=None, keepdims=False): return record_reduce("mean", x, axis, keepdims)
def max(x, axis=None, keepdims=False): return record_reduce("max", x, axis, keepdims)
def min(x, axis=None, keepdims=False): return record_reduce("min", x, axis, keepdims)
def any(x, axis=None, keepdims=False): return record_reduce("any", x, axis, keepdims)
def all(x, axis=None, keepdims=False): return record_reduce("all", x, axis, keepdims)
def argmax(x, axis=None, keepdims=False): return argreduce("argmax", x, axis, keepdims)
def argmin(x, axis=None, keepdims=False): return argreduce("argmin", x, axis, keepdims)


def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    """numpy's var: mean(|x - x.mean()|**2) over the axes, divided by max(n - ddof, 0)
    instead of n (so n - ddof <= 0 gives inf, or nan where every deviation is 0, as numpy
    does). Integers and bools compute in float64; float32 stays float32."""
    return _moment("var", x, axis, dtype, out, ddof, keepdims, kw)


def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    """numpy's std: sqrt(var(x, ...)), with var's rules for axis, ddof, keepdims and dtypes."""
    return _moment("std", x, axis, dtype, out, ddof, keepdims, kw)


def _moment(name, x, axis, dtype, out, ddof, keepdims, kw):
    if not isinstance(x, Traced):   # outside a trace: numpy itself
        return getattr(np, name)(x, axis=axis, dtype=dtype, out=out, ddof=ddof,
                                 keepdims=keepdims, **kw)
    loc = E.user_frame()
    if out is not None or kw.get("where", True) is not True or "mean" in kw \
            or set(kw) - {"where", "mean", "correction"}:
        raise E.UnsupportedOpError(
            f"{name} with out=/where=/mean= (or an unknown keyword: {sorted(kw)}) inside a kernel",
            hint=f"return the value instead of out=; mask with tj.where(mask, x, 0) before "
                 f"reducing; {name} takes axis, dtype, ddof (or correction) and keepdims", where=loc)
    if kw.get("correction") is not None:
        if ddof != 0:
            raise E.TraceError(f"{name}: ddof and correction cannot both be given (numpy "
                               "raises ValueError too)", hint="give one of them", where=loc)
        ddof = kw["correction"]
    if isinstance(ddof, Traced) or not isinstance(ddof, numbers.Real) or isinstance(ddof, bool):
        raise E.UnsupportedOpError(
            f"{name}: ddof must be a Python number, got {type(ddof).__name__}",
            hint="ddof is part of the compiled kernel: pass an int such as ddof=1", where=loc)
    if dtype is not None:
        d = np.dtype(dtype)
        if d.kind != "f":
            raise E.DTypeError(f"{name} with dtype={d}: torsh-jit computes var and std in floats",
                               hint="use dtype=np.float32 or np.float64", where=loc)
        x = astype(x, d)
    elif x.dtype.kind in "biu":
        # numpy's var of integers and bools computes in float64
        x = astype(x, np.float64)
    axes = normalize_axes(axis, x.ndim, where=loc)
    n = math.prod(x.shape[a] for a in axes)
    dev = record_op("sub", x, record_reduce("mean", x, axes, True))
    ss = record_reduce("sum", record_op("mul", dev, dev), axes, keepdims)
    if is_symbolic(n):
        # a length known at run time only: max(n - ddof, 0) counted by the kernel, as mean does
        b = x.builder
        with b.recording():
            c = astype(type(x)(b, b.count(x.shape, axes, keepdims, loc=loc)), ss.dtype)
        r = record_op("truediv", ss, record_op("maximum", record_op("sub", c, float(ddof)), 0.0))
    else:
        r = record_op("truediv", ss, float(builtins.max(n - ddof, 0)))
    return record_op("sqrt", r) if name == "std" else r


def argreduce(op, x, axis, keepdims):
    """argmax/argmin, keepdims as numpy keeps them (the node itself drops the axis)."""
    r = record_reduce(op, x, axis)
    if not keepdims or not isinstance(x, Traced):
        return r if not keepdims else np.expand_dims(r, axis if axis is not None else
                                                     tuple(range(np.ndim(x))))
    # numpy keeps the reduced axis (every axis for axis=None) as size 1
    nd = x.ndim
    shape = [1] * nd if axis is None else list(x.shape)
    if axis is not None:
        shape[int(axis) % nd] = 1
    return reshape(r, tuple(shape))


def matmul(a, b):
    t = first_traced(a, b)
    if t is None:
        return np.matmul(a, b)
    bld = t.builder
    loc = E.user_frame()
    with bld.recording():
        return type(t)(bld, bld.matmul(lift(bld, a, loc), lift(bld, b, loc), loc=loc))


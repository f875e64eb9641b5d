"""numpy's protocols on traced values: which ufuncs (np.exp, np.add.reduce, ...) and which
numpy functions (np.sum, np.where, np.reshape, ...) a kernel may call, what they record,
and the error, with what to write instead, for those it may not.
Tensor.__array_ufunc__ and Tensor.__array_function__ call array_ufunc and array_function.
"""
from __future__ import annotations

import numpy as np

from .. import errors as E
from .functions import argreduce, clip, matmul, std, var, where
from .traced import Traced, record_op, record_reduce
from .views import broadcast_to, expand_dims, reshape, squeeze, swapaxes, transpose


def array_ufunc(ufunc, method, inputs, kwargs):
    """Tensor.__array_ufunc__: np.exp(x), np.add.reduce(x, axis), ... on a traced value."""
    loc = E.user_frame()
    if kwargs.get("out") is not None:
        raise E.UnsupportedOpError(f"np.{ufunc.__name__}(..., out=...) inside a kernel",
                                   hint="return the value instead", where=loc)
    kwargs.pop("out", None)
    if method == "reduce" and ufunc.__name__ in _UFUNC_REDUCE:
        axis = kwargs.pop("axis", 0)
        keepdims = kwargs.pop("keepdims", False)
        return record_reduce(_UFUNC_REDUCE[ufunc.__name__], inputs[0], axis, keepdims)
    if method != "__call__" or kwargs:
        raise E.UnsupportedOpError(
            f"np.{ufunc.__name__}.{method}" + (f" with {sorted(kwargs)}" if kwargs else ""),
            hint="call the ufunc plainly, e.g. np.exp(x)", where=loc)
    name = ufunc.__name__
    if name in _UFUNC_SPECIAL:
        return _UFUNC_SPECIAL[name](*inputs)
    op = _UFUNC_OPS.get(name)
    if op is None:
        instead = _UFUNC_INSTEAD.get(name)
        raise E.UnsupportedOpError(
            f"numpy ufunc np.{name} is not supported inside a kernel",
            hint=(f"write it as {instead}; " if instead else "")
            + "supported ufuncs: " + ", ".join(sorted({*_UFUNC_OPS, *_UFUNC_SPECIAL})), where=loc)
    return record_op(op, *inputs)

def array_function(func, args, kwargs):
    """Tensor.__array_function__: np.sum(x), np.where(c, a, b), ... on a traced value."""
    impl = _ARRAY_FUNCTIONS.get(func)
    if impl is None:
        raise E.UnsupportedOpError(
            f"np.{func.__name__} is not supported inside a kernel",
            hint="supported numpy functions: " + ", ".join(sorted(f.__name__ for f in _ARRAY_FUNCTIONS)),
            where=E.user_frame())
    return impl(*args, **kwargs)

def _dot(a, b):
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        raise E.UnsupportedOpError("np.dot on arrays above 2-D", hint="use np.matmul / @",
                                   where=E.user_frame())
    return matmul(a, b)


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    return _reduce_np("sum", a, axis, dtype, out, keepdims, kw)


def _reduce_np(op, a, axis, dtype, out, keepdims, kw):
    if dtype is not None or out is not None or kw.get("where") is not None or kw.get("initial") is not None:
        raise E.UnsupportedOpError(f"np.{op} with dtype=/out=/where=/initial= inside a kernel",
                                   hint=f"cast first (x.astype(...).{op}(...))", where=E.user_frame())
    return record_reduce(op, a, axis, keepdims)


def _mk_np_reduce(op):
    def f(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _reduce_np(op, a, axis, dtype, out, keepdims, kw)
    return f


def _mk_np_argreduce(op):
    def f(a, axis=None, out=None, keepdims=False):
        if out is not None:
            raise E.UnsupportedOpError(f"np.{op} with out= inside a kernel",
                                       hint="return the value instead", where=E.user_frame())
        return argreduce(op, a, axis, keepdims)
    return f


_UFUNC_OPS = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "truediv", "true_divide": "truediv",
    "floor_divide": "floordiv", "remainder": "mod", "power": "pow", "maximum": "maximum",
    "minimum": "minimum", "equal": "eq", "not_equal": "ne", "less": "lt", "less_equal": "le",
    "greater": "gt", "greater_equal": "ge", "logical_and": "logical_and", "logical_or": "logical_or",
    "logical_xor": "logical_xor", "logical_not": "logical_not", "negative": "neg", "absolute": "abs",
    "exp": "exp", "exp2": "exp2", "log": "log", "log2": "log2", "log1p": "log1p", "expm1": "expm1",
    "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "floor": "floor",
    "ceil": "ceil", "rint": "round", "sign": "sign",
}
_UFUNC_SPECIAL = {
    "positive": lambda x: positive(x),
    "square": lambda x: record_op("mul", _no_bool("square", x), x),
    "reciprocal": lambda x: _reciprocal(_no_bool("reciprocal", x)),
    "matmul": lambda a, b: matmul(a, b),
}
def positive(x):
    """+x is x, except that numpy has no positive of bool (a TypeError there too)."""
    if isinstance(x, Traced) and x.dtype == np.bool_:
        raise E.DTypeError("np.positive (unary +) is not defined for bool values (numpy raises "
                           "UFuncTypeError too)", hint="use the bool array as it is, or "
                           "x.astype(np.int32)", where=E.user_frame())
    return x


def _no_bool(name, x):
    """square and reciprocal of bool are int8 in numpy, a dtype torsh-jit lacks."""
    if isinstance(x, Traced) and x.dtype == np.bool_:
        raise E.DTypeError(f"np.{name} of bool gives int8 in numpy, a dtype torsh-jit does not support",
                           hint="cast the input first, e.g. x.astype(np.int32)", where=E.user_frame())
    return x


def _reciprocal(x):
    """numpy's reciprocal: 1/x for floats; C's integer 1/x for ints (0 except for +-1, and
    the most negative value for 0)."""
    d = np.dtype(x.dtype) if isinstance(x, Traced) else np.asarray(x).dtype
    if d.kind == "f":
        return record_op("truediv", 1.0, x)
    unit = record_op("logical_or", record_op("eq", x, 1), record_op("eq", x, -1))
    return record_op("where", unit, x, record_op("where", record_op("eq", x, 0), d.type(np.iinfo(d).min), d.type(0)))


# ufuncs torsh-jit lacks, written with ones it has (shown in the error)
_UFUNC_INSTEAD = {
    "cbrt": "np.sign(x) * np.abs(x) ** (1 / 3)", "log10": "np.log(x) * (1 / np.log(10))",
    "sinh": "(np.exp(x) - np.exp(-x)) / 2", "cosh": "(np.exp(x) + np.exp(-x)) / 2",
    "hypot": "np.sqrt(x * x + y * y)", "isnan": "x != x", "isinf": "np.abs(x) == np.inf",
    "isfinite": "np.abs(x) < np.inf", "fabs": "np.abs(x)", "fmax": "np.maximum (NaN propagates)",
    "fmin": "np.minimum (NaN propagates)", "trunc": "np.where(x < 0, np.ceil(x), np.floor(x))",
    "copysign": "np.abs(x) * np.where(y < 0, -1, 1)", "logaddexp": "m + np.log(np.exp(a - m) + "
    "np.exp(b - m)) with m = np.maximum(a, b)", "bitwise_and": "& on bool arrays",
    "bitwise_or": "| on bool arrays", "bitwise_xor": "^ on bool arrays", "invert": "~ on bool arrays",
}
_UFUNC_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
                 "logical_and": "all", "logical_or": "any"}

_ARRAY_FUNCTIONS = {
    np.sum: _np_sum, np.prod: _mk_np_reduce("prod"), np.mean: _mk_np_reduce("mean"),
    np.max: _mk_np_reduce("max"), np.min: _mk_np_reduce("min"),
    np.amax: _mk_np_reduce("max"), np.amin: _mk_np_reduce("min"),
    np.any: _mk_np_reduce("any"), np.all: _mk_np_reduce("all"),
    np.var: var, np.std: std,
    np.argmax: _mk_np_argreduce("argmax"), np.argmin: _mk_np_argreduce("argmin"),
    np.where: lambda c, a=None, b=None: where(c, a, b) if a is not None else _raise_where1(),
    np.matmul: lambda a, b, **k: matmul(a, b), np.dot: _dot,
    np.swapaxes: swapaxes, np.transpose: lambda a, axes=None: transpose(a, axes),
    np.reshape: lambda a, shape=None, **k: reshape(a, shape if shape is not None else k.get("newshape")),
    np.broadcast_to: lambda a, shape, **k: broadcast_to(a, shape),
    np.expand_dims: expand_dims, np.squeeze: lambda a, axis=None: squeeze(a, axis),
    np.clip: lambda a, a_min=None, a_max=None, **k: clip(a, a_min, a_max),
    np.round: lambda a, decimals=0, out=None: np_round(a, decimals),
    np.around: lambda a, decimals=0, out=None: np_round(a, decimals),
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None: a.size,
}


def _raise_where1():
    raise E.UnsupportedOpError("np.where(cond) with one argument (it returns indices)",
                               hint="use np.where(cond, a, b)", where=E.user_frame())


def np_round(a, decimals):
    """np.round: half to even; integers are returned as they are (numpy keeps their dtype)."""
    if decimals != 0:
        _raise_round()
    d = a.dtype if isinstance(a, Traced) else np.asarray(a).dtype
    if d == np.bool_:
        raise E.DTypeError("np.round of bool values gives float16 in numpy, a dtype torsh-jit "
                           "does not compute on CPUs", hint="cast first: np.round(x.astype(np.float32))",
                           where=E.user_frame())
    if d.kind in "iu":
        return a
    return record_op("round", a)


def _raise_round():
    raise E.UnsupportedOpError("np.round with decimals != 0", hint="scale, round, unscale",
                               where=E.user_frame())

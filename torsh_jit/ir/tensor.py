"""`Tensor`: the traced value. Python operators, methods, numpy ufuncs and a subset
of numpy functions on a Tensor record nodes in a GraphBuilder instead of computing.

    traced     Traced, the base every traced value is, and the recorders (lift, op, reduce, view)
    functions  tj.exp, tj.sum, tj.where, ...: the functions the methods and operators call
    views      reshape, transpose, ..., and x[...]
    numpy_api  the ufuncs and numpy functions a Tensor answers to
"""
from __future__ import annotations

import numpy as np

from .. import errors as E
from .functions import (all, any, argmax, argmin, astype, clip, matmul, max, mean, min, prod, std,
                        sum, var)
from .numpy_api import array_function, array_ufunc, np_round, positive
from .traced import Traced, logical_op, record_op
from .views import getitem, reshape, squeeze, swapaxes, transpose


class Tensor(Traced):
    """A value inside a traced function (or an embedder's Graph): shape and dtype are static."""

    __slots__ = ()
    __array_priority__ = 1000   # win over numpy arrays in mixed binary operators
    __hash__ = object.__hash__    # __eq__ is elementwise

    # -- operators ----------------------------------------------------------
    def __add__(self, o): return record_op("add", self, o)
    def __radd__(self, o): return record_op("add", o, self)
    def __sub__(self, o): return record_op("sub", self, o)
    def __rsub__(self, o): return record_op("sub", o, self)
    def __mul__(self, o): return record_op("mul", self, o)
    def __rmul__(self, o): return record_op("mul", o, self)
    def __truediv__(self, o): return record_op("truediv", self, o)
    def __rtruediv__(self, o): return record_op("truediv", o, self)
    def __floordiv__(self, o): return record_op("floordiv", self, o)
    def __rfloordiv__(self, o): return record_op("floordiv", o, self)
    def __mod__(self, o): return record_op("mod", self, o)
    def __rmod__(self, o): return record_op("mod", o, self)
    def __pow__(self, o): return record_op("pow", self, o)
    def __rpow__(self, o): return record_op("pow", o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __eq__(self, o): return record_op("eq", self, o)
    def __ne__(self, o): return record_op("ne", self, o)
    def __lt__(self, o): return record_op("lt", self, o)
    def __le__(self, o): return record_op("le", self, o)
    def __gt__(self, o): return record_op("gt", self, o)
    def __ge__(self, o): return record_op("ge", self, o)
    def __neg__(self): return record_op("neg", self)
    def __pos__(self): return positive(self)
    def __abs__(self): return record_op("abs", self)
    def __and__(self, o): return logical_op("logical_and", "&", self, o)
    def __rand__(self, o): return logical_op("logical_and", "&", o, self)
    def __or__(self, o): return logical_op("logical_or", "|", self, o)
    def __ror__(self, o): return logical_op("logical_or", "|", o, self)
    def __xor__(self, o): return logical_op("logical_xor", "^", self, o)
    def __rxor__(self, o): return logical_op("logical_xor", "^", o, self)

    def __invert__(self):
        if self.dtype != np.bool_:
            raise E.UnsupportedOpError("bitwise ~ on integers is not supported",
                                       hint="~ works on bool values (logical not)", where=E.user_frame())
        return record_op("logical_not", self)

    # -- methods ------------------------------------------------------------
    def astype(self, dtype, copy=True):
        return astype(self, dtype)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        return transpose(self, axes or None)

    permute = transpose

    @property
    def T(self):
        return transpose(self)

    def swapaxes(self, a, b): return swapaxes(self, a, b)
    def sum(self, axis=None, keepdims=False): return sum(self, axis, keepdims)
    def prod(self, axis=None, keepdims=False): return prod(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return mean(self, axis, keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return var(self, axis, dtype, out, ddof, keepdims, **kw)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return std(self, axis, dtype, out, ddof, keepdims, **kw)

    def max(self, axis=None, keepdims=False): return max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return min(self, axis, keepdims)
    def argmax(self, axis=None, keepdims=False): return argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return argmin(self, axis, keepdims)
    def any(self, axis=None, keepdims=False): return any(self, axis, keepdims)
    def all(self, axis=None, keepdims=False): return all(self, axis, keepdims)
    def squeeze(self, axis=None): return squeeze(self, axis)
    def clip(self, lo=None, hi=None): return clip(self, lo, hi)
    def round(self, decimals=0): return np_round(self, decimals)

    def __getitem__(self, idx):
        with self.builder.recording():
            return getitem(self, idx)

    # -- numpy protocols ------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return array_function(func, args, kwargs)

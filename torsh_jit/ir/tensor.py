"""`Tensor`: the traced value. Python operators, methods, numpy ufuncs and a subset
of numpy functions on a Tensor record nodes in a GraphBuilder instead of computing.
"""
from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from .. import errors as E
from . import dtypes as dt
from .graph import GraphBuilder, normalize_axes


class Tensor:
    """A value inside a traced function (or an embedder's Graph): shape and dtype are static."""

    __slots__ = ("_b", "_id")
    __array_priority__ = 1000   # win over numpy arrays in mixed binary operators

    def __init__(self, builder: GraphBuilder, nid: int):
        self._b = builder
        self._id = nid

    # -- static facts -----------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._b.nodes[self._id].shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._b.nodes[self._id].dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self._b.nodes[self._id].size

    def __len__(self):
        if not self.shape:
            raise E.TraceError("len() of a 0-d value", hint="a 0-d value has no length; x.shape "
                               "and x.ndim are known while tracing", where=E.user_frame())
        return self.shape[0]

    def __repr__(self):
        n = self._b.nodes[self._id]
        return f"Tensor(%{self._id} {n.op}, shape={n.shape}, dtype={n.dtype})"

    __hash__ = object.__hash__

    # -- values a trace cannot have ---------------------------------------
    def _no_value(self, what: str, hint: str):
        where = E.user_frame()
        line = E.source_line(where)
        raise E.TraceError(
            f"{what} of a traced value: the value is not known while the kernel is being compiled"
            + (f" (in `{line}`)" if line else ""), hint=hint, where=where)

    _KEEP_ARRAY = ("keep it an array and compute with it (x * x.sum() works), or pass the number "
                   "in as an argument")

    def __bool__(self):
        self._no_value("Python control flow (if/while/and/or/not) on the truth",
                       "use tj.where(cond, a, b) for per-element choices; `if` and loops can only "
                       "test shapes, dtypes and Python values (run data-dependent loops outside "
                       "the kernel); & | ~ combine bool arrays")

    def __float__(self):
        self._no_value("float()", self._KEEP_ARRAY)

    def __int__(self):
        self._no_value("int()", self._KEEP_ARRAY)

    def __index__(self):
        self._no_value("use as an index", "index with Python ints and slices; for a per-element "
                       "choice use tj.where")

    def __iter__(self):
        self._no_value("iteration over the elements", "use whole-array operations, or loop over "
                       "range(x.shape[0]) and index x[i]")

    # -- operators ----------------------------------------------------------
    def __add__(self, o): return _bin("add", self, o)
    def __radd__(self, o): return _bin("add", o, self)
    def __sub__(self, o): return _bin("sub", self, o)
    def __rsub__(self, o): return _bin("sub", o, self)
    def __mul__(self, o): return _bin("mul", self, o)
    def __rmul__(self, o): return _bin("mul", o, self)
    def __truediv__(self, o): return _bin("truediv", self, o)
    def __rtruediv__(self, o): return _bin("truediv", o, self)
    def __floordiv__(self, o): return _bin("floordiv", self, o)
    def __rfloordiv__(self, o): return _bin("floordiv", o, self)
    def __mod__(self, o): return _bin("mod", self, o)
    def __rmod__(self, o): return _bin("mod", o, self)
    def __pow__(self, o): return _bin("pow", self, o)
    def __rpow__(self, o): return _bin("pow", o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __eq__(self, o): return _bin("eq", self, o)
    def __ne__(self, o): return _bin("ne", self, o)
    def __lt__(self, o): return _bin("lt", self, o)
    def __le__(self, o): return _bin("le", self, o)
    def __gt__(self, o): return _bin("gt", self, o)
    def __ge__(self, o): return _bin("ge", self, o)
    def __neg__(self): return _un("neg", self)
    def __pos__(self): return _positive(self)
    def __abs__(self): return _un("abs", self)
    def __and__(self, o): return _logical("logical_and", "&", self, o)
    def __rand__(self, o): return _logical("logical_and", "&", o, self)
    def __or__(self, o): return _logical("logical_or", "|", self, o)
    def __ror__(self, o): return _logical("logical_or", "|", o, self)
    def __xor__(self, o): return _logical("logical_xor", "^", self, o)
    def __rxor__(self, o): return _logical("logical_xor", "^", o, self)

    def __invert__(self):
        if self.dtype != np.bool_:
            raise E.UnsupportedOpError("bitwise ~ on integers is not supported",
                                       hint="~ works on bool values (logical not)", where=E.user_frame())
        return _un("logical_not", self)

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
    def round(self, decimals=0): return _np_round(self, decimals)

    def __getitem__(self, idx):
        return _getitem(self, idx)

    # -- numpy protocols ------------------------------------------------------
    def __array__(self, *a, **k):
        self._no_value("conversion to a numpy array (np.asarray)",
                       "call numpy or tj functions on the value directly; they are traced")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        loc = E.user_frame()
        if kwargs.get("out") is not None:
            raise E.UnsupportedOpError(f"np.{ufunc.__name__}(..., out=...) inside a kernel",
                                       hint="return the value instead", where=loc)
        kwargs.pop("out", None)
        if method == "reduce" and ufunc.__name__ in _UFUNC_REDUCE:
            axis = kwargs.pop("axis", 0)
            keepdims = kwargs.pop("keepdims", False)
            return _reduce(_UFUNC_REDUCE[ufunc.__name__], inputs[0], axis, keepdims)
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
        return _op(op, *inputs)

    def __array_function__(self, func, types, args, kwargs):
        impl = _ARRAY_FUNCTIONS.get(func)
        if impl is None:
            raise E.UnsupportedOpError(
                f"np.{func.__name__} is not supported inside a kernel",
                hint="supported numpy functions: " + ", ".join(sorted(f.__name__ for f in _ARRAY_FUNCTIONS)),
                where=E.user_frame())
        return impl(*args, **kwargs)


# -- coercion ------------------------------------------------------------------
def _builder_of(*vals) -> GraphBuilder | None:
    for v in vals:
        if isinstance(v, Tensor):
            return v._b
    return None


def _lift(b: GraphBuilder, v, loc) -> int:
    if isinstance(v, Tensor):
        if v._b is not b:
            raise E.TraceError("a value from another traced function or graph was used here",
                               hint="pass it in as an argument of this kernel", where=loc)
        return v._id
    if isinstance(v, (bool, int, float)) and not isinstance(v, np.generic):
        if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
            raise E.DTypeError(f"integer constant {v} does not fit in int64",
                               hint=f"use a float constant ({float(v)!r}) or a smaller value",
                               where=loc)
        return b.add_const(v, loc=loc)
    if isinstance(v, np.generic) or (isinstance(v, np.ndarray) and v.ndim == 0):
        d = dt.from_numpy(v.dtype, where=loc)
        return b.add_const(v.item(), d, loc=loc)
    if isinstance(v, np.ndarray):
        raise E.UnsupportedOpError(
            f"a numpy array of shape {v.shape} captured from outside the kernel",
            hint="pass the array as an argument of the kernel instead", where=loc)
    if isinstance(v, complex):
        raise E.DTypeError("complex numbers are not supported",
                           hint="compute real and imaginary parts as separate float arrays", where=loc)
    raise E.TraceError(f"cannot use a value of type {type(v).__name__} in a kernel",
                       hint="kernels compute on their array arguments, Python numbers and numpy "
                            "scalars", where=loc)


def _op(op: str, *vals, **attrs):
    b = _builder_of(*vals)
    if b is None:   # called outside a trace: eager numpy semantics
        from .ops import OPS
        return OPS[op].ref(*vals, **attrs)
    loc = E.user_frame()
    ids = [_lift(b, v, loc) for v in vals]
    return Tensor(b, b.elementwise(op, *ids, loc=loc, **attrs))


def _un(op, x): return _op(op, x)
def _bin(op, a, b): return _op(op, a, b)


def _logical(op, sym, a, b):
    for v in (a, b):
        d = v.dtype if isinstance(v, Tensor) else np.asarray(v).dtype
        if d != np.bool_:
            raise E.UnsupportedOpError(
                f"bitwise {sym} on {d} values is not supported",
                hint=f"{sym} works on bool values; for integers compare first (x > 0) {sym} (y > 0)",
                where=E.user_frame())
    return _op(op, a, b)


def _reduce(op, x, axis=None, keepdims=False):
    if not isinstance(x, Tensor):
        from .ops import OPS
        return OPS[op].ref(x, axis=axis, keepdims=keepdims) if op not in ("argmax", "argmin") \
            else OPS[op].ref(x, axis=axis)
    loc = E.user_frame()
    return Tensor(x._b, x._b.reduce(op, x._id, axis, keepdims, loc=loc))


def _view(x, fn):
    if not isinstance(x, Tensor):
        return None
    return Tensor(x._b, fn(x._b, x._id, E.user_frame()))


# -- the public functions (torsh_jit.exp, ...) ---------------------------------------
def _unary_fn(op):
    def f(x):
        return _op(op, x)
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
        return _op(op, a, b)
    f.__name__ = op
    f.__doc__ = f"Elementwise {op} with numpy broadcasting and promotion."
    return f


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "maximum", "minimum",
              "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    globals()[_name] = _binary_fn(_name)


def where(cond, a, b):
    """Elementwise choice: a where cond is true, else b."""
    return _op("where", cond, a, b)


def astype(x, dtype):
    """Cast to a numpy dtype; float16 and bfloat16 (ml_dtypes.bfloat16, or the names) on the
    targets that hold them (CUDA), rounded to nearest even as numpy and ml_dtypes round."""
    d = dt.from_numpy(dtype, where=E.user_frame(), half=True)
    if isinstance(x, Tensor) and x._b.nodes[x._id].dtype == d:
        return x
    return _op("cast", x, dtype=d)


def clip(x, lo=None, hi=None):
    if lo is not None:
        x = _op("maximum", x, lo)
    if hi is not None:
        x = _op("minimum", x, hi)
    return x


def sum(x, axis=None, keepdims=False): return _reduce("sum", x, axis, keepdims)
def prod(x, axis=None, keepdims=False): return _reduce("prod", x, axis, keepdims)
def mean(x, axis=None, keepdims=False): return _reduce("mean", x, axis, keepdims)
def max(x, axis=None, keepdims=False): return _reduce("max", x, axis, keepdims)
def min(x, axis=None, keepdims=False): return _reduce("min", x, axis, keepdims)
def any(x, axis=None, keepdims=False): return _reduce("any", x, axis, keepdims)
def all(x, axis=None, keepdims=False): return _reduce("all", x, axis, keepdims)
def argmax(x, axis=None, keepdims=False): return _argreduce("argmax", x, axis, keepdims)
def argmin(x, axis=None, keepdims=False): return _argreduce("argmin", x, axis, keepdims)


def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    """numpy's var: mean(|x - x.mean()|**2) over the axes, divided by max(n - ddof, 0)
    instead of n (so n - ddof <= 0 gives inf, or nan where every deviation is 0, as numpy
    does). Integers and bools compute in float64; float32 stays float32."""
    return _moment("var", x, axis, dtype, out, ddof, keepdims, kw)


def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    """numpy's std: sqrt(var(x, ...)), with var's rules for axis, ddof, keepdims and dtypes."""
    return _moment("std", x, axis, dtype, out, ddof, keepdims, kw)


def _moment(name, x, axis, dtype, out, ddof, keepdims, kw):
    if not isinstance(x, Tensor):   # outside a trace: numpy itself
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
    if isinstance(ddof, Tensor) or not isinstance(ddof, numbers.Real) or isinstance(ddof, bool):
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
    dev = _op("sub", x, _reduce("mean", x, axes, True))
    ss = _reduce("sum", _op("mul", dev, dev), axes, keepdims)
    r = _op("truediv", ss, float(builtins.max(n - ddof, 0)))
    return _op("sqrt", r) if name == "std" else r


def _argreduce(op, x, axis, keepdims):
    r = _reduce(op, x, axis)
    if not keepdims or not isinstance(x, Tensor):
        return r if not keepdims else np.expand_dims(r, axis if axis is not None else
                                                     tuple(range(np.ndim(x))))
    # numpy keeps the reduced axis (every axis for axis=None) as size 1
    nd = x.ndim
    shape = [1] * nd if axis is None else list(x.shape)
    if axis is not None:
        shape[int(axis) % nd] = 1
    return reshape(r, tuple(shape))


def matmul(a, b):
    bld = _builder_of(a, b)
    if bld is None:
        return np.matmul(a, b)
    loc = E.user_frame()
    return Tensor(bld, bld.matmul(_lift(bld, a, loc), _lift(bld, b, loc), loc=loc))


def reshape(x, shape):
    r = _view(x, lambda b, i, loc: b.reshape(i, shape, loc=loc))
    return np.reshape(x, shape) if r is None else r


def transpose(x, axes=None):
    def f(b, i, loc):
        nd = len(b.nodes[i].shape)
        return b.permute(i, tuple(reversed(range(nd))) if axes is None else tuple(axes), loc=loc)
    r = _view(x, f)
    return np.transpose(x, axes) if r is None else r


permute = transpose


def swapaxes(x, a, b_):
    def f(b, i, loc):
        nd = len(b.nodes[i].shape)
        perm = list(range(nd))
        aa, bb = a % nd, b_ % nd
        perm[aa], perm[bb] = perm[bb], perm[aa]
        return b.permute(i, tuple(perm), loc=loc)
    r = _view(x, f)
    return np.swapaxes(x, a, b_) if r is None else r


def broadcast_to(x, shape):
    r = _view(x, lambda b, i, loc: b.broadcast_to(i, shape, loc=loc))
    return np.broadcast_to(x, shape) if r is None else r


def expand_dims(x, axis):
    def f(b, i, loc):
        shape = list(b.nodes[i].shape)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        nd = len(shape) + len(axes)
        for a in sorted(ax % nd for ax in axes):
            shape.insert(a, 1)
        return b.reshape(i, tuple(shape), loc=loc)
    r = _view(x, f)
    return np.expand_dims(x, axis) if r is None else r


def squeeze(x, axis=None):
    def f(b, i, loc):
        shape = b.nodes[i].shape
        axes = range(len(shape)) if axis is None else \
            [a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)]
        for a in axes:
            if axis is not None and shape[a] != 1:
                raise E.ShapeError(f"cannot squeeze axis {a} of size {shape[a]}",
                                   hint=f"only axes of size 1 can be squeezed; the shape is {shape}",
                                   where=loc)
        keep = tuple(s for k, s in enumerate(shape) if not (k in axes and s == 1))
        return b.reshape(i, keep, loc=loc)
    r = _view(x, f)
    return np.squeeze(x, axis) if r is None else r


def _getitem(x: Tensor, idx):
    loc = E.user_frame()
    b = x._b
    if not isinstance(idx, tuple):
        idx = (idx,)
    # array indices first, and by identity below: `==` on an array or a traced value is
    # elementwise, so `Ellipsis in idx` would compare the index array itself
    idx = tuple(_basic_index(i, loc) for i in idx)
    shape = x.shape
    n_real = builtins.sum(1 for i in idx if i is not None and i is not Ellipsis)
    if n_real > len(shape):
        raise E.ShapeError(f"too many indices ({n_real}) for a {len(shape)}-d value",
                           hint=f"the shape is {shape}: at most {len(shape)} integers or slices",
                           where=loc)
    n_ell = builtins.sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise E.ShapeError("an index can only have a single ellipsis",
                           hint="use ... once; it stands for all the axes not named", where=loc)
    if n_ell:
        k = next(k for k, i in enumerate(idx) if i is Ellipsis)
        idx = idx[:k] + (slice(None),) * (len(shape) - n_real) + idx[k + 1:]
    else:
        idx = idx + (slice(None),) * (len(shape) - n_real)
    slices, out_shape, dim = [], [], 0
    for i in idx:
        if i is None:
            out_shape.append(1)
            continue
        size = shape[dim]
        if isinstance(i, slice):
            start, stop, step = i.indices(size)
            n = len(range(start, stop, step))
            slices.append((start if n else 0, step, n))
            out_shape.append(n)
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            j = int(i)
            if not -size <= j < size:
                raise E.ShapeError(f"index {j} is out of bounds for axis {dim} with size {size}",
                                   hint=f"valid indices are {-size}..{size - 1}; slices clip instead",
                                   where=loc)
            slices.append((j % size, 1, 1))
        else:
            raise E.UnsupportedOpError(f"index of type {type(i).__name__} is not supported",
                                       hint="use slices, integers, None and ...", where=loc)
        dim += 1
    v = b.slice(x._id, slices, loc=loc)
    return Tensor(b, b.reshape(v, tuple(out_shape), loc=loc))


_MASK_HINT = ("keep the shape and fill the rest: tj.where(mask, x, 0) (np.where works too); "
              "to reduce over the chosen elements reduce that, e.g. tj.where(mask, x, 0).sum() "
              "and mask.sum() for their count; or index outside the kernel")
_GATHER_HINT = ("use basic slices where the positions are regular (x[0:3:2] is x[[0, 2]]) and "
                "integers for single ones (x[0], x[2]); or index outside the kernel and pass "
                "x[idx] in as an argument")


def _basic_index(i, loc):
    """i if it is a basic index (int, slice, None, ...); a 0-d integer array as its int;
    an UnsupportedOpError for a boolean mask or an array of indices (numpy's advanced
    indexing: a gather, whose result a kernel cannot have)."""
    if isinstance(i, Tensor):
        kind = "mask" if i.dtype == np.bool_ else "traced"
    elif isinstance(i, (np.ndarray, list)):
        try:
            a = np.asarray(i)
        except ValueError:    # ragged nested lists
            a = np.asarray(i, dtype=object)
        if a.ndim == 0 and a.dtype.kind in "iu":
            return int(a)
        kind = "mask" if a.dtype == np.bool_ else "array"
    else:
        return i
    line = E.source_line(loc)
    at = f" (in `{line}`)" if line else ""
    if kind == "mask":
        raise E.UnsupportedOpError(
            "boolean mask indexing (x[mask]) inside a kernel: the result's length is the "
            "number of true elements, known only when the data is, and a kernel's shapes are "
            f"fixed when it is compiled{at}", hint=_MASK_HINT, where=loc)
    if kind == "traced":
        raise E.UnsupportedOpError(
            f"indexing with a value computed inside the kernel (dtype {i.dtype}, shape "
            f"{i.shape}): a gather, which torsh-jit does not compile{at}",
            hint="indices must be known when the kernel is compiled (Python ints, slices, None, "
                 "...); for a per-element choice use tj.where(cond, a, b)", where=loc)
    raise E.UnsupportedOpError(
        f"integer-array indexing (x[[0, 2]], x[np.array(...)]) inside a kernel: a gather, "
        f"which torsh-jit does not compile{at}", hint=_GATHER_HINT, where=loc)


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
    return _reduce(op, a, axis, keepdims)


def _mk_np_reduce(op):
    def f(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _reduce_np(op, a, axis, dtype, out, keepdims, kw)
    return f


def _mk_np_argreduce(op):
    def f(a, axis=None, out=None, keepdims=False):
        if out is not None:
            raise E.UnsupportedOpError(f"np.{op} with out= inside a kernel",
                                       hint="return the value instead", where=E.user_frame())
        return _argreduce(op, a, axis, keepdims)
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
    "positive": lambda x: _positive(x),
    "square": lambda x: _op("mul", _no_bool("square", x), x),
    "reciprocal": lambda x: _reciprocal(_no_bool("reciprocal", x)),
    "matmul": lambda a, b: matmul(a, b),
}
def _positive(x):
    """+x is x, except that numpy has no positive of bool (a TypeError there too)."""
    if isinstance(x, Tensor) and x.dtype == np.bool_:
        raise E.DTypeError("np.positive (unary +) is not defined for bool values (numpy raises "
                           "UFuncTypeError too)", hint="use the bool array as it is, or "
                           "x.astype(np.int32)", where=E.user_frame())
    return x


def _no_bool(name, x):
    """square and reciprocal of bool are int8 in numpy, a dtype torsh-jit lacks."""
    if isinstance(x, Tensor) and x.dtype == np.bool_:
        raise E.DTypeError(f"np.{name} of bool gives int8 in numpy, a dtype torsh-jit does not support",
                           hint="cast the input first, e.g. x.astype(np.int32)", where=E.user_frame())
    return x


def _reciprocal(x):
    """numpy's reciprocal: 1/x for floats; C's integer 1/x for ints (0 except for +-1, and
    the most negative value for 0)."""
    d = np.dtype(x.dtype) if isinstance(x, Tensor) else np.asarray(x).dtype
    if d.kind == "f":
        return _op("truediv", 1.0, x)
    unit = _op("logical_or", _op("eq", x, 1), _op("eq", x, -1))
    return _op("where", unit, x, _op("where", _op("eq", x, 0), d.type(np.iinfo(d).min), d.type(0)))


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
    np.round: lambda a, decimals=0, out=None: _np_round(a, decimals),
    np.around: lambda a, decimals=0, out=None: _np_round(a, decimals),
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None: a.size,
}


def _raise_where1():
    raise E.UnsupportedOpError("np.where(cond) with one argument (it returns indices)",
                               hint="use np.where(cond, a, b)", where=E.user_frame())


def _np_round(a, decimals):
    """np.round: half to even; integers are returned as they are (numpy keeps their dtype)."""
    if decimals != 0:
        _raise_round()
    d = a.dtype if isinstance(a, Tensor) else np.asarray(a).dtype
    if d == np.bool_:
        raise E.DTypeError("np.round of bool values gives float16 in numpy, a dtype torsh-jit "
                           "does not compute on CPUs", hint="cast first: np.round(x.astype(np.float32))",
                           where=E.user_frame())
    if d.kind in "iu":
        return a
    return _op("round", a)


def _raise_round():
    raise E.UnsupportedOpError("np.round with decimals != 0", hint="scale, round, unscale",
                               where=E.user_frame())

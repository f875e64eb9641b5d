"""How a value joins a trace: `Traced`, what every traced value is (a node of a builder,
its static facts, and the errors for what a trace cannot know), and the recorders the
functions and operators share: a Python or numpy value lifted to a node, an elementwise op,
a reduction, a view.

A recorded result has the class of the traced value it comes from (Tensor, in tensor.py),
so this module and the functions need not import that class.
"""
from __future__ import annotations

import numpy as np

from .. import errors as E
from . import dtypes as dt
from .builder import GraphBuilder
from .symbols import is_symbolic


class Traced:
    """A value inside a traced function (or an embedder's Graph): a node of a GraphBuilder,
    whose shape and dtype are static. Tensor (tensor.py) is the subclass every traced value
    is; it adds the operators, methods and numpy protocols."""

    __slots__ = ("builder", "node_id")

    def __init__(self, builder: GraphBuilder, nid: int):
        self.builder = builder
        self.node_id = nid

    # -- static facts -----------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.builder.nodes[self.node_id].shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.builder.nodes[self.node_id].dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self.builder.nodes[self.node_id].size

    def __len__(self):
        if not self.shape:
            raise E.TraceError("len() of a 0-d value", hint="a 0-d value has no length; x.shape "
                               "and x.ndim are known while tracing", where=E.user_frame())
        return self.shape[0]

    def __repr__(self):
        n = self.builder.nodes[self.node_id]
        return f"Tensor(%{self.node_id} {n.op}, shape={n.shape}, dtype={n.dtype})"

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

    def __array__(self, *a, **k):
        self._no_value("conversion to a numpy array (np.asarray)",
                       "call numpy or tj functions on the value directly; they are traced")


# -- recording ------------------------------------------------------------------
def first_traced(*vals) -> Traced | None:
    """The first traced value among vals: its builder records, its class wraps the result."""
    for v in vals:
        if isinstance(v, Traced):
            return v
    return None


def lift(b: GraphBuilder, v, loc) -> int:
    if isinstance(v, Traced):
        if v.builder is not b:
            raise E.TraceError("a value from another traced function or graph was used here",
                               hint="pass it in as an argument of this kernel", where=loc)
        return v.node_id
    if is_symbolic(v):
        v = int(v)        # a size used as a value (x * x.shape[0]): specialised to the call's
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


def record_op(op: str, *vals, **attrs):
    """An elementwise op on traced values recorded in their builder; on plain values (called
    outside a trace), numpy's result."""
    t = first_traced(*vals)
    if t is None:   # called outside a trace: eager numpy semantics
        from .ops import OPS
        return OPS[op].ref(*vals, **attrs)
    b = t.builder
    loc = E.user_frame()
    ids = [lift(b, v, loc) for v in vals]
    with b.recording():
        return type(t)(b, b.elementwise(op, *ids, loc=loc, **attrs))


def logical_op(op, sym, a, b):
    for v in (a, b):
        d = v.dtype if isinstance(v, Traced) else np.asarray(v).dtype
        if d != np.bool_:
            raise E.UnsupportedOpError(
                f"bitwise {sym} on {d} values is not supported",
                hint=f"{sym} works on bool values; for integers compare first (x > 0) {sym} (y > 0)",
                where=E.user_frame())
    return record_op(op, a, b)


def record_reduce(op, x, axis=None, keepdims=False):
    if not isinstance(x, Traced):
        from .ops import OPS
        return OPS[op].ref(x, axis=axis, keepdims=keepdims) if op not in ("argmax", "argmin") \
            else OPS[op].ref(x, axis=axis)
    loc = E.user_frame()
    with x.builder.recording():
        return type(x)(x.builder, x.builder.reduce(op, x.node_id, axis, keepdims, loc=loc))


def record_view(x, fn):
    """fn(builder, node, loc) recorded for a traced x; None for a plain value."""
    if not isinstance(x, Traced):
        return None
    with x.builder.recording():
        return type(x)(x.builder, fn(x.builder, x.node_id, E.user_frame()))


"""`GraphBuilder`: builds a Graph, inferring shapes and dtypes (numpy's rules), refusing
what a kernel cannot compute with errors that say why, and canonicalising as it goes:
reductions always keep dims (a reshape drops them), mean is sum / count, matmul
operands are 2-D or batched with equal batch dims (views make them so).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import errors as E
from . import dtypes as dt
from .graph import Graph, Node, make_attrs
from .ops import OPS, COMPARISONS, VIEW, result_dtype
from .symbols import as_size, broadcast_shapes, current_env, is_symbolic, same, statically_one


def _axes_hint(ndim: int) -> str:
    if ndim == 0:
        return "a 0-d value has no axes: use axis=None (or no axis)"
    return (f"a {ndim}-d value has axes 0..{ndim - 1} (or -{ndim}..-1 from the end); "
            "axis=None means all of them")


def normalize_axes(axis, ndim: int, *, where=None) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise E.ShapeError(f"axis {a} is out of bounds for an array of dimension {ndim}",
                               hint=_axes_hint(ndim), where=where)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise E.ShapeError(f"repeated axis in {tuple(axis)}", hint="name each axis once",
                           where=where)
    return tuple(sorted(out))


def _check_result_dtype(op: str, in_dtypes, out_dt: str, loc) -> None:
    """numpy's result dtype must be one torsh-jit has: exp(bool) is float16 and bool // bool
    is int8 in numpy. Half floats are only accepted when an input already is one, or from
    an explicit cast (whose target is checked when the function is planned for a target)."""
    if out_dt in dt.CPU_DTYPES or (out_dt in dt.DTYPES and (op == "cast" or any(
            d not in dt.CPU_DTYPES for d in in_dtypes))):
        return
    want = "float32" if dt.family(out_dt) == "f" else "int32"
    raise E.DTypeError(
        f"{op} of {', '.join(in_dtypes)} gives {out_dt} in numpy, a dtype torsh-jit does not support",
        hint=f"cast the input first, e.g. x.astype(np.{want})", where=loc)


def _fits(n: Node, dtype: str) -> bool:
    """A weak int constant whose value fits `dtype` (a runtime scalar's value is unknown)."""
    if n.op != "const":
        return False
    info = np.iinfo(dtype)
    return info.min <= n.attr("value") <= info.max


def _check_weak_ints(op: str, nodes, loc) -> None:
    """numpy raises OverflowError when a Python int constant does not fit the array's
    dtype (np.int32 array + 2**40): ask numpy's reference with the actual value."""
    if not any(n.op == "const" and n.weak and dt.family(n.dtype) == "i" for n in nodes):
        return
    args = [n.attr("value") if n.op == "const" and n.weak else
            dt.weak_example(n.dtype) if n.weak else np.zeros(1, dt.to_numpy(n.dtype))
            for n in nodes]
    try:
        with np.errstate(all="ignore"):
            OPS[op].ref(*args)
    except OverflowError as e:
        raise E.DTypeError(f"{op}: {e} (numpy raises OverflowError too)",
                           hint="use a value that fits, or cast the array to a wider dtype first "
                                "(x.astype(np.int64))", where=loc) from None
    except ValueError as e:
        raise E.DomainError(f"{op}: {e} (numpy raises ValueError too)",
                            hint="use a non-negative exponent, or compute in floats "
                                 "(x.astype(np.float64) ** e)", where=loc) from None


def _check_int_power(nodes: list[Node], ins, out_dt: str, loc) -> None:
    """numpy raises ValueError for an integer to a negative integer power. A constant
    exponent is checked here, an argument at every call (kernel.py); a computed one
    could only be checked inside the kernel, which cannot raise, so it is refused."""
    if dt.family(out_dt) != "i":
        return
    e = ins[1]
    while nodes[e].kind == VIEW:
        e = nodes[e].inputs[0]
    n = nodes[e]
    if n.op == "const":
        if n.attr("value") < 0:
            raise E.DomainError("pow: Integers to negative integer powers are not allowed "
                                "(numpy raises ValueError too)",
                                hint="use a non-negative exponent, or compute in floats "
                                     "(x.astype(np.float64) ** e)", where=loc)
    elif n.op != "input":
        raise E.UnsupportedOpError(
            "an integer power whose exponent is computed inside the kernel: numpy raises "
            "ValueError for a negative exponent, which a kernel cannot check as it runs",
            hint="pass the exponent as an argument (checked at every call), or compute in "
                 "floats (x.astype(np.float64) ** e)", where=loc)


class GraphBuilder:
    """Records nodes with inferred shapes and dtypes. Used by the tracer and by embedders."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.inputs: list[int] = []
        self._consts: dict = {}
        self.env = None        # a Graph with symbolic inputs: the ShapeEnv its ops record in
        self.count_dtype = "float64"   # mean/var over a symbolic axis count in it (tracer.trace)

    def recording(self):
        """The context an op on this graph runs in: its ShapeEnv, where it has one of its own
        (an embedder's Graph) and no trace's is active."""
        if self.env is None or current_env() is not None:
            return contextlib.nullcontext()
        return self.env.active()

    # -- sources --------------------------------------------------------
    def add_input(self, shape, dtype: str, *, weak: bool = False, name: str | None = None) -> int:
        shape = tuple(as_size(s) for s in shape)
        if any(not is_symbolic(s) and s < 0 for s in shape):
            raise E.ShapeError(f"negative dimension in input shape {shape}",
                               hint="dimensions are sizes >= 0")
        nid = self._push(Node("input", (), make_attrs(index=len(self.inputs), name=name), shape,
                              dtype, weak=weak))
        self.inputs.append(nid)
        return nid

    def add_const(self, value, dtype: str | None = None, *, loc=None) -> int:
        """A scalar constant. Python scalars are weak (NEP 50); numpy scalars are not."""
        weak = dtype is None
        if dtype is None:
            dtype = dt.python_scalar_dtype(value)
        value = {"b": bool, "i": int, "f": float}[dt.family(dtype)](value)
        key = (repr(value), dtype, weak)
        if key not in self._consts:
            self._consts[key] = self._push(Node("const", (), make_attrs(value=value), (), dtype,
                                                weak=weak, loc=loc))
        return self._consts[key]

    def _push(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def node(self, nid: int) -> Node:
        return self.nodes[nid]

    # -- elementwise ----------------------------------------------------
    def elementwise(self, op: str, *ins: int, loc=None, **attrs) -> int:
        d = OPS[op]
        if len(ins) != d.arity:
            raise E.InternalError(f"{op} takes {d.arity} inputs, got {len(ins)}")
        nodes = [self.nodes[i] for i in ins]
        shape = broadcast_shapes(*[n.shape for n in nodes])
        if shape is None:
            shapes = " and ".join(str(n.shape) for n in nodes)
            raise E.ShapeError(
                f"{op}: shapes {shapes} do not broadcast together",
                hint="numpy broadcasting aligns trailing dimensions, each equal or 1; "
                     "reshape or add an axis (x[:, None]) to line them up", where=loc) from None
        for n in nodes:
            if n.dtype not in dt.CPU_DTYPES and n.dtype not in dt.DTYPES:
                raise E.DTypeError(f"{op}: unsupported dtype {n.dtype}",
                                   hint="use one of " + ", ".join(sorted(dt.CPU_DTYPES)), where=loc)
        at = make_attrs(**attrs)
        try:
            out_dt = result_dtype(op, tuple(n.dtype for n in nodes), tuple(n.weak for n in nodes), at)
        except TypeError as e:
            raise E.DTypeError(f"{op} is not defined for dtypes "
                               f"{', '.join(n.dtype for n in nodes)}: {e}",
                               hint="cast with .astype(...) to a dtype numpy accepts for this op",
                               where=loc) from None
        _check_result_dtype(op, [n.dtype for n in nodes], out_dt, loc)
        weak = all(n.weak for n in nodes) and op != "cast"
        if op in COMPARISONS:
            # numpy compares in the promoted input type (weak scalars adapt): record it
            ct = np.result_type(*[dt.weak_example(n.dtype) if n.weak else dt.to_numpy(n.dtype)
                                  for n in nodes]).name if not all(n.weak for n in nodes) \
                else np.result_type(*[dt.to_numpy(n.dtype) for n in nodes]).name
            # ...but a Python int compares by value (x_int32 < 2**40 is all True in numpy):
            # when it may not fit the promoted type, compare in int64
            if dt.family(ct) == "i" and any(n.weak and dt.family(n.dtype) == "i"
                                            and not _fits(n, ct) for n in nodes):
                ct = "int64"
            at = make_attrs(ct=ct, **attrs)
        elif not weak and op != "cast":
            _check_weak_ints(op, nodes, loc)
        if op == "pow":
            _check_int_power(self.nodes, ins, out_dt, loc)
        return self._push(Node(op, tuple(ins), at, shape, out_dt, weak=weak, loc=loc))

    # -- reductions -----------------------------------------------------
    def reduce(self, op: str, x: int, axis=None, keepdims: bool = False, *, loc=None) -> int:
        n = self.nodes[x]
        if op in ("argmax", "argmin"):
            if axis is None:
                # numpy: flat index over the C-ordered array
                x = self.reshape(x, (n.size,), loc=loc)
                n = self.nodes[x]
                axes = (0,)
            else:
                if not isinstance(axis, (int, np.integer)):
                    raise E.ShapeError(f"{op} takes a single integer axis, got {axis!r}",
                                       hint=f"reshape first to merge the axes, or use axis=None "
                                            f"for the flat index", where=loc)
                axes = normalize_axes(axis, len(n.shape), where=loc)
        else:
            axes = normalize_axes(axis, len(n.shape), where=loc)
        if op in ("max", "min", "argmax", "argmin") and any(n.shape[a] == 0 for a in axes):
            raise E.ShapeError(f"{op} of an empty axis has no identity (numpy raises too)",
                               hint="check the shape, or use sum/prod/any/all", where=loc)
        if op == "mean":
            if dt.family(n.dtype) != "f":
                # numpy's mean of integers and bools adds in float64 (no integer wrap-around)
                x = self.elementwise("cast", x, dtype="float64", loc=loc)
            s = self.reduce("sum", x, axes, keepdims, loc=loc)
            count = math.prod(n.shape[a] for a in axes)
            if is_symbolic(count):
                # a length known at run time only: counted by the kernel, in the same pass as
                # the sum, rounded to the sum's dtype as a constant count would be
                c = self.count(n.shape, axes, keepdims, loc=loc)
                c = self.elementwise("cast", c, dtype=self.nodes[s].dtype, loc=loc)
                return self.elementwise("truediv", s, c, loc=loc)
            return self.elementwise("truediv", s, self.add_const(float(count) if count else 0.0,
                                                                  loc=loc), loc=loc)
        try:
            out_dt = result_dtype(op, (n.dtype,), (False,))
        except TypeError as e:
            raise E.DTypeError(f"{op} is not defined for dtype {n.dtype}: {e}",
                               hint="cast first, e.g. x.astype(np.float32)", where=loc) from None
        kshape = tuple(1 if i in axes else s for i, s in enumerate(n.shape))
        if all(statically_one(n.shape[a]) for a in axes):
            # nothing to combine (size-1 axes, axis=(), 0-d): each result is its one element,
            # converted as the reduction converts it (bool(x) for any/all; index 0 for argmax)
            if op in ("argmax", "argmin"):
                r = self.broadcast_to(self.add_const(0, "int64", loc=loc), kshape, loc=loc)
            else:
                r = self.elementwise("cast", x, dtype=out_dt, loc=loc)
        else:
            r = self._push(Node(op, (x,), make_attrs(axis=axes), kshape, out_dt, loc=loc))
        if not keepdims:
            r = self.reshape(r, tuple(s for i, s in enumerate(n.shape) if i not in axes), loc=loc)
        return r

    def count(self, shape, axes, keepdims: bool, *, loc=None) -> int:
        """The number of elements over `axes` of a value of `shape` (a symbolic length), in
        count_dtype: float64, exact to 2^53, where the target holds it; else
        float32, exact to 2^24, which a guard then asks of the count."""
        # the product of the counted lengths, a scalar each kernel computes from its size
        # table (a sum of ones was a kernel launch of its own: 15% of a 4096^2 layernorm)
        n = math.prod(shape[a] for a in axes)
        if self.count_dtype == "float32" and not n <= 2**24:   # records the guard
            raise E.InternalError(f"a count of {n} elements is not exact in float32")
        c = self._push(Node("size", (), make_attrs(value=n), (), self.count_dtype, loc=loc))
        ndim = len(shape) if keepdims else len(shape) - len(set(axes))
        return self.broadcast_to(c, (1,) * ndim, loc=loc) if ndim else c

    # -- views ----------------------------------------------------------
    def reshape(self, x: int, shape, *, loc=None) -> int:
        n = self.nodes[x]
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        shape = [as_size(s) for s in shape]
        if sum(not is_symbolic(s) and s == -1 for s in shape) > 1:
            raise E.ShapeError("can only specify one unknown dimension (-1) in reshape",
                               hint="give every other dimension's size", where=loc)
        if any(not is_symbolic(s) and s == -1 for s in shape):
            known = math.prod(s for s in shape if is_symbolic(s) or s != -1)
            if known == 0 or n.size % known:
                raise E.ShapeError(f"cannot reshape array of size {n.size} into shape {tuple(shape)}",
                                   hint=f"the known dimensions must divide the size {n.size}",
                                   where=loc)
            shape[[not is_symbolic(s) and s == -1 for s in shape].index(True)] = n.size // known
        shape = tuple(shape)
        if math.prod(shape) != n.size or any(not is_symbolic(s) and s < 0 for s in shape):
            raise E.ShapeError(f"cannot reshape array of size {n.size} into shape {shape}",
                               hint=f"the number of elements must stay {n.size} (shape {n.shape}); "
                                    "use -1 for the dimension to infer", where=loc)
        if same(shape, n.shape):
            return x
        return self._push(Node("reshape", (x,), make_attrs(shape=shape), shape, n.dtype, n.weak, loc))

    def permute(self, x: int, perm, *, loc=None) -> int:
        n = self.nodes[x]
        perm = tuple(int(p) % max(len(n.shape), 1) for p in perm)
        if sorted(perm) != list(range(len(n.shape))):
            raise E.ShapeError(f"axes {perm} are not a permutation of {len(n.shape)} dimensions",
                               hint=f"name each of the axes 0..{len(n.shape) - 1} once", where=loc)
        if perm == tuple(range(len(n.shape))):
            return x
        shape = tuple(n.shape[p] for p in perm)
        return self._push(Node("permute", (x,), make_attrs(perm=perm), shape, n.dtype, n.weak, loc))

    def broadcast_to(self, x: int, shape, *, loc=None) -> int:
        n = self.nodes[x]
        shape = tuple(as_size(s) for s in shape)
        if broadcast_shapes(n.shape, shape) != shape:
            raise E.ShapeError(f"cannot broadcast shape {n.shape} to {shape}",
                               hint="each dimension must equal the target's or be 1, aligned from "
                                    "the right; the target may add leading dimensions", where=loc) from None
        if shape == n.shape:
            return x
        return self._push(Node("broadcast_to", (x,), make_attrs(shape=shape), shape, n.dtype, n.weak, loc))

    def slice(self, x: int, slices, *, loc=None) -> int:
        """slices: one (start, step, size) per dimension, already normalised."""
        n = self.nodes[x]
        slices = tuple((as_size(a), int(b), as_size(c)) for a, b, c in slices)
        if all(s == (0, 1, d) for s, d in zip(slices, n.shape)):
            return x
        shape = tuple(c for _, _, c in slices)
        return self._push(Node("slice", (x,), make_attrs(slices=slices), shape, n.dtype, n.weak, loc))

    # -- matmul ---------------------------------------------------------
    def matmul(self, a: int, b: int, *, loc=None) -> int:
        na, nb = self.nodes[a], self.nodes[b]
        if not na.shape or not nb.shape:
            raise E.ShapeError("matmul: operands must be at least 1-D (numpy rejects 0-d too)",
                               hint="use * for scaling by a scalar", where=loc)
        a_vec, b_vec = len(na.shape) == 1, len(nb.shape) == 1
        user_shapes = f"{na.shape} @ {nb.shape}"
        if a_vec:
            a = self.reshape(a, (1,) + na.shape, loc=loc)
        if b_vec:
            b = self.reshape(b, nb.shape + (1,), loc=loc)
        na, nb = self.nodes[a], self.nodes[b]
        (m, k1), (k2, nn) = na.shape[-2:], nb.shape[-2:]
        if k1 != k2:
            raise E.ShapeError(
                f"matmul: inner dimensions differ: {user_shapes} ({k1} != {k2})",
                hint="the last axis of the left operand must equal the second-to-last of the right "
                     "(a 1-D right operand counts as a column); transpose one with .T or swapaxes",
                where=loc)
        batch = broadcast_shapes(na.shape[:-2], nb.shape[:-2])
        if batch is None:
            raise E.ShapeError(f"matmul: batch dimensions {na.shape[:-2]} and {nb.shape[:-2]} "
                               "do not broadcast",
                               hint="all but the last two dimensions broadcast as in elementwise ops",
                               where=loc) from None
        a = self.broadcast_to(a, batch + (m, k1), loc=loc)
        b = self.broadcast_to(b, batch + (k2, nn), loc=loc)
        try:
            out_dt = result_dtype("matmul", (na.dtype, nb.dtype), (False, False))
        except TypeError as e:
            raise E.DTypeError(f"matmul is not defined for {na.dtype} and {nb.dtype}: {e}",
                               hint="cast to float32 or float64 first", where=loc) from None
        if out_dt == "bool":
            # numpy: any(a[i, :] & b[:, j]), i.e. a count of true products that is not zero
            a = self.elementwise("cast", a, dtype="int64", loc=loc)
            b = self.elementwise("cast", b, dtype="int64", loc=loc)
            r = self._push(Node("matmul", (a, b), (), batch + (m, nn), "int64", loc=loc))
            r = self.elementwise("ne", r, self.add_const(0, loc=loc), loc=loc)
        else:
            r = self._push(Node("matmul", (a, b), (), batch + (m, nn), out_dt, loc=loc))
        shape = batch + ((() if a_vec else (m,)) + (() if b_vec else (nn,)))
        return self.reshape(r, shape, loc=loc)

    def finish(self, outputs) -> Graph:
        return Graph(tuple(self.nodes), tuple(self.inputs), tuple(outputs))

"""Shape changes and indexing of traced values: reshape, transpose, swapaxes, broadcast_to,
expand_dims, squeeze, and x[...] with basic indices (an advanced index, a gather, is refused
saying what works instead). On plain values, numpy's own functions.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import errors as E
from .symbols import is_symbolic
from .traced import Traced, record_view


def reshape(x, shape):
    r = record_view(x, lambda b, i, loc: b.reshape(i, shape, loc=loc))
    return np.reshape(x, shape) if r is None else r


def transpose(x, axes=None):
    def f(b, i, loc):
        nd = len(b.nodes[i].shape)
        return b.permute(i, tuple(reversed(range(nd))) if axes is None else tuple(axes), loc=loc)
    r = record_view(x, f)
    return np.transpose(x, axes) if r is None else r


permute = transpose


def swapaxes(x, a, b_):
    def f(b, i, loc):
        nd = len(b.nodes[i].shape)
        perm = list(range(nd))
        aa, bb = a % nd, b_ % nd
        perm[aa], perm[bb] = perm[bb], perm[aa]
        return b.permute(i, tuple(perm), loc=loc)
    r = record_view(x, f)
    return np.swapaxes(x, a, b_) if r is None else r


def broadcast_to(x, shape):
    r = record_view(x, lambda b, i, loc: b.broadcast_to(i, shape, loc=loc))
    return np.broadcast_to(x, shape) if r is None else r


def expand_dims(x, axis):
    def f(b, i, loc):
        shape = list(b.nodes[i].shape)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        nd = len(shape) + len(axes)
        for a in sorted(ax % nd for ax in axes):
            shape.insert(a, 1)
        return b.reshape(i, tuple(shape), loc=loc)
    r = record_view(x, f)
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
    r = record_view(x, f)
    return np.squeeze(x, axis) if r is None else r


def getitem(x: Traced, idx):
    """x[idx] for basic indices: ints, slices, None and ..."""
    loc = E.user_frame()
    b = x.builder
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
        if isinstance(i, slice) and is_symbolic(size) and _plain_slice(i):
            # a symbolic length: x[a:], x[a:-b], x[::s] stay symbolic (guarded non-empty)
            step = 1 if i.step is None else int(i.step)
            start = int(i.start or 0)
            stop = size if i.stop is None else size + int(i.stop)
            if stop < start:                 # records the guard
                slices.append((0, step, 0))
                out_shape.append(0)
            else:
                n = (stop - start + step - 1) // step
                slices.append((start, step, n))
                out_shape.append(n)
        elif isinstance(i, slice):
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
    v = b.slice(x.node_id, slices, loc=loc)
    return type(x)(b, b.reshape(v, tuple(out_shape), loc=loc))


def _plain_slice(i: slice) -> bool:
    """A slice that keeps a symbolic length symbolic: a step >= 1, a start >= 0, and no stop
    or a stop counted from the end (< 0)."""
    def whole(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    return ((i.step is None or (whole(i.step) and i.step >= 1))
            and (i.start is None or (whole(i.start) and i.start >= 0))
            and (i.stop is None or (whole(i.stop) and i.stop < 0)))


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
    if isinstance(i, Traced):
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


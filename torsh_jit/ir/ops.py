"""The op table: every IR op, as data.

Per op: its kind (which decides fusion), arity, and its numpy reference. The
reference is the semantics: tests compare against it, and result dtypes are
found by calling it on empty arrays (so promotion is numpy's, NEP 50 included).
Each language adds only its spelling (codegen/llvm/ops.py, ...).
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import dtypes as dt

ELEMENTWISE, REDUCE, VIEW, MATMUL, SOURCE = "elementwise", "reduce", "view", "matmul", "source"


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str
    arity: int
    ref: Callable            # numpy reference: ref(*arrays, **attrs) -> array
    type_ref: Callable | None = None   # used for dtype inference when ref is not a ufunc-like numpy call
    float_only: bool = False  # ints are promoted to float64 first (as numpy's exp does)


def _sigmoid(x):
    x = np.asarray(x)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    x = np.asarray(x)
    out_dt = np.float64 if x.dtype.kind in "biu" else x.dtype
    # frompyfunc gives a Python float for a 0-d input (constant folding, eager calls)
    return np.asarray(_erf_scalar(x.astype(np.float64)), dtype=np.float64).astype(out_dt)


def _rsqrt(x):
    x = np.asarray(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 / np.sqrt(x)).astype(np.sqrt(x).dtype)


def _relu(x):
    x = np.asarray(x)
    return np.maximum(x, x.dtype.type(0)) if x.dtype != np.bool_ else x.copy()


def _cast(x, dtype):
    return np.asarray(x).astype(dtype)


OPS: dict[str, OpDef] = {}


def _add(name, kind, arity, ref, type_ref=None, float_only=False):
    OPS[name] = OpDef(name, kind, arity, ref, type_ref, float_only)


# unary elementwise
for _n, _f in [("neg", np.negative), ("abs", np.abs), ("floor", np.floor), ("ceil", np.ceil),
               ("round", np.rint), ("sign", np.sign), ("logical_not", np.logical_not)]:
    _add(_n, ELEMENTWISE, 1, _f)
for _n, _f in [("exp", np.exp), ("exp2", np.exp2), ("log", np.log), ("log2", np.log2),
               ("log1p", np.log1p), ("expm1", np.expm1), ("sqrt", np.sqrt), ("sin", np.sin),
               ("cos", np.cos), ("tan", np.tan), ("tanh", np.tanh)]:
    _add(_n, ELEMENTWISE, 1, _f, float_only=True)
_add("rsqrt", ELEMENTWISE, 1, _rsqrt, np.sqrt, float_only=True)
_add("sigmoid", ELEMENTWISE, 1, _sigmoid, np.exp, float_only=True)
_add("erf", ELEMENTWISE, 1, _erf, np.exp, float_only=True)
_add("relu", ELEMENTWISE, 1, _relu)

# binary elementwise
for _n, _f in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
               ("truediv", np.true_divide), ("floordiv", np.floor_divide), ("mod", np.remainder),
               ("pow", np.power), ("maximum", np.maximum), ("minimum", np.minimum),
               ("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
               ("gt", np.greater), ("ge", np.greater_equal),
               ("logical_and", np.logical_and), ("logical_or", np.logical_or),
               ("logical_xor", np.logical_xor)]:
    _add(_n, ELEMENTWISE, 2, _f)

_add("where", ELEMENTWISE, 3, np.where)
_add("cast", ELEMENTWISE, 1, _cast)

# reductions: attrs axis (tuple of ints, normalised), keepdims (bool)
for _n, _f in [("sum", np.sum), ("prod", np.prod), ("max", np.max), ("min", np.min),
               ("mean", np.mean), ("argmax", np.argmax), ("argmin", np.argmin),
               ("any", np.any), ("all", np.all)]:
    _add(_n, REDUCE, 1, _f)

# views: no arithmetic, only a new way to index the same elements
for _n in ("reshape", "permute", "broadcast_to", "slice"):
    _add(_n, VIEW, 1, None)

_add("matmul", MATMUL, 2, np.matmul)
_add("input", SOURCE, 0, None)
_add("const", SOURCE, 0, None)
# a symbolic size as a scalar value (attr `value`, a Sym): the count of a mean over a
# symbolic axis, which a kernel reads from its size table
_add("size", SOURCE, 0, None)

COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
LOGICAL = frozenset({"logical_and", "logical_or", "logical_xor", "logical_not"})
ARG_REDUCTIONS = frozenset({"argmax", "argmin"})
# The reductions a kernel computes: every REDUCE op but mean, which the graph builder
# writes as a sum and a division.
REDUCE_OPS = frozenset({"sum", "prod", "max", "min", "argmax", "argmin", "any", "all"})
# the integer dtypes' ranges: the identities of max and min, and the limits a lowering clamps to
INT_LIMITS = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def _empty(dtype: str, weak: bool):
    if weak:
        return dt.weak_example(dtype)
    return np.empty((0,), dtype=dt.to_numpy(dtype))


@functools.lru_cache(maxsize=4096)
def result_dtype(op: str, in_dtypes: tuple[str, ...], weak: tuple[bool, ...], attrs: tuple = ()) -> str:
    """The dtype numpy gives for `op` on these input dtypes (weak = Python scalar, NEP 50).

    Raises TypeError (with numpy's message) when numpy rejects the combination.
    """
    d = OPS[op]
    if op == "cast":
        return dict(attrs)["dtype"]
    if op == "where":
        args = [_empty(t, w) for t, w in zip(in_dtypes[1:], weak[1:])]
        return np.result_type(*args).name
    fn = d.type_ref or d.ref
    args = [_empty(t, w) for t, w in zip(in_dtypes, weak)]
    if all(not isinstance(a, np.ndarray) for a in args):
        args[0] = np.empty((0,), dtype=dt.to_numpy(in_dtypes[0]))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if d.kind == REDUCE:
            res = fn(np.empty((1,), dtype=dt.to_numpy(in_dtypes[0])))
            return np.asarray(res).dtype.name
        res = fn(*args)
    return np.asarray(res).dtype.name


def operand_dtypes(op: str, attrs: dict, result: str, n: int) -> tuple[list[str], str]:
    """(dtype each operand is converted to, dtype the op computes in): numpy's loops.

    Comparisons compute in the promoted input dtype the builder recorded (attr 'ct');
    logical ops in bool; where takes a bool condition; everything else computes in its
    result dtype. Every renderer asks here instead of keeping its own table."""
    if op in COMPARISONS:
        return [attrs["ct"]] * n, attrs["ct"]
    if op in LOGICAL:
        return ["bool"] * n, "bool"
    if op == "where":
        return ["bool", result, result], result
    return [result] * n, result

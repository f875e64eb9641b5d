"""Tracing: call the user's function with Tensor proxies and record a Graph.

Arguments are classified into ArgSpecs; the tuple of specs is what a kernel is
specialised on. Arrays specialise on shape, dtype and element strides (the
'strides class'); scalars on their dtype and weakness only, so a new scalar
value runs the same compiled code.
"""
from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass

import numpy as np

from .. import errors as E
from . import dtypes as dt
from .builder import GraphBuilder
from .graph import Graph
from .symbols import is_symbolic
from .tensor import Tensor


@dataclass(frozen=True)
class ArgSpec:
    kind: str                    # "array" or "scalar"
    shape: tuple[int, ...]
    dtype: str
    weak: bool = False           # Python scalar (NEP 50)
    strides: tuple[int, ...] | None = None   # element strides; None = C-contiguous

    def describe(self) -> str:
        if self.kind == "scalar":
            return f"{'python ' if self.weak else ''}{self.dtype} scalar"
        s = "" if self.strides is None else f" strides={self.strides}"
        return f"{self.dtype}[{','.join(map(str, self.shape))}]{s}"


def spec_symbols(specs) -> tuple[str, ...]:
    """The names of the symbolic sizes in argument specs, in order of first appearance."""
    out: dict = {}
    for s in specs:
        for d in tuple(s.shape) + tuple(s.strides or ()):
            if is_symbolic(d):
                for name in sorted(d.symbols):
                    out.setdefault(name, None)
    return tuple(out)


def contiguous_strides(shape) -> tuple[int, ...]:
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= s if is_symbolic(s) else max(s, 1)   # an empty array's strides are never read
    return tuple(reversed(st))


def spec_of(arg, *, index: int = 0, name: str | None = None, where: str | None = None) -> ArgSpec:
    """Classify one call argument. Raises ArgumentError/DTypeError for what cannot be passed.

    name: the parameter's name and where: the caller's 'file:line', for messages."""
    what = f"argument {index}" + (f" ({name!r})" if name else "")
    if isinstance(arg, (bool, int, float)) and not isinstance(arg, np.generic):
        if isinstance(arg, int) and not isinstance(arg, bool) and not -2**63 <= arg < 2**63:
            raise E.ArgumentError(f"{what} is the Python int {arg}, beyond int64: torsh-jit passes "
                                  "Python ints as int64 (numpy raises OverflowError where such a "
                                  "value meets an integer array)",
                                  hint=f"pass float({arg}) to compute in floats", where=where)
        return ArgSpec("scalar", (), dt.python_scalar_dtype(arg), weak=True)
    if isinstance(arg, np.generic):
        return ArgSpec("scalar", (), dt.from_numpy(arg.dtype, where=where, what=what))
    if isinstance(arg, np.ndarray) and type(arg) is not np.ndarray:
        _check_subclass(arg, what, where)
    if isinstance(arg, np.ndarray):
        d = dt.from_numpy(arg.dtype, where=where, what=what)
        if arg.ndim == 0:
            return ArgSpec("scalar", (), d)
        isz = arg.itemsize
        if any(s % isz for s in arg.strides):
            raise E.ArgumentError(f"{what} has strides {arg.strides} that are not a "
                                  f"multiple of its item size {isz}",
                                  hint="pass np.ascontiguousarray(x)", where=where)
        strides = tuple(s // isz for s in arg.strides)
        if strides == contiguous_strides(arg.shape) or arg.size <= 1:
            strides = None
        return ArgSpec("array", tuple(arg.shape), d, strides=strides)
    if isinstance(arg, complex):
        raise E.DTypeError(f"{what} is a complex number, which torsh-jit does not support",
                           hint="pass the real and imaginary parts as two float arguments",
                           where=where)
    if not isinstance(arg, (str, bytes)) and (hasattr(arg, "__array_interface__")
                                              or hasattr(arg, "__array__")):
        return spec_of(np.asarray(arg), index=index, name=name, where=where)
    raise E.ArgumentError(f"{what} is a {type(arg).__name__} ({_short_repr(arg)}), not an array "
                          "or a number",
                          hint="pass numpy arrays, numpy scalars or Python numbers"
                               + (" (convert text first, e.g. float(s))"
                                  if isinstance(arg, str) else ""),
                          where=where)


def _check_subclass(arg: np.ndarray, what: str, where) -> None:
    """An ndarray subclass is read as its plain data only when that is what numpy would
    compute with: np.matrix (* is a matrix product), masked arrays (masked values are left
    out) and any subclass with its own __array_ufunc__ / __array_function__ (units,
    lazy arrays) change the arithmetic, so they are refused rather than read wrong."""
    t = type(arg)
    if isinstance(arg, np.matrix):
        why, hint = ("np.matrix, whose * and ** are matrix operations",
                     "pass np.asarray(x) and write x @ y for the matrix product")
    elif isinstance(arg, np.ma.MaskedArray):
        why, hint = ("a masked array; torsh-jit would compute on the masked values too",
                     "pass x.filled(value) (or np.ma.getdata(x) to use the data as it is)")
    elif (t.__array_ufunc__ is not np.ndarray.__array_ufunc__
          or t.__array_function__ is not np.ndarray.__array_function__):
        why, hint = (f"a {t.__name__}, an ndarray subclass that overrides numpy's operations",
                     "pass np.asarray(x) to compute on the plain data")
    else:
        return
    raise E.ArgumentError(f"{what} is {why}", hint=hint, where=where)


def _short_repr(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def trace(fn, specs: tuple[ArgSpec, ...], *, count_dtype: str = "float64") -> tuple[Graph, bool]:
    """Run fn on Tensor proxies standing for `specs`: (the recorded Graph, returned a tuple?).
    count_dtype: what a kernel counts the elements of a symbolic axis in (mean, var):
    float64 where the target holds it, else float32 (GraphBuilder.count)."""
    b = GraphBuilder()
    b.count_dtype = count_dtype
    params = param_names(fn, len(specs))
    proxies = []
    for spec, name in zip(specs, params):
        proxies.append(Tensor(b, b.add_input(spec.shape, spec.dtype, weak=spec.weak, name=name)))
    result = fn(*proxies)
    outs = result if isinstance(result, tuple) else (result,)
    if isinstance(result, list):
        outs = tuple(result)
    ids = []
    for k, o in enumerate(outs):
        if isinstance(o, Tensor):
            if o.builder is not b:
                raise E.TraceError(f"output {k} comes from another traced function",
                                   hint="compute outputs from this kernel's own arguments",
                                   where=_def_site(fn))
            ids.append(o.node_id)
        elif isinstance(o, (bool, int, float, np.generic)):
            ids.append(b.add_const(o if not isinstance(o, np.generic) else o.item(),
                                   None if not isinstance(o, np.generic) else dt.from_numpy(o.dtype)))
        else:
            raise E.TraceError(
                f"the kernel returned {type(o).__name__} as output {k}",
                hint="return arrays computed from the arguments (one, or a tuple of them)",
                where=_def_site(fn))
    return b.finish(ids), isinstance(result, (tuple, list))


_SIGNATURES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def signature(fn):
    """inspect.signature(fn), kept per function (a kernel's every new shape asks it twice);
    raises TypeError or ValueError as inspect does."""
    try:
        return _SIGNATURES[fn]
    except (KeyError, TypeError):
        sig = inspect.signature(fn)
        try:
            _SIGNATURES[fn] = sig
        except TypeError:          # not weakly referenceable: asked again next time
            pass
        return sig


def param_names(fn, n: int) -> list[str]:
    """Names of fn's first n positional parameters (argN where it has none)."""
    try:
        sig = signature(fn)
    except (TypeError, ValueError):
        return [f"arg{i}" for i in range(n)]
    names = []
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}{i}" for i in range(n - len(names))]
            break
        names.append(p.name)
    return (names + [f"arg{i}" for i in range(len(names), n)])[:n]


def check_arity(fn, n: int, *, where: str | None = None):
    """ArgumentError when fn cannot take n positional arguments (where: the call site)."""
    try:
        sig = signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*range(n))
    except TypeError as e:
        site = _def_site(fn)
        raise E.ArgumentError(f"{fn.__name__}{sig} called with {n} argument{'s' if n != 1 else ''}: {e}",
                              hint="pass one array or number per parameter, by position or by "
                                   "name" + (f"; {fn.__name__} is defined at {site}" if site else ""),
                              where=where or site) from None


def _def_site(fn) -> str | None:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else None

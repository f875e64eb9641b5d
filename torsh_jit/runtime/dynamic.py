"""Shape-polymorphic kernels: which argument dimensions are symbolic, the argument specs
that say so, and matching a call against a compiled variant's symbols and guards.

`dynamic=` on a kernel:
- False: every call specialises on exact shapes (one compile per new shape).
- True: every dimension of every array argument is a symbol; dimensions that broadcasting
  lines up (the same axis counted from the right) and that are equal at the traced call
  share one. Others get their own even when equal (a batch of 64 rows of 64 is two
  symbols), and where the code needs them equal (a matmul's K) that is a guard.
- "auto" (the default): the first call specialises; when a later call differs from a
  compiled shape only in some dimensions, those become symbols and the kernel is compiled
  once more, for every size of them (torch.compile's automatic dynamic shapes).
- a tuple of names by axis (`("batch", None)`) or a dict axis -> name (`{0: "batch"}`):
  that axis of every array argument is the named symbol where its size equals the first
  such argument's at the traced call.

A symbolic variant holds the guards planning recorded (ir/symbols.py): a call binds the
symbols from its shapes, checks the other dimensions and the strides, then the guards.
"""
from __future__ import annotations

import logging
import math
import os
import re

from .. import errors as E
from ..ir.symbols import ShapeEnv, Sym, evaluate, is_symbolic, pins, substitute
from ..ir.tracer import ArgSpec, contiguous_strides

log = logging.getLogger("torsh_jit.recompiles")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _configure_log() -> None:
    wanted = {w.strip() for w in os.environ.get("TORSH_JIT_LOG", "").split(",")}
    if "recompiles" in wanted and not log.handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("torsh_jit: %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)


_configure_log()


def check_policy(dynamic, where=None):
    """The dynamic= value normalised: False, True, "auto", or {axis: name}."""
    if dynamic in (False, True, "auto"):
        return dynamic
    if isinstance(dynamic, (tuple, list)):
        dynamic = {i: n for i, n in enumerate(dynamic) if n is not None}
    if isinstance(dynamic, dict) and dynamic and all(
            isinstance(a, int) and not isinstance(a, bool) and isinstance(n, str) and _NAME.match(n)
            for a, n in dynamic.items()):
        return dict(dynamic)
    raise E.located(E.ArgumentError(
        f"dynamic={dynamic!r} is not understood",
        hint='dynamic=True (every dimension), "auto" (the default: a dimension becomes symbolic '
             'the first time it changes), False (exact shapes), ("batch",) or {0: "batch"} '
             "(name the symbolic axis; names are identifiers)"), where)


def symbolic_specs(specs: tuple[ArgSpec, ...], marks) -> tuple[ArgSpec, ...]:
    """The specs with symbols where `marks` says: a set of (argument, axis) for "auto", True
    for every axis, or {axis: name}. Sizes of one value at one axis from the right share a
    symbol."""
    by_value: dict = {}
    names: dict = {}
    out = []
    for i, s in enumerate(specs):
        if s.kind != "array":
            out.append(s)
            continue
        shape = []
        for j, d in enumerate(s.shape):
            name = None
            if marks is True or (isinstance(marks, set) and (i, j) in marks):
                slot = (d, j - len(s.shape))
                name = by_value.get(slot)
                if name is None:
                    name = by_value[slot] = f"s{len(by_value)}"
            elif isinstance(marks, dict) and (j in marks or j - len(s.shape) in marks):
                want = marks.get(j, marks.get(j - len(s.shape)))
                if names.setdefault(want, d) == d:
                    name = want
            if name is None:
                shape.append(d)
                continue
            shape.append(Sym.symbol(name, d))
        shape = tuple(shape)
        out.append(ArgSpec("array", shape, s.dtype, s.weak, _strides(s, shape)))
    return tuple(out)


def _strides(spec: ArgSpec, shape):
    """Element strides of a symbolic spec: None (C-contiguous), the contiguous strides of a
    permutation of the axes (a transpose) in symbols, or the array's own integers."""
    if spec.strides is None or not any(is_symbolic(d) for d in shape):
        return spec.strides
    nd = len(shape)
    order = sorted(range(nd), key=lambda k: (-abs(spec.strides[k]), k))
    perm_shape = [shape[k] for k in order]
    cs = contiguous_strides(perm_shape)
    sym = [0] * nd
    for pos, k in enumerate(order):
        sym[k] = cs[pos]
    if tuple(evaluate(x, {}) if not is_symbolic(x) else x.hint for x in sym) == spec.strides:
        return tuple(sym)
    return spec.strides


def spec_hints(specs) -> dict:
    """{symbol: hint} of the pure symbols in specs' shapes."""
    out: dict = {}
    for s in specs:
        for d in s.shape:
            if is_symbolic(d):
                out.setdefault(next(iter(d.symbols)), d.hint)
    return out


def pin_specs(specs, mapping: dict) -> tuple[ArgSpec, ...]:
    """The specs with pinned symbols replaced (symbols.pins)."""
    hints = spec_hints(specs)
    return tuple(ArgSpec(s.kind, tuple(substitute(d, mapping, hints) for d in s.shape), s.dtype,
                         s.weak, None if s.strides is None else
                         tuple(substitute(d, mapping, hints) for d in s.strides))
                 for s in specs)


def plan_symbolic(trace, plan, fn, specs, target):
    """Trace and plan with symbolic specs; where the guards pin a symbol (to a constant or
    to another symbol), replace it and trace again, so no code depends on a pinned value
    through a decision no guard records. (the plan, whether the function returns a tuple)."""
    count = "float64" if target.supports("float64") else "float32"
    for _ in range(8):
        env = ShapeEnv(recompiles=True)
        with env.active():
            g, is_tuple = trace(fn, specs, count_dtype=count)
            p = plan(g, specs, target)
        fixed = pins(p.guards, spec_hints(specs))
        if not fixed:
            return p, is_tuple
        split = split_shared(specs, [n for n, v in fixed.items() if isinstance(v, int)])
        if split is not None:
            # a shared symbol fixed by one of its arguments (a weight's length, a matmul's K
            # named like the batch): each argument's axis gets its own, and only the one
            # that needs it is fixed
            log.debug("symbols %s shared by arguments and fixed: separated", fixed)
            specs = split
            continue
        log.debug("pinned by guards: %s; tracing again", fixed)
        specs = pin_specs(specs, fixed)
    raise E.InternalError("symbolic planning did not settle after 8 rounds of pinned symbols")


def split_shared(specs, names) -> tuple | None:
    """The specs with each of `names` kept in the first argument that has it and a fresh
    symbol in every other argument (None where no such symbol is in two arguments)."""
    hints = spec_hints(specs)
    used = set(hints)
    out, changed = list(specs), False
    for name in names:
        first = next(i for i, s in enumerate(specs) if any(
            is_symbolic(d) and name in d.symbols for d in s.shape))
        for i in range(first + 1, len(specs)):
            s = out[i]
            if not any(is_symbolic(d) and name in d.symbols for d in s.shape):
                continue
            k = 0
            while f"{name}_{k}" in used:
                k += 1
            fresh = f"{name}_{k}"
            used.add(fresh)
            m = {name: Sym.symbol(fresh, hints[name])}
            out[i] = ArgSpec(s.kind, tuple(substitute(d, m, hints) for d in s.shape), s.dtype,
                             s.weak, None if s.strides is None else
                             tuple(substitute(d, m, hints) for d in s.strides))
            changed = True
    return tuple(out) if changed else None


class Variant:
    """A compiled symbolic specialisation: its argument patterns and guards, and for an
    autotuned kernel the shape bucket whose tuned configs it runs."""
    __slots__ = ("specs", "guards", "symbols", "build", "single", "bucket", "checks")

    def __init__(self, specs, guards, symbols, build, single, bucket=None):
        self.specs, self.guards, self.symbols = specs, guards, symbols
        self.build, self.single, self.bucket = build, single, bucket
        self.checks = None       # specialization.plan_checks of the plan, made at first use

    def bind(self, specs) -> dict | None:
        """{symbol: value} for a call's argument specs (as the target's backend classified
        them: host or device arrays alike), or None where they do not fit."""
        if len(specs) != len(self.specs):
            return None
        values: dict = {}
        for want, have in zip(self.specs, specs):
            if want.kind != have.kind or want.dtype != have.dtype or want.weak != have.weak \
                    or len(want.shape) != len(have.shape):
                return None
            for d, n in zip(want.shape, have.shape):
                if is_symbolic(d):
                    name = next(iter(d.symbols))
                    if values.setdefault(name, n) != n:
                        return None
                elif d != n:
                    return None
        for want, have in zip(self.specs, specs):
            if want.kind != "array" or (want.strides is None and have.strides is None):
                continue
            shape = have.shape
            if math.prod(shape) <= 1:
                continue
            w = contiguous_strides(shape) if want.strides is None else \
                tuple(evaluate(s, values) for s in want.strides)
            h = contiguous_strides(shape) if have.strides is None else have.strides
            if any(n != 1 and a != b for a, b, n in zip(h, w, shape)):
                return None
        for g in self.guards:
            if not g.holds(values):
                return None
        return values

    def failed_guard(self, args) -> str:
        """Why a call does not fit (for the recompile log)."""
        values: dict = {}
        for i, (spec, a) in enumerate(zip(self.specs, args)):
            if spec.kind != "array":
                continue
            shape = getattr(a, "shape", ())
            if len(shape) != len(spec.shape):
                return f"argument {i} has {len(shape)} dimensions, not {len(spec.shape)}"
            for j, (d, n) in enumerate(zip(spec.shape, shape)):
                if is_symbolic(d):
                    name = next(iter(d.symbols))
                    if values.setdefault(name, n) != n:
                        return f"argument {i} axis {j} is {n}, but {name} = {values[name]}"
                elif d != n:
                    return f"argument {i} axis {j} is {n}, compiled for {d}"
        for g in self.guards:
            if not g.holds(values):
                return f"guard {g!r} fails for {values}"
        return "its strides or dtype differ"


def auto_marks(old_specs, specs) -> set | None:
    """Axes where a call differs from an earlier exact specialisation of the same ranks,
    dtypes and kinds: the dimensions "auto" makes symbolic. None if none is comparable."""
    if len(old_specs) != len(specs):
        return None
    marks = set()
    for i, (a, b) in enumerate(zip(old_specs, specs)):
        if a.kind != b.kind or a.dtype != b.dtype or len(a.shape) != len(b.shape) \
                or (a.strides is None) != (b.strides is None):
            return None
        for j, (x, y) in enumerate(zip(a.shape, b.shape)):
            if is_symbolic(x) or x != y:
                marks.add((i, j))
    return marks or None

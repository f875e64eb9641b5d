"""`@tj.kernel`: a Python function compiled per (shapes, dtypes, strides class, target).

The call path is kept short: a tuple key from each argument's shape, strides and
dtype (or a scalar's type) finds the built function; outputs are allocated and
the native code runs. Tracing, fusion and code generation happen only on a new key.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import errors as E
from .backends import backend_for
from .backends.host import aligned_empty
from .compiler import Plan, build, plan, render
from .ir.graph import Graph
from .intake import bind_keywords, classify_args, out_arrays, take_args, to_torch
from .ir.tracer import ArgSpec, spec_symbols, trace
from .runtime.aliases import resolve as parse_target
from .runtime.dynamic import Variant, auto_marks, check_policy, log, plan_symbolic, symbolic_specs
from .runtime.specialization import Specialization, plan_checks
from .target import ALIASES, Target

_SCALAR_TYPES = (bool, int, float)
DEVICE_KEYS: dict = {}   # array type -> its key function (cupy, torch: registered by their backend)


def _arg_key(a):
    """The part of the specialisation key one argument contributes (hot path)."""
    t = type(a)
    if t is np.ndarray:
        return (a.shape, a.strides, a.dtype)
    if t in _SCALAR_TYPES:
        return t
    if isinstance(a, np.generic):
        return t
    k = DEVICE_KEYS.get(t)
    return k(a) if k is not None else None   # None: classified the slow way


@dataclass(frozen=True)
class Lowered:
    """What `Kernel.lower` returns: the plan and the generated source text."""
    plan: Plan
    source: str

    @property
    def target(self) -> Target:
        return self.plan.target

    @property
    def graph(self) -> Graph:
        return self.plan.optimized

    @property
    def groups(self):
        return self.plan.part.groups

    @property
    def configs(self):
        return self.plan.configs

    @property
    def n_kernels(self) -> int:
        return len(self.plan.part.groups)

    def asm(self) -> str:
        """The target assembly: LLVM's for CPU targets, PTX (and SASS where the CUDA toolkit
        is on PATH) for CUDA; a TargetError for MSL and WGSL, which have none."""
        from .explain import assembly
        return assembly(self.source, self.plan.target, self.plan)

    def explain(self) -> str:
        from .explain import explain_plan
        return explain_plan(self.plan, self.source)


class Kernel:
    """A compiled-on-demand kernel. Call it like the Python function it wraps."""

    def __init__(self, fn, target="host", *, name: str | None = None, autotune=False,
                 tune_budget_s: float = 30.0, tune_trials: int | None = None,
                 dynamic="auto", max_specializations: int = 64):
        _check_callable(fn)
        # which dimensions compile as symbols (runtime/dynamic.py); the compiled variants
        # are kept in an LRU table of at most max_specializations
        self.dynamic = check_policy(dynamic, E.user_frame())
        if not isinstance(max_specializations, int) or max_specializations < 1:
            raise E.located(E.ArgumentError(f"max_specializations={max_specializations!r} must be "
                                            "a positive int", hint="max_specializations=64"),
                            E.user_frame())
        self.max_specializations = max_specializations
        self._table: OrderedDict = OrderedDict()    # variant key -> Variant | specs (exact)
        self.compiles = 0       # specialisations built (traced and planned) by this kernel
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "kernel")
        if autotune not in (False, True, "exact"):
            raise E.located(E.ArgumentError(f"autotune={autotune!r} is not understood",
                                            hint='autotune=True (per shape bucket), "exact" (per '
                                                 'exact shape) or False'), E.user_frame())
        # autotune: the first call at a new shape bucket uses the stored decision or tunes
        # (tune_budget_s, tune_trials); TORSH_JIT_AUTOTUNE=0 never measures
        self.autotune = autotune
        self.tune_budget_s = tune_budget_s
        self.tune_trials = tune_trials
        # several targets: every variant is built and kept; calls run the best one this
        # machine executes (highest rank), so the same code picks a lower level elsewhere
        self._variant_names: tuple[str, ...] = ()
        if isinstance(target, (list, tuple)):
            if not target:
                raise E.located(E.TargetError("an empty list of targets",
                                              hint='name at least one, e.g. ["x86_64-avx512", "x86_64-avx2"]'),
                                E.user_frame())
            try:
                self._variant_names = tuple(parse_target(t).name for t in target)
            except E.TargetError as err:
                raise E.located(err, E.user_frame()) from None
        self._target_name = target
        self._target: Target | None = None
        self._variants: dict = {}
        self._device_arrays: bool | None = None   # _on_device(), asked once
        if isinstance(target, str) and target.strip() not in ALIASES:
            # a misspelt name is reported where it is written, not at the first call
            try:
                self._target = parse_target(target)
            except E.TargetError as err:
                raise E.located(err, E.user_frame()) from None
        self._specs: dict = {}
        self._lock = threading.RLock()     # held while a specialisation is built

    def __repr__(self):
        return f"<torsh_jit.Kernel {self.name} target={self._target_name}>"

    @property
    def target(self) -> Target:
        if self._target is None:
            if self._variant_names:
                self._target = self._best_variant()
            else:
                self._target = parse_target(self._target_name)
        return self._target

    def _best_variant(self) -> Target:
        from .runtime.hardware import runs_natively
        runnable = [parse_target(n) for n in self._variant_names if runs_natively(parse_target(n))]
        if not runnable:
            raise E.TargetError(f"none of the targets {list(self._variant_names)} runs natively here",
                                hint="add a lower level (e.g. x86_64-sse42); tj.available_targets() "
                                     "lists what runs")
        return max(runnable, key=lambda t: t.rank)

    @property
    def variants(self) -> tuple[str, ...]:
        """The targets this kernel is built for (one unless several were named)."""
        return self._variant_names or (self.target.name,)

    def built_variants(self, *args) -> dict:
        """{target name: built function} for these argument types (every named variant)."""
        specs = self.specs_of(args)
        return {n: self._variants.get((specs, n)) for n in self.variants}

    def to(self, target) -> "Kernel":
        """The same kernel for another target (run here, emulated if it must be)."""
        return Kernel(self.fn, target, name=self.name, autotune=self.autotune,
                      tune_budget_s=self.tune_budget_s, tune_trials=self.tune_trials,
                      dynamic=self.dynamic, max_specializations=self.max_specializations)

    # -- calling ---------------------------------------------------------------------------
    def __call__(self, *args, out=None, **kwargs):
        if kwargs:
            args = bind_keywords(self.fn, args, kwargs)
        try:
            entry = self._specs[tuple([(a.shape, a.strides, a.dtype) if type(a) is np.ndarray
                                       else _arg_key(a) for a in args])]
        except (KeyError, TypeError):
            args, torch = take_args(args, self._on_device())
            entry = self._specialize(args)
            if torch is not None:
                return to_torch(self._run(entry, args, out), torch)
        if entry.simple and out is None:        # the common case, inline: the call's overhead
            o = np.empty(entry.out_shape, entry.out_dtype) if not entry.big_out \
                else aligned_empty(entry.out_shape, entry.out_dtype)
            entry.run(args + (o,))
            return o
        return self._run(entry, args, out)

    def _on_device(self) -> bool:
        """A target of this kernel takes device arrays as they are (CUDA's backend places
        them), so intake must not read them into host memory. Asked once per kernel."""
        if self._device_arrays is None:
            try:
                self._device_arrays = any(backend_for(parse_target(n)).device_arrays
                                          for n in (self._variant_names or (self._target_name,)))
            except E.TargetError:
                self._device_arrays = False   # the call's classification reports it, at its line
        return self._device_arrays

    def _run(self, entry: Specialization, args: tuple, out):
        if entry.simple and out is None:
            o = np.empty(entry.out_shape, entry.out_dtype) if not entry.big_out \
                else aligned_empty(entry.out_shape, entry.out_dtype)
            entry.run(args + (o,))
            return o
        bufs = list(args)
        for i, lo, hi, name, why in entry.int_bounds:
            if not lo <= args[i] <= hi:
                raise E.ArgumentError(f"{self.name}: argument {i} (Python integer {args[i]}) is out of "
                                      f"bounds for {name}, {why}",
                                      hint="pass a value that fits, or np.int64(v) with a wider array")
        for i in entry.exponents:
            if np.any(np.asarray(args[i]) < 0):
                raise E.DomainError(f"{self.name}: argument {i} is an integer exponent with a negative "
                                    "value: Integers to negative integer powers are not allowed "
                                    "(numpy raises ValueError too)",
                                    hint="use non-negative exponents, or compute in floats "
                                         "(x.astype(np.float64) ** e)", where=E.user_frame())
        if entry.device:
            return entry.fn.call(args, out, entry.single)
        for i in entry.scalar_pos:
            bufs[i] = np.asarray(bufs[i], dtype=entry.specs[i].dtype)
        copy_back = ()
        if out is None:
            outs = [aligned_empty(s, d) for s, d in entry.outs]
        else:
            views, given, copy_back = out_arrays(self.name, entry.outs, out)
            outs = list(views)
            copy_back = sorted(set(copy_back) | set(entry.overlapping(args, outs)))
            for k in copy_back:
                outs[k] = aligned_empty(*entry.outs[k])
        bufs += outs
        if entry.temps:
            bufs += [np.empty(s, d) for s, d in entry.temps]
        entry.fn.run(tuple(bufs))
        if out is not None:
            for k in copy_back:
                np.copyto(views[k], outs[k], casting="same_kind")
            return given[0] if entry.single else tuple(given)
        if entry.single:
            o = outs[0]
            return o[()] if entry.zero_d[0] else o
        return tuple(o[()] if z else o for o, z in zip(outs, entry.zero_d))

    def specs_of(self, args, target=None) -> tuple[ArgSpec, ...]:
        """The ArgSpecs these call arguments have for this kernel (on target, or its own):
        each checked and classified as the target's backend reads it; errors point at the
        caller's line."""
        loc = E.user_frame()
        t = target if isinstance(target, Target) else None
        if t is None and (target is not None or self._target_name != "host"):
            try:
                t = parse_target(target) if target is not None else self.target
            except E.TargetError as err:
                raise E.located(err, loc) from None
        if t is not None:
            be = backend_for(t)
            be.register_device_keys(DEVICE_KEYS)
            be.prepare(t)                     # a slow toolchain's start-up, while we trace
        return classify_args(self.fn, args, t, where=loc)

    @property
    def python_function(self):
        """The Python function this kernel compiles."""
        return self.fn

    def _specialize(self, args):
        try:
            key = tuple(map(_arg_key, args))
            if None in key:
                key = None
        except TypeError:
            key = None
        # one build per specialisation: threads making the same first call wait for the one
        # that builds it instead of each tracing and compiling it again
        with self._lock:
            if key is not None and key in self._specs:
                return self._specs[key]
            specs = self.specs_of(args)
            entry = self._symbolic_entry(specs)
            if entry is None:
                entry = self._exact_entry(specs)
            if key is not None:
                if len(self._specs) >= 4 * self.max_specializations:
                    del self._specs[next(iter(self._specs))]     # the oldest call shape
                self._specs[key] = entry
            return entry

    def _exact_entry(self, specs):
        """The specialisation for exactly these specs (built, or from the caches)."""
        if self._table:
            recent = list(self._table.values())[-3:]
            why = "; ".join(v.failed_guard(specs) if isinstance(v, Variant) else
                            _differs(v, specs) for v in reversed(recent))
            log.info("%s: compiling for %s: no compiled variant fits (%s)", self.name,
                     ", ".join(s.describe() for s in specs), why)
        for other in self._variant_names:
            # multi-versioned: build (or load) every variant, so all of them are kept
            if other != self.target.name and (specs, other) not in self._variants:
                op, _ = self._plan(specs, target=other)
                self._variants[(specs, other)] = build(op) if _builds_here(op.target) else op
        p, single = self._plan(specs)
        fn = build(p)
        self.compiles += 1
        self._variants[(specs, p.target.name)] = fn
        self._remember(specs, specs)
        return Specialization(fn, p, single)

    def _remember(self, key, variant) -> None:
        """Put a variant in the LRU table, dropping the least recently used past the bound."""
        self._table[key] = variant
        self._table.move_to_end(key)
        while len(self._table) > self.max_specializations:
            old, v = self._table.popitem(last=False)
            log.info("%s: dropping the least recently used variant %s (max_specializations=%d)",
                     self.name, old if isinstance(v, Variant) else
                     ", ".join(s.describe() for s in v), self.max_specializations)
            if not isinstance(v, Variant):
                for t in self.variants:
                    self._variants.pop((v, t), None)
            self._specs.clear()

    def _bound_entry(self, specs, bucket):
        """A specialisation from a compiled symbolic variant of this bucket that fits."""
        for k, v in reversed(self._table.items()):
            if isinstance(v, Variant) and v.bucket == bucket:
                values = v.bind(specs)
                if values is not None:
                    self._table.move_to_end(k)
                    fn, p = v.build
                    if v.checks is None:
                        v.checks = plan_checks(p)
                    return Specialization(fn, p, v.single, values, v.checks)
        return None

    def _symbolic_entry(self, specs):
        """A specialisation from a symbolic variant that fits the call, compiling one where
        the dynamic policy asks for it; None: compile for the exact shapes."""
        bucket = None
        if self.autotune:
            from .tune import bucket_of
            bucket = bucket_of(specs, exact=self.autotune == "exact")
        entry = self._bound_entry(specs, bucket)
        if entry is not None:
            return entry
        if self.dynamic is False or self._variant_names or self.autotune == "exact":
            return None          # exact shapes asked for; several targets: per shape
        marks = self.dynamic
        if marks == "auto":
            marks = None
            for v in reversed(self._table.values()):
                marks = auto_marks(v.specs if isinstance(v, Variant) else v, specs)
                if marks is not None:
                    break
            if marks is None:
                return None
        t = self.target
        if not backend_for(t).symbolic_sizes:
            log.info("%s: target %s compiles exact shapes only (its code takes no sizes at run "
                     "time yet)", self.name, t.name)
            return None
        sspecs = symbolic_specs(specs, marks)
        if not spec_symbols(sspecs):
            return None
        planner = plan
        if self.autotune:
            # tuned per shape bucket: a variant runs its bucket's configs, and a call in another
            # bucket compiles (or loads) the one tuned for that bucket; where the bucket has no
            # tuned configs (TORSH_JIT_AUTOTUNE=0, nothing stored) the defaults' variant serves
            from .tune import resolve
            configs = resolve(self.fn, self._trace(specs)[0], specs, t, mode=self.autotune,
                              budget_s=self.tune_budget_s, trials=self.tune_trials)
            if configs is None:
                bucket = None
                entry = self._bound_entry(specs, None)
                if entry is not None:
                    return entry
            planner = functools.partial(plan, configs=configs)
        try:
            p, is_tuple = plan_symbolic(trace, planner, self.fn, sspecs, t)
            sspecs = p.specs
            fn = build(p)
            v = Variant(sspecs, p.guards, p.symbols, (fn, p), not is_tuple, bucket)
            values = v.bind(specs)
            entry = Specialization(fn, p, v.single, values) if values is not None else None
        except E.InternalError as err:       # a size the code generator cannot take yet
            log.warning("%s: symbolic compile failed, compiling exact shapes: %s", self.name, err)
            return None
        except Exception as err:             # the exact-shape trace reports it at the user's line
            # (the function may use a size in a way a symbol does not support)
            log.debug("%s: symbolic trace failed (%s: %s); compiling exact shapes", self.name,
                      type(err).__name__, err)
            return None
        if entry is None:
            return None
        self.compiles += 1
        log.info("%s: compiling for %s (symbols: %s; guards: %s)", self.name,
                 ", ".join(s.describe() for s in sspecs), ", ".join(p.symbols) or "none, the "
                 "function uses every size as a value", ", ".join(map(repr, p.guards)) or "none")
        self._remember(p.key, v)
        return entry

    def _plan(self, specs, *, target=None, dump=False, measure=True):
        try:
            t = self.target if target is None else parse_target(target)
        except E.TargetError as err:
            raise E.located(err, E.user_frame()) from None
        g, single = self._trace(specs)
        configs = None
        if self.autotune and target is None:
            from .tune import resolve
            configs = resolve(self.fn, g, specs, t, mode=self.autotune, budget_s=self.tune_budget_s,
                              trials=self.tune_trials, allow_measure=measure)
        try:
            return plan(g, specs, t, configs=configs, dump=dump), single
        except E.DTypeError as err:     # a dtype the target cannot hold: the user's call names it
            raise E.located(err, E.user_frame()) from None

    @functools.lru_cache(maxsize=64)
    def _trace(self, specs):
        g, is_tuple = trace(self.fn, specs)
        return g, not is_tuple

    # -- reading the code ------------------------------------------------------------------
    def lower(self, *args, target=None) -> Lowered:
        """The plan and generated source for these arguments (nothing is executed)."""
        specs = self.specs_of(args, target)
        t = self.target if target is None else parse_target(target)
        if self.dynamic is True or isinstance(self.dynamic, dict) and backend_for(t).symbolic_sizes:
            # the code a dynamic kernel runs: its symbols and guards in the plan
            sspecs = symbolic_specs(specs, self.dynamic)
            if spec_symbols(sspecs):
                try:
                    p, _ = plan_symbolic(trace, functools.partial(plan, dump=True), self.fn,
                                         sspecs, t)
                    return Lowered(p, render(p))
                except E.InternalError as err:   # as a call would: the exact shapes' code
                    log.warning("%s: symbolic compile failed, lowering exact shapes: %s",
                                self.name, err)
        p, _ = self._plan(specs, target=target, dump=True, measure=False)
        return Lowered(p, render(p))


def _builds_here(t: Target) -> bool:
    from .runtime.hardware import runs_natively
    return runs_natively(t)


def kernel(fn=None, *, target="host", autotune=False, tune_budget_s: float = 30.0,
           tune_trials: int | None = None, dynamic="auto", max_specializations: int = 64):
    """Decorator: `@tj.kernel`, `@tj.kernel(target="x86_64-avx2")`, `@tj.kernel(autotune=True)`,
    `@tj.kernel(dynamic=True)` (runtime/dynamic.py: which dimensions compile as symbols)."""
    kw = dict(autotune=autotune, tune_budget_s=tune_budget_s, tune_trials=tune_trials,
              dynamic=dynamic, max_specializations=max_specializations)
    if fn is None:
        return lambda f: Kernel(f, target, **kw)
    if isinstance(fn, str):
        raise E.ArgumentError("use @tj.kernel(target=...) with a keyword", hint='@tj.kernel(target="host")')
    return Kernel(fn, target, **kw)


def _check_callable(fn) -> None:
    if isinstance(fn, Kernel):
        raise E.located(E.ArgumentError("this function is already a torsh-jit kernel",
                                        hint="kernels do not nest: decorate the Python function "
                                             "once, or call k.to(target) for another target"),
                        E.user_frame())
    if not callable(fn):
        raise E.located(E.ArgumentError(f"tj.kernel takes a Python function, got "
                                        f"{type(fn).__name__} ({fn!r:.40})",
                                        hint="@tj.kernel above a def, or tj.kernel(lambda x: ...)"),
                        E.user_frame())


def _differs(old: tuple, specs: tuple) -> str:
    """How a call's specs differ from an exact variant's (for the recompile log)."""
    for i, (a, b) in enumerate(zip(old, specs)):
        if a != b:
            return f"argument {i} is {b.describe()}, compiled for {a.describe()}"
    return "the argument count differs" if len(old) != len(specs) else "nothing"

"""The embedding API for other frameworks: build a Graph by hand, compile it.

    g = tj.Graph()
    x = g.input(("n", 1024), "float32")      # "n" (or None): a size known at each call
    b = g.input((1024,), "float32")
    g.output(tj.relu(x + b))
    fn = tj.compile(g, target="host")
    out = fn(xa, ba)

Values returned by g.input are the same Tensor proxies a traced function sees, so
every operator and tj.* function works on them. A dimension given as a name (or None, a
fresh name) is symbolic: one compiled graph serves every size of it. With no call to
trace from, a symbol's hint (the value planning answers questions with, ir/symbols.py) is
a large odd number, distinct per symbol; the guards those answers record are checked at
every call, and a call that fails one is refused with the guard it fails.
"""
from __future__ import annotations

import numpy as np

from . import errors as E
from .ir import dtypes as dt
from .ir.builder import GraphBuilder
from .ir.tensor import Tensor
from .ir.symbols import ShapeEnv, Sym, evaluate_shape, pins
from .ir.tracer import ArgSpec, spec_of, spec_symbols
from .runtime.dynamic import Variant, spec_hints


class Graph:
    """A graph under construction: inputs, operations on them, outputs."""

    def __init__(self):
        self.builder = GraphBuilder()
        self._specs: list[ArgSpec] = []
        self._outputs: list[int] | None = None
        self._symbols: dict[str, Sym] = {}

    def input(self, shape, dtype="float32", *, scalar: bool = False) -> Tensor:
        d = dt.from_numpy(dtype)
        shape = tuple(self._dim(s, len(self._specs), j) for j, s in enumerate(shape)) \
            if not scalar else ()
        self._specs.append(ArgSpec("scalar" if scalar else "array", shape, d))
        return Tensor(self.builder, self.builder.add_input(shape, d))

    def _dim(self, s, arg: int, axis: int):
        """One dimension of an input: an int, a symbol's name, or None (a fresh symbol)."""
        if s is None:
            s = f"s{len(self._symbols)}"
            while s in self._symbols:
                s += "_"
        if isinstance(s, str):
            if not s.isidentifier():
                raise E.located(E.ShapeError(f"input {arg} axis {axis}: {s!r} is not a size name",
                                             hint="name a symbolic size with an identifier "
                                                  "('n', 'batch'), or pass None or an int"),
                                E.user_frame())
            if s not in self._symbols:
                self._symbols[s] = Sym.symbol(s, 4099 + 2 * len(self._symbols))
                if self.builder.env is None:
                    self.builder.env = ShapeEnv()
            return self._symbols[s]
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0:
            return int(s)
        raise E.located(E.ShapeError(f"input {arg} axis {axis}: {s!r} is not a size",
                                     hint="a dimension is an int >= 0, a name ('n') or None"),
                        E.user_frame())

    def output(self, *values: Tensor) -> None:
        for v in values:
            if not isinstance(v, Tensor) or v.builder is not self.builder:
                raise E.ArgumentError("Graph.output takes values built in this graph")
        self._outputs = [v.node_id for v in values]

    def build(self):
        if self._outputs is None:
            raise E.ArgumentError("the graph has no outputs", hint="call g.output(value, ...)")
        return self.builder.finish(self._outputs), tuple(self._specs)


class CompiledGraph:
    """What tj.compile returns: call it with arrays matching the graph's inputs."""

    def __init__(self, graph: Graph, target):
        from .compiler import build, plan
        from .runtime.aliases import resolve as parse
        g, specs = graph.build()
        t = parse(target)
        if spec_symbols(specs):
            from .backends import backend_for
            if not backend_for(t).symbolic_sizes:
                raise E.located(E.TargetError(
                    f"target {t.name} compiles exact shapes only: its code takes no sizes at "
                    "run time yet", hint="give every dimension of g.input an int, or compile "
                                         "for an LLVM CPU target"), E.user_frame())
            with graph.builder.env.active():
                self.plan = plan(g, specs, t)
            fixed = pins(self.plan.guards, spec_hints(specs))
            if fixed:
                raise E.located(E.ShapeError(
                    f"the graph fixes its symbolic sizes ({', '.join(f'{k} = {v!r}' for k, v in fixed.items())}) "
                    f"where it compares them: guards {', '.join(map(repr, self.plan.guards))}",
                    hint="give those dimensions their sizes (ints) in g.input, or one name for "
                         "dimensions that are equal"), E.user_frame())
        else:
            self.plan = plan(g, specs, t)
        self._fn = build(self.plan)
        self._specs = specs
        self._variant = Variant(specs, self.plan.guards, self.plan.symbols, None, True)

    @property
    def guards(self) -> tuple:
        """What the compiled code assumes of the symbolic sizes (checked at every call)."""
        return self.plan.guards

    def __call__(self, *args):
        if len(args) != len(self._specs):
            raise E.ArgumentError(f"the graph takes {len(self._specs)} inputs, got {len(args)}")
        bufs = []
        for i, (a, s) in enumerate(zip(args, self._specs)):
            a = np.asarray(a)
            if s.kind == "scalar":
                a = np.asarray(a, dtype=s.dtype)
            elif a.ndim != len(s.shape) or a.dtype != np.dtype(s.dtype):
                raise E.ArgumentError(f"input {i}: expected {s.describe()}, got {a.dtype}{a.shape}")
            else:
                a = np.ascontiguousarray(a)
            bufs.append(a)
        fn, values = self._fn, {}
        if self.plan.symbols:
            call = tuple(spec_of(a, index=i) for i, a in enumerate(bufs))
            values = self._variant.bind(call)
            if values is None:
                raise E.located(E.ArgumentError(
                    f"the graph's inputs do not fit the compiled code: "
                    f"{self._variant.failed_guard(call)}",
                    hint="inputs whose dimensions share a name must be equal; tj.compile a graph "
                         "with those sizes fixed for calls outside its guards "
                         f"({', '.join(map(repr, self.guards))})"), E.user_frame())
            table = np.array([values[n] for n in self.plan.symbols], dtype=np.int64)
            fn = fn.bind(values)
        b = self.plan.part.buffers
        outs = [np.empty(evaluate_shape(s, values), d) for s, d in b.outputs]
        temps = [np.empty(evaluate_shape(s, values), d) for s, d in b.temps]
        bufs = tuple(bufs + outs + temps)
        fn.run(bufs + (table,) if self.plan.symbols else bufs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    @property
    def source(self) -> str:
        from .compiler import render
        return render(self.plan)


def compile(graph: Graph, target="host") -> CompiledGraph:
    """Compile a hand-built Graph for a target."""
    return CompiledGraph(graph, target)

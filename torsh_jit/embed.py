"""The embedding API for other frameworks: build a Graph by hand, compile it.

    g = tj.Graph()
    x = g.input((4096, 1024), "float32")
    b = g.input((1024,), "float32")
    g.output(tj.relu(x + b))
    fn = tj.compile(g, target="host")
    out = fn(xa, ba)

Values returned by g.input are the same Tensor proxies a traced function sees, so
every operator and tj.* function works on them.
"""
from __future__ import annotations

import numpy as np

from . import errors as E
from .ir import dtypes as dt
from .ir.builder import GraphBuilder
from .ir.tensor import Tensor
from .ir.tracer import ArgSpec


class Graph:
    """A graph under construction: inputs, operations on them, outputs."""

    def __init__(self):
        self.builder = GraphBuilder()
        self._specs: list[ArgSpec] = []
        self._outputs: list[int] | None = None

    def input(self, shape, dtype="float32", *, scalar: bool = False) -> Tensor:
        d = dt.from_numpy(dtype)
        shape = tuple(shape) if not scalar else ()
        self._specs.append(ArgSpec("scalar" if scalar else "array", shape, d))
        return Tensor(self.builder, self.builder.add_input(shape, d))

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
        self.plan = plan(g, specs, parse(target))
        self._fn = build(self.plan)
        b = self.plan.part.buffers
        self._outs = [(s, np.dtype(d)) for s, d in b.outputs]
        self._temps = [(s, np.dtype(d)) for s, d in b.temps]
        self._specs = specs

    def __call__(self, *args):
        if len(args) != len(self._specs):
            raise E.ArgumentError(f"the graph takes {len(self._specs)} inputs, got {len(args)}")
        bufs = []
        for i, (a, s) in enumerate(zip(args, self._specs)):
            a = np.asarray(a)
            if s.kind == "scalar":
                a = np.asarray(a, dtype=s.dtype)
            elif a.shape != s.shape or a.dtype != np.dtype(s.dtype):
                raise E.ArgumentError(f"input {i}: expected {s.describe()}, got {a.dtype}{a.shape}")
            else:
                a = np.ascontiguousarray(a)
            bufs.append(a)
        outs = [np.empty(s, d) for s, d in self._outs]
        self._fn.run(tuple(bufs + outs + [np.empty(s, d) for s, d in self._temps]))
        return outs[0] if len(outs) == 1 else tuple(outs)

    @property
    def source(self) -> str:
        from .compiler import render
        return render(self.plan)


def compile(graph: Graph, target="host") -> CompiledGraph:
    """Compile a hand-built Graph for a target."""
    return CompiledGraph(graph, target)

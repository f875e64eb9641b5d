"""Graph passes: a flat list of named Graph -> Graph functions.

Each pass can be turned off (TORSH_JIT_DISABLE_PASSES=name,name) and dumped
(`torsh-jit explain` prints the graph after each one).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .graph import Graph, Node, make_attrs
from .ops import OPS, ELEMENTWISE


class _Rewriter:
    """Rebuilds a graph node by node, mapping old ids to new ids."""

    def __init__(self, g: Graph):
        self.g = g
        self.nodes: list[Node] = []
        self.map: dict[int, int] = {}

    def push(self, n: Node) -> int:
        self.nodes.append(n)
        return len(self.nodes) - 1

    def finish(self) -> Graph:
        return Graph(tuple(self.nodes), tuple(self.map[i] for i in self.g.inputs),
                     tuple(self.map[o] for o in self.g.outputs))


def _remap(n: Node, m: dict[int, int]) -> Node:
    return Node(n.op, tuple(m[i] for i in n.inputs), n.attrs, n.shape, n.dtype, n.weak, n.loc)


def constant_fold(g: Graph) -> Graph:
    """Elementwise ops on scalar constants become constants (computed by the numpy reference)."""
    r = _Rewriter(g)
    for i, n in enumerate(g.nodes):
        n = _remap(n, r.map)
        if n.kind == ELEMENTWISE and n.inputs and all(r.nodes[j].op == "const" for j in n.inputs):
            vals = [np.array(r.nodes[j].attr("value"), dtype=r.nodes[j].dtype) for j in n.inputs]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                attrs = {k: v for k, v in n.attrs if k == "dtype"}
                v = np.asarray(OPS[n.op].ref(*vals, **attrs)).astype(n.dtype)
            py = v.item()
            r.map[i] = r.push(Node("const", (), make_attrs(value=py), (), n.dtype, n.weak, n.loc))
        else:
            r.map[i] = r.push(n)
    return r.finish()


def cse(g: Graph) -> Graph:
    """Identical (op, inputs, attrs) nodes computed once. Inputs are never merged."""
    r = _Rewriter(g)
    seen: dict = {}
    for i, n in enumerate(g.nodes):
        n = _remap(n, r.map)
        if n.op == "input":
            r.map[i] = r.push(n)
            continue
        key = (n.op, n.inputs, n.attrs, n.shape, n.dtype, n.weak)
        if key in seen:
            r.map[i] = seen[key]
        else:
            r.map[i] = seen[key] = r.push(n)
    return r.finish()


def _const(g_nodes, j):
    n = g_nodes[j]
    return n.attr("value") if n.op == "const" else None


def simplify(g: Graph) -> Graph:
    """Algebraic identities that are exact in IEEE arithmetic (x*1, x**2 -> x*x, --x, ...)."""
    r = _Rewriter(g)
    for i, n in enumerate(g.nodes):
        n = _remap(n, r.map)
        nodes = r.nodes

        def same(j):  # j may replace n: same shape and dtype
            return nodes[j].shape == n.shape and nodes[j].dtype == n.dtype
        out = None
        if n.op in ("mul", "truediv") and _const(nodes, n.inputs[1]) == 1 and same(n.inputs[0]):
            out = n.inputs[0]
        elif n.op == "mul" and _const(nodes, n.inputs[0]) == 1 and same(n.inputs[1]):
            out = n.inputs[1]
        elif n.op in ("add", "sub") and n.dtype[0] == "i" and _const(nodes, n.inputs[1]) == 0 \
                and same(n.inputs[0]):
            out = n.inputs[0]
        elif n.op == "neg" and nodes[n.inputs[0]].op == "neg" and same(nodes[n.inputs[0]].inputs[0]):
            out = nodes[n.inputs[0]].inputs[0]
        elif n.op == "cast" and same(n.inputs[0]):
            out = n.inputs[0]
        elif n.op == "pow" and n.dtype[0] == "f" and nodes[n.inputs[1]].op == "const" \
                and nodes[n.inputs[0]].dtype == n.dtype:
            x, e = n.inputs[0], _const(nodes, n.inputs[1])
            loc = n.loc
            if e == 1 and same(x):
                out = x
            elif e in (2, 3, 4):
                # numpy computes x**2 as x*x too (its fast path for scalar exponents)
                sq = r.push(Node("mul", (x, x), (), nodes[x].shape, n.dtype, nodes[x].weak, loc))
                if e == 2:
                    cur = sq
                elif e == 3:
                    cur = r.push(Node("mul", (sq, x), (), nodes[x].shape, n.dtype, nodes[x].weak, loc))
                else:
                    cur = r.push(Node("mul", (sq, sq), (), nodes[x].shape, n.dtype, nodes[x].weak, loc))
                out = cur if same(cur) else None
                if out is None:
                    r.map[i] = r.push(n)
                    continue
            elif e == 0.5:
                out = r.push(Node("sqrt", (x,), (), nodes[x].shape, n.dtype, nodes[x].weak, loc))
                if not same(out):
                    out = None
        if out is not None:
            r.map[i] = out
        else:
            r.map[i] = r.push(n)
    return r.finish()


def dce(g: Graph) -> Graph:
    """Drop nodes no output depends on (inputs always stay: they are the signature)."""
    live = set(g.outputs) | set(g.inputs)
    for i in range(len(g.nodes) - 1, -1, -1):
        if i in live:
            live.update(g.nodes[i].inputs)
    r = _Rewriter(g)
    for i, n in enumerate(g.nodes):
        if i in live:
            r.map[i] = r.push(_remap(n, r.map))
    return r.finish()


PASSES = [("constant_fold", constant_fold), ("cse", cse), ("simplify", simplify),
          ("cse2", cse), ("dce", dce)]


def disabled_passes() -> set[str]:
    return {p.strip() for p in os.environ.get("TORSH_JIT_DISABLE_PASSES", "").split(",") if p.strip()}


def run_passes(g: Graph, *, dump=None) -> Graph:
    """Run PASSES in order; dump(name, graph) is called after each one when given."""
    off = disabled_passes()
    for name, p in PASSES:
        if name in off:
            continue
        g = p(g)
        if dump is not None:
            dump(name, g)
    return g

"""Graph rewrites the partition needs first: copies inserted where a value must be in memory.

A reshape that no strides can express reads a contiguous copy; a matmul operand that is a
constant or a scalar argument is computed into a buffer; an output that is an input, a
constant or a view is copied. Each copy is an identity cast, a normal elementwise node.
"""
from __future__ import annotations

from ..ir.graph import Graph, Node, make_attrs
from ..ir.ops import VIEW, MATMUL, SOURCE
from ..ir.tracer import contiguous_strides
from .views import apply_view, base_of


def _copy_of(nid: int, n: Node, loc) -> Node:
    """An identity cast of node nid (whose Node is n): a copy the partition stores."""
    return Node("cast", (nid,), make_attrs(dtype=n.dtype), n.shape, n.dtype, n.weak, loc)


def copy_for_views(g: Graph, specs) -> Graph:
    """A reshape that no strides can express over its source's memory (x.T.reshape(-1) of an
    input, or of a stored value) reads a contiguous copy instead, as numpy's reshape does.

    Each view's layout is followed from where its chain starts: an input's strides (its
    spec) or a stored value's contiguous ones. Where it breaks, an identity cast (a copy)
    is inserted under the view; the copy is a normal elementwise node and gets stored."""
    nodes: list[Node] = []
    new_id: dict[int, int] = {}
    layout: dict[int, tuple | None] = {}     # new id -> (offset, strides) for views and inputs
    for i, n in enumerate(g.nodes):
        n = Node(n.op, tuple(new_id[j] for j in n.inputs), n.attrs, n.shape, n.dtype, n.weak, n.loc)
        if n.kind == VIEW:
            src = n.inputs[0]
            base = layout.get(src)
            if base is None:
                base = (0, list(contiguous_strides(nodes[src].shape)))
            r = apply_view(n, nodes[src].shape, base[0], list(base[1]))
            if r is None:
                s = nodes[src]
                nodes.append(_copy_of(src, s, n.loc))
                cp = len(nodes) - 1
                n = Node(n.op, (cp,), n.attrs, n.shape, n.dtype, n.weak, n.loc)
                r = apply_view(n, s.shape, 0, list(contiguous_strides(s.shape)))
            layout[len(nodes)] = r
        elif n.op == "input":
            st = specs[n.attr("index")].strides or contiguous_strides(n.shape)
            layout[len(nodes)] = (0, list(st))
        nodes.append(n)
        new_id[i] = len(nodes) - 1
    if len(nodes) == len(g.nodes):
        return g
    return Graph(tuple(nodes), tuple(new_id[i] for i in g.inputs), tuple(new_id[o] for o in g.outputs))


def materialize_matmul_operands(g: Graph, specs) -> Graph:
    """A matmul reads its operands from memory: an operand that folded to a constant (an
    argmax over a size-1 axis, a broadcast scalar) or that is a scalar argument (a 0-d
    array, which GPU targets pass by value) is computed into a buffer first."""
    def by_value(j):
        b = g.nodes[base_of(g, j)]
        return b.op == "const" or (b.op == "input" and specs[b.attr("index")].kind == "scalar")
    if not any(n.kind == MATMUL and any(by_value(i) for i in n.inputs) for n in g.nodes):
        return g
    nodes: list[Node] = []
    new_id: dict[int, int] = {}
    for i, n in enumerate(g.nodes):
        ins = tuple(new_id[j] for j in n.inputs)
        if n.kind == MATMUL:
            fixed = []
            for j, x in zip(n.inputs, ins):
                if by_value(j):
                    s = nodes[x]
                    nodes.append(_copy_of(x, s, n.loc))
                    x = len(nodes) - 1
                fixed.append(x)
            ins = tuple(fixed)
        nodes.append(Node(n.op, ins, n.attrs, n.shape, n.dtype, n.weak, n.loc))
        new_id[i] = len(nodes) - 1
    return Graph(tuple(nodes), tuple(new_id[i] for i in g.inputs), tuple(new_id[o] for o in g.outputs))


def materialize_outputs(g: Graph) -> Graph:
    """Outputs must be computed by a kernel: copy outputs that are inputs, constants or views."""
    nodes = list(g.nodes)
    outs = []
    seen = set()
    for o in g.outputs:
        n = nodes[o]
        if n.kind in (SOURCE, VIEW) or o in seen:
            nodes.append(_copy_of(o, n, n.loc))
            o = len(nodes) - 1
        seen.add(o)
        outs.append(o)
    return Graph(tuple(nodes), g.inputs, tuple(outs))

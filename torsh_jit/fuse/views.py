"""Views as an offset plus strides: how a chain of view ops reads memory.

A permute, broadcast, slice or a reshape that numpy can do without a copy changes only
the offset and the strides of the memory it reads; `apply_view` composes one such op,
`resolve_access` a whole chain from the buffer it starts at. A view is free (legal on a
value inside a group, which has no memory) when it only relabels axes.
"""
from __future__ import annotations

import math

from .. import errors as E
from ..ir.graph import Graph, Node
from ..ir.ops import VIEW
from ..ir.symbols import statically_one, statically_zero
from ..ir.tracer import contiguous_strides


def _reshape_strides(shape, strides, new_shape):
    """numpy's no-copy reshape: strides for new_shape over the same memory, or None."""
    old = [(s, st) for s, st in zip(shape, strides) if not statically_one(s)]
    new_strides = [0] * len(new_shape)
    if statically_zero(math.prod(shape)):
        return list(contiguous_strides(new_shape))
    oi, ni = 0, 0
    nn = [i for i, s in enumerate(new_shape) if not statically_one(s)]
    while oi < len(old) and ni < len(nn):
        np_, op_ = new_shape[nn[ni]], old[oi][0]
        nj, oj = ni + 1, oi + 1
        while np_ != op_:
            if np_ < op_:
                np_ *= new_shape[nn[nj]]
                nj += 1
            else:
                op_ *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        st = old[oj - 1][1]
        for k in range(nj - 1, ni - 1, -1):
            new_strides[nn[k]] = st
            st *= new_shape[nn[k]]
        oi, ni = oj, nj
    return new_strides


def apply_view(node: Node, shape, offset: int, strides):
    """(offset, strides) after one view op, or None when it needs a copy."""
    if node.op == "permute":
        perm = node.attr("perm")
        return offset, [strides[p] for p in perm]
    if node.op == "broadcast_to":
        new = node.attr("shape")
        pad = len(new) - len(shape)
        st = [0] * pad + [0 if (statically_one(s) and not statically_one(n)) else t
                          for s, n, t in zip(shape, new[pad:], strides)]
        return offset, st
    if node.op == "slice":
        st = []
        for (start, step, _), t in zip(node.attr("slices"), strides):
            offset += start * t
            st.append(t * step)
        return offset, st
    if node.op == "reshape":
        st = _reshape_strides(shape, strides, node.attr("shape"))
        return None if st is None else (offset, st)
    raise E.InternalError(f"not a view op: {node.op}")


def is_free_view(g: Graph, nid: int) -> bool:
    """A view that only relabels axes (no index arithmetic): legal on values inside a group."""
    n = g.nodes[nid]
    if n.op in ("permute", "broadcast_to"):
        return True
    if n.op == "reshape":
        src = g.nodes[n.inputs[0]].shape
        return [s for s in src if not statically_one(s)] == [s for s in n.shape if not statically_one(s)]
    return False


def base_of(g: Graph, nid: int) -> int:
    """The node a chain of views starts from."""
    while g.nodes[nid].kind == VIEW:
        nid = g.nodes[nid].inputs[0]
    return nid


def resolve_access(g: Graph, specs, nid: int, stored: dict[int, int]):
    """(buffer, offset, strides over nid's axes) for a value read from memory."""
    chain = []
    q = nid
    while g.nodes[q].kind == VIEW and q not in stored:
        chain.append(q)
        q = g.nodes[q].inputs[0]
    base = g.nodes[q]
    if base.op == "input":
        idx = base.attr("index")
        st = specs[idx].strides or contiguous_strides(base.shape)
        buf = idx
    elif q in stored:
        st = contiguous_strides(base.shape)
        buf = stored[q]
    else:
        raise E.InternalError(f"node %{q} ({base.op}) is read from memory but never stored")
    offset, strides, shape = 0, list(st), base.shape
    for v in reversed(chain):
        r = apply_view(g.nodes[v], shape, offset, strides)
        if r is None:
            return None
        offset, strides = r
        shape = g.nodes[v].shape
    return buf, offset, tuple(strides)

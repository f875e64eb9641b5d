"""A partition's member sets become Group values: the buffer table, the groups' order, and
each group's domain, exprs, loads and stores (every access as an offset plus one stride per
domain axis).
"""
from __future__ import annotations

from .. import errors as E
from ..ir.graph import Graph
from ..ir.ops import REDUCE, VIEW, MATMUL, REDUCE_OPS
from ..ir.symbols import statically_one, statically_zero
from ..ir.tracer import contiguous_strides
from .axes import Analysis
from .group import Access, BufferPlan, Expr, Group, Partition, Store
from .order import topological_order
from .views import base_of, is_free_view, resolve_access


def build_partition(g: Graph, specs, groups: list[set[int]], users) -> Partition:
    nodes = g.nodes
    member_group = {m: k for k, gs in enumerate(groups) for m in gs}
    # which nodes are stored: graph outputs, and members consumed outside their group
    stored: dict[int, int] = {}   # node -> buffer index
    n_in = len(g.inputs)
    outputs = []
    for o in g.outputs:
        if o not in stored:
            stored[o] = n_in + len(outputs)
        outputs.append((nodes[o].shape, nodes[o].dtype))
    temps = []
    for k, gs in enumerate(groups):
        for m in sorted(gs):
            if nodes[m].kind == VIEW or m in stored:
                continue
            for u in _consumers(g, m, users):
                if member_group.get(u) != k:
                    stored[m] = n_in + len(outputs) + len(temps)
                    temps.append((nodes[m].shape, nodes[m].dtype))
                    break
    # order groups topologically
    edges = set()
    for k, gs in enumerate(groups):
        for m in gs:
            for p in nodes[m].inputs:
                b = base_of(g, p)
                if b in member_group and member_group[b] != k:
                    edges.add((member_group[b], k))
    order = topological_order(range(len(groups)), edges)
    if order is None:
        raise E.InternalError("the partition's groups depend on each other in a cycle "
                              "(partition checks every merge against that)")
    built = tuple(_make_group(g, specs, groups[k], stored) for k in order)
    return Partition(built, BufferPlan(n_in, tuple(outputs), tuple(temps)))


def _consumers(g: Graph, m: int, users) -> list[int]:
    """The computing nodes that read m, directly or through any chain of views; -1 for a
    read through a view that is not free (it reads m's stored buffer). A consumer behind
    a free view that belongs to m's group is still outside it when it is elsewhere."""
    out = []
    for u in users[m]:
        if g.nodes[u].kind != VIEW:
            out.append(u)
        elif is_free_view(g, u):
            out += _consumers(g, u, users)
        else:
            out.append(-1)
    return out


def _make_group(g: Graph, specs, members: set[int], stored: dict[int, int]) -> Group:
    nodes = g.nodes
    a = Analysis(g, members)
    compute = sorted(m for m in members if nodes[m].kind != VIEW)
    mm = next((m for m in compute if nodes[m].kind == MATMUL), None)
    R = a.R if mm is None else set()
    kind = "matmul" if mm is not None else ("reduce" if R else "elementwise")

    # domain order: stored nodes' axes (largest first), then the rest; reduced axes last
    order: list = []
    outs = sorted((m for m in compute if m in stored), key=lambda m: -nodes[m].size)
    for m in outs + compute:
        for c in a.classes(m):
            if c is not None and c not in order and c not in R:
                order.append(c)
    if mm is not None:
        # matmul: exactly batch..., M, N as in its output (size-1 axes included)
        order = [c if c is not None else ("one", j) for j, c in enumerate(a.classes(mm))]
    red_order: list = []
    for m in compute:
        if nodes[m].kind == REDUCE:
            p = nodes[m].inputs[0]
            for c in a.classes(p):
                if c is not None and c in R and c not in red_order:
                    red_order.append(c)
    dom_classes = order + red_order
    pos = {c: i for i, c in enumerate(dom_classes)}
    size = {a.uf.find(v): nodes[v[0]].shape[v[1]] for v in list(a.uf.p)}
    size.update({c: 1 for c in order if isinstance(c, tuple) and c[0] == "one"})
    domain = tuple(size[c] for c in dom_classes)

    def domain_strides(nid, strides, user=None, slot=None):
        out = [0] * len(domain)
        for c, st in zip(a.classes(nid, user, slot), strides):
            if c is not None and c in pos:     # a matmul's K axis is not a domain axis
                out[pos[c]] += st
        return tuple(out)

    exprs: list[Expr] = []
    loads: list[Access] = []
    eid: dict[int, int] = {}
    def leaf(p: int) -> int:
        if p in eid:
            return eid[p]
        n = nodes[p]
        c = nodes[base_of(g, p)]
        if c.op in ("const", "size"):
            # a constant is a scalar: any view of it (reshape, broadcast) is the same value
            exprs.append(Expr(c.op, (), c.attrs, c.dtype, False, 0))
        else:
            r = resolve_access(g, specs, p, stored)
            if r is None:
                raise E.InternalError(f"view %{p} of a non-contiguous buffer was not copied")
            buf, off, st = r
            acc = Access(buf, off, domain_strides(p, st), n.dtype)
            full = any(not statically_zero(acc.strides[i]) for i in range(a_n_outer, len(domain)))
            exprs.append(Expr("load", (), (("access", len(loads)),), n.dtype, full, 0))
            loads.append(acc)
        eid[p] = len(exprs) - 1
        return eid[p]

    a_n_outer = len(order)

    def value(p: int) -> int:
        """Expr id of p as a member consumes it (free views are transparent)."""
        q = p
        while q not in members or nodes[q].kind == VIEW:
            if q in members and nodes[q].kind == VIEW:
                q = nodes[q].inputs[0]
                continue
            return leaf(p)
        return eid[q]

    def is_full(m):
        return any(c in R for c in a.classes(m) if c is not None)

    mm_info: tuple = ()
    k = 0
    if mm is not None:
        # the matmul's value is expr 0: the accumulator tile the epilogue reads
        ia, ib = nodes[mm].inputs
        ra = resolve_access(g, specs, ia, stored)
        rb = resolve_access(g, specs, ib, stored)
        nb = len(nodes[mm].shape) - 2
        k = nodes[ia].shape[-1]

        def mm_strides(nid, st, kaxis, slot):
            dom = domain_strides(nid, [0 if j == kaxis else s for j, s in enumerate(st)], mm, slot)
            return dom + (st[kaxis] if not statically_one(nodes[nid].shape[kaxis]) else 0,)
        mm_info = (Access(ra[0], ra[1], mm_strides(ia, ra[2], nb + 1, 0), nodes[ia].dtype),
                   Access(rb[0], rb[1], mm_strides(ib, rb[2], nb, 1), nodes[ib].dtype))
        exprs.append(Expr("matmul", (), (), nodes[mm].dtype, False, 0))
        eid[mm] = 0
    for m in compute:
        n = nodes[m]
        if n.kind == MATMUL:
            continue
        args = tuple(value(p) for p in n.inputs)
        level = _row_level_dep(exprs, args) if n.kind == REDUCE else 0
        exprs.append(Expr(n.op, args, n.attrs, n.dtype, is_full(m), level))
        eid[m] = len(exprs) - 1
    stores = []
    for m in compute:
        if m in stored:
            sh = nodes[m].shape
            acc = Access(stored[m], 0, domain_strides(m, contiguous_strides(sh)), nodes[m].dtype)
            stores.append(Store(eid[m], acc))
    n_outer = len(order) if kind != "matmul" else len(domain)
    return Group(kind, domain, n_outer, tuple(exprs), tuple(loads), tuple(stores),
                 tuple(sorted(members)), k, mm_info)


def _row_level_dep(exprs, args) -> int:
    """A reduction whose input depends on the result of level-L reductions runs in pass L+1."""
    best = 0
    stack = list(args)
    seen = set()
    while stack:
        x = stack.pop()
        if x in seen:
            continue
        seen.add(x)
        e = exprs[x]
        if e.op in REDUCE_OPS:
            best = max(best, e.level + 1)
        else:
            stack.extend(e.args)
    return best

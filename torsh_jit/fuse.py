"""Fusion: partition a Graph into Groups, each one kernel.

Rules, over the op table's kinds (no per-op cases):
- Elementwise nodes fuse with their producers and consumers.
- Reductions fuse with their elementwise prologue and epilogue when every reduction
  in the group reduces the same set of axes: a row softmax or layernorm is one
  group whose kernel makes one pass over each row per reduction level.
- A matmul fuses with an elementwise epilogue (bias, activation, residual).
- Views (permute, broadcast, size-1 reshapes) of values inside a group are free;
  other views (slices, reshapes that reorder) read a materialised buffer.

Axes are matched by union-find: every axis of size > 1 of a node is a variable;
broadcasting, reductions and views unify them. The classes are the group's
domain axes; every access to memory becomes an offset plus one stride per domain
axis, so broadcasting, transposes, slices and non-contiguous inputs are all the
same thing to the code generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

from . import errors as E
from .ir.graph import Graph, Node
from .ir.ops import ELEMENTWISE, REDUCE, VIEW, MATMUL, SOURCE
from .ir.tracer import ArgSpec, contiguous_strides

MAX_LEVELS = 4


# -- plain values handed to the scheduler and code generator -------------------------
@dataclass(frozen=True)
class Access:
    """Where a group reads or writes: buffer index, element offset, a stride per domain axis."""
    buf: int
    offset: int
    strides: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Expr:
    """One value inside a group. op is an op-table name, 'load' (attrs: access index) or 'const'."""
    op: str
    args: tuple[int, ...]
    attrs: tuple
    dtype: str
    full: bool          # varies along the reduced axes (computed inside the row loops)
    level: int          # reductions: pass index; row-level values: pass after which known


@dataclass(frozen=True)
class Store:
    expr: int
    access: Access


@dataclass(frozen=True)
class Group:
    kind: str                     # "elementwise" | "reduce" | "matmul"
    domain: tuple[int, ...]       # outer axes first, then reduced axes (or matmul's M, N last)
    n_outer: int                  # number of outer (non-reduced) domain axes
    exprs: tuple[Expr, ...]
    loads: tuple[Access, ...]
    stores: tuple[Store, ...]
    nodes: tuple[int, ...] = field(default=(), compare=False)   # graph nodes, for explain
    k: int = 0                    # matmul: the contraction length
    mm: tuple = ()                # matmul: (A access, B access) with strides over (domain..., K)

    @property
    def n_levels(self) -> int:
        return 1 + max((e.level for e in self.exprs if e.op in _REDUCE_OPS), default=-1)

    def describe(self) -> str:
        red = f", reduce over {self.domain[self.n_outer:]}" if self.kind == "reduce" else ""
        return (f"{self.kind} group: nodes {list(self.nodes)}, domain {self.domain}{red}, "
                f"{len(self.loads)} loads, {len(self.stores)} stores")


_REDUCE_OPS = frozenset({"sum", "prod", "max", "min", "argmax", "argmin", "any", "all"})


@dataclass(frozen=True)
class BufferPlan:
    """The kernels' shared buffer table: graph inputs, outputs, then temporaries."""
    n_inputs: int
    outputs: tuple[tuple[tuple[int, ...], str], ...]    # (shape, dtype) of each graph output
    temps: tuple[tuple[tuple[int, ...], str], ...]


@dataclass(frozen=True)
class Partition:
    groups: tuple[Group, ...]
    buffers: BufferPlan


# -- views as offset + strides -------------------------------------------------------
def _reshape_strides(shape, strides, new_shape):
    """numpy's no-copy reshape: strides for new_shape over the same memory, or None."""
    old = [(s, st) for s, st in zip(shape, strides) if s != 1]
    new_strides = [0] * len(new_shape)
    if math.prod(shape) == 0:
        return list(contiguous_strides(new_shape))
    oi, ni = 0, 0
    nn = [i for i, s in enumerate(new_shape) if s != 1]
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
        st = [0] * pad + [0 if (s == 1 and n != 1) else t for s, n, t in zip(shape, new[pad:], strides)]
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


def _is_free_view(g: Graph, nid: int) -> bool:
    """A view that only relabels axes (no index arithmetic): legal on values inside a group."""
    n = g.nodes[nid]
    if n.op in ("permute", "broadcast_to"):
        return True
    if n.op == "reshape":
        src = g.nodes[n.inputs[0]].shape
        return [s for s in src if s != 1] == [s for s in n.shape if s != 1]
    return False


# -- union-find over axes -----------------------------------------------------------
class _UF:
    def __init__(self):
        self.p: dict = {}

    def find(self, a):
        self.p.setdefault(a, a)
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[rb] = ra


class _Analysis:
    """Axis classes, reduced classes and levels of one candidate group.

    Every axis of size > 1 of a node is one variable. A matmul operand (always read from
    memory) gets fresh variables at its use instead, since `x @ x` reads the same buffer
    as M x K and as K x N: sharing the node's variables would merge M, N and K. Other
    reads of one node share its variables, which is what ties the reduced axes of a
    softmax's two reductions of x together."""

    def __init__(self, g: Graph, members: set[int]):
        self.g, self.members = g, members
        uf = _UF()
        self.reduced: dict[int, frozenset] = {}
        nodes = g.nodes

        def var(n, j, user=None, slot=None):
            if nodes[n].shape[j] == 1:
                return None
            return (n, j) if user is None else (n, j, user, slot)

        def unify(a, b):
            if a is not None and b is not None:
                uf.union(a, b)

        for m in sorted(members):
            n = nodes[m]
            for j in range(len(n.shape)):
                if n.shape[j] != 1:
                    uf.find((m, j))
            if n.kind == ELEMENTWISE or n.op == "broadcast_to":
                for p in n.inputs:
                    ps = nodes[p].shape
                    off = len(n.shape) - len(ps)
                    for j in range(len(ps)):
                        unify(var(p, j), var(m, j + off))
            elif n.kind == REDUCE:
                p = n.inputs[0]
                axes = n.attr("axis")
                for j in range(len(n.shape)):
                    if j not in axes:
                        unify(var(p, j), var(m, j))
            elif n.op == "permute":
                p = n.inputs[0]
                for i, pj in enumerate(n.attr("perm")):
                    unify(var(p, pj), var(m, i))
            elif n.op == "reshape":
                p = n.inputs[0]
                a = [j for j, s in enumerate(nodes[p].shape) if s != 1]
                b = [j for j, s in enumerate(n.shape) if s != 1]
                for x, y in zip(a, b):
                    unify((p, x), (m, y))
            elif n.kind == MATMUL:
                a, b = n.inputs
                nb = len(n.shape) - 2
                for j in range(nb):
                    unify(var(a, j, m, 0), var(m, j))
                    unify(var(b, j, m, 1), var(m, j))
                unify(var(a, nb, m, 0), var(m, nb))
                unify(var(b, nb + 1, m, 1), var(m, nb + 1))
                unify(var(a, nb + 1, m, 0), var(b, nb, m, 1))
        self.uf = uf
        self.reduce_sets = []
        for m in members:
            n = nodes[m]
            if n.kind == REDUCE:
                cs = self.classes(n.inputs[0], m, 0)
                self.reduce_sets.append(frozenset(cs[j] for j in n.attr("axis") if cs[j] is not None))
            elif n.kind == MATMUL:
                a = n.inputs[0]
                k = self.classes(a, m, 0)[-1]
                self.reduce_sets.append(frozenset([k]) if k is not None else frozenset())
        self.R = set().union(*self.reduce_sets) if self.reduce_sets else set()

    def classes(self, nid: int, user: int | None = None, slot: int | None = None) -> list:
        """The axis classes of node nid; of its read as operand `slot` of matmul `user`."""
        key = (lambda j: (nid, j)) if user is None or self.g.nodes[user].kind != MATMUL \
            else (lambda j: (nid, j, user, slot))
        return [self.uf.find(key(j)) if s != 1 else None for j, s in enumerate(self.g.nodes[nid].shape)]

    def all_classes(self) -> set:
        return {self.uf.find(v) for v in list(self.uf.p)}

    def self_consistent(self) -> bool:
        """No member has two axes in one class: such a value would be computed only on the
        diagonal of the two (y.T + y, y[:, None] + y over a fused y), so it must be stored
        and read back instead."""
        for m in self.members:
            cs = [c for c in self.classes(m) if c is not None]
            if len(cs) != len(set(cs)):
                return False
        return True

    def covering_reductions(self) -> bool:
        """Every reduction iterates the group's whole space: a reduction whose input lacks
        one of the group's axes (`a - b.mean()`, `x.sum(1, keepdims=True) * z` with z wider)
        would be recomputed at every point of the missing axes. It runs as its own group."""
        everything = self.all_classes()
        for m in self.members:
            n = self.g.nodes[m]
            if n.kind == REDUCE:
                mine = {c for c in self.classes(n.inputs[0], m, 0) if c is not None}
                if mine != everything:
                    return False
        return True


def _legal(g: Graph, members: set[int]) -> bool:
    nodes = g.nodes
    kinds = [nodes[m].kind for m in members]
    n_mm = kinds.count(MATMUL)
    if n_mm > 1 or (n_mm and REDUCE in kinds):
        return False
    for m in members:
        for p in nodes[m].inputs:
            crossed = False
            while nodes[p].kind == VIEW:
                crossed |= not _is_free_view(g, p)
                p = nodes[p].inputs[0]
            if crossed and p in members:
                return False
    a = _Analysis(g, members)
    if len(set(a.reduce_sets)) > 1 or not a.self_consistent():
        return False
    if n_mm:
        mm = next(m for m in members if nodes[m].kind == MATMUL)
        out_cls = set(c for c in a.classes(mm) if c is not None)
        for m in members:
            if m == mm:
                continue
            cs = set(c for c in a.classes(m) if c is not None)
            if not cs <= out_cls:
                return False
        # the matmul's operands must come from memory (no prologue fusion), and every
        # other member is its epilogue: the kernel computes values only on its output tile
        if any(i in members for i in nodes[mm].inputs):
            return False
        after = {mm}
        for m in sorted(members):
            if any(p in after for p in nodes[m].inputs):
                after.add(m)
        return after == members
    if a.R:
        # a reduction's output may not be unified with a reduced axis, and the
        # number of passes is bounded
        for m in members:
            if nodes[m].kind == REDUCE and set(c for c in a.classes(m) if c is not None) & a.R:
                return False
        if _levels(g, members) > MAX_LEVELS or not a.covering_reductions():
            return False
    return True


def _levels(g: Graph, members: set[int]) -> int:
    lv: dict[int, int] = {}
    best = 0
    for m in sorted(members):
        n = g.nodes[m]
        base = max((lv.get(p, 0) for p in n.inputs if p in members), default=0)
        if n.kind == REDUCE:
            lv[m] = base + 1
            best = max(best, lv[m])
        else:
            lv[m] = base
    return best


# -- the greedy partition --------------------------------------------------------------
def partition(g: Graph, specs: tuple[ArgSpec, ...]) -> Partition:
    g = _materialize_outputs(_materialize_matmul_operands(_copy_for_views(g, specs), specs))
    nodes = g.nodes
    users = g.users()
    group_of: dict[int, int] = {}
    groups: list[set[int]] = []

    def producers(m):
        """(member producers through free views, the free views crossed)."""
        out, views = set(), set()
        stack = list(nodes[m].inputs)
        while stack:
            p = stack.pop()
            n = nodes[p]
            if n.kind in (ELEMENTWISE, REDUCE, MATMUL):
                out.add(p)
            elif n.kind == VIEW and _is_free_view(g, p):
                views.add(p)
                stack.append(n.inputs[0])
        return out, views

    def acyclic_with(members: set[int]) -> bool:
        dg = nx.DiGraph()
        gid = {}
        for k, gs in enumerate(groups):
            for m in gs:
                gid[m] = k
        for m in members:
            gid[m] = -1
        for i, n in enumerate(nodes):
            for p in n.inputs:
                a, b = gid.get(_base(g, p)), gid.get(i)
                if a is not None and b is not None and a != b:
                    dg.add_edge(a, b)
        return nx.is_directed_acyclic_graph(dg)

    for i, n in enumerate(nodes):
        if n.kind not in (ELEMENTWISE, REDUCE, MATMUL):
            continue
        prods, views = producers(i) if n.kind != MATMUL else (set(), set())
        cand = sorted({group_of[p] for p in prods if p in group_of})
        placed = False
        options = [cand] + [[c] for c in sorted(cand, key=lambda c: -len(groups[c]))] if cand else []
        sibling = not cand and n.kind != MATMUL
        if sibling:
            # horizontal fusion: a group that reads the same inputs over the same axes
            # (f(x), g(x) returned together) shares one pass over memory
            options = [[c] for c in _sibling_groups(g, i, groups, group_of)]
        for opt in options:
            members = set().union(*(groups[c] for c in opt)) | {i}
            members |= {v for v in views if _base(g, v) in members or _view_src_in(g, v, members)}
            members |= _free_views_between(g, members)
            if not _legal(g, members):
                continue
            if sibling and not _same_space(g, members, groups[opt[0]], i):
                continue
            # take the merged groups out, then check no cycle through another group
            saved = [groups[c] for c in opt]
            for c in opt:
                groups[c] = set()
            if not acyclic_with(members):
                for c, s in zip(opt, saved):
                    groups[c] = s
                continue
            k = opt[0]
            groups[k] = members
            for m in members:
                group_of[m] = k
            placed = True
            break
        if not placed:
            groups.append({i})
            group_of[i] = len(groups) - 1
    groups = [gs for gs in groups if gs]
    return _build(g, specs, groups, users)


def _input_bases(g: Graph, nid: int) -> set[int]:
    """Graph inputs a node reads directly (through views)."""
    out = set()
    for p in g.nodes[nid].inputs:
        b = _base(g, p)
        if g.nodes[b].op == "input":
            out.add(b)
    return out


def _sibling_groups(g: Graph, i: int, groups, group_of) -> list[int]:
    mine = _input_bases(g, i)
    if not mine:
        return []
    found = []
    for k, gs in enumerate(groups):
        if gs and any(mine & _input_bases(g, m) for m in gs if g.nodes[m].kind != VIEW):
            found.append(k)
    return sorted(found, key=lambda k: -len(groups[k]))


def _same_space(g: Graph, merged: set[int], old: set[int], i: int) -> bool:
    """Merging i adds no axis: the group keeps iterating the space it iterated."""
    a_new, a_old = _Analysis(g, merged), _Analysis(g, old)

    def n_classes(a):
        return len({a.uf.find(v) for v in list(a.uf.p)})
    if n_classes(a_new) != n_classes(a_old):
        return False
    mine = {c for c in a_new.classes(i) if c is not None}
    everything = {a_new.uf.find(v) for v in list(a_new.uf.p)}
    return mine == everything or mine == everything - a_new.R


def _base(g: Graph, nid: int) -> int:
    """The node a chain of views starts from."""
    while g.nodes[nid].kind == VIEW:
        nid = g.nodes[nid].inputs[0]
    return nid


def _view_src_in(g, v, members):
    return g.nodes[v].inputs[0] in members


def _free_views_between(g: Graph, members: set[int]) -> set[int]:
    """Free views whose input chain starts in the group and which a member consumes."""
    out = set()
    for m in members:
        for p in g.nodes[m].inputs:
            chain = []
            q = p
            while g.nodes[q].kind == VIEW and _is_free_view(g, q):
                chain.append(q)
                q = g.nodes[q].inputs[0]
            if chain and q in members and g.nodes[q].kind != VIEW:
                out.update(chain)
    return out


def _copy_for_views(g: Graph, specs) -> Graph:
    """A reshape that no strides can express over its source's memory (x.T.reshape(-1) of an
    input, or of a stored value) reads a contiguous copy instead, as numpy's reshape does.

    Each view's layout is followed from where its chain starts: an input's strides (its
    spec) or a stored value's contiguous ones. Where it breaks, an identity cast (a copy)
    is inserted under the view; the copy is a normal elementwise node and gets stored."""
    from .ir.graph import _attrs
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
                nodes.append(Node("cast", (src,), _attrs(dtype=s.dtype), s.shape, s.dtype, s.weak, n.loc))
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


def _materialize_matmul_operands(g: Graph, specs) -> Graph:
    """A matmul reads its operands from memory: an operand that folded to a constant (an
    argmax over a size-1 axis, a broadcast scalar) or that is a scalar argument (a 0-d
    array, which GPU targets pass by value) is computed into a buffer first."""
    from .ir.graph import _attrs

    def by_value(j):
        b = g.nodes[_base(g, j)]
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
                    nodes.append(Node("cast", (x,), _attrs(dtype=s.dtype), s.shape, s.dtype, s.weak, n.loc))
                    x = len(nodes) - 1
                fixed.append(x)
            ins = tuple(fixed)
        nodes.append(Node(n.op, ins, n.attrs, n.shape, n.dtype, n.weak, n.loc))
        new_id[i] = len(nodes) - 1
    return Graph(tuple(nodes), tuple(new_id[i] for i in g.inputs), tuple(new_id[o] for o in g.outputs))


def _materialize_outputs(g: Graph) -> Graph:
    """Outputs must be computed by a kernel: copy outputs that are inputs, constants or views."""
    from .ir.graph import _attrs
    nodes = list(g.nodes)
    outs = []
    seen = set()
    for o in g.outputs:
        n = nodes[o]
        if n.kind in (SOURCE, VIEW) or o in seen:
            nodes.append(Node("cast", (o,), _attrs(dtype=n.dtype), n.shape, n.dtype, n.weak, n.loc))
            o = len(nodes) - 1
        seen.add(o)
        outs.append(o)
    return Graph(tuple(nodes), g.inputs, tuple(outs))


def _build(g: Graph, specs, groups: list[set[int]], users) -> Partition:
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
    dg = nx.DiGraph()
    dg.add_nodes_from(range(len(groups)))
    for k, gs in enumerate(groups):
        for m in gs:
            for p in nodes[m].inputs:
                b = _base(g, p)
                if b in member_group and member_group[b] != k:
                    dg.add_edge(member_group[b], k)
    order = list(nx.lexicographical_topological_sort(dg))
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
        elif _is_free_view(g, u):
            out += _consumers(g, u, users)
        else:
            out.append(-1)
    return out


def _resolve_access(g: Graph, specs, nid: int, stored: dict[int, int]):
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


def _make_group(g: Graph, specs, members: set[int], stored: dict[int, int]) -> Group:
    nodes = g.nodes
    a = _Analysis(g, members)
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
        c = nodes[_base(g, p)]
        if c.op == "const":
            # a constant is a scalar: any view of it (reshape, broadcast) is the same value
            exprs.append(Expr("const", (), c.attrs, c.dtype, False, 0))
        else:
            r = _resolve_access(g, specs, p, stored)
            if r is None:
                raise E.InternalError(f"view %{p} of a non-contiguous buffer was not copied")
            buf, off, st = r
            acc = Access(buf, off, domain_strides(p, st), n.dtype)
            full = any(acc.strides[i] for i in range(a_n_outer, len(domain)))
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
        ra = _resolve_access(g, specs, ia, stored)
        rb = _resolve_access(g, specs, ib, stored)
        nb = len(nodes[mm].shape) - 2
        k = nodes[ia].shape[-1]

        def mm_strides(nid, st, kaxis, slot):
            dom = domain_strides(nid, [0 if j == kaxis else s for j, s in enumerate(st)], mm, slot)
            return dom + (st[kaxis] if nodes[nid].shape[kaxis] != 1 else 0,)
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
        if e.op in _REDUCE_OPS:
            best = max(best, e.level + 1)
        else:
            stack.extend(e.args)
    return best

"""Union-find over axes: the axis classes of one candidate group.

Every axis of size > 1 of a node is a variable; broadcasting, reductions and views unify
them. The classes are the group's domain axes, and the classes a reduction reduces are its
reduced axes; `Analysis` also answers the questions the partition asks of a candidate.
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import ELEMENTWISE, REDUCE, MATMUL
from ..ir.symbols import statically_one


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


class Analysis:
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
            if statically_one(nodes[n].shape[j]):
                return None
            return (n, j) if user is None else (n, j, user, slot)

        def unify(a, b):
            if a is not None and b is not None:
                uf.union(a, b)

        for m in sorted(members):
            n = nodes[m]
            for j in range(len(n.shape)):
                if not statically_one(n.shape[j]):
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
                a = [j for j, s in enumerate(nodes[p].shape) if not statically_one(s)]
                b = [j for j, s in enumerate(n.shape) if not statically_one(s)]
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
        return [self.uf.find(key(j)) if not statically_one(s) else None
                for j, s in enumerate(self.g.nodes[nid].shape)]

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

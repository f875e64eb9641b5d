"""The greedy partition: which graph nodes share a kernel.

Nodes are visited in order; each joins the group(s) of its producers when the merged group
is legal (one matmul or one set of reduced axes, at most MAX_LEVELS passes, views crossed
only where free, no cycle between groups), or a group that reads the same inputs over the
same axes (horizontal fusion), else it starts its own group. The member sets then become
Group values (fuse/build.py).
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import ELEMENTWISE, REDUCE, VIEW, MATMUL
from ..ir.tracer import ArgSpec
from .axes import Analysis
from .build import build_partition
from .group import Partition
from .order import is_acyclic
from .rewrites import copy_for_views, materialize_matmul_operands, materialize_outputs
from .views import base_of, is_free_view

MAX_LEVELS = 4


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
                crossed |= not is_free_view(g, p)
                p = nodes[p].inputs[0]
            if crossed and p in members:
                return False
    a = Analysis(g, members)
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


def partition(g: Graph, specs: tuple[ArgSpec, ...]) -> Partition:
    g = materialize_outputs(materialize_matmul_operands(copy_for_views(g, specs), specs))
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
            elif n.kind == VIEW and is_free_view(g, p):
                views.add(p)
                stack.append(n.inputs[0])
        return out, views

    def acyclic_with(members: set[int]) -> bool:
        edges = set()
        gid = {}
        for k, gs in enumerate(groups):
            for m in gs:
                gid[m] = k
        for m in members:
            gid[m] = -1
        for i, n in enumerate(nodes):
            for p in n.inputs:
                a, b = gid.get(base_of(g, p)), gid.get(i)
                if a is not None and b is not None and a != b:
                    edges.add((a, b))
        return is_acyclic(edges)

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
            members |= {v for v in views if base_of(g, v) in members or _view_src_in(g, v, members)}
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
    return build_partition(g, specs, groups, users)


def _input_bases(g: Graph, nid: int) -> set[int]:
    """Graph inputs a node reads directly (through views)."""
    out = set()
    for p in g.nodes[nid].inputs:
        b = base_of(g, p)
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
    a_new, a_old = Analysis(g, merged), Analysis(g, old)

    def n_classes(a):
        return len({a.uf.find(v) for v in list(a.uf.p)})
    if n_classes(a_new) != n_classes(a_old):
        return False
    mine = {c for c in a_new.classes(i) if c is not None}
    everything = {a_new.uf.find(v) for v in list(a_new.uf.p)}
    return mine == everything or mine == everything - a_new.R


def _view_src_in(g, v, members):
    return g.nodes[v].inputs[0] in members


def _free_views_between(g: Graph, members: set[int]) -> set[int]:
    """Free views whose input chain starts in the group and which a member consumes."""
    out = set()
    for m in members:
        for p in g.nodes[m].inputs:
            chain = []
            q = p
            while g.nodes[q].kind == VIEW and is_free_view(g, q):
                chain.append(q)
                q = g.nodes[q].inputs[0]
            if chain and q in members and g.nodes[q].kind != VIEW:
                out.update(chain)
    return out

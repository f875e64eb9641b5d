"""The order of a partition's groups: a topological sort of the group graph, or None where
its edges close a cycle.

This is networkx's lexicographical_topological_sort (Kahn's algorithm, the smallest ready
node first), which fusion used until issue 18: the group graphs it sees have a few to a few
hundred nodes, and importing networkx cost 86-104 ms of every process that compiled
anything (measured on a 2-core VM, with bytecode; the sort itself takes microseconds).
"""
from __future__ import annotations

import heapq
from typing import Hashable, Iterable


def topological_order(nodes: Iterable[Hashable], edges: Iterable[tuple]) -> list | None:
    """Every node (of `nodes` and of `edges`) once, each after its predecessors, the smallest
    ready one first (so the order is one function of the graph, as networkx gives it); None
    if the edges close a cycle. Repeated edges count once; nodes must be comparable."""
    succ: dict = {n: set() for n in nodes}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
        succ.setdefault(b, set())
    indegree = dict.fromkeys(succ, 0)
    for outs in succ.values():
        for b in outs:
            indegree[b] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for b in succ[n]:
            indegree[b] -= 1
            if indegree[b] == 0:
                heapq.heappush(ready, b)
    return order if len(order) == len(succ) else None


def is_acyclic(edges: Iterable[tuple]) -> bool:
    """The directed graph of these edges has no cycle."""
    return topological_order((), edges) is not None

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

The package, in the order a Graph goes through it: rewrites.py (copies the partition
needs), axes.py (union-find over axes), views.py (views as offset + strides),
partition.py (which nodes share a kernel), build.py (member sets become Groups),
group.py (the values handed on), order.py (the groups' order, a topological sort).
"""
from __future__ import annotations

from .group import Access, BufferPlan, Expr, Group, Partition, Store
from .partition import MAX_LEVELS, partition
from .views import apply_view

__all__ = ["Access", "BufferPlan", "Expr", "Group", "Partition", "Store", "MAX_LEVELS", "partition",
           "apply_view"]

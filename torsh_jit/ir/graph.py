"""The IR: a graph of nodes, each an op from the op table with a static shape and dtype.

`Graph` is a frozen value (hashable, printable, cacheable); builder.py's `GraphBuilder`
builds one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .ops import OPS


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[int, ...]
    attrs: tuple            # sorted ((key, value), ...), values hashable
    shape: tuple[int, ...]
    dtype: str
    weak: bool = False      # a Python scalar (NEP 50 'weak'): a constant or a scalar argument
    loc: str | None = field(default=None, compare=False, hash=False)  # user's file:line

    def attr(self, key, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def kind(self) -> str:
        return OPS[self.op].kind

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def make_attrs(**kw) -> tuple:
    """A node's attrs: the keyword arguments as sorted (key, value) pairs."""
    return tuple(sorted(kw.items()))


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    inputs: tuple[int, ...]    # node ids of op 'input', in argument order
    outputs: tuple[int, ...]

    def users(self) -> dict[int, list[int]]:
        u: dict[int, list[int]] = {i: [] for i in range(len(self.nodes))}
        for i, n in enumerate(self.nodes):
            for j in n.inputs:
                u[j].append(i)
        return u

    def dump(self) -> str:
        """One line a node: %id = op(inputs) attrs : dtype[shape]."""
        lines = []
        names = {nid: f"arg{k}" for k, nid in enumerate(self.inputs)}
        for i, n in enumerate(self.nodes):
            if n.op == "input":
                lines.append(f"%{i} = input {names[i]} : {_ty(n)}")
                continue
            ins = ", ".join(f"%{j}" for j in n.inputs)
            at = ", ".join(f"{k}={v}" for k, v in n.attrs)
            at = f" {{{at}}}" if at else ""
            lines.append(f"%{i} = {n.op}({ins}){at} : {_ty(n)}")
        lines.append("return " + ", ".join(f"%{o}" for o in self.outputs))
        return "\n".join(lines)

    def canonical(self) -> tuple:
        """A hashable description without source locations (used in cache keys)."""
        return (tuple((n.op, n.inputs, n.attrs, n.shape, n.dtype, n.weak) for n in self.nodes),
                self.inputs, self.outputs)


def _ty(n: Node) -> str:
    w = "weak " if n.weak else ""
    return f"{w}{n.dtype}[{','.join(map(str, n.shape))}]"


"""One specialisation of a kernel: the built function for one set of argument specs, and
what its call path checks and lays out (scalar positions, outputs and temporaries, Python
ints that must fit, integer exponents that must not be negative, in-place pairs).
"""
from __future__ import annotations

import numpy as np

from ..backends.host import ALIGN_FROM, nbytes
from ..compiler import Plan
from ..ir.ops import COMPARISONS, LOGICAL, VIEW
from ..ir.symbols import evaluate_shape, same


class Specialization:
    """One specialisation: the built function and how to lay out its buffers."""
    __slots__ = ("fn", "specs", "scalar_pos", "outs", "temps", "single", "zero_d", "int_bounds",
                 "exponents", "inplace", "simple", "run", "out_shape", "out_dtype", "device",
                 "big_out")

    def __init__(self, fn, p: Plan, single: bool, values: dict | None = None,
                 checks: tuple | None = None):
        """values: the symbols' values of this call's shapes, for a symbolic plan: the entry
        runs the plan's code at those sizes (its outputs sized by them, the size table
        appended to every launch's buffers). checks: plan_checks(p), where the caller keeps
        them (a symbolic variant makes an entry per size)."""
        if p.symbols:
            fn = BoundFunction(fn, p, values)
        self.fn = fn
        self.specs = p.specs
        self.device = getattr(fn, "device", False)   # a GPU function: it places its own buffers
        self.exponents, self.inplace, self.int_bounds = checks or plan_checks(p)
        if self.device:
            self.single, self.simple = single, False
            return
        self.scalar_pos = tuple(i for i, s in enumerate(p.specs) if s.kind == "scalar")
        b = p.part.buffers
        vals = values or {}
        self.outs = tuple((evaluate_shape(s, vals), np.dtype(d)) for s, d in b.outputs)
        self.temps = tuple((evaluate_shape(s, vals), np.dtype(d)) for s, d in b.temps)
        self.single = single
        self.zero_d = tuple(len(s) == 0 for s, _ in b.outputs)
        # the common case gets a short path: arrays in, one array out, nothing to convert
        self.simple = (single and not self.scalar_pos and not self.int_bounds and not self.temps
                       and not self.zero_d[0] and not self.exponents)
        self.out_shape, self.out_dtype = self.outs[0] if self.outs else ((), None)
        self.big_out = bool(self.outs) and nbytes(self.out_shape, self.out_dtype) >= ALIGN_FROM
        self.run = getattr(fn, "fast_run", None) or fn.run

    def overlapping(self, args, outs) -> list[int]:
        """Outputs that share memory with an input (or another output) other than as an
        exact in-place pair: they are written through a fresh array."""
        bad = []
        for k, o in enumerate(outs):
            for i, a in enumerate(args):
                if isinstance(a, np.ndarray) and np.may_share_memory(a, o) and not (
                        (i, k) in self.inplace and same_layout(a, o)):
                    bad.append(k)
                    break
            else:
                if any(np.may_share_memory(o, other) for other in outs[:k]):
                    bad.append(k)
        return bad


class BoundFunction:
    """A symbolic plan's built function at one call's sizes: the size table rides at the
    end of the buffer table, and the launch splits the work those sizes give."""
    __slots__ = ("run", "fast_run", "call", "device")

    def __init__(self, fn, p: Plan, values: dict):
        table = np.array([values[n] for n in p.symbols], dtype=np.int64)
        inner = fn.bind(values)
        # a GPU function places its own buffers, its size table among them (bound above)
        self.device = getattr(inner, "device", False)
        self.call = inner.call if self.device else None
        self.fast_run = None
        run = getattr(inner, "fast_run", None) or inner.run
        self.run = lambda buffers: run(buffers + (table,))


def plan_checks(p: Plan) -> tuple:
    """What every call of the plan checks: (integer exponent arguments, in-place pairs,
    Python int bounds)."""
    return int_exponent_args(p), inplace_pairs(p), weak_int_bounds(p)


def inplace_pairs(p: Plan) -> frozenset:
    """(input, output) pairs that may be the very same array under out=: one elementwise
    kernel whose every read of that input is at the element it writes. Any other overlap
    of an input with an out= array is computed into a fresh array, then copied, as numpy
    does when operands overlap."""
    groups = p.part.groups
    if len(groups) != 1 or groups[0].kind != "elementwise":
        return frozenset()
    g = groups[0]
    n_in = p.part.buffers.n_inputs
    pairs = set()
    for st in g.stores:
        k = st.access.buf - n_in
        for i in range(n_in):
            reads = [a for a in g.loads if a.buf == i]
            if reads and all(same((a.offset, a.strides), (st.access.offset, st.access.strides))
                             for a in reads):
                pairs.add((i, k))
    return frozenset(pairs)


def same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


def int_exponent_args(p: Plan) -> tuple[int, ...]:
    """Arguments used as the exponent of an integer power: numpy raises ValueError when one
    is negative, so every call checks them (graph.py refuses computed exponents)."""
    g = p.graph
    out = set()
    for n in g.nodes:
        if n.op == "pow" and n.dtype.startswith("int"):
            e = n.inputs[1]
            while g.nodes[e].kind == VIEW:
                e = g.nodes[e].inputs[0]
            if g.nodes[e].op == "input":
                out.add(g.nodes[e].attr("index"))
    return tuple(sorted(out))


def weak_int_bounds(p: Plan) -> tuple:
    """(argument, lo, hi, dtype, why) for Python int arguments that an op converts to a
    narrower integer dtype (NEP 50: x_int32 + n takes n as int32; numpy's ufuncs raise when
    it does not fit). Comparisons compare by value, in int64 where the value may not fit;
    a target without int64 (WGSL) cannot, so there they must fit int32 too. Casts and
    np.where wrap, as in numpy."""
    g = p.optimized
    users = g.users()
    compares_by_value = p.target.supports("int64")
    out = []
    for k, nid in enumerate(g.inputs):
        n = g.nodes[nid]
        if not (n.weak and n.dtype == "int64"):
            continue
        uses = [g.nodes[u] for u in users[nid] if g.nodes[u].op not in LOGICAL | {"cast", "where"}]
        if any(u.op not in COMPARISONS and u.dtype == "int32" for u in uses):
            out.append((k, -2**31, 2**31 - 1, "int32",
                        "the dtype it combines with (numpy raises OverflowError too)"))
        elif not compares_by_value and any(u.op in COMPARISONS and u.attr("ct") == "int64"
                                           for u in uses):
            out.append((k, -2**31, 2**31 - 1, "int32",
                        f"the widest integer target {p.target.name} holds, and it is compared "
                        "there (numpy compares it by value; pass it as a constant in the kernel "
                        "body, or compute on a target with int64)"))
    return tuple(out)

"""A built LLVM function in this process: its kernels' entry points, and each call split
into [start, end) ranges over the thread pool (or one serial native call for small work).
"""
from __future__ import annotations

import copy
import ctypes
import math

from ...ir.symbols import evaluate
from ...schedule.layout import work_units
from .build import engine, layout_holds, pointer_reader
from .threads import native_pool, pool


_KERNEL_T = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)  # releases the GIL
_MAIN_T = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_PYMAIN_T = ctypes.PYFUNCTYPE(None, ctypes.py_object)   # keeps the GIL: no hand-over cost


class CpuFunction:
    """A built function: its kernels' entry points and how to split their work."""

    def __init__(self, plan, obj: bytes):
        names = plan.kernel_names()
        main, pymain = f"{plan.module_name}_main", f"{plan.module_name}_py"
        self._addrs = addrs = engine().load(obj, names + [main, pymain])
        self.plan = plan
        self.main = _MAIN_T(addrs[main])
        self.pymain = _PYMAIN_T(addrs[pymain]) if layout_holds() else None
        self._entries = [_KERNEL_T(addrs[n]) for n in names]
        self._fns = (ctypes.c_void_p * len(names))(*[addrs[n] for n in names])
        self.n_buffers = plan.n_buffers
        self._pool = pool
        self._native = native_pool
        # each kernel's element count (the grain's unit), an expression for a symbolic plan
        self._elems = []
        for g in plan.part.groups:
            elems = math.prod(g.domain) if g.domain else 1
            self._elems.append(elems * g.k if g.kind == "matmul" else elems)
        if not plan.symbols:
            self._lay_out({})

    def bind(self, values: dict) -> "CpuFunction":
        """This function at the sizes `values` of a symbolic plan's symbols."""
        b = copy.copy(self)
        b._lay_out(values)
        return b

    def _lay_out(self, values: dict) -> None:
        """Each kernel's work units and grain at these sizes, and the arrays the native
        pool reads them from."""
        plan = self.plan
        self.kernels = []
        self.work = 0
        for k, (entry, g, c) in enumerate(zip(self._entries, plan.part.groups, plan.configs)):
            units = evaluate(plan.units[k], values) if plan.symbols else work_units(g, c)
            elems = evaluate(self._elems[k], values)
            if g.kind == "matmul" and evaluate(g.k, values) == 0:
                elems = evaluate(math.prod(g.domain), values)     # max(K, 1) as before
            per_unit = max(1, elems // max(units, 1))
            grain = max(1, c.grain // per_unit)
            align = 64 if g.kind == "elementwise" else 1
            self.kernels.append((entry, units, grain, align))
            self.work += elems
        nk = len(self.kernels)
        # the launch plan, as arrays the native pool reads
        self._units = (ctypes.c_int64 * nk)(*[k[1] for k in self.kernels])
        self._grains = (ctypes.c_int64 * nk)(*[k[2] for k in self.kernels])
        self._aligns = (ctypes.c_int64 * nk)(*[k[3] for k in self.kernels])
        # small work: straight to the serial trampoline (one native call, no pool)
        self.fast_run = self.pymain if (self.pymain is not None and self.work < (1 << 16)) else None

    def run(self, buffers: tuple) -> None:
        """buffers: every input (arrays, 0-d arrays for scalars), output and temporary, in order."""
        if self.work < (1 << 16) or self._pool().n == 1:
            if self.pymain is not None:
                self.pymain(buffers)
                return
            table = (ctypes.c_void_p * self.n_buffers)(*[b.ctypes.data for b in buffers])
            self.main(ctypes.addressof(table))
            return
        table = (ctypes.c_void_p * self.n_buffers)()
        reader = pointer_reader()
        if reader is not None:
            reader(buffers, ctypes.addressof(table), self.n_buffers)
        else:
            for i, b in enumerate(buffers):
                table[i] = b.ctypes.data
        addr = ctypes.addressof(table)
        native = self._native()
        if native is not None:
            native.launch(self._fns, self._units, self._grains, self._aligns, len(self.kernels), addr)
            return
        pool = self._pool()
        for fn, units, grain, align in self.kernels:
            if units:
                pool.run(fn, addr, units, grain, align)

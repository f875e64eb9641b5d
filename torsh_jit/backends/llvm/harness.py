"""The LLVM CPU targets' tuning harness and the fingerprint of the CPU its times belong to: inputs in host memory rotated across copies that
exceed the last-level cache, outputs allocated once per layout, wall-clock timing.
"""
from __future__ import annotations

import functools
import json
import platform
import time
from pathlib import Path

import numpy as np

from ..host import aligned_empty, random_inputs, rotation_copies


class CpuHarness:
    """Input sets on the host and a wall-clock timer."""

    def __init__(self, specs, p0, seed: int = 0):
        rng = np.random.default_rng(seed)
        b = p0.part.buffers
        in_bytes = sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in specs if s.kind == "array")
        out_bytes = sum(int(np.prod(sh)) * np.dtype(d).itemsize for sh, d in b.outputs)
        self.copies = rotation_copies(in_bytes + out_bytes)
        self.sets = [random_inputs(specs, rng) for _ in range(self.copies)]

    def bind(self, p, fn):
        return CpuBound(self, p, fn)


class CpuBound:
    def __init__(self, h: CpuHarness, p, fn):
        b = p.part.buffers
        self.fn = fn
        # every candidate writes the same output pages: fresh ones per candidate differed
        # by up to 30% on a memory-bound kernel (page faults, huge pages or not)
        layout = (tuple(b.outputs), tuple(b.temps))
        if getattr(h, "_layout", None) != layout:
            h._layout = layout
            h._outs = [([aligned_empty(sh, np.dtype(d)) for sh, d in b.outputs],
                        [np.empty(sh, d) for sh, d in b.temps]) for _ in h.sets]
            for outs, temps in h._outs:
                for a in outs + temps:
                    a.fill(0)                  # touch every page once, here, not in a timing
        self.bufs = [(tuple(ins) + tuple(outs) + tuple(temps), outs)
                     for ins, (outs, temps) in zip(h.sets, h._outs)]
        self.copies = len(self.bufs)

    def run(self, i: int) -> None:
        self.fn.run(self.bufs[i % self.copies][0])

    def outputs(self, i: int) -> list:
        return [o.copy() for o in self.bufs[i % self.copies][1]]

    def time(self, *, min_runs=5, max_runs=30, min_s=0.1, max_s=1.0) -> list[float]:
        self.run(1)                                   # warm-up (other copies than the check's)
        self.run(2)
        ts: list[float] = []
        start = time.perf_counter()
        i = 3
        while True:
            t0 = time.perf_counter()
            self.run(i)
            ts.append(time.perf_counter() - t0)
            i += 1
            spent = time.perf_counter() - start
            if len(ts) >= max_runs or spent >= max_s or (len(ts) >= min_runs and spent >= min_s):
                return ts


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_fingerprint(target) -> str:
    """The machine a CPU time was measured on: the target, the CPU model, the threads a
    launch may use and the last-level cache."""
    from ...schedule.space import llc_bytes
    from ...schedule.threads import num_threads
    from .host import host_cpu_name
    return json.dumps({"target": target.name, "features": list(target.features),
                       "cpu": host_cpu_name(), "model": cpu_model(), "threads": num_threads(),
                       "llc": llc_bytes()}, sort_keys=True)

"""Measuring candidates: compile (in parallel), check, time, record.

How a CPU time is taken (GPU backends bring their own harness, `tune_harness`):
- inputs are random and rotated across several copies whose total size is at least twice
  the last-level cache (at most 8 copies, 512 MiB), so no candidate is flattered by finding
  its inputs in cache from the previous run;
- every candidate first runs once and its outputs are compared with the default config's
  (a candidate that differs, fails to build or raises scores as infinitely slow);
- one warm-up run, then runs until at least 5 runs and 50 ms (at most 30 runs or 1 s), and
  the median is the time; a short pause between candidates lets the machine settle;
- compilation of a batch happens before its timing, never during it.
Every result, failures included, is stored as its own record (records.py).
"""
from __future__ import annotations

import math
import statistics
import time

import numpy as np

from .. import compiler
from ..compiler import plan as make_plan, render
from .records import Subject, get_measurement, put_measurement

STATS = {"measured": 0, "reused": 0, "compiled": 0, "retimed": 0}   # this process
ROTATE_BYTES_CAP = 512 << 20
BUSY_LIMIT = 0.10        # share of the machine other processes may use during a timing
RETRIES = 3


def _busy_seconds() -> float | None:
    """CPU seconds every process on this machine has used since boot (steal time too: a
    VM's stolen time is time we did not get), from /proc/stat; None where it is missing."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / _HZ


try:
    import os as _os
    _HZ = _os.sysconf("SC_CLK_TCK")
    _NCPU = len(_os.sched_getaffinity(0))
except (AttributeError, ValueError, OSError):
    _HZ, _NCPU = 100, 1


class LoadMeter:
    """How much of the machine other processes took while we timed: on a shared machine
    (another user's test run), times taken then say little about the code."""

    def __enter__(self):
        self.b0, self.c0, self.t0 = _busy_seconds(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        b1, c1, t1 = _busy_seconds(), time.process_time(), time.perf_counter()
        if self.b0 is None or b1 is None or t1 - self.t0 <= 0:
            self.others = 0.0
        else:
            self.others = max(0.0, (b1 - self.b0) - (c1 - self.c0)) / ((t1 - self.t0) * _NCPU)


def random_inputs(specs, rng) -> list:
    out = []
    for s in specs:
        if s.kind == "scalar":
            v = rng.standard_normal() if s.dtype.startswith("float") else int(rng.integers(1, 8))
            out.append(np.asarray(v if s.dtype != "bool" else True, dtype=s.dtype))
            continue
        shape = s.shape
        if s.dtype.startswith("float"):
            a = rng.standard_normal(shape).astype(s.dtype)
        elif s.dtype == "bool":
            a = rng.random(shape) < 0.5
        else:
            a = rng.integers(-64, 64, shape).astype(s.dtype)
        if s.strides is not None:
            # a view with these element strides over a larger buffer
            need = 1 + sum((d - 1) * st for d, st in zip(shape, s.strides) if d > 0)
            base = rng.standard_normal(need).astype(s.dtype) if s.dtype.startswith("float") else \
                np.zeros(need, s.dtype)
            isz = np.dtype(s.dtype).itemsize
            a = np.lib.stride_tricks.as_strided(base, shape, tuple(st * isz for st in s.strides))
        out.append(a)
    return out


def rotation_copies(bytes_per_set: int) -> int:
    from ..schedule.space import llc_bytes as _llc_bytes
    want = -(-2 * _llc_bytes() // max(1, bytes_per_set))
    return int(max(1, min(8, want, ROTATE_BYTES_CAP // max(1, bytes_per_set))))


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
        return _CpuBound(self, p, fn)


class _CpuBound:
    def __init__(self, h: CpuHarness, p, fn):
        from ..kernel import _aligned_empty
        b = p.part.buffers
        self.fn = fn
        # every candidate writes the same output pages: fresh ones per candidate differed
        # by up to 30% on a memory-bound kernel (page faults, huge pages or not)
        layout = (tuple(b.outputs), tuple(b.temps))
        if getattr(h, "_layout", None) != layout:
            h._layout = layout
            h._outs = [([_aligned_empty(sh, np.dtype(d)) for sh, d in b.outputs],
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


def same_outputs(got: list, ref: list, rtol: float | None = None) -> bool:
    """Outputs agree with the reference's up to a reordering of float sums (relative to the
    largest value, so sums that cancel are not held to a relative bound)."""
    for g, r in zip(got, ref):
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape:
            return False
        if r.dtype.kind == "f":
            rtol = rtol or (2e-3 if r.dtype.itemsize <= 4 else 1e-8)
            fin = np.isfinite(r)
            scale = float(np.max(np.abs(r[fin]))) if fin.any() else 1.0
            if not np.allclose(g, r, rtol=rtol, atol=rtol * max(scale, 1e-30), equal_nan=True):
                return False
        elif not np.array_equal(g, r):
            return False
    return True


def harness_for(target, specs, p0, seed: int = 0):
    from ..backends import for_language
    be = for_language(target.language)
    if be is not None:
        if not hasattr(be, "tune_harness"):
            from .. import errors as E
            raise E.TuneError(f"the {target.language} backend cannot time kernels yet",
                              hint="tune an LLVM CPU target, e.g. --target host")
        return be.tune_harness(specs, p0, seed)
    return CpuHarness(specs, p0, seed)


class Measurer:
    """Times candidates (tuples of configs, one per group) of one function, reusing every
    stored measurement of the same subject."""

    def __init__(self, subj: Subject, graph, specs, target, *, pool=None, seed: int = 0,
                 pause_s: float = 0.005):
        self.subj, self.graph, self.specs, self.target = subj, graph, specs, target
        self.pool = pool
        self.pause_s = pause_s
        self.p0 = make_plan(graph, specs, target)
        self.harness = harness_for(target, specs, self.p0, seed)
        self.shape = ";".join(s.describe() for s in specs)
        self.reference = None
        self.results: dict = {}          # candidate -> seconds (inf: failed)
        self.errors: dict = {}
        self.fresh = 0                   # measured in this tuning (not from records)
        self.busy = 0.0                  # most of the machine others took during a kept timing
        self.last_busy = 0.0
        self.deadline = math.inf         # time.monotonic() after which timings are not retried

    def known(self, cand) -> float | None:
        if cand in self.results:
            return self.results[cand]
        t = get_measurement(self.subj, cand, busy_limit=BUSY_LIMIT)
        if t is not None:
            self.results[cand] = t
            STATS["reused"] += 1
        return t

    def _ensure_reference(self):
        if self.reference is None:
            fn = compiler.build(self.p0)
            bound = self.harness.bind(self.p0, fn)
            bound.run(0)
            self.reference = bound.outputs(0)

    def measure(self, cands: list, on_result=None) -> list[float]:
        """Times of `cands` (stored ones are read, the others measured and stored)."""
        todo = [c for c in dict.fromkeys(cands) if self.known(c) is None]
        plans = {}
        for c in todo:
            try:
                plans[c] = make_plan(self.graph, self.specs, self.target, configs=c)
            except Exception as e:
                self._record(c, math.inf, 0, f"plan: {type(e).__name__}: {e}")
        objs = self._compile([c for c in todo if c in plans], plans)
        if todo:
            try:
                self._ensure_reference()
            except Exception:
                self.reference = []      # the default does not run: nothing to compare with
        for c in todo:
            if time.monotonic() > self.deadline and self.fresh:
                break            # out of time: the rest stay unmeasured
            if c not in plans:
                if on_result:
                    on_result(c, self.results[c])
                continue
            t, n, err = self._time_one(plans[c], objs.get(c))
            self._record(c, t, n, err)
            if on_result:
                on_result(c, t)
            time.sleep(self.pause_s)
        return [self.results.get(c) for c in cands]

    def _compile(self, cands, plans) -> dict:
        """Object code for the native LLVM candidates not built yet, from the worker pool."""
        if self.target.language != "llvm" or self.pool is None:
            return {}
        from ..cache import get_cache
        from ..runtime.hardware import runs_natively
        if not runs_natively(self.target):
            return {}
        cache = get_cache()
        need = [c for c in cands if plans[c].key not in compiler._loaded
                and cache.get("obj", plans[c].key, expect=plans[c].expect) is None]
        jobs = []
        for c in need:
            try:
                jobs.append((render(plans[c]), self.target.name))
            except Exception as e:
                jobs.append(None)
                self.errors[c] = f"render: {type(e).__name__}: {e}"
        ok_jobs = [(c, j) for c, j in zip(need, jobs) if j is not None]
        out = {}
        for (c, _), (ok, data) in zip(ok_jobs, self.pool.map([j for _, j in ok_jobs])):
            STATS["compiled"] += 1
            if ok:
                out[c] = data
            else:
                self.errors[c] = "compile: " + data.decode(errors="replace")
        return out

    def _time_one(self, p, obj) -> tuple[float, int, str | None]:
        cand = p.configs
        if cand in self.errors:
            return math.inf, 0, self.errors[cand]
        try:
            fn = compiler.build(p, obj)
            bound = self.harness.bind(p, fn)
            bound.run(0)
            if self.reference and not same_outputs(bound.outputs(0), self.reference,
                                                   getattr(self.harness, "rtol", None)):
                return math.inf, 0, "wrong results (differ from the default config's)"
            ts = self.quiet_times(bound)
        except Exception as e:
            return math.inf, 0, f"{type(e).__name__}: {e}"
        return statistics.median(ts), len(ts), None

    def quiet_times(self, bound, **kw) -> list[float]:
        """bound.time(), taken again (after a pause) while other processes used more than
        BUSY_LIMIT of the machine; the least disturbed attempt is kept."""
        best = None
        for attempt in range(RETRIES + 1):
            with LoadMeter() as load:
                ts = bound.time(**kw)
            if best is None or load.others < best[0]:
                best = (load.others, ts)
            if load.others <= BUSY_LIMIT or time.monotonic() > self.deadline:
                break
            STATS["retimed"] += 1
            time.sleep(0.2 * (attempt + 1))
        self.last_busy = best[0]
        self.busy = max(self.busy, best[0])
        return best[1]

    def _record(self, cand, t: float, n: int, err: str | None):
        self.results[cand] = t
        if err:
            self.errors[cand] = err
        self.fresh += 1
        STATS["measured"] += 1
        put_measurement(self.subj, cand, t, shape=self.shape, repeats=n, error=err,
                        busy=self.last_busy if not err else 0.0)

    def confirm(self, cands: list, rounds: int = 6) -> dict:
        """Re-time the finalists interleaved (round-robin, so drift of the machine hits them
        alike) and return candidate -> median of all these runs; stops at the deadline (at
        least one round). Records are updated only from undisturbed rounds."""
        bound = {}
        for c in cands:
            p = make_plan(self.graph, self.specs, self.target, configs=c)
            bound[c] = self.harness.bind(p, compiler.build(p))
        runs: dict = {c: [] for c in cands}
        busy = 0.0
        order = list(cands)
        shuffle = np.random.default_rng(len(cands)).permutation
        for r in range(rounds):
            if r and time.monotonic() > self.deadline:
                break
            for c in [order[i] for i in shuffle(len(order))]:   # no candidate always runs first
                runs[c] += self.quiet_times(bound[c], min_runs=3, max_runs=10, min_s=0.05, max_s=0.3)
                busy = max(busy, self.last_busy)
        out = {c: statistics.median(ts) for c, ts in runs.items()}
        for c, t in out.items():
            self.results[c] = t
            if busy <= BUSY_LIMIT:
                put_measurement(self.subj, c, t, shape=self.shape, repeats=len(runs[c]), busy=busy)
        return out

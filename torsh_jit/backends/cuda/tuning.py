"""Tuning on the GPU: the candidates of a group and what tells them apart, the device a
time was measured on, and timing by GPU events with the GPU held busy while a batch of
launches is enqueued (TuneHarness: random inputs on the device, rotated past the L2)."""
from __future__ import annotations

import math

import numpy as np

from ...once import once
from .device import scalar_value, storage
from .hardware import require_cupy
from .toolchain import nvrtc_version


def tune_space(group, target, default):
    """The candidates the tuner may try (schedule/gpu.py: matmul_tune_space is the part to
    adjust when the matmul templates change)."""
    from ...schedule.gpu import tune_space as ts
    return ts(group, target, default)


def tune_key(cfg):
    """What a candidate is, for the search: every field but a tensor-core schedule's
    `threads`, which follows from its warps or warpgroups (so a step along tile_m finds the
    schedule with the threads that go with it)."""
    return cfg.replace(threads=0) if cfg.mma or cfg.wgmma else cfg


def device_fingerprint(target) -> str:
    """The GPU a time was measured on: name, compute capability, SMs, memory, clocks."""
    import json
    cp = require_cupy("tuning a CUDA kernel")
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return json.dumps({"target": target.name, "name": name, "cc": f"{props['major']}.{props['minor']}",
                       "sms": props["multiProcessorCount"], "memory": props["totalGlobalMem"],
                       "clock_khz": props.get("clockRate", 0), "nvrtc": nvrtc_version()},
                      sort_keys=True)


BATCH = 10          # launches enqueued behind one hold of the GPU


def event_times(launch, copies: int, start_event, end_event, sync, *, warmup: int = 3,
                min_runs: int = 10, max_runs: int = 100, min_s: float = 0.05,
                max_s: float = 1.0, hold=None) -> list[float]:
    """Seconds per launch from GPU events: `warmup` launches, then batches of BATCH timed
    launches, each between two events on the stream, input copy i % copies, until min_runs
    and min_s (at most max_runs or max_s of GPU time). hold(): enqueue GPU work (a spin of
    about a millisecond) before each batch, so that the host enqueues the batch while the
    GPU is busy and no launch's host overhead (Python, the driver) lands between its events;
    without it a 0.2 ms kernel measured 0.02-0.03 ms slow. Pure logic, so it is tested
    without a GPU."""
    for i in range(warmup):
        launch(i % copies)
    sync()
    ts: list[float] = []
    total = 0.0
    i = warmup
    while True:
        if hold is not None:
            hold()
        evs = []
        for _ in range(BATCH):
            s, e = start_event(), end_event()
            s.record()
            launch(i % copies)
            e.record()
            evs.append((s, e))
            i += 1
        evs[-1][1].synchronize()
        for s, e in evs:
            t = e.elapsed_since(s)
            ts.append(t)
            total += t
            if len(ts) >= max_runs or total >= max_s or (len(ts) >= min_runs and total >= min_s):
                return ts


_SPIN = r"""
extern "C" __global__ void tj_spin(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) { }
}
"""


@once
def _spin_kernel(device: int):
    """(the spin kernel, the device's clock in kHz: 2 GHz where the driver does not say)."""
    cp = require_cupy("holding the GPU while launches are timed")
    khz = cp.cuda.runtime.getDeviceProperties(device).get("clockRate", 0) or 2_000_000
    return cp.RawKernel(_SPIN, "tj_spin"), int(khz)


def hold_gpu(stream, ms: float = 1.0) -> None:
    """Enqueue a one-thread kernel that spins for about `ms` on the stream."""
    cp = require_cupy("holding the GPU while launches are timed")
    kernel, khz = _spin_kernel(cp.cuda.Device().id)
    kernel((1,), (1,), (np.int64(int(ms * khz)),), stream=stream)


class _CupyEvent:
    def __init__(self, cp, stream):
        self.cp, self.stream = cp, stream
        self.ev = cp.cuda.Event()

    def record(self):
        self.ev.record(self.stream)

    def synchronize(self):
        self.ev.synchronize()

    def elapsed_since(self, other) -> float:
        return self.cp.cuda.get_elapsed_time(other.ev, self.ev) * 1e-3


class TuneHarness:
    """Random inputs on the device, rotated across copies that together exceed twice the L2
    (at most 8, 4 GiB), outputs and temporaries allocated once; launches timed by events."""

    def __init__(self, specs, p0, seed: int = 0):
        cp = require_cupy("tuning a CUDA kernel")
        self.cp = cp
        rng = np.random.default_rng(seed)
        in_bytes = sum(math.prod(s.shape) * storage(s.dtype).itemsize for s in specs if s.kind == "array")
        out_bytes = sum(math.prod(sh) * storage(d).itemsize for sh, d in p0.part.buffers.outputs)
        l2 = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id).get("l2CacheSize", 50 << 20)
        per = max(1, in_bytes + out_bytes)
        self.copies = int(max(1, min(8, -(-2 * l2 // per), (4 << 30) // per)))
        self.specs = specs
        # 16-bit outputs: sums in another order round to a neighbouring value (2^-8 relative)
        self.rtol = 1e-2 if any(d in ("float16", "bfloat16") for _, d in p0.part.buffers.outputs) else None
        self.sets = []
        for _ in range(self.copies):
            bufs = []
            for s in specs:
                if s.kind == "scalar":
                    bufs.append(scalar_value(np.asarray(1.0 if s.dtype.startswith("float") else 1,
                                                         dtype=storage(s.dtype) if s.dtype != "bfloat16"
                                                         else np.float32), s.dtype))
                    continue
                x = rng.standard_normal(s.shape).astype(np.float32)
                if s.dtype == "bfloat16":
                    host = (x.view(np.uint32) >> 16).astype(np.uint16)
                elif s.dtype == "bool":
                    host = x > 0
                elif s.dtype.startswith(("int", "uint")):
                    host = (x * 16).astype(s.dtype)
                else:
                    host = x.astype(s.dtype)
                bufs.append(cp.asarray(host))
            self.sets.append(bufs)

    def bind(self, p, fn):
        return _TuneBound(self, p, fn)


class _TuneBound:
    def __init__(self, h: TuneHarness, p, fn):
        cp = h.cp
        self.h, self.fn = h, fn
        self.outs, self.bufs = [], []
        for ins in h.sets:
            outs = [cp.empty(sh, storage(d)) for sh, d in fn.outputs]
            temps = [cp.empty(max(1, math.prod(s)) * storage(d).itemsize, np.uint8) for s, d in fn.temps]
            ptrs = [a if s.kind == "scalar" else a.data.ptr for a, s in zip(ins, h.specs)]
            self.bufs.append(ptrs + [o.data.ptr for o in outs] + [t.data.ptr for t in temps])
            self.outs.append(outs)
        self.stream = cp.cuda.get_current_stream()

    def run(self, i: int) -> None:
        self.fn._launch(self.bufs[i % len(self.bufs)], self.stream)

    def outputs(self, i: int) -> list:
        self.stream.synchronize()
        res = []
        for o, (_, d) in zip(self.outs[i % len(self.outs)], self.fn.outputs):
            x = self.h.cp.asnumpy(o)
            if d == "bfloat16":
                x = (x.astype(np.uint32) << 16).view(np.float32)
            res.append(x.astype(np.float32) if x.dtype == np.float16 else x)
        return res

    def time(self, *, min_runs=10, max_runs=100, min_s=0.05, max_s=1.0) -> list[float]:
        cp = self.h.cp
        return event_times(self.run, len(self.bufs), lambda: _CupyEvent(cp, self.stream),
                           lambda: _CupyEvent(cp, self.stream), self.stream.synchronize,
                           min_runs=min_runs, max_runs=max_runs, min_s=min_s, max_s=max_s,
                           hold=lambda: hold_gpu(self.stream))


def tune_harness(specs, p0, seed: int = 0) -> TuneHarness:
    return TuneHarness(specs, p0, seed)

"""Launching a WGSL module through wgpu: WgslFunction, its buffers, grids and timing.

A function's WGSL module is compiled once, with one compute pipeline per kernel; calls
upload numpy arrays (bool as u32 words, every buffer padded to 16 bytes so it can be read
as vec4), dispatch each kernel with its grid capped at maxComputeWorkgroupsPerDimension
(the kernels loop over what the grid does not cover), and read the outputs back.

Timing (benchmarks/gpu.py): `fn = tj.kernel(f).to("wgsl").built_variants(*args)["wgsl"]`;
`d = fn.upload(*args)` puts the inputs on the device once; `fn.launch(d, repeat=n)` records
n runs of every kernel into one submission; `fn.sync()` waits for the queue;
`fn.download(d)` gives the outputs as numpy arrays; `fn.time(d, repeat=n)` does
launch + sync and returns seconds per run.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np

from ... import errors as E
from ...ir.symbols import evaluate_shape
from ...ir.tracer import ArgSpec
from ...codegen.cstyle.launch import at_sizes
from .. import take_buffers
from . import device as wgsl_device  # read at call time: tests patch device.require_gpu
from .device import adapter_description

_modules: dict = {}      # WGSL text -> shader module, this process


def build(p):
    from ...codegen.cstyle.launch import plan_launches
    from ...codegen.wgsl import render_plan
    wgsl_device.require_gpu()
    src, launches = plan_launches(p, render_plan)
    return WgslFunction(p, src, launches)


def explain(p) -> str:
    from ...codegen.cstyle.launch import plan_launches
    from ...codegen.wgsl import render_plan
    _, launches = plan_launches(p, render_plan)
    lines = [l.describe() for l in launches]
    g = wgsl_device.gpu()
    if g is None:
        lines.append("no wgpu adapter here: grids are capped at the adapter's limits when one runs")
    else:
        lim = g[3]
        lines.append(f"adapter: {adapter_description()}: at most "
                     f"{lim['max-compute-workgroups-per-dimension']} workgroups per dimension, "
                     f"{lim['max-storage-buffers-per-shader-stage']} storage bindings per stage, "
                     f"{lim['max-storage-buffer-binding-size'] // 2**20} MiB per binding")
        for l in launches:     # a symbolic plan's grids: expressions, evaluated per call
            lines.append(f"  {l.name}: dispatch {l.grid if p.symbols else _grid(l, lim)}")
    return "\n".join(lines)


def _grid(l, lim) -> tuple:
    cap = lim["max-compute-workgroups-per-dimension"]
    g = l.grid
    if g[0] in ("stride", "rows"):
        return (max(1, min(g[1], cap)), 1, 1)
    x, y, z = g[1:]
    if max(x, y, z) > cap:
        raise E.TargetError(f"{l.name} needs {x}x{y}x{z} workgroups, and the adapter allows "
                            f"{cap} per dimension", hint="split the matmul, or use a CPU target")
    return (x, y, z)


def _mem_dtype(dtype: str):
    """How a dtype lies in a buffer: bool as u32 words, int64 positions (argmax) as i32."""
    return np.dtype({"bool": "uint32", "int64": "int32"}.get(dtype, dtype))


def _padded(nbytes: int) -> int:
    return max(16, -(-nbytes // 16) * 16)


class DeviceArgs:
    """The buffers of one call on the device, and their bind groups (reusable for timing)."""

    def __init__(self, buffers, bind_groups, keep):
        self.buffers = buffers
        self.bind_groups = bind_groups
        self.keep = keep


class WgslFunction:
    """A built function: its shader module, a pipeline per kernel, and the call path."""

    device = True

    def __init__(self, plan, source: str, launches):
        self.wgpu, self.adapter, self.dev, self.lim = wgsl_device.require_gpu()
        self.plan = plan
        self.source = source
        self.launches = tuple(launches)
        take_buffers(self, plan)
        self.n_buffers = self.n_inputs + len(self.outputs) + len(self.temps)
        self.scalar_binding = plan.n_buffers     # after a symbolic plan's size table
        self.sizes = None                        # a symbolic plan's size table, once bound
        self.scalar_pos = [i for i, s in enumerate(self.specs) if s.kind == "scalar"]
        most = self.lim["max-storage-buffers-per-shader-stage"]
        for l in self.launches:
            n = len(l.buffers) + l.scalars
            if n > most:
                raise E.TargetError(
                    f"kernel {l.name} reads and writes {n} buffers, and this adapter "
                    f"({adapter_description()}) binds at most {most} storage buffers per shader",
                    hint="split the function into smaller ones (fewer inputs and outputs per "
                         "kernel), or use a CPU or CUDA target")
        mod = _modules.get(source)
        if mod is None:
            try:
                mod = _modules[source] = self.dev.create_shader_module(code=source)
            except Exception as err:
                raise E.CompileError(
                    f"internal error (a bug in torsh-jit, please report it): wgpu rejected the "
                    f"generated WGSL:\n{err}",
                    hint="lower(...).source shows the code; a CPU target such as 'host' runs it "
                         "meanwhile") from None
        self.module = mod
        self.pipelines = {}
        for l in self.launches:
            self.pipelines[l.name] = self.dev.create_compute_pipeline(
                layout="auto", compute={"module": mod, "entry_point": l.name})
        self.grids = {} if plan.symbols else {l.name: _grid(l, self.lim) for l in self.launches}

    def bind(self, values: dict) -> "WgslFunction":
        """This function at a symbolic plan's sizes: outputs and temporaries of those sizes,
        the grids of plan.units, the size table as int32 (WGSL has no 64-bit integers, so a
        size, and every array's element count, must fit in i32)."""
        b = copy.copy(self)
        p = self.plan
        b.outputs = tuple((evaluate_shape(s, values), d) for s, d in p.part.buffers.outputs)
        b.temps = tuple((evaluate_shape(s, values), d) for s, d in p.part.buffers.temps)
        ins = [evaluate_shape(s.shape, values) for s in p.specs if s.kind == "array"]
        big = max([math.prod(s) for s in ins + [s for s, _ in b.outputs + b.temps]] +
                  [values[n] for n in p.symbols])
        if big >= 2**31 - 1:
            raise E.TargetError(f"an array of {big} elements is too large for the wgsl target "
                                "(WGSL indexes with 32-bit integers)",
                                hint="split the work, or use a CPU or CUDA target")
        n = len(p.symbols)
        b.sizes = np.array([values[s] for s in p.symbols] + [0] * (-n % 4), np.int32)  # vec4s
        b.launches = at_sizes(self.launches, p.units, values)
        b.grids = {l.name: _grid(l, self.lim) for l in b.launches}
        return b

    def describe(self) -> str:
        return "\n".join([f"adapter: {adapter_description()}"] +
                         [f"  {l.name}: workgroup {l.threads}, dispatch {self.grids[l.name]}"
                          for l in self.launches])

    # -- buffers -------------------------------------------------------------------------------
    def _buffer(self, nbytes: int, usage):
        if nbytes > self.lim["max-storage-buffer-binding-size"]:
            raise E.TargetError(f"an array of {nbytes} bytes is larger than this adapter's "
                                f"largest storage binding ({self.lim['max-storage-buffer-binding-size']} bytes)",
                                hint="split the work, or use a CPU or CUDA target")
        return self.dev.create_buffer(size=_padded(nbytes), usage=usage)

    def upload(self, *args) -> DeviceArgs:
        """The call's inputs on the device, outputs and temporaries allocated, bind groups made."""
        U = self.wgpu.BufferUsage
        bufs: list = [None] * self.plan.n_buffers
        words = []
        for i, (a, s) in enumerate(zip(args, self.specs)):
            if s.kind == "scalar":
                words.append(_scalar_word(a, s))
                continue
            x = np.ascontiguousarray(a)
            if x.dtype != _mem_dtype(s.dtype):
                x = x.astype(_mem_dtype(s.dtype))
            buf = self._buffer(x.nbytes, U.STORAGE | U.COPY_DST)
            if x.nbytes:
                self.dev.queue.write_buffer(buf, 0, x)
            bufs[i] = buf
        k = self.n_inputs
        for shape, dtype in self.outputs:
            bufs[k] = self._buffer(math.prod(shape) * 4, U.STORAGE | U.COPY_SRC)
            k += 1
        for shape, dtype in self.temps:
            bufs[k] = self._buffer(math.prod(shape) * 4, U.STORAGE)
            k += 1
        if self.sizes is not None:
            bufs[self.n_buffers] = self.dev.create_buffer_with_data(data=self.sizes, usage=U.STORAGE)
        sc = None
        if words:
            sc = self.dev.create_buffer_with_data(data=np.array(words + [0] * (-len(words) % 4), np.uint32),
                                                  usage=U.STORAGE)
        groups = {}
        for l in self.launches:
            entries = [{"binding": b, "resource": {"buffer": bufs[b], "offset": 0,
                                                   "size": bufs[b].size}} for b in l.buffers]
            if l.scalars:
                entries.append({"binding": self.scalar_binding, "resource": {"buffer": sc, "offset": 0,
                                                                        "size": sc.size}})
            groups[l.name] = self.dev.create_bind_group(
                layout=self.pipelines[l.name].get_bind_group_layout(0), entries=entries)
        return DeviceArgs(bufs, groups, [sc])

    def launch(self, d: DeviceArgs, repeat: int = 1) -> None:
        """Record `repeat` runs of every kernel into one submission (no wait)."""
        enc = self.dev.create_command_encoder()
        p = enc.begin_compute_pass()
        for _ in range(repeat):
            for l in self.launches:
                p.set_pipeline(self.pipelines[l.name])
                p.set_bind_group(0, d.bind_groups[l.name])
                p.dispatch_workgroups(*self.grids[l.name])
        p.end()
        self.dev.queue.submit([enc.finish()])

    def sync(self) -> None:
        """Wait for the queue (reading a small buffer back: the queue runs in order;
        on_submitted_work_done_sync fails in wgpu 0.32)."""
        U = self.wgpu.BufferUsage
        if not hasattr(self, "_fence"):
            self._fence = self.dev.create_buffer(size=16, usage=U.COPY_SRC | U.COPY_DST)
        self.dev.queue.read_buffer(self._fence)

    def time(self, d: DeviceArgs, repeat: int = 10) -> float:
        """Seconds per run of every kernel, over `repeat` runs in one submission."""
        self.launch(d, 1)
        self.sync()
        t0 = time.perf_counter()
        self.launch(d, repeat)
        self.sync()
        return (time.perf_counter() - t0) / repeat

    def download(self, d: DeviceArgs) -> list:
        out = []
        for k, (shape, dtype) in enumerate(self.outputs):
            n = math.prod(shape)
            raw = np.frombuffer(self.dev.queue.read_buffer(d.buffers[self.n_inputs + k]),
                                _mem_dtype(dtype), count=n) if n else np.empty(0, _mem_dtype(dtype))
            out.append(raw.astype(np.dtype(dtype)).reshape(shape))
        return out

    # -- calling -------------------------------------------------------------------------------
    def call(self, args, out=None, single=True):
        d = self.upload(*args)
        self.launch(d)
        res = self.download(d)
        if out is not None:
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(outs) != len(res):
                raise E.ArgumentError(f"out= has {len(outs)} array(s), the kernel returns {len(res)}")
            for k, (o, r) in enumerate(zip(outs, res)):
                if not isinstance(o, np.ndarray) or o.shape != r.shape or o.dtype != r.dtype:
                    raise E.ArgumentError(f"out[{k}] must be a {r.dtype} array of shape {r.shape}",
                                          hint="allocate it with np.empty(shape, dtype)")
                np.copyto(o, r)
            res = outs
        else:
            res = [r[()] if r.ndim == 0 else r for r in res]
        return res[0] if single else tuple(res)

    def run(self, buffers: tuple) -> None:
        """The CPU calling convention (inputs, outputs, temporaries as numpy arrays)."""
        n_in, n_out = self.n_inputs, len(self.outputs)
        args = [a[()] if s.kind == "scalar" else a for a, s in zip(buffers[:n_in], self.specs)]
        self.call(args, out=list(buffers[n_in:n_in + n_out]), single=False)


def _scalar_word(a, s: ArgSpec) -> int:
    """A scalar argument as the 32-bit word its kernel bitcasts (weak Python numbers in the
    32-bit dtype the kernel holds them in)."""
    if hasattr(a, "item") and not isinstance(a, np.generic):
        a = a.item()
    dt = {"float64": "float32", "int64": "int32"}.get(s.dtype, s.dtype) if s.weak else s.dtype
    if dt == "bool":
        return int(bool(a))
    if dt == "int32":
        return int(np.asarray(int(a)).astype(np.int64).astype(np.int32).view(np.uint32))
    return int(np.asarray(a, np.float32).view(np.uint32))


"""Build and launch for the Metal target: MSL through Metal on macOS, the MSL harness elsewhere.

On Linux (what CI runs): the generated .metal file is compiled as C++ by clang++ against
torsh-jit's MSL shim and executed by the harness (backends/runners/msl.py), each
threadgroup's threads as OS threads meeting at real barriers.

On macOS, with pyobjc's Metal bindings (`pip install pyobjc-framework-Metal`): the same
source becomes an MTLLibrary (fast math off, for numpy's NaN and infinity rules), one
compute pipeline per kernel, buffers shared with the CPU, one command buffer per call.
That path has NOT been run by the project (no Mac in CI): `metal_device()` only selects
it where Metal is importable and reports a device; say so when it fails.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from .. import errors as E
from ..once import once
from ..ir.tracer import ArgSpec, spec_of as host_spec_of
from .base import Backend

_DOUBLE_HINT = ("Metal has no double: cast to float32 (x.astype(np.float32)), or use a CPU "
                "target such as 'host'")


# -- the pipeline hooks ----------------------------------------------------------------------
def _check_dtypes(group, target) -> None:
    accs = list(group.loads) + [s.access for s in group.stores] + list(group.mm)
    # constants are weak Python scalars (float64 in the IR), cast to the dtype they meet
    for d in sorted({a.dtype for a in accs} | {e.dtype for e in group.exprs if e.op != "const"}):
        if not target.supports(d):
            raise E.DTypeError(f"{d} values are not supported on target {target.name} "
                               f"(it holds {', '.join(target.dtypes)})", hint=_DOUBLE_HINT)


# -- macOS: Metal through pyobjc (not run by the project) ---------------------------------------
@once
def metal_device():
    """The system's default Metal device, or None (not macOS, no pyobjc Metal, no device)."""
    if sys.platform != "darwin":
        return None
    try:
        import Metal
    except ImportError:
        return None
    return Metal.MTLCreateSystemDefaultDevice()


class MetalFunction:
    """A plan's kernels as Metal compute pipelines; `.run` as CpuFunction's. Untested: no Mac
    has run it; numpy arrays are copied into shared buffers (strided views whole span)."""

    def __init__(self, p, dev):
        import Metal
        from ..codegen.cstyle.launch import plan_launches
        from ..codegen.msl import render_plan, groups_needed
        src, self.launches = plan_launches(p, render_plan)
        self.plan = p
        opts = Metal.MTLCompileOptions.new()
        opts.setFastMathEnabled_(False)
        lib, err = dev.newLibraryWithSource_options_error_(src, opts, None)
        if lib is None:
            raise E.CompileError(f"Metal could not compile the generated MSL: {err}",
                                 hint="please report it with `torsh-jit explain --target metal`")
        self.dev, self.queue = dev, dev.newCommandQueue()
        self.pipes = []
        for l in self.launches:
            fn = lib.newFunctionWithName_(l.name)
            pipe, err = dev.newComputePipelineStateWithFunction_error_(fn, None)
            if pipe is None:
                raise E.CompileError(f"Metal could not make a pipeline of {l.name}: {err}")
            if pipe.maxTotalThreadsPerThreadgroup() < l.threads:
                raise E.TargetError(f"{l.name} needs {l.threads} threads per threadgroup, this GPU "
                                    f"allows {pipe.maxTotalThreadsPerThreadgroup()}")
            self.pipes.append((pipe, 0 if p.symbols else groups_needed(l)))
        b = p.part.buffers
        self.n_inputs = b.n_inputs
        self.n_outputs = len(b.outputs)

    def bind(self, values: dict) -> "MetalFunction":
        """At a symbolic plan's sizes: each kernel's threadgroups from plan.units (its buffers
        take the size table the call appends, as the kernels' last parameter)."""
        import copy
        from ..codegen.msl import grid_groups
        from ..ir.symbols import evaluate
        b = copy.copy(self)
        grids = [g for u in self.plan.units for g in u]
        b.pipes = [(pipe, grid_groups([evaluate(x, values) for x in g]))
                   for (pipe, _), g in zip(self.pipes, grids)]
        return b

    def run(self, buffers: tuple) -> None:
        import Metal
        from .runners import byte_span
        mtl = []
        for a in buffers:
            lo, size = byte_span(a)
            buf = self.dev.newBufferWithLength_options_(max(size, 4), Metal.MTLResourceStorageModeShared)
            mtl.append((buf, lo, size))
        for i in range(self.n_inputs):
            buf, lo, size = mtl[i]
            if size:
                buf.contents().as_buffer(size)[:] = _span_bytes(buffers[i], lo, size).tobytes()
        cmd = self.queue.commandBuffer()
        enc = cmd.computeCommandEncoder()
        for l, (pipe, groups) in zip(self.launches, self.pipes):
            enc.setComputePipelineState_(pipe)
            for i, (b, _, _) in enumerate(l.params):
                buf, lo, _ = mtl[b]
                enc.setBuffer_offset_atIndex_(buf, -lo, i)
            enc.dispatchThreadgroups_threadsPerThreadgroup_(
                Metal.MTLSizeMake(groups, 1, 1), Metal.MTLSizeMake(l.threads, 1, 1))
        enc.endEncoding()
        cmd.commit()
        cmd.waitUntilCompleted()
        for i in range(self.n_inputs, self.n_inputs + self.n_outputs):
            buf, lo, size = mtl[i]
            out = buffers[i]
            if size:
                raw = np.frombuffer(buf.contents().as_buffer(size), np.uint8)
                np.copyto(out, np.ndarray(out.shape, out.dtype, buffer=raw, offset=-lo, strides=out.strides))


def _span_bytes(a, lo: int, size: int) -> np.ndarray:
    import ctypes
    addr = a.__array_interface__["data"][0] + lo
    return np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(addr)).copy()


class MetalBackend(Backend):
    """MSL: through Metal on macOS, through the MSL harness elsewhere (not tunable yet)."""
    language = "msl"
    symbolic_sizes = True

    def default_config(self, group, target):
        """The CUDA schedule's rules under the target's limits, with what MSL kernels take
        (schedule/webgpu.py); dtypes Metal lacks are refused first."""
        from ..schedule.webgpu import metal_config
        _check_dtypes(group, target)
        return metal_config(group, target)

    def launch_sizes(self, group, config):
        from ..codegen.cstyle.skeletons import launch_grids
        return launch_grids(group, config)

    def render(self, plan) -> str:
        from ..codegen.msl import render_plan
        return render_plan(plan)[0]

    def build(self, plan, obj=None):
        dev = metal_device()
        if dev is not None:
            return MetalFunction(plan, dev)
        from . import runners
        return runners.build(plan)

    def toolchain_versions(self) -> dict:
        from .runners.msl import compiler_version
        return {"msl-harness": compiler_version()} if metal_device() is None else {"metal": "macOS"}

    def can_run(self, target) -> bool:
        from . import runners
        return metal_device() is not None or runners.available(target)

    def spec_of(self, arg, *, index: int = 0, name: str | None = None, where: str | None = None):
        """Host arrays and scalars, as on CPU targets; a Python float is a weak float32 (NEP 50
        casts it to the array's dtype anyway), and a float64 array or numpy scalar is refused."""
        from ..codegen.msl import LANG
        s = host_spec_of(arg, index=index, name=name, where=where)
        if s.weak and s.dtype == "float64":
            return ArgSpec("scalar", (), "float32", weak=True)
        if s.dtype not in LANG.types:
            what = f"argument {index}" + (f" ({name!r})" if name else "")
            raise E.DTypeError(f"{what} is {s.dtype}, which Metal kernels cannot hold",
                               hint=_DOUBLE_HINT, where=where)
        return s

    def explain(self, plan) -> str:
        from ..codegen.cstyle.launch import plan_launches
        from ..codegen.msl import render_plan, describe
        from .runners.msl import dispatch, MAX_GROUPS
        _, launches = plan_launches(plan, render_plan)
        lines = [describe(l) for l in launches]
        if metal_device() is not None:
            lines.append("runs through Metal on this Mac: one threadgroup per piece of work")
        else:
            lines.append(f"runs here in the MSL harness (clang++, C++ against the MSL shim): at most "
                         f"{MAX_GROUPS} threadgroups per dispatch, one at a time, each thread an OS thread")
            for l in launches:     # a symbolic plan's counts: evaluated per call
                g, t = (f"at most {MAX_GROUPS}", l.threads) if plan.symbols else dispatch(l)
                lines.append(f"  {l.name}: {g} threadgroup(s) x {t} threads")
        return "\n".join(lines)

    def device_fingerprint(self, target) -> str:
        return json.dumps({"target": target.name, "device": "metal" if metal_device() else "msl-harness"})


BACKEND = MetalBackend()

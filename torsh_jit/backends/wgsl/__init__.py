"""The WGSL backend: WGSL through wgpu (WebGPU), on a GPU's Vulkan driver or on lavapipe.

    device  wgpu, the adapter and device of this process, their limits, subgroups, which
            targets run here, subnormals, the adapter's description
    launch  WgslFunction: a compiled module, its pipelines, buffers, grids, the call path
            and the timing API benchmarks use; `explain`'s dispatches

Here: the pipeline hooks that need no device (default config, render, argument specs) and
`BACKEND`, this language's `Backend` (backends.backend_for).
"""
from __future__ import annotations

import json

from ... import errors as E
from ...ir.tracer import ArgSpec, spec_of as host_spec_of
from ..base import Backend
from .device import (adapter_description, can_run, flushes_subnormals, gpu_available,
                     toolchain_versions, use_subgroups)
from .launch import DeviceArgs, WgslFunction, build, explain

__all__ = [   # what callers import by name
    "SUPPORTED", "gpu_available", "use_subgroups", "can_run", "flushes_subnormals",
    "adapter_description", "toolchain_versions", "default_config", "render", "build", "spec_of",
    "register_device_keys", "explain", "DeviceArgs", "WgslFunction", "WgslBackend", "BACKEND"]

SUPPORTED = ("bool", "int32", "float32")
_HINT_DTYPE = ("cast to float32 or int32 first (x.astype(np.float32)), or use a CPU target "
               "such as 'host' for 64-bit arithmetic")


def default_config(group, target):
    from ...schedule.webgpu import wgsl_config
    return wgsl_config(group, target, subgroups=use_subgroups())


def render(p) -> str:
    from ...codegen.wgsl import render_plan
    return render_plan(p)[0]


def spec_of(arg, *, index: int = 0, name: str | None = None, where: str | None = None) -> ArgSpec:
    """Classify an argument for the wgsl target: numpy arrays (uploaded contiguous), numbers.
    64-bit arrays and numpy scalars are refused (WGSL has no 64-bit types); Python numbers
    are weak (NEP 50) and take the dtype of the array they meet."""
    s = host_spec_of(arg, index=index, name=name, where=where)
    if s.dtype not in SUPPORTED and not s.weak:
        what = f"argument {index}" + (f" ({name!r})" if name else "")
        line = E.source_line(where)
        raise E.DTypeError(f"{what} is {s.dtype}, which the wgsl target does not have (WGSL "
                           "computes in 32-bit floats and integers)"
                           + (f"; the call: `{line}`" if line else ""),
                           hint=_HINT_DTYPE, where=where)
    if s.kind == "array" and s.strides is not None:
        s = ArgSpec("array", s.shape, s.dtype)
    return s


def register_device_keys(table: dict) -> None:
    """wgsl takes numpy arrays only: nothing to register."""


class WgslBackend(Backend):
    """WGSL through wgpu: a GPU where there is one, lavapipe (a CPU Vulkan) where not."""
    language = "wgsl"
    symbolic_sizes = True

    def default_config(self, group, target):
        return default_config(group, target)

    def launch_sizes(self, group, config):
        from ...codegen.cstyle.skeletons import launch_grids
        return launch_grids(group, config)

    def render(self, plan) -> str:
        return render(plan)

    def build(self, plan, obj=None):
        return build(plan)

    def toolchain_versions(self) -> dict:
        return toolchain_versions()

    def explain(self, plan) -> str:
        return explain(plan)

    def spec_of(self, arg, *, index=0, name=None, where=None):
        return spec_of(arg, index=index, name=name, where=where)

    def can_run(self, target) -> bool:
        return can_run(target)

    def flushes_subnormals(self, target) -> bool:
        return flushes_subnormals(target)

    def device_fingerprint(self, target) -> str:
        return json.dumps({"target": target.name, "adapter": adapter_description()})


BACKEND = WgslBackend()

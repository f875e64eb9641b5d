"""The CUDA backend: CUDA C through NVRTC to a cubin, loaded and launched through cupy.

    hardware   the GPU here (cupy), its architecture, which targets run on it
    toolchain  NVRTC: versions, options, .cu -> cubin or PTX, PTX and SASS for --asm
    cubin      a plan's module: its source and its cached cubin
    device     device arrays (cupy, torch, __cuda_array_interface__, DLPack) and their specs
    occupancy  device and kernel limits, resident blocks per SM
    launch     CudaFunction: a loaded module, block sizes and grids, the call path
    tma        tensor maps for Hopper's TMA, and the driver launches that pass them
    tuning     the tune space and key, device fingerprint, event timing, TuneHarness
    report     what `explain` says of a CUDA plan

Without a GPU, `compile_ptx` gives PTX for the target's architecture (what CI checks).
`BACKEND` is this language's `Backend` (backends.backend_for); the module-level names are
what tests, benchmarks and the `cuda` alias import by name.
"""
from __future__ import annotations

from ...ir.dtypes import HALF_DTYPES
from ..base import Backend
from .cubin import render
from .device import register_device_keys, spec_of
from .hardware import can_run, current_target, device_arch, gpu_available, runs_on
from .launch import CudaFunction, build
from .occupancy import device_info
from .report import explain
from .toolchain import (STATS, assembly, compile_cuda, compile_ptx, module_options, nvrtc_version,
                        start_nvrtc, toolchain_versions)
from .tuning import device_fingerprint, event_times, tune_harness, tune_key, tune_space

__all__ = [   # what callers import by name
    "current_target", "device_arch", "gpu_available", "runs_on", "start_nvrtc", "compile_cuda",
    "compile_ptx", "module_options", "nvrtc_version", "STATS", "CudaFunction", "device_info",
    "event_times", "CudaBackend", "BACKEND"]



class CudaBackend(Backend):
    language = "cuda"
    half_dtypes = HALF_DTYPES
    device_arrays = True
    symbolic_sizes = True

    def default_config(self, group, target):
        from ...schedule.gpu import default_config
        return default_config(group, target)

    def tune_space(self, group, target, default):
        return tune_space(group, target, default)

    def tune_key(self, group, config, target):
        return tune_key(config)

    def tune_harness(self, specs, plan, seed: int = 0):
        return tune_harness(specs, plan, seed)

    def tunes_here(self, target) -> bool:
        return can_run(target)

    def device_fingerprint(self, target) -> str:
        return device_fingerprint(target)

    def launch_sizes(self, group, config):
        from ...codegen.cuda import launch_grids
        return launch_grids(group, config)

    def render(self, plan) -> str:
        return render(plan)

    def build(self, plan, obj: bytes | None = None):
        return build(plan)      # a cubin is built for the device it runs on, never elsewhere

    def toolchain_versions(self) -> dict:
        return toolchain_versions()

    def has_assembly(self, target) -> bool:
        return True

    def assembly(self, source: str, target, plan=None) -> str:
        return assembly(source, target, plan)

    def explain(self, plan) -> str:
        return explain(plan)

    def spec_of(self, arg, *, index: int = 0, name: str | None = None, where: str | None = None):
        return spec_of(arg, index=index, name=name, where=where)

    def register_device_keys(self, table: dict) -> None:
        register_device_keys(table)

    def can_run(self, target) -> bool:
        return can_run(target)

    def prepare(self, target) -> None:
        start_nvrtc()


BACKEND = CudaBackend()

"""The LLVM CPU targets (x86-64 levels, AArch64 NEON/SVE, RISC-V V, wasm32 SIMD) as a backend.

A plan's module is rendered by codegen.llvm and compiled by llvmlite (build.py). A target
this CPU runs natively loads the object into this process (launch.py, over the thread
pools of threads.py); any other runs through its runner (backends/runners: qemu-user,
wasmtime). host.py says what this CPU is; harness.py times candidates for the tuner.
"""
from __future__ import annotations

from ..base import Backend
from .build import build_object, llvm_version, render as render_source
from .host import machine_arch, runs_natively


class LlvmBackend(Backend):
    language = "llvm"
    aot = True
    compiles_in_workers = True
    symbolic_sizes = True

    def default_config(self, group, target):
        from ...schedule.config import default_config
        return default_config(group, target)

    def tune_space(self, group, target, default):
        from ...schedule.space import tune_space
        return tune_space(group, target, default)

    def tune_key(self, group, config, target):
        from ...schedule.space import effective
        return effective(group, config, target)

    def tune_harness(self, specs, plan, seed: int = 0):
        from .harness import CpuHarness
        return CpuHarness(specs, plan, seed)

    def tunes_here(self, target) -> bool:
        return runs_natively(target)      # an emulated CPU's times say nothing of the real one

    def device_fingerprint(self, target) -> str:
        from .harness import cpu_fingerprint
        return cpu_fingerprint(target)

    def launch_sizes(self, group, config):
        from ...schedule.layout import work_units
        return work_units(group, config)

    def render(self, plan) -> str:
        return render_source(plan)

    def build(self, plan, obj: bytes | None = None):
        if not runs_natively(plan.target):
            # another ISA (or features this CPU lacks): its runner, or an error saying what to install
            from .. import runners
            return runners.build(plan)
        from ...cache import get_cache
        from .launch import CpuFunction
        cache = get_cache()
        meta = {"target": plan.target.name, "kernels": len(plan.part.groups)}
        if obj is not None:
            with cache.lock("obj", plan.key):
                if cache.get("obj", plan.key, expect=plan.expect) is None:
                    cache.put("obj", plan.key, obj, {**meta, **plan.expect})
        else:
            obj = cache.get_or_make("obj", plan.key,
                                    lambda: build_object(render_source(plan), plan.target),
                                    meta, expect=plan.expect)
        return CpuFunction(plan, obj)

    def toolchain_versions(self) -> dict:
        return {"llvm": llvm_version()}

    def has_assembly(self, target) -> bool:
        return True

    def assembly(self, source: str, target, plan=None) -> str:
        from .build import assembly
        return assembly(source, target)

    def can_run(self, target) -> bool:
        from ..runners import available
        return runs_natively(target) or available(target)

    def missing(self, target):
        if self.can_run(target):
            return None
        from ..runners import kind, why_missing
        if target.triple.split("-")[0] == machine_arch() and not kind(target):
            from .host import host_features
            lacking = sorted(set(target.requires) - host_features())
            return "CPU lacks " + ", ".join(lacking), False
        if kind(target):
            return why_missing(target), True
        return None


BACKEND = LlvmBackend()

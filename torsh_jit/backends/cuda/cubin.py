"""A plan's CUDA module: its .cu source (every kernel of the plan, one compilation unit),
and its cubin for a device's architecture, from the cache or NVRTC."""
from __future__ import annotations

from dataclasses import replace

from .hardware import arch_flag
from .toolchain import arch_options, compile_cuda, module_options


def render(p) -> str:
    from ...codegen.cuda import render_plan
    return render_plan(p)[0]


def module_cubin(p, arch: int, aligned: bool = True):
    """(cubin, launches) of the plan's module, from the cache or NVRTC. aligned=False: the
    module whose elementwise kernels take pointers of any alignment."""
    from ...cache import artifact_key, get_cache
    from ...codegen.cstyle.launch import plan_launches
    from ...codegen.cuda import render_plan
    # a symbolic plan's aligned module is the source rendered while planning; its unaligned
    # one is rendered again (cstyle.launch.plan_launches)
    src, launches = plan_launches(p if aligned else replace(p, source=None),
                                  lambda q: render_plan(q, aligned=aligned))
    extra = module_options(p)
    key = artifact_key(p.key, arch=arch, options=arch_options(arch, True, extra),
                       **({} if aligned else {"unaligned": True}))
    cubin = get_cache().get_or_make(
        "cubin", key, lambda: compile_cuda(src, arch_flag(p.target, arch), name=f"{p.module_name}.cu",
                                           extra=extra)[0],
        {"target": p.target.name, "arch": arch, "kernels": len(launches)}, expect=p.expect)
    return cubin, launches

"""What `explain` says of a CUDA plan: each kernel's static launch data and NVRTC's options;
on a GPU, the registers, shared memory and occupancy of the compiled kernels on this device;
without one, the registers and spills ptxas reports through NVRTC."""
from __future__ import annotations

import re

from ... import errors as E
from .cubin import render
from .hardware import can_run
from .launch import build
from .toolchain import compile_cuda, compile_options, module_options, nvrtc_route, nvrtc_version, target_arch


def explain(p) -> str:
    """How the plan's kernels launch: their static launch data, and on a GPU the registers,
    shared memory and occupancy of the compiled kernels on this device."""
    from ...codegen.cstyle.launch import plan_launches
    from ...codegen.cuda import render_plan
    _, launches = plan_launches(p, render_plan)
    lines = [l.describe() for l in launches]
    if nvrtc_route() is not None:
        lines.append("NVRTC " + nvrtc_version() + ": " + " ".join(compile_options() + list(module_options(p))))
    if can_run(p.target):
        lines.append(build(p).describe())
    else:
        lines.append("no GPU here: occupancy and grids are decided on one (from the device's SM "
                     "count and the compiled kernels)")
        lines += ptxas_report(p)
    return "\n".join(lines)


def ptxas_report(p) -> list[str]:
    """Registers, spills and shared memory per kernel, from ptxas through NVRTC (no GPU)."""
    if nvrtc_route() is None:
        return []
    try:
        _, log = compile_cuda(p.source or render(p), target_arch(p.target),
                              extra=("-Xptxas=-v", *module_options(p)))
    except E.TorshJitError:
        return []
    out, name = [], None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            name = m.group(1)
        m = re.search(r"Used (\d+) registers.*?(?:(\d+) bytes smem)?$", line)
        if m and name:
            out.append(f"  {name} ({p.target.arch}, ptxas): {m.group(1)} registers/thread"
                       + (f", {m.group(2)} B static shared memory" if m.group(2) else ""))
        m = re.search(r"(\d+) bytes spill stores", line)
        if m and name and int(m.group(1)):
            out.append(f"  {name}: {m.group(1)} B of register spills")
    return out

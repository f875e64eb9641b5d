"""Build and launch, one module per language family.

The LLVM CPU targets go through compiler.build's own path (llvm_cpu, runners); every other
language names its backend module here. A backend module provides:
    default_config(group, target)   the schedule of a group
    render(plan) -> str             one compilation unit holding every kernel
    build(plan)                     a callable object (with .call(args, out, single))
    toolchain_versions()            what goes into the cache key
    spec_of(arg, index, name, where) classify an argument (device arrays, 16-bit floats)
    can_run(target) -> bool         the target executes on this machine now
    explain(plan) -> str            how its kernels are launched here
"""
from __future__ import annotations

import importlib

BY_LANGUAGE = {"cuda": "torsh_jit.backends.cuda", "msl": "torsh_jit.backends.metal",
               "wgsl": "torsh_jit.backends.wgsl"}


def take_buffers(fn, plan) -> None:
    """What a device backend's call path reads of the plan: fn.specs, fn.n_inputs, fn.outputs
    ((shape, dtype) each) and fn.temps."""
    b = plan.part.buffers
    fn.specs = plan.specs
    fn.n_inputs = b.n_inputs
    fn.outputs = tuple(b.outputs)
    fn.temps = tuple(b.temps)


def for_language(language: str):
    """The backend module of a language, or None for the LLVM targets."""
    mod = BY_LANGUAGE.get(language)
    return importlib.import_module(mod) if mod else None

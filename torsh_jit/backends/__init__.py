"""Build and launch, one package per target language, behind one protocol (base.Backend).

REGISTRY maps a target's language to the module that holds its backend (`BACKEND`, an
instance of a Backend subclass); `backend_for(target)` imports it on first use, so a
process that only compiles for CPUs never loads CUDA's or WebGPU's bindings.
"""
from __future__ import annotations

import importlib

from .. import errors as E
from .base import Backend

REGISTRY = {"llvm": "torsh_jit.backends.llvm", "cuda": "torsh_jit.backends.cuda",
            "msl": "torsh_jit.backends.metal", "wgsl": "torsh_jit.backends.wgsl"}

_loaded: dict[str, Backend] = {}


def backend_for(target) -> Backend:
    """The backend of a Target (or of a language name)."""
    language = target if isinstance(target, str) else target.language
    be = _loaded.get(language)
    if be is None:
        mod = REGISTRY.get(language)
        if mod is None:
            raise E.TargetError(f"no backend generates {language!r} code",
                                hint="the languages with a backend: " + ", ".join(sorted(REGISTRY)))
        be = _loaded[language] = importlib.import_module(mod).BACKEND
    return be


def take_buffers(fn, plan) -> None:
    """What a device backend's call path reads of the plan: fn.specs, fn.n_inputs, fn.outputs
    ((shape, dtype) each) and fn.temps."""
    b = plan.part.buffers
    fn.specs = plan.specs
    fn.n_inputs = b.n_inputs
    fn.outputs = tuple(b.outputs)
    fn.temps = tuple(b.temps)

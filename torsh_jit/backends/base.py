"""The backend protocol: everything the pipeline, the tuner, the CLI and `explain` ask of
the code for one target language.

Each language (llvm, cuda, msl, wgsl) has one `Backend` subclass in its own package,
registered by language in `torsh_jit.backends.REGISTRY`. Callers look a backend up with
`backend_for(target)` and call these methods; none of them asks which language it is
talking to, or probes whether a method exists. The defaults below are what a backend
without that ability does (cannot tune, has no assembly, classifies host arrays only).
"""
from __future__ import annotations

import abc

from .. import errors as E


class Backend(abc.ABC):
    """Abstract: default_config, device_fingerprint, render, build and can_run have no default
    (a backend without one cannot be instantiated, so its module fails to import)."""

    language: str = ""
    half_dtypes: tuple[str, ...] = ()  # 16-bit float dtypes its kernels may compute in
    aot: bool = False                  # `torsh-jit compile` writes bundles for it
    compiles_in_workers: bool = False  # the tuner may build its candidates in worker processes
    device_arrays: bool = False        # takes device arrays (__cuda_array_interface__) as they are
    symbolic_sizes: bool = False       # renders symbolic sizes (read from the size table at run time)

    # schedule -----------------------------------------------------------------------
    @abc.abstractmethod
    def default_config(self, group, target):
        """The schedule of a group when nothing was tuned."""

    def tune_space(self, group, target, default):
        """The candidates the tuner may try for a group (a schedule.space.GroupSpace)."""
        from ..schedule.space import GroupSpace
        return GroupSpace(default, (default,), ())

    def tune_key(self, group, config, target):
        """What a config changes in the generated code: candidates with equal keys are
        the same kernel and are timed once."""
        return config

    def tune_harness(self, specs, plan, seed: int = 0):
        """Inputs on the device and a timer, for the tuner."""
        raise E.TuneError(f"the {self.language} backend cannot time kernels yet",
                          hint="tune an LLVM CPU target, e.g. --target host")

    def tunes_here(self, target) -> bool:
        """Times measured for this target on this machine mean something (an emulated CPU's
        do not)."""
        return self.can_run(target)

    @abc.abstractmethod
    def device_fingerprint(self, target) -> str:
        """The machine a time was measured on (tuning records are per device)."""

    # code ---------------------------------------------------------------------------
    @abc.abstractmethod
    def render(self, plan) -> str:
        """The source of every kernel of the plan: one compilation unit."""

    @abc.abstractmethod
    def build(self, plan, obj: bytes | None = None):
        """A callable for the plan (with .call(args, out, single)). obj: object code built
        for this plan elsewhere (a tuning worker), where the backend takes it."""

    def launch_sizes(self, group, config):
        """A symbolic plan's launch geometry of one kernel (work units, grid sizes), as a value
        of ints and Syms: called while planning, where its questions record guards, and kept
        in `plan.units` for the launcher to evaluate at each call's sizes
        (ir.symbols.evaluate). Backends with `symbolic_sizes` give theirs."""
        return ()

    def toolchain_versions(self) -> dict:
        """What goes into the cache key besides the package: compiler versions."""
        return {}

    def has_assembly(self, target) -> bool:
        return False

    def assembly(self, source: str, target, plan=None) -> str:
        """The target assembly of a lowered function's source."""
        lang = self.language.upper()
        raise E.TargetError(
            f"target {target.name} has no assembly torsh-jit can show: the GPU driver compiles "
            f"its {lang} source when the kernel loads",
            hint=f"read the {lang} source instead (`lower(...).source`; `torsh-jit explain` "
                 f"prints it): drop --asm")

    def explain(self, plan) -> str:
        """How the plan's kernels are launched here (empty: nothing to add)."""
        return ""

    # arguments and devices ----------------------------------------------------------
    def spec_of(self, arg, *, index: int = 0, name: str | None = None, where: str | None = None):
        """Classify one call argument (an ir.tracer.ArgSpec)."""
        from ..ir.tracer import spec_of
        return spec_of(arg, index=index, name=name, where=where)

    def register_device_keys(self, table: dict) -> None:
        """Teach the kernel's argument fast path this backend's device array types."""

    def flushes_subnormals(self, target) -> bool:
        """The device running the target's code flushes float32 subnormals to zero."""
        return False

    def prepare(self, target) -> None:
        """Start what a first build will wait for (a compiler's start-up) in the background;
        called when a kernel's arguments are first classified, before tracing."""

    @abc.abstractmethod
    def can_run(self, target) -> bool:
        """The target's code executes on this machine now."""

    def missing(self, target) -> tuple[str, bool] | None:
        """Why the target cannot execute here and whether installing something would fix it
        ((reason, installable)); None where it can run, or where only other hardware (a GPU)
        could help and CI need not say so. A target that declares what it needs (wgsl: wgpu
        and a Vulkan driver, lavapipe on a CPU; metal: clang++ for the MSL harness) runs
        wherever those are met, so lacking them is installable."""
        if not target.needs or self.can_run(target):
            return None
        from .runners import missing, why_missing
        return (why_missing(target) if missing(target) else
                f"its runner ({target.runner}) found no device here", True)

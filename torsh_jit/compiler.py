"""The pipeline from a traced Graph to a callable: passes, fusion, schedule, render, build.

Each stage takes and returns plain values. `plan()` does the cheap part
(passes, fusion, default configs, cache key) and is all a warm start needs;
`render()` and the backend's build run only on a cache miss, or when someone
asks to read the code.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import errors as E
from .backends import backend_for
from .cache import plan_identity, plan_key
from .fuse import Partition, partition
from .ir.graph import Graph
from .ir.passes import run_passes
from .ir.symbols import ShapeEnv, current_env
from .ir.tracer import ArgSpec, spec_symbols
from .schedule.config import Config
from .target import Target


@dataclass(frozen=True)
class Plan:
    graph: Graph                  # as traced
    optimized: Graph              # after the passes
    part: Partition
    configs: tuple[Config, ...]
    target: Target
    specs: tuple[ArgSpec, ...]
    key: str
    pass_dumps: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    # make_key of what the artifact is made from (groups, buffers, configs, target), without
    # the versions: every stored artifact of the plan records it, and a load checks it
    identity: str = ""
    # symbolic sizes: their names (the order of the size table, the buffer after the last
    # temporary) and what the code assumes of them; () for a plan of exact shapes
    symbols: tuple[str, ...] = ()
    guards: tuple = ()
    units: tuple = ()             # symbolic plans: each kernel's Backend.launch_sizes
    source: str | None = field(default=None, compare=False)   # rendered while planning

    @property
    def n_buffers(self) -> int:
        """Entries of the buffer table a launch passes: the buffers, then the size table."""
        return self.part.buffers.count + (1 if self.symbols else 0)

    @property
    def expect(self) -> dict:
        """The meta an artifact of this plan is stored with and must carry when it is loaded
        (cache.get's expect=): an object of other code under this key is a miss, not a run."""
        return {"plan": self.identity}

    @property
    def module_name(self) -> str:
        return f"tj_{self.key[:16]}"

    def kernel_names(self) -> list[str]:
        return [f"{self.module_name}_k{i}" for i in range(len(self.part.groups))]

    def describe(self) -> str:
        lines = []
        if self.symbols:
            lines.append(f"symbolic sizes: {', '.join(self.symbols)}; guards: "
                         + (", ".join(map(repr, self.guards)) or "none"))
        for i, (g, c) in enumerate(zip(self.part.groups, self.configs)):
            lines.append(f"kernel {i}: {g.describe()}")
            lines.append(f"  config: {c}")
        return "\n".join(lines)


def toolchain_versions(target: Target) -> dict:
    return backend_for(target).toolchain_versions()


def plan(graph: Graph, specs: tuple[ArgSpec, ...], target: Target, *, configs=None,
         dump: bool = False) -> Plan:
    """The plan of a traced graph. Where the specs hold symbolic sizes, planning runs in a
    ShapeEnv (the caller's, which holds the trace's guards, or a new one) and the source is
    rendered here too, so every guard the code depends on is known before the key."""
    symbols = spec_symbols(specs)
    if not symbols:
        return _plan(graph, specs, target, configs, dump)
    env = current_env() or ShapeEnv()
    with env.active():
        p = _plan(graph, specs, target, configs, dump, symbols=symbols)
        source = render(p)
    guards = tuple(env.guards)
    identity = plan_identity(p.part, p.configs, target, symbols=symbols, guards=guards)
    key = plan_key(identity, toolchain_versions(target))
    final = replace(p, key=key, identity=identity, guards=guards)
    return replace(final, source=source.replace(p.module_name, final.module_name))


def _plan(graph, specs, target, configs, dump, symbols=()) -> Plan:
    dumps: list = []
    _check_half(graph, target)
    opt = run_passes(graph, dump=(lambda n, g: dumps.append((n, g.dump()))) if dump else None)
    part = partition(opt, specs)
    if configs is not None and len(configs) != len(part.groups):
        configs = None       # tuned for a partition this one is not (a symbolic trace's)
    if configs is None:
        be = backend_for(target)
        configs = tuple(be.default_config(g, target) for g in part.groups)
    identity = plan_identity(part, configs, target, symbols=symbols)   # canonicalised once, here
    key = plan_key(identity, toolchain_versions(target))
    # a symbolic plan's launch geometry is expressions, derived here where guards record
    units = tuple(backend_for(target).launch_sizes(g, c)
                  for g, c in zip(part.groups, configs)) if symbols else ()
    return Plan(graph, opt, part, tuple(configs), target, specs, key, tuple(dumps),
                identity=identity, symbols=symbols, units=units)


def _check_half(graph: Graph, target: Target) -> None:
    """A 16-bit float value (a cast to float16 or bfloat16) on a target that cannot hold it:
    a DTypeError at the user's line. Arguments of those dtypes are refused earlier, when the
    call's arguments are classified."""
    from .ir.dtypes import HALF_DTYPES
    allowed = backend_for(target).half_dtypes
    for n in graph.nodes:
        if n.dtype in HALF_DTYPES and n.dtype not in allowed:
            raise E.DTypeError(
                f"{n.op} gives {n.dtype} values, which target {target.name} cannot hold "
                f"(16-bit floats are for CUDA targets)",
                hint="cast to float32 instead, or compile for a CUDA target ('cuda', 'cuda-sm90a')",
                where=n.loc)


def render(p: Plan) -> str:
    """The source text of the whole function: one compilation unit in the target's language."""
    if p.source is not None:
        return p.source
    return backend_for(p.target).render(p)


LOADED: dict[str, object] = {}      # key -> built function, this process


def compile_object(source: str, target_name: str) -> bytes:
    """Object code of an LLVM module for a native target: the part of a build that a worker
    process can do (plain values in and out; the tuner compiles candidates this way)."""
    from .backends.llvm import build_object
    from .target import parse as parse_target
    return build_object(source, parse_target(target_name))


def build(p: Plan, obj: bytes | None = None):
    """A callable for the plan: from this process, the disk cache, or a fresh build.
    obj: object code already compiled for this plan elsewhere (a tuning worker); it is
    stored in the cache like a build of our own."""
    fn = LOADED.get(p.key)
    if fn is None:
        fn = LOADED[p.key] = backend_for(p.target).build(p, obj)
    return fn

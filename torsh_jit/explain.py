"""Human-readable account of a compilation: graph, passes, groups, configs, source."""
from __future__ import annotations

from .backends import backend_for
from .compiler import Plan


def _section(title: str) -> str:
    return f"\n== {title} " + "=" * max(3, 70 - len(title))


def tuning_section(fn, p: Plan) -> str:
    """Tuned configs stored for this function and shape (bucket and exact), next to the
    defaults, and which one each kind of kernel uses. Never measures."""
    from .tune import stored
    from .tune.records import autotune_enabled, bucket_of
    lines = []
    for exact in (False, True):
        try:
            dec, _ = stored(fn, p.specs, p.target, p.graph, exact=exact)
        except Exception as e:       # a target this machine cannot describe, a bad record
            lines.append(f"tuning: not available ({type(e).__name__}: {e})")
            return "\n".join(lines)
        label = "exact shape" if exact else "bucket"
        if dec is None:
            lines.append(f"{label} {bucket_of(p.specs, exact)}: no tuned configs stored")
            continue
        lines.append(f"{label} {bucket_of(p.specs, exact)}: tuned ({dec.strategy}, {dec.candidates} "
                     f"candidates, measured at {dec.shape}): {dec.time_s * 1e3:.3f} ms against "
                     f"{dec.default_time_s * 1e3:.3f} ms default, {dec.speedup:.2f}x")
        for i, (d, t) in enumerate(zip(p.configs, dec.configs)):
            lines.append(f"  kernel {i}: default {d}")
            lines.append(f"            tuned   {t}" + ("  (same)" if d == t else ""))
        use = 'autotune="exact"' if exact else "autotune=True"
        lines.append(f"  used by @tj.kernel({use}); plain @tj.kernel uses the default")
    if not autotune_enabled():
        lines.append("TORSH_JIT_AUTOTUNE=0: autotuned kernels use stored configs or defaults, never measure")
    lines.append("tune with: torsh-jit tune FILE:FUNC --arg ... (see torsh-jit tune --help)")
    return "\n".join(lines)


def has_assembly(target) -> bool:
    """The target's code has an assembly torsh-jit can show: the LLVM targets' (llvmlite) and
    CUDA's (PTX and SASS). MSL and WGSL have none: the GPU driver compiles their source when
    the kernel loads."""
    return backend_for(target).has_assembly(target)


def assembly(source: str, target, plan=None) -> str:
    """The target assembly of a lowered function's source (`Lowered.asm()`, `explain --asm`);
    plan, when given, lets a backend compile with the options the plan's build uses."""
    return backend_for(target).assembly(source, target, plan)


def explain_plan(p: Plan, source: str, *, show_source: bool = True, tuning: str | None = None) -> str:
    be = backend_for(p.target)
    where = (f"{p.target.language}, {p.target.arch}" if p.target.arch else
             f"{p.target.triple}, cpu {p.target.cpu}, {p.target.vector_bits}-bit vectors")
    out = [f"target: {p.target.name} ({where})",
           "arguments: " + ", ".join(s.describe() for s in p.specs),
           f"cache key: {p.key}"]
    if p.symbols:
        out.append("symbolic sizes: " + ", ".join(p.symbols) + f" (size table: buffer "
                   f"{p.n_buffers - 1}, one int64 each)")
        out.append("guards: " + (", ".join(map(repr, p.guards)) or "none (every size)"))
    out.append(_section("graph (as traced)"))
    out.append(p.graph.dump())
    prev = p.graph.dump()
    for name, dump in p.pass_dumps:
        out.append(_section(f"after pass {name}"))
        out.append(dump if dump != prev else "(no change)")
        prev = dump
    out.append(_section(f"groups: {len(p.part.groups)} kernel(s)"))
    for i, (g, c) in enumerate(zip(p.part.groups, p.configs)):
        out.append(f"kernel {i} ({p.kernel_names()[i]}): {g.kind}")
        out.append(f"  graph nodes: {', '.join('%' + str(n) for n in g.nodes)}")
        out.append(f"  domain: {g.domain}" + (f" (reduced axes: {g.domain[g.n_outer:]}, "
                                              f"{g.n_levels} pass(es) per row)"
                                              if g.kind == "reduce" else "")
                   + (f", K={g.k}" if g.kind == "matmul" else ""))
        out.append(f"  reads: " + ", ".join(f"buf{a.buf}{list(a.strides)}+{a.offset}" for a in g.loads)
                   if g.loads else "  reads: -")
        out.append(f"  writes: " + ", ".join(f"buf{s.access.buf}" for s in g.stores))
        out.append(f"  config: {c}  (default heuristics)")
    launch = be.explain(p)
    if launch:
        out.append(_section(f"launch ({p.target.language})"))
        out.append(launch)
    if tuning:
        out.append(_section("tuning"))
        out.append(tuning)
    b = p.part.buffers
    out.append(f"buffers: {b.n_inputs} input(s), {len(b.outputs)} output(s), "
               f"{len(b.temps)} temporary")
    if show_source:
        out.append(_section(f"generated source ({p.target.language})"))
        out.append(source)
    return "\n".join(out)

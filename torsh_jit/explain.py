"""Human-readable account of a compilation: graph, passes, groups, configs, source."""
from __future__ import annotations

from .compiler import Plan


def _section(title: str) -> str:
    return f"\n== {title} " + "=" * max(3, 70 - len(title))


def explain_plan(p: Plan, source: str, *, show_source: bool = True) -> str:
    from .backends import for_language
    be = for_language(p.target.language)
    where = (f"{p.target.language}, {p.target.arch}" if p.target.arch else
             f"{p.target.triple}, cpu {p.target.cpu}, {p.target.vector_bits}-bit vectors")
    out = [f"target: {p.target.name} ({where})",
           "arguments: " + ", ".join(s.describe() for s in p.specs),
           f"cache key: {p.key}"]
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
    if be is not None and hasattr(be, "explain"):
        out.append(_section(f"launch ({p.target.language})"))
        out.append(be.explain(p))
    b = p.part.buffers
    out.append(f"buffers: {b.n_inputs} input(s), {len(b.outputs)} output(s), "
               f"{len(b.temps)} temporary")
    if show_source:
        out.append(_section(f"generated source ({p.target.language})"))
        out.append(source)
    return "\n".join(out)

"""The target aliases, resolved on the machine that runs them: `host` (the best CPU target
this machine runs natively) and `cuda` (the highest CUDA target the current GPU runs).

`target.parse` is a pure table lookup (name to Target and back, no hardware), so what a
name means never depends on who parsed it; the faces (`tj.parse_target`, `tj.kernel`,
`tj.compile`, the CLI) resolve names here.
"""
from __future__ import annotations

from ..target import Target, parse


def resolve(name) -> Target:
    """A Target from its name, an alias, or a Target; TargetError if unknown."""
    alias = name.strip() if isinstance(name, str) else None
    if alias == "host":
        from .hardware import host_target
        return host_target()
    if alias == "cuda":
        from ..backends.cuda import current_target
        return current_target()
    return parse(name)

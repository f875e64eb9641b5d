"""What this machine is: CPU features from LLVM, and which targets run natively.

TORSH_JIT_CPU_FEATURES=-avx512f,... masks features (to test that dispatch picks a
lower level on a CPU without them).
"""
from __future__ import annotations

import functools
import os
import platform

from ..errors import TargetError


@functools.lru_cache(maxsize=None)
def _llvm_host():
    import llvmlite.binding as llvm
    from ..backends.llvm_cpu import init_llvm
    init_llvm()
    feats = {}
    for f, on in llvm.get_host_cpu_features().items():
        feats[f] = on
    return llvm.get_host_cpu_name(), llvm.get_process_triple(), feats


def host_features() -> frozenset[str]:
    """Enabled CPU features of this machine, after TORSH_JIT_CPU_FEATURES masking."""
    _, _, feats = _llvm_host()
    on = {f for f, v in feats.items() if v}
    for item in os.environ.get("TORSH_JIT_CPU_FEATURES", "").split(","):
        item = item.strip()
        if item.startswith("-"):
            on.discard(item[1:])
        elif item.startswith("+"):
            on.add(item[1:])
    return frozenset(on)


def host_cpu_name() -> str:
    return _llvm_host()[0]


def host_arch() -> str:
    return platform.machine().lower()


def runs_natively(t) -> bool:
    if t.language != "llvm" or t.runner != "native":
        return False
    arch = t.triple.split("-")[0]
    if arch != {"amd64": "x86_64", "arm64": "aarch64"}.get(host_arch(), host_arch()):
        return False
    return set(t.requires) <= host_features()


def host_target():
    """The best (highest rank) CPU target this machine runs natively."""
    from ..target import known_targets
    best = None
    for t in known_targets().values():
        if runs_natively(t) and (best is None or t.rank > best.rank):
            best = t
    if best is None:
        raise TargetError(f"no known CPU target runs natively on this {host_arch()} machine",
                          hint="see `torsh-jit targets`")
    return best


def missing_runners() -> list[tuple[str, str]]:
    """(target, reason) for every known target of this machine's architecture that cannot
    execute here. CI turns a non-empty list into a failure."""
    from ..target import known_targets
    out = []
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(host_arch(), host_arch())
    for name, t in sorted(known_targets().items()):
        if t.language == "llvm" and t.runner == "native" and t.triple.split("-")[0] == arch \
                and not runs_natively(t):
            lacking = sorted(set(t.requires) - host_features())
            out.append((name, "CPU lacks " + ", ".join(lacking)))
    return out

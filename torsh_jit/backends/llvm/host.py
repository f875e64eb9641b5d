"""This CPU as LLVM sees it (name, triple, features after TORSH_JIT_CPU_FEATURES masking),
and which LLVM targets run on it natively.

TORSH_JIT_CPU_FEATURES=-avx512f,... masks features (to test that dispatch picks a
lower level on a CPU without them).
"""
from __future__ import annotations

import functools
import os
import platform

from ...errors import TargetError
from ...once import once
from .build import init_native


@once
def _llvm_host():
    """(process triple, {feature: enabled}); the CPU's name is asked only where it is read
    (host_cpu_name: tuning records), 0.1 ms a process otherwise."""
    import llvmlite.binding as llvm
    init_native()
    feats = {}
    for f, on in llvm.get_host_cpu_features().items():
        feats[f] = on
    return llvm.get_process_triple(), feats


def host_features() -> frozenset[str]:
    """Enabled CPU features of this machine, after TORSH_JIT_CPU_FEATURES masking."""
    return _masked(os.environ.get("TORSH_JIT_CPU_FEATURES", ""))


@functools.lru_cache(maxsize=16)
def _masked(spec: str) -> frozenset[str]:
    """The host's features with spec's '-name' removed and '+name' added. Every name must
    be one LLVM knows for this machine's architecture: a typo (-avx512 for -avx512f) would
    otherwise mask nothing, silently."""
    _, feats = _llvm_host()
    on = {f for f, v in feats.items() if v}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name = item[1:].strip()
        if item[0] not in "+-" or not name:
            raise TargetError(f"TORSH_JIT_CPU_FEATURES={spec!r}: {item!r} is not '-feature' or "
                              "'+feature'", hint=_FEATURES_HINT)
        if name not in feats:
            import difflib
            close = difflib.get_close_matches(name, sorted(feats), n=1)
            raise TargetError(
                f"TORSH_JIT_CPU_FEATURES={spec!r}: {name!r} is not a CPU feature LLVM knows on "
                f"this {machine_arch()} machine" + (f"; did you mean {close[0]!r}?" if close else ""),
                hint=_FEATURES_HINT + "; the features of this CPU: " + ",".join(sorted(on)))
        if item[0] == "-":
            on.discard(name)
        else:
            on.add(name)
    return frozenset(on)


_FEATURES_HINT = ("a comma-separated list of LLVM feature names, each after - (mask it) or + "
                  "(claim it), e.g. TORSH_JIT_CPU_FEATURES=-avx512f,-avx2")


@once
def host_cpu_name() -> str:
    import llvmlite.binding as llvm
    init_native()
    return llvm.get_host_cpu_name()


def host_arch() -> str:
    return platform.machine().lower()


@once
def machine_arch() -> str:
    """This machine's architecture as it starts a target triple (x86_64, aarch64, riscv64):
    from LLVM's process triple, the one native code is generated and loaded for."""
    arch = _llvm_host()[0].split("-")[0]
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def runs_natively(t) -> bool:
    """The target's code executes on this CPU directly: same architecture, every required feature.
    (An AArch64 target on an AArch64 host is native whatever its runner says.)"""
    if t.language != "llvm":
        return False
    if t.triple.split("-")[0] != machine_arch():
        return False
    return set(t.requires) <= host_features()


def host_target():
    """The best (highest rank) CPU target this machine runs natively."""
    from ...target import known_targets
    best = None
    for t in known_targets().values():
        if runs_natively(t) and (best is None or t.rank > best.rank):
            best = t
    if best is None:
        raise TargetError(f"no known CPU target runs natively on this {host_arch()} machine",
                          hint="see `torsh-jit targets`")
    return best

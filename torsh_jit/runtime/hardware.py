"""What this machine can run: every known target asked through its backend (natively, through
a runner, on a GPU), and what is missing where it cannot. The CPU itself is described by
backends/llvm/host.py (its names are re-exported here for the CLI).
"""
from __future__ import annotations

from ..backends import backend_for
from ..backends.llvm.host import (host_arch, host_cpu_name, host_features,  # noqa: F401
                                  host_target, machine_arch, runs_natively)


def can_run(t) -> bool:
    """The target executes here: natively, through its runner, or on this machine's GPU."""
    return backend_for(t).can_run(t)


def runner_available(t) -> bool:
    """The target does not run natively, but its runner (qemu-user, wasmtime) is installed."""
    from ..backends.runners import available
    return not runs_natively(t) and available(t)


def _unrunnable() -> list[tuple[str, str, bool]]:
    """(target, reason, installable) for every known target that cannot execute here and
    that its backend says something could be done about (Backend.missing): installable is
    False where only other hardware would help (a CPU lacking features, with no runner),
    True where a runner or a package is missing, with what to install."""
    from ..target import known_targets
    out = []
    for name, t in sorted(known_targets().items()):
        why = backend_for(t).missing(t)
        if why is not None:
            out.append((name, *why))
    return out


def missing_runners() -> list[tuple[str, str]]:
    """(target, what to install) for every target that could execute here once its runner
    is installed, but cannot now. CI turns a non-empty list into a failure."""
    return [(name, why) for name, why, installable in _unrunnable() if installable]


def lacking_hardware() -> list[tuple[str, str]]:
    """(target, reason) for every target that no installable runner executes on this
    machine (a native target whose CPU features this CPU lacks). Its code is still built
    and its instructions checked; CI lists these loudly instead of failing."""
    return [(name, why) for name, why, installable in _unrunnable() if not installable]

"""The GPU here, as cupy sees it: whether there is one, its compute capability, and which
CUDA targets run on it. Every other module of the backend asks this one for cupy."""
from __future__ import annotations

from ... import errors as E
from ...once import once

NO_GPU_HINT = ("name an architecture (target 'cuda-sm80' or 'cuda-sm90') to generate and lower "
               "code without a GPU; executing needs an NVIDIA GPU with cupy installed "
               "(pip install cupy-cuda13x), or use a CPU target such as 'host'")


@once
def cupy_or_none():
    """cupy where it imports and sees a CUDA device, else None."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:      # no driver, or no device: the same to a user
        return None
    return cupy


def gpu_available() -> bool:
    return cupy_or_none() is not None


def require_cupy(what: str):
    cp = cupy_or_none()
    if cp is None:
        raise E.TargetError(f"{what} needs an NVIDIA GPU, and none is visible here "
                            "(cupy is missing or found no CUDA device)", hint=NO_GPU_HINT)
    return cp


def device_arch(device: int | None = None) -> int:
    """The current (or given) device's compute capability as one number: 90 for 9.0."""
    cp = require_cupy("reading the GPU's architecture")
    dev = cp.cuda.Device(device) if device is not None else cp.cuda.Device()
    return int(dev.compute_capability)


def current_target():
    """`cuda`: the known CUDA target of the highest architecture this GPU runs."""
    from ...target import known_targets
    arch = device_arch()
    best = None
    for t in known_targets().values():
        if t.language == "cuda" and runs_on(t, arch) and (best is None or t.rank > best.rank):
            best = t
    if best is None:
        names = sorted(n for n, t in known_targets().items() if t.language == "cuda")
        raise E.TargetError(f"this GPU (compute capability {arch // 10}.{arch % 10}) is older than "
                            f"every CUDA target ({', '.join(names)})",
                            hint="use a CPU target such as 'host'")
    return best


def runs_on(target, arch: int) -> bool:
    """Code for the target runs on a GPU of compute capability `arch` (90 for 9.0): one of the
    target's or a later architecture, or exactly the target's for arch-specific code (sm_90a)."""
    from ...schedule.gpu_rules import arch_number, arch_specific
    want = arch_number(target.arch)
    return arch == want if arch_specific(target.arch) else arch >= want


def arch_flag(target, arch: int) -> str:
    """NVRTC's architecture for the target on a GPU of compute capability `arch`: '90a', '90'."""
    from ...schedule.gpu_rules import arch_specific
    return f"{arch}a" if arch_specific(target.arch) else str(arch)


def can_run(target) -> bool:
    """The CUDA target executes here: a GPU is visible and runs the target's code."""
    if not gpu_available():
        return False
    try:
        return runs_on(target, device_arch())
    except Exception:
        return False

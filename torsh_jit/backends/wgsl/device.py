"""The wgpu adapter and device of this process, and what they allow.

One adapter and device per process (a GPU where there is one; Mesa's lavapipe, a CPU
Vulkan, where there is none), asked for the adapter's own limits on storage buffers and
workgroups rather than WebGPU's defaults (a 64M float32 array is a 256 MiB binding).
`SUBGROUPS` is read here (tests and benchmarks/wgsl_diag.py set it on this module).
"""
from __future__ import annotations

import os
import tempfile

from ... import errors as E
from ...once import once

_HINT_INSTALL = ("pip install wgpu; without a GPU, a CPU Vulkan driver: apt-get install "
                 "mesa-vulkan-drivers libvulkan1 (or `torsh-jit runners --install`)")


def _wgpu():
    try:
        import wgpu
        return wgpu
    except Exception:
        return None


@once
def gpu():
    """(wgpu module, adapter, device, limits) or None when no adapter can be had."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="torsh-jit-xdg-")
    wgpu = _wgpu()
    if wgpu is None:
        return None
    try:
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if adapter is None:
            return None
        al = adapter.limits
        want = ("max-storage-buffer-binding-size", "max-buffer-size",
                "max-storage-buffers-per-shader-stage", "max-compute-workgroups-per-dimension",
                "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x",
                "max-compute-workgroup-storage-size")
        limits = {k: al[k] for k in want if k in al}
        features = [f for f in ("subgroup",) if f in adapter.features]
        device = adapter.request_device_sync(required_limits=limits, required_features=features)
    except Exception:
        return None
    return wgpu, adapter, device, dict(device.limits)


def gpu_available() -> bool:
    return gpu() is not None


# Subgroup operations: a row's threads combine by shuffles inside each subgroup and one
# value per subgroup through workgroup memory. None: on a GPU whose adapter has the
# 'subgroup' feature (not on a CPU adapter: lavapipe emulates shuffles, and its workgroup
# tree is twice as fast); tests set True and False to run both paths.
SUBGROUPS: bool | None = None


def use_subgroups() -> bool:
    if SUBGROUPS is not None:
        return SUBGROUPS
    g = gpu()
    return g is not None and "subgroup" in g[2].features and g[1].info.get("adapter_type") != "CPU"


def require_gpu():
    g = gpu()
    if g is None:
        why = "wgpu is not installed" if _wgpu() is None else "wgpu found no adapter (no GPU and no CPU Vulkan driver)"
        raise E.TargetError(f"the wgsl target cannot run here: {why}", hint=_HINT_INSTALL)
    return g


def can_run(target) -> bool:
    return gpu_available()


def flushes_subnormals(target) -> bool:
    """WGSL lets an implementation flush float32 subnormals to zero, and GPU drivers do
    (NVIDIA's); lavapipe, a CPU, keeps them."""
    g = gpu()
    return g is not None and g[1].info.get("adapter_type") != "CPU"


def adapter_description() -> str:
    g = gpu()
    if g is None:
        return "no wgpu adapter"
    info = g[1].info
    return f"{info.get('device', '?')} ({info.get('backend_type', '?')}, {info.get('adapter_type', '?')})"


def toolchain_versions() -> dict:
    w = _wgpu()
    return {"wgpu": getattr(w, "__version__", "none") if w else "none"}


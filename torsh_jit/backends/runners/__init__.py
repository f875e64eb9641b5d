"""Runners: execute a target's code on a machine that cannot run it natively.

A target file names its runner (`runner = "qemu-aarch64"`, `"qemu-riscv64"`, `"wasmtime"`)
and what the runner needs (`needs`: commands, files, Python packages, and the Debian or
pip package that provides each). `build(plan)` returns an object with `.run(buffers)`,
exactly like the native `CpuFunction`, so `Kernel.__call__` does not know the difference:

- qemu-*: the module's object is linked with a small C harness (harness.c) by the cross
  gcc into a static executable, cached by the plan's key; each call runs it under
  qemu-user with the buffers in a job file both sides map (qemu.py).
- wasmtime: the object is linked by wasm-ld with wasi-libc into a self-contained module
  and run in this process by the wasmtime package, the buffers copied into and out of its
  linear memory through numpy views (wasm.py).
- msl-harness: a plan's Metal Shading Language compiled as C++ by clang++ against a shim
  of MSL, each threadgroup's threads run as OS threads meeting at real barriers (msl.py).

Nothing here is chosen by target name: the kind is the runner's first word, every other
difference is data in the target file.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import tempfile

import numpy as np

from ... import errors as E
from ...once import once

# runner kind (the first word of `runner`) -> module implementing it
KINDS = {"qemu": "qemu", "wasmtime": "wasm", "msl": "msl",
         "wgpu": None}    # WGSL runs through its backend (backends/wgsl/); its needs are listed here


def kind(target) -> str:
    """'qemu', 'wasmtime', 'msl', or '' for a target with no runner (runner = "native")."""
    k = target.runner.split("-")[0]
    return k if k in KINDS else ""


@once
def command_version(path: str, mtime_ns: int) -> tuple[int, ...]:
    """(major, minor) from `COMMAND --version` ("qemu-riscv64 version 10.0.2 ..."); () if none."""
    out = tool_version([path, "--version"])
    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else ()


def _version_of(command: str) -> tuple[int, ...]:
    path = shutil.which(command)
    return command_version(path, os.stat(path).st_mtime_ns) if path else ()


def _min_version(need: dict) -> tuple[int, ...]:
    return tuple(int(x) for x in need["min_version"].split(".")) if "min_version" in need else ()


def _need_met(need: dict) -> bool:
    if "command" in need:
        if shutil.which(need["command"]) is None:
            return False
        return not _min_version(need) or _version_of(need["command"]) >= _min_version(need)
    if "file" in need:
        return os.path.exists(need["file"])
    if "python" in need:
        return importlib.util.find_spec(need["python"]) is not None
    return False


def too_old(need: dict) -> bool:
    """The need's command is installed, but older than its min_version."""
    return "command" in need and shutil.which(need["command"]) is not None and not _need_met(need)


def _describe(need: dict) -> str:
    what = need.get("command") or need.get("file") or need.get("python")
    if too_old(need):
        have = ".".join(map(str, _version_of(need["command"]))) or "unknown"
        what = f"{what} >= {need['min_version']} (this one is {have}: {need.get('why', 'too old')})"
    elif "min_version" in need:
        what = f"{what} >= {need['min_version']}"
    if "debian" in need:
        return f"{what} (Debian package {need['debian']})"
    if "pip" in need:
        return f"{what} (pip install {need['pip']})"
    return str(what)


def missing(target) -> list[dict]:
    """The target's runner needs that this machine lacks (each a dict from the target file)."""
    return [dict(n) for n in target.needs if not _need_met(dict(n))]


def available(target) -> bool:
    """The target has a runner and everything it needs is installed."""
    return bool(kind(target)) and not missing(target)


def install_hint(needs: list[dict]) -> str:
    """What to run to install `needs`."""
    deb = sorted({n["debian"] for n in needs if "debian" in n})
    pip = sorted({n["pip"] for n in needs if "pip" in n})
    parts = []
    if deb:
        parts.append("apt-get install " + " ".join(deb))
    old = sorted({n["debian"] for n in needs if "debian" in n and too_old(n)})
    if old:
        parts.append("a newer " + " ".join(old) + " (Debian 12: from bookworm-backports)")
    if pip:
        parts.append("pip install " + " ".join(pip))
    parts.append("or `torsh-jit runners --install` to install what every target needs")
    return "; ".join(parts)


def why_missing(target) -> str:
    """A sentence for `missing_runners()`: what is missing and what provides it."""
    if not kind(target):
        return f"no runner for {target.triple} on this machine"
    miss = missing(target)
    return "missing " + ", ".join(_describe(n) for n in miss) + "; install: " + install_hint(miss)


def build(plan):
    """The runner's function object for the plan (built, or loaded from the disk cache)."""
    t = plan.target
    if not kind(t):
        raise E.TargetError(f"target {t.name} does not run on this machine and has no runner",
                            hint="tj.available_targets() lists the targets that run here")
    miss = missing(t)
    if miss:
        raise E.RunnerError(
            f"target {t.name} runs here through {t.runner}, which needs "
            + ", ".join(_describe(n) for n in miss),
            hint="install: " + install_hint(miss))
    mod = importlib.import_module(f"{__name__}.{KINDS[kind(t)]}")
    return mod.build(plan)


def byte_span(a) -> tuple[int, int]:
    """(offset of the lowest byte an array view touches, relative to its data pointer (<= 0),
    number of bytes from there to the highest byte it touches). A runner copies this span so
    the kernel's strides stay valid relative to the data pointer it is given."""
    if a.size == 0:
        return 0, 0
    lo = sum((n - 1) * s for n, s in zip(a.shape, a.strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(a.shape, a.strides) if s > 0)
    return lo, hi - lo + a.itemsize


def copy_outputs(buffers, first: int, last: int, memory, offsets) -> None:
    """Copy outputs buffers[first:last] back from a runner's memory (a job file's map, a
    wasm linear memory), where output i starts at offsets[i] with its own strides."""
    for i in range(first, last):
        out = buffers[i]
        if out.size:
            np.copyto(out, np.ndarray(out.shape, out.dtype, buffer=memory, offset=offsets[i],
                                      strides=out.strides))


def aot_artifacts(target, obj: bytes, symbol: str) -> dict[str, bytes]:
    """Extra files an ahead-of-time bundle carries for this target beside its object
    (`{".wasm": module}` for wasm32: the object linked into a loadable module), or {} when
    the target has none or its runner's tools are missing (the object is complete alone)."""
    if not available(target):
        return {}
    mod = importlib.import_module(f"{__name__}.{KINDS[kind(target)]}")
    fn = getattr(mod, "aot_artifacts", None)
    return fn(target, obj, symbol) if fn else {}


def remove_files(paths) -> None:
    """Delete build leftovers; a file already gone is fine."""
    for f in paths:
        try:
            os.unlink(f)
        except OSError:
            pass


@once
def scratch_dir() -> str:
    """A private directory for job files and executables, in memory (/dev/shm) when it can be,
    removed when the process exits."""
    import atexit
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = tempfile.mkdtemp(prefix="torsh-jit-run-", dir=base)
    atexit.register(shutil.rmtree, path, True)
    return path


def tool_version(cmd: list[str]) -> str:
    """First line of a tool's version output (part of artifact keys); '' if it does not run."""
    import subprocess
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else ""


def all_missing() -> dict[str, list[dict]]:
    """target name -> its runner's missing needs, for every target that has a runner."""
    from ...target import known_targets
    return {n: missing(t) for n, t in sorted(known_targets().items()) if kind(t) and missing(t)}

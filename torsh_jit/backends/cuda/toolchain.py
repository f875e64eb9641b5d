"""The CUDA toolchain: NVRTC (cupy's where cupy runs the kernels, else cuda.bindings.nvrtc
from `cuda-python`), its version and options, compiling .cu text to a cubin or PTX, and the
PTX and SASS that `explain --asm` shows. None of it needs a GPU but `start_nvrtc`'s warm-up."""
from __future__ import annotations

import os
import threading
import time

from ... import errors as E
from ...once import once
from .hardware import cupy_or_none, device_arch

_lock = threading.Lock()
STATS = {"compiles": 0, "compile_ms": 0.0}


@once
def _nvrtc_bindings():
    try:
        from cuda.bindings import nvrtc
        nvrtc.nvrtcVersion()
        return nvrtc
    except Exception:
        return None


@once
def nvrtc_route():
    """("cupy" | "bindings", module): the NVRTC to compile with. cupy's where cupy runs the
    kernels (it is loaded anyway; importing cuda-python's bindings as well cost a first call
    25-40 ms), else cuda-python's (PTX without a GPU, as in CI); None if neither."""
    cp = cupy_or_none()
    if cp is not None:
        return "cupy", cp
    nv = _nvrtc_bindings()
    return ("bindings", nv) if nv is not None else None


@once
def nvrtc_version_tuple() -> tuple:
    route = nvrtc_route()
    if route is None:
        return ()
    if route[0] == "bindings":
        _, major, minor = route[1].nvrtcVersion()
        return (major, minor)
    return tuple(route[1].cuda.nvrtc.getVersion())


def nvrtc_version() -> str:
    v = nvrtc_version_tuple()
    return ".".join(map(str, v)) if v else "none"


def toolchain_versions() -> dict:
    return {"nvrtc": nvrtc_version(), "options": compile_options()}


COMPILE_OPTIONS = ("-std=c++17", "-default-device")


def compile_options() -> list[str]:
    """The options every program gets. `-minimal` (NVRTC 12.4+) leaves out the texture,
    surface and device-runtime declarations the generated code never uses (a third of the
    front end's time). `-no-cache` (12.9+): NVRTC's own disk cache of compiled programs
    duplicates ours, and a miss cost ~40 ms on an H100 host once the CUDA cache directory
    held a few hundred programs. TORSH_JIT_NVRTC_OPTIONS adds options (space-separated; they
    are part of the cache key), e.g. "-Ofc=min" for NVRTC's faster, less optimising mode."""
    opts = list(COMPILE_OPTIONS)
    v = nvrtc_version_tuple()
    if v >= (12, 4) and "-minimal" not in _REJECTED:
        opts.append("-minimal")
    if v >= (12, 9) and "-no-cache" not in _REJECTED:
        opts.append("-no-cache")
    return opts + os.environ.get("TORSH_JIT_NVRTC_OPTIONS", "").split()


def module_options(p) -> tuple[str, ...]:
    """Options for this plan's module beyond compile_options(). A module of elementwise
    kernels only is memory-bound: NVRTC's fast-compile level 'min' (12.8+) took a fifth off
    the chain's compile (NVRTC 13.5 here) and left its speed as it was (H100: 1.04-1.05x the
    copy bandwidth with and without)."""
    if nvrtc_version_tuple() >= (12, 8) and "-Ofc=min" not in _REJECTED and \
            all(g.kind == "elementwise" for g in p.part.groups):
        return ("-Ofc=min",)
    return ()


def arch_options(arch, cubin: bool, extra=()) -> list[str]:
    """NVRTC's whole command line for an architecture ('90', '90a'): real code (cubin) or
    virtual (PTX)."""
    kind = "sm" if cubin else "compute"
    return [f"-arch={kind}_{arch}", *compile_options(), *extra]


def target_arch(target) -> str:
    """The architecture a target's code is generated for, as NVRTC names it: '90a' of sm_90a."""
    return target.arch.split("_", 1)[1]


def compile_cuda(source: str, arch, *, cubin: bool = True, name: str = "kernel.cu",
                 extra=()) -> tuple[bytes, str]:
    """(cubin or PTX, NVRTC's log). CompileError with the log when NVRTC rejects the source."""
    t0 = time.perf_counter()
    out, log = _compile(source, name, arch_options(arch, cubin, extra), cubin)
    with _lock:
        STATS["compiles"] += 1
        STATS["compile_ms"] += (time.perf_counter() - t0) * 1e3
    return out, log


def compile_ptx(source: str, target, extra=()) -> tuple[bytes, str]:
    """PTX of a .cu text for the target's architecture (no GPU needed): (ptx, NVRTC's log)."""
    return compile_cuda(source, target_arch(target), cubin=False, extra=extra)


def _compile(source, name, opts, cubin):
    route = nvrtc_route()
    if route is None:
        raise E.TargetError("compiling CUDA C needs NVRTC, and neither cuda-python nor cupy "
                            "is installed", hint="pip install cuda-python nvidia-cuda-nvrtc")
    compile_with = _compile_bindings if route[0] == "bindings" else _compile_cupy
    try:
        return compile_with(route[1], source, name, opts, cubin)
    except E.CompileError as err:
        # the speed-only options are chosen by NVRTC version; one a build does not know
        # after all is dropped for the process (a log line names it), and the compile retried
        bad = {o for o in opts if o in _OPTIONAL and f"unrecognized option {o}" in str(err)}
        if not bad:
            raise
        _REJECTED.update(bad)
        return compile_with(route[1], source, name, [o for o in opts if o not in bad], cubin)


_OPTIONAL = ("-minimal", "-no-cache", "-Ofc=min")
_REJECTED: set = set()


@once
def start_nvrtc() -> None:
    """Start NVRTC on a background thread, once per process. Its first compile in a process
    pays ~40 ms of start-up (an H100 host) that a second does not; the first call of a CUDA
    kernel starts it before tracing, so the start-up runs while Python traces, plans and
    renders. Errors are left to the real compile to report."""
    def run():
        try:
            if cupy_or_none() is not None:   # a GPU here: the compiles that follow run on it
                _compile('extern "C" __global__ void tj_nvrtc_start() {}\n', "start.cu",
                         arch_options(str(device_arch()), True), True)
        except Exception:
            pass
    threading.Thread(target=run, name="torsh-jit-nvrtc-start", daemon=True).start()


def _rejected(name: str, log: str) -> E.CompileError:
    return E.CompileError(
        f"internal error (a bug in torsh-jit, please report it): NVRTC rejected the "
        f"generated CUDA C ({name}):\n{log}",
        hint="lower(...).source shows the code; a CPU target such as 'host' runs it meanwhile")


def _compile_bindings(nv, source, name, opts, cubin):
    def check(res, what):
        err = res[0] if isinstance(res, tuple) else res
        if err != nv.nvrtcResult.NVRTC_SUCCESS:
            raise E.InternalError(f"NVRTC {what} failed: {err}")
        return res[1:] if isinstance(res, tuple) else ()
    prog, = check(nv.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []), "create")
    try:
        res = nv.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        err = res[0] if isinstance(res, tuple) else res
        n, = check(nv.nvrtcGetProgramLogSize(prog), "log size")
        buf = b" " * n
        check(nv.nvrtcGetProgramLog(prog, buf), "log")
        log = buf.rstrip(b"\0 ").decode(errors="replace").strip()
        if err != nv.nvrtcResult.NVRTC_SUCCESS:
            raise _rejected(name, log)
        if cubin:
            n, = check(nv.nvrtcGetCUBINSize(prog), "cubin size")
            out = b" " * n
            check(nv.nvrtcGetCUBIN(prog, out), "cubin")
        else:
            n, = check(nv.nvrtcGetPTXSize(prog), "ptx size")
            out = b" " * n
            check(nv.nvrtcGetPTX(prog, out), "ptx")
            out = out.rstrip(b"\0")
        return bytes(out), log
    finally:
        nv.nvrtcDestroyProgram(prog)


def _compile_cupy(cp, source, name, opts, cubin):
    nvrtc = cp.cuda.nvrtc
    prog = nvrtc.createProgram(source, name, (), ())
    try:
        try:
            nvrtc.compileProgram(prog, opts)
        except nvrtc.NVRTCError:
            raise _rejected(name, nvrtc.getProgramLog(prog)) from None
        log = (nvrtc.getProgramLog(prog) or "").strip("\0 \n")
        out = nvrtc.getCUBIN(prog) if cubin else nvrtc.getPTX(prog)
        if isinstance(out, str):
            out = out.encode()
        return out.rstrip(b"\0") if not cubin else out, log
    finally:
        nvrtc.destroyProgram(prog)


def assembly(source: str, target, plan=None) -> str:
    """`explain --asm` / `Lowered.asm()`: the PTX NVRTC makes of the .cu text (no GPU
    needed), then the SASS of its cubin where the toolkit's cuobjdump or nvdisasm is on PATH."""
    import shutil
    import subprocess
    import tempfile
    extra = module_options(plan) if plan is not None else ()
    ptx, _ = compile_ptx(source, target, extra)
    out = [f"// PTX for {target.arch} (NVRTC {nvrtc_version()})", ptx.decode(errors="replace").rstrip()]
    tool = next((t for t in ("cuobjdump", "nvdisasm") if shutil.which(t)), None)
    if tool is None:
        out.append(f"// SASS for {target.arch}: needs cuobjdump or nvdisasm on PATH (the CUDA "
                   "toolkit), which this machine lacks")
        return "\n".join(out) + "\n"
    cubin, _ = compile_cuda(source, target_arch(target), cubin=True, extra=extra)
    with tempfile.TemporaryDirectory(prefix="torsh-jit-sass-") as d:
        path = os.path.join(d, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        cmd = [tool, "-sass", path] if tool == "cuobjdump" else [tool, "-c", path]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        # the PTX above is still the answer; say why the SASS is missing (seen on an H200
        # host: CUDA 13.0's cuobjdump refused cupy's NVRTC cubin, "does not contain device code")
        why = (r.stderr or r.stdout).strip().replace("\n", "\n// ")
        out.append(f"// SASS for {target.arch}: {tool} could not read NVRTC's cubin: {why}")
        return "\n".join(out) + "\n"
    out += [f"// SASS for {target.arch} ({tool})", r.stdout.rstrip()]
    return "\n".join(out) + "\n"

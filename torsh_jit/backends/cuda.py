"""Build and launch for CUDA targets: NVRTC, then cupy's module loader and launcher.

build: the .cu text -> NVRTC (cupy's where cupy runs the kernels, else cuda.bindings.nvrtc
from `cuda-python`) -> a cubin for the device's architecture, stored in the cache; without a
GPU, `compile_ptx` gives PTX for the target's architecture (what CI checks).
launch: arrays in, arrays out on the device they live on. numpy in -> copied to the device
and back; cupy in -> cupy out; torch tensors (or anything with __cuda_array_interface__ or
DLPack) in -> read and written where they are, no copies, outputs of the same kind.
Device properties (SMs, registers, shared memory, resident threads) are read from the
device; each kernel's registers and shared memory from the compiled function; block size
and grid follow from them (occupancy), and `explain()` shows the result. Kernels fed by
Hopper's TMA take tensor maps by value and launch through the driver (backends/tma.py).
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from .. import errors as E
from ..once import once
from ..ir.dtypes import HALF_DTYPES  # noqa: F401 (kernels may cast to both: compiler._check_half)
from ..ir.tracer import ArgSpec, contiguous_strides, spec_of as host_spec_of
from . import take_buffers, tma
from .base import Backend

_lock = threading.Lock()
STATS = {"compiles": 0, "compile_ms": 0.0}

# -- the toolchain ---------------------------------------------------------------------------
_NO_GPU_HINT = ("name an architecture (target 'cuda-sm80' or 'cuda-sm90') to generate and lower "
                "code without a GPU; executing needs an NVIDIA GPU with cupy installed "
                "(pip install cupy-cuda13x), or use a CPU target such as 'host'")


@once
def _cupy():
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
    return _cupy() is not None


def _require_cupy(what: str):
    cp = _cupy()
    if cp is None:
        raise E.TargetError(f"{what} needs an NVIDIA GPU, and none is visible here "
                            "(cupy is missing or found no CUDA device)", hint=_NO_GPU_HINT)
    return cp


def device_arch(device: int | None = None) -> int:
    """The current (or given) device's compute capability as one number: 90 for 9.0."""
    cp = _require_cupy("reading the GPU's architecture")
    dev = cp.cuda.Device(device) if device is not None else cp.cuda.Device()
    return int(dev.compute_capability)


def current_target():
    """`cuda`: the known CUDA target of the highest architecture this GPU runs."""
    from ..target import known_targets
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
    from ..schedule.gpu import arch_number, arch_specific
    want = arch_number(target.arch)
    return arch == want if arch_specific(target.arch) else arch >= want


def arch_flag(target, arch: int) -> str:
    """NVRTC's architecture for the target on a GPU of compute capability `arch`: '90a', '90'."""
    from ..schedule.gpu import arch_specific
    return f"{arch}a" if arch_specific(target.arch) else str(arch)


def can_run(target) -> bool:
    """The CUDA target executes here: a GPU is visible and runs the target's code."""
    if not gpu_available():
        return False
    try:
        return runs_on(target, device_arch())
    except Exception:
        return False


@once
def _nvrtc_bindings():
    try:
        from cuda.bindings import nvrtc
        nvrtc.nvrtcVersion()
        return nvrtc
    except Exception:
        return None


@once
def _nvrtc():
    """("cupy" | "bindings", module): the NVRTC to compile with. cupy's where cupy runs the
    kernels (it is loaded anyway; importing cuda-python's bindings as well cost a first call
    25-40 ms), else cuda-python's (PTX without a GPU, as in CI); None if neither."""
    cp = _cupy()
    if cp is not None:
        return "cupy", cp
    nv = _nvrtc_bindings()
    return ("bindings", nv) if nv is not None else None


@once
def _nvrtc_version_tuple() -> tuple:
    route = _nvrtc()
    if route is None:
        return ()
    if route[0] == "bindings":
        _, major, minor = route[1].nvrtcVersion()
        return (major, minor)
    return tuple(route[1].cuda.nvrtc.getVersion())


def nvrtc_version() -> str:
    v = _nvrtc_version_tuple()
    return ".".join(map(str, v)) if v else "none"


def toolchain_versions() -> dict:
    return {"nvrtc": nvrtc_version(), "options": compile_options()}


MAX_GRID_X = 2**31 - 1     # gridDim.x limit (compute capability 3.0 and later)

COMPILE_OPTIONS = ("-std=c++17", "-default-device")


def compile_options() -> list[str]:
    """The options every program gets. `-minimal` (NVRTC 12.4+) leaves out the texture,
    surface and device-runtime declarations the generated code never uses (a third of the
    front end's time). `-no-cache` (12.9+): NVRTC's own disk cache of compiled programs
    duplicates ours, and a miss cost ~40 ms on an H100 host once the CUDA cache directory
    held a few hundred programs. TORSH_JIT_NVRTC_OPTIONS adds options (space-separated; they
    are part of the cache key), e.g. "-Ofc=min" for NVRTC's faster, less optimising mode."""
    opts = list(COMPILE_OPTIONS)
    v = _nvrtc_version_tuple()
    if v >= (12, 4) and "-minimal" not in _REJECTED:
        opts.append("-minimal")
    if v >= (12, 9) and "-no-cache" not in _REJECTED:
        opts.append("-no-cache")
    return opts + os.environ.get("TORSH_JIT_NVRTC_OPTIONS", "").split()


def _options(arch, cubin: bool, extra=()) -> list[str]:
    kind = "sm" if cubin else "compute"
    return [f"-arch={kind}_{arch}", *compile_options(), *extra]


def compile_cuda(source: str, arch, *, cubin: bool = True, name: str = "kernel.cu",
                 extra=()) -> tuple[bytes, str]:
    """(cubin or PTX, NVRTC's log). CompileError with the log when NVRTC rejects the source."""
    t0 = time.perf_counter()
    out, log = _compile(source, name, _options(arch, cubin, extra), cubin)
    with _lock:
        STATS["compiles"] += 1
        STATS["compile_ms"] += (time.perf_counter() - t0) * 1e3
    return out, log


def _compile(source, name, opts, cubin):
    route = _nvrtc()
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
            if _cupy() is not None:          # a GPU here: the compiles that follow run on it
                _compile('extern "C" __global__ void tj_nvrtc_start() {}\n', "start.cu",
                         _options(str(device_arch()), True), True)
        except Exception:
            pass
    threading.Thread(target=run, name="torsh-jit-nvrtc-start", daemon=True).start()


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
            raise E.CompileError(
                f"internal error (a bug in torsh-jit, please report it): NVRTC rejected the "
                f"generated CUDA C ({name}):\n{log}",
                hint="lower(...).source shows the code; a CPU target such as 'host' runs it meanwhile")
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
            log = nvrtc.getProgramLog(prog)
            raise E.CompileError(
                f"internal error (a bug in torsh-jit, please report it): NVRTC rejected the "
                f"generated CUDA C ({name}):\n{log}",
                hint="lower(...).source shows the code; a CPU target such as 'host' runs it meanwhile"
            ) from None
        log = (nvrtc.getProgramLog(prog) or "").strip("\0 \n")
        out = nvrtc.getCUBIN(prog) if cubin else nvrtc.getPTX(prog)
        if isinstance(out, str):
            out = out.encode()
        return out.rstrip(b"\0") if not cubin else out, log
    finally:
        nvrtc.destroyProgram(prog)


def compile_ptx(source: str, target, extra=()) -> tuple[bytes, str]:
    """PTX of a .cu text for the target's architecture (no GPU needed): (ptx, NVRTC's log)."""
    return compile_cuda(source, target.arch.split("_", 1)[1], cubin=False, extra=extra)


def assembly(source: str, target, plan=None) -> str:
    """`explain --asm` / `Lowered.asm()`: the PTX NVRTC makes of the .cu text (no GPU
    needed), then the SASS of its cubin where the toolkit's cuobjdump or nvdisasm is on PATH."""
    import shutil
    import subprocess
    import tempfile
    extra = module_options(plan) if plan is not None else ()
    arch = target.arch.split("_", 1)[1]
    ptx, _ = compile_ptx(source, target, extra)
    out = [f"// PTX for {target.arch} (NVRTC {nvrtc_version()})", ptx.decode(errors="replace").rstrip()]
    tool = next((t for t in ("cuobjdump", "nvdisasm") if shutil.which(t)), None)
    if tool is None:
        out.append(f"// SASS for {target.arch}: needs cuobjdump or nvdisasm on PATH (the CUDA "
                   "toolkit), which this machine lacks")
        return "\n".join(out) + "\n"
    cubin, _ = compile_cuda(source, arch, cubin=True, extra=extra)
    with tempfile.TemporaryDirectory(prefix="torsh-jit-sass-") as d:
        path = os.path.join(d, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        cmd = [tool, "-sass", path] if tool == "cuobjdump" else [tool, "-c", path]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise E.TargetError(f"{tool} could not disassemble the {target.arch} cubin:\n{r.stderr.strip()}",
                            hint="the PTX is in `lower(...).source` compiled with NVRTC; "
                                 "update the CUDA toolkit for this architecture")
    out += [f"// SASS for {target.arch} ({tool})", r.stdout.rstrip()]
    return "\n".join(out) + "\n"


# -- the pipeline hooks ----------------------------------------------------------------------
def default_config(group, target):
    from ..schedule.gpu import default_config as dc
    return dc(group, target)


def render(p) -> str:
    from ..codegen.cuda import render_plan
    return render_plan(p)[0]


def build(p):
    """A CudaFunction for the plan on the current device (its cubin from the cache or NVRTC)."""
    cp = _require_cupy(f"running target {p.target.name}")
    arch = device_arch()
    if not runs_on(p.target, arch):
        raise E.TargetError(
            f"target {p.target.name} generates code for {p.target.arch}, and this GPU is "
            f"compute capability {arch // 10}.{arch % 10}",
            hint="use target 'cuda' (this GPU's architecture)")
    cubin, launches = _cubin(p, arch)
    return CudaFunction(p, cubin, launches, cp)


def _cubin(p, arch: int, aligned: bool = True):
    """(cubin, launches) of the plan's module, from the cache or NVRTC. aligned=False: the
    module whose elementwise kernels take pointers of any alignment."""
    from ..cache import get_cache, make_key
    from ..codegen.cuda import render_plan
    src, launches = render_plan(p, aligned=aligned)
    extra = module_options(p)
    key = make_key({"plan": p.key, "arch": arch, "options": _options(arch, True, extra),
                    **({} if aligned else {"unaligned": True})})
    cubin = get_cache().get_or_make(
        "cubin", key, lambda: compile_cuda(src, arch_flag(p.target, arch), name=f"{p.module_name}.cu",
                                           extra=extra)[0],
        {"target": p.target.name, "arch": arch, "kernels": len(launches)}, expect=p.expect)
    return cubin, launches


def module_options(p) -> tuple[str, ...]:
    """Options for this plan's module beyond compile_options(). A module of elementwise
    kernels only is memory-bound: NVRTC's fast-compile level 'min' (12.8+) took a fifth off
    the chain's compile (NVRTC 13.5 here) and left its speed as it was (H100: 1.04-1.05x the
    copy bandwidth with and without)."""
    if _nvrtc_version_tuple() >= (12, 8) and "-Ofc=min" not in _REJECTED and \
            all(g.kind == "elementwise" for g in p.part.groups):
        return ("-Ofc=min",)
    return ()


# -- arguments -------------------------------------------------------------------------------
_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16",
                 "bfloat16": "bfloat16", "int32": "int32", "int64": "int64", "bool": "bool"}
SUPPORTED = ("bool", "int32", "int64", "float32", "float64", "float16", "bfloat16")


def _np_dtype_name(dt) -> str | None:
    try:
        name = np.dtype(dt).name
    except TypeError:
        return None
    return name if name in SUPPORTED else None


def _is_torch(a) -> bool:
    return type(a).__module__.startswith("torch") and hasattr(a, "data_ptr")


def _is_cupy(a) -> bool:
    return type(a).__module__.startswith("cupy") and hasattr(a, "data") and hasattr(a, "device")


def device_view(a):
    """(pointer, shape, element strides, dtype name, device id, family) of a device array,
    or None for what is not one. family: 'torch', 'cupy' or 'cai'."""
    if _is_torch(a):
        if not a.is_cuda:
            return None
        name = str(a.dtype).replace("torch.", "")
        if name not in _TORCH_DTYPES:
            raise E.DTypeError(f"torch dtype {a.dtype} is not supported",
                               hint="use one of " + ", ".join(SUPPORTED))
        return a.data_ptr(), tuple(a.shape), tuple(a.stride()), name, a.device.index, "torch"
    if _is_cupy(a):
        name = _np_dtype_name(a.dtype)
        if name is None:
            raise E.DTypeError(f"cupy dtype {a.dtype} is not supported",
                               hint="use one of " + ", ".join(SUPPORTED))
        isz = a.itemsize
        return a.data.ptr, tuple(a.shape), tuple(s // isz for s in a.strides), name, \
            a.device.id, "cupy"
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is not None:
        dt = np.dtype(cai["typestr"])
        name = _np_dtype_name(dt)
        if name is None:
            raise E.DTypeError(f"an array of dtype {dt} is not supported",
                               hint="use one of " + ", ".join(SUPPORTED))
        shape = tuple(cai["shape"])
        st = cai.get("strides")
        strides = tuple(s // dt.itemsize for s in st) if st else contiguous_strides(shape)
        cp = _require_cupy("a __cuda_array_interface__ argument")
        ptr = cai["data"][0]
        dev = cp.cuda.runtime.pointerGetAttributes(ptr).device if ptr else 0
        return ptr, shape, strides, name, dev, "cai"
    if hasattr(a, "__dlpack__") and hasattr(a, "__dlpack_device__") and not isinstance(a, np.ndarray):
        kind, dev = a.__dlpack_device__()
        if kind == 2:     # kDLCUDA
            cp = _require_cupy("a DLPack argument on a CUDA device")
            return device_view(cp.from_dlpack(a))
    return None


def spec_of(arg, *, index: int = 0, name: str | None = None, where: str | None = None) -> ArgSpec:
    """Classify an argument for a CUDA kernel: device arrays where they are; numpy arrays
    (copied to the device contiguous, so specialised as contiguous), 16-bit floats too."""
    dv = device_view(arg) if not isinstance(arg, (np.ndarray, np.generic, bool, int, float)) else None
    if dv is not None:
        _, shape, strides, dtype, _, _ = dv
        # a 0-d device array stays where it is: read through its pointer, never synchronised
        st = None if strides == contiguous_strides(shape) or math.prod(shape) <= 1 else strides
        return ArgSpec("array", shape, dtype, strides=st)
    if isinstance(arg, np.ndarray) and _np_dtype_name(arg.dtype) in ("float16", "bfloat16"):
        d = _np_dtype_name(arg.dtype)
        return ArgSpec("scalar", (), d) if arg.ndim == 0 else ArgSpec("array", tuple(arg.shape), d)
    if isinstance(arg, np.generic) and _np_dtype_name(arg.dtype) in ("float16", "bfloat16"):
        return ArgSpec("scalar", (), _np_dtype_name(arg.dtype))
    s = host_spec_of(arg, index=index, name=name, where=where)
    if s.kind == "array" and s.strides is not None:
        s = ArgSpec("array", s.shape, s.dtype)
    return s


def device_key(a):
    """The part of a call's specialisation key a device array gives (hot path)."""
    if _is_torch(a):
        return (type(a), a.shape, a.stride(), a.dtype, a.device)
    return (type(a), a.shape, a.strides, a.dtype.str, a.device.id)


def register_device_keys(table: dict) -> None:
    """Tell the kernel's hot path how to key cupy arrays and torch tensors."""
    cp = _cupy()
    if cp is not None:
        table[cp.ndarray] = device_key
    try:
        import sys
        torch = sys.modules.get("torch")
        if torch is not None:
            table[torch.Tensor] = device_key
    except Exception:
        pass


# -- the device --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceInfo:
    id: int
    name: str
    arch: int
    sms: int
    threads_per_sm: int
    blocks_per_sm: int
    regs_per_sm: int
    smem_per_sm: int
    smem_per_block_optin: int

    def describe(self) -> str:
        return (f"{self.name} (compute capability {self.arch // 10}.{self.arch % 10}): {self.sms} SMs, "
                f"{self.threads_per_sm} threads, {self.blocks_per_sm} blocks, {self.regs_per_sm} "
                f"registers and {self.smem_per_sm // 1024} KiB shared memory per SM")


@once
def device_info(device: int) -> DeviceInfo:
    cp = _require_cupy("reading the GPU's properties")
    d = cp.cuda.Device(device)
    props = cp.cuda.runtime.getDeviceProperties(device)
    name = props.get("name", b"GPU")
    name = name.decode() if isinstance(name, bytes) else str(name)
    p = lambda *keys: next(int(props[k]) for k in keys if k in props)   # noqa: E731
    return DeviceInfo(device, name, int(d.compute_capability), p("multiProcessorCount"),
                      p("maxThreadsPerMultiProcessor"), p("maxBlocksPerMultiProcessor"),
                      p("regsPerMultiprocessor"), p("sharedMemPerMultiprocessor"),
                      p("sharedMemPerBlockOptin"))


# CUfunction_attribute values (cuda.h): fixed by the driver API
_ATTR_MAX_THREADS, _ATTR_SHARED, _ATTR_LOCAL, _ATTR_REGS, _ATTR_MAX_DYN_SHARED = 0, 1, 3, 4, 8


@dataclass(frozen=True)
class KernelInfo:
    """A compiled kernel on a device, and how it is launched there."""
    launch: object
    regs: int
    static_smem: int
    local_bytes: int
    max_threads: int
    block: int
    blocks_per_sm: int
    grid_cap: int          # blocks resident at once on the whole device

    def describe(self, dev: DeviceInfo) -> str:
        occ = self.blocks_per_sm * self.block / dev.threads_per_sm
        spill = (f", {self.local_bytes} B local memory (spills, or the stack of out-of-line "
                 "calls such as sin)") if self.local_bytes else ""
        return (f"{self.launch.name}: {self.regs} registers/thread, "
                f"{self.static_smem + self.launch.smem} B shared memory/block{spill}; block "
                f"{self.block} threads, {self.blocks_per_sm} resident block(s)/SM "
                f"({occ:.0%} of {dev.threads_per_sm} threads), {self.grid_cap} at once on "
                f"{dev.sms} SMs")


def _blocks_per_sm(cp, fn, block: int, smem: int, regs: int, static_smem: int,
                   dev: DeviceInfo) -> int:
    occ = getattr(cp.cuda.driver, "occupancyMaxActiveBlocksPerMultiprocessor", None)
    if occ is not None:
        try:
            return int(occ(fn.ptr, block, smem))
        except Exception:
            pass
    # the CUDA occupancy rules: warps, registers (256-register units per warp), shared memory
    warps = -(-block // 32)
    by_threads = dev.threads_per_sm // (warps * 32)
    regs_warp = -(-max(regs, 1) * 32 // 256) * 256
    by_regs = dev.regs_per_sm // (regs_warp * warps)
    by_smem = dev.smem_per_sm // (static_smem + smem + 1024) if (static_smem + smem) else 1 << 30
    return max(0, min(dev.blocks_per_sm, by_threads, by_regs, by_smem))


class CudaFunction:
    """A built function on one device: its kernels, their launch data, and the call path."""

    device = True

    def __init__(self, plan, cubin: bytes, launches, cp):
        self.plan = plan
        self.cp = cp
        self.dev = device_info(cp.cuda.Device().id)
        self.module, self.kernels = self._load(cubin, launches)
        self._unaligned = None            # (module, kernels) built on first need
        self._unaligned_lock = threading.Lock()
        self.launches = tuple(launches)
        take_buffers(self, plan)
        self._streams: dict = {}
        if any(l.tmaps for l in launches):
            self._maps = tma.MapCache()

    def _load(self, cubin, launches):
        """(module, {kernel name: (function, KernelInfo)}) of a cubin."""
        cp = self.cp
        module = cp.cuda.function.Module()
        module.load(cubin)
        kernels: dict[str, tuple] = {}
        drv = cp.cuda.driver
        for l in launches:
            fn = module.get_function(l.name)
            get = lambda attr: int(drv.funcGetAttribute(attr, fn.ptr))
            regs, static, local, maxt = get(_ATTR_REGS), get(_ATTR_SHARED), get(_ATTR_LOCAL), \
                get(_ATTR_MAX_THREADS)
            if l.smem > 48 * 1024:
                if static + l.smem > self.dev.smem_per_block_optin:
                    raise E.InternalError(f"{l.name} needs {l.smem} B of shared memory, the device "
                                          f"allows {self.dev.smem_per_block_optin}")
                drv.funcSetAttribute(fn.ptr, _ATTR_MAX_DYN_SHARED, l.smem)
            block = self._choose_block(fn, l, regs, static, maxt)
            bps = _blocks_per_sm(cp, fn, block, l.smem, regs, static, self.dev)
            if bps < 1:
                raise E.InternalError(f"{l.name} cannot run on {self.dev.name}: {regs} registers, "
                                      f"{static + l.smem} B shared memory for {block} threads")
            cap = bps * self.dev.sms
            if l.cluster > 1:
                # a cluster's blocks run on one GPC at once: the driver counts the clusters
                # that fit (its own answer, else SMs / cluster, rounded to whole clusters)
                clusters = tma.max_active_clusters(fn.ptr, block, l.smem, l.cluster, self.dev.sms)
                cap = (clusters * l.cluster) if clusters else cap // l.cluster * l.cluster
            info = KernelInfo(l, regs, static, local, maxt, block, bps, cap)
            kernels[l.name] = (fn, info)
        return module, kernels

    def _unaligned_kernel(self, name: str):
        """The kernel `name` of the module for pointers of any alignment (built on first need:
        a view that starts mid-vector, such as x[1:])."""
        with self._unaligned_lock:
            if self._unaligned is None:
                cubin, launches = _cubin(self.plan, device_arch(), aligned=False)
                self._unaligned = self._load(cubin, launches)
        return self._unaligned[1][name]

    def _choose_block(self, fn, l, regs, static, maxt) -> int:
        """Block size: the kernel's own for reductions and matmul (their code is laid out for
        it); for grid-stride elementwise kernels the size at most its bound that keeps the
        most threads resident (ties: the larger block)."""
        if l.kind != "elementwise":
            return l.threads
        best, best_res = l.threads, -1
        b = min(l.threads, maxt)
        while b >= 64:
            res = _blocks_per_sm(self.cp, fn, b, 0, regs, static, self.dev) * b
            if res > best_res:
                best, best_res = b, res
            b //= 2
        return best

    def describe(self) -> str:
        lines = [f"device: {self.dev.describe()}"]
        for l in self.launches:
            lines.append("  " + self.kernels[l.name][1].describe(self.dev))
        return "\n".join(lines)

    # -- calling -----------------------------------------------------------------------------
    def _grid(self, l, info: KernelInfo) -> tuple | None:
        g = l.grid
        if g[0] == "stride":
            n = g[1] * max(1, l.threads // info.block)
            if n > MAX_GRID_X:       # each thread makes one step: the grid must cover the array
                raise E.ArgumentError(f"{l.name} needs {n} blocks of {info.block} threads, more "
                                      f"than a grid holds ({MAX_GRID_X})",
                                      hint="split the array into parts of under 2^40 elements")
            return (n, 1, 1) if n else None
        if g[0] == "rows":
            return (g[1], 1, 1) if g[1] else None
        if g[0] == "persistent":          # a block per resident slot, each looping over the work
            return (min(g[1], info.grid_cap), 1, 1) if g[1] else None
        if g[0] == "split":
            rows, most = g[1], g[2]
            if rows == 0:
                return None
            parts = max(1, min(most, info.grid_cap // rows))
            return (rows * parts, 1, 1)
        x, y, z = g[1:]
        return (x, y, z) if x and y and z else None

    def _stream(self, family, device):
        cp = self.cp
        if family == "torch":
            import torch
            ptr = torch.cuda.current_stream(device).cuda_stream
            s = self._streams.get(ptr)
            if s is None:
                import warnings
                with warnings.catch_warnings():      # cupy 14 prefers Stream.from_external
                    warnings.simplefilter("ignore", DeprecationWarning)
                    s = self._streams[ptr] = cp.cuda.ExternalStream(ptr, device)
            return s
        return cp.cuda.get_current_stream()

    def call(self, args, out=None, single=True):
        cp = self.cp
        specs = self.specs
        family, device = "numpy", None
        ptrs, keep = [], []
        for i, (a, s) in enumerate(zip(args, specs)):
            if s.kind == "scalar":
                ptrs.append(_scalar_value(a, s.dtype))
                continue
            dv = device_view(a) if not isinstance(a, np.ndarray) else None
            if dv is None:
                x = np.ascontiguousarray(a)
                if _np_dtype_name(x.dtype) == "bfloat16":
                    x = x.view(np.uint16)
                d = cp.asarray(x)
                keep.append(d)
                ptrs.append(d.data.ptr)
                continue
            ptr, shape, strides, dtype, dev, fam = dv
            if device is None:
                device = dev
            elif dev != device:
                raise E.ArgumentError(f"argument {i} is on GPU {dev}, an earlier one on GPU {device}",
                                      hint="move the arrays to one device (x.to('cuda:0'), cp.asarray)")
            if family == "numpy" or fam == "torch":
                family = fam         # torch tensors in: torch tensors out
            ptrs.append(ptr)
        if device is None:
            device = cp.cuda.Device().id
        with cp.cuda.Device(device):
            outs = self._outputs(family, device, out)
            out_ptrs = [_ptr(o) for o in outs]
            temps = [cp.empty(max(1, math.prod(s)) * np.dtype(_storage(d)).itemsize, np.uint8)
                     for s, d in self.temps]
            bufs = ptrs + out_ptrs + [t.data.ptr for t in temps]
            stream = self._stream(family, device)
            self._launch(bufs, stream)
            if family == "numpy":
                res = [_to_host(o) for o in outs]
                if out is not None:
                    for dst, r in zip(out if isinstance(out, (tuple, list)) else [out], res):
                        np.copyto(dst, r.view(dst.dtype) if r.dtype != dst.dtype else r)
                    res = list(out) if isinstance(out, (tuple, list)) else [out]
                outs = res
        final = []
        for o, (shape, _) in zip(outs, self.outputs):
            if len(shape) == 0 and family == "numpy" and out is None:
                o = o[()]
            final.append(o)
        return final[0] if single else tuple(final)

    def _outputs(self, family, device, out):
        cp = self.cp
        if out is not None:
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(outs) != len(self.outputs):
                raise E.ArgumentError(f"out= has {len(outs)} array(s), the kernel returns "
                                      f"{len(self.outputs)}")
            res = []
            for k, (o, (shape, dtype)) in enumerate(zip(outs, self.outputs)):
                if isinstance(o, np.ndarray):
                    if o.shape != tuple(shape) or _np_dtype_name(o.dtype) != dtype:
                        raise E.ArgumentError(f"out[{k}] must be a {dtype} array of shape {tuple(shape)}")
                    res.append(cp.empty(shape, _storage(dtype)))
                    continue
                dv = device_view(o)
                if dv is None or dv[1] != tuple(shape) or dv[3] != dtype or \
                        dv[2] != contiguous_strides(shape) and math.prod(shape) > 1:
                    raise E.ArgumentError(
                        f"out[{k}] must be a C-contiguous {dtype} array of shape {tuple(shape)} "
                        "on the GPU", hint="allocate it with cupy.empty or torch.empty")
                res.append(o)
            return res
        if family == "torch":
            import torch
            dev = torch.device("cuda", device)
            return [torch.empty(tuple(s), dtype=getattr(torch, d), device=dev) for s, d in self.outputs]
        outs = []
        for s, d in self.outputs:
            if d == "bfloat16" and family != "numpy":
                try:
                    import ml_dtypes
                    outs.append(cp.empty(s, ml_dtypes.bfloat16))
                    continue
                except Exception:
                    raise E.DTypeError("this kernel returns bfloat16, which cupy arrays cannot hold",
                                       hint="pass torch tensors (torch bfloat16 outputs) or numpy "
                                            "arrays (ml_dtypes bfloat16)") from None
            outs.append(cp.empty(s, _storage(d) if family == "numpy" else d))
        return outs

    def _launch(self, bufs, stream):
        cp = self.cp
        ws = None
        for l in self.launches:
            if l.standby:
                continue
            fn, info = self.kernels[l.name]
            if l.align and any(bufs[b] % al for b, al in l.align):
                fn, info = self.kernels[l.fallback] if l.fallback else self._unaligned_kernel(l.name)
                l = info.launch
            grid = self._grid(l, info)
            if grid is None:
                continue
            if l.tmaps:
                maps = [self._maps.get(bufs[spec[0]], spec) for spec in l.tmaps]
                tma.launch(fn.ptr, grid, info.block, l.smem, stream.ptr, maps,
                           [bufs[b] for b, _, _ in l.params])
                continue
            args = [bufs[b] if kind == "scalar" else np.uint64(bufs[b]) for b, kind, _ in l.params]
            coop = False
            if l.workspace:
                rows, parts = l.grid[1], grid[0] // l.grid[1]
                n = rows + max(1, l.passes) * rows * parts * l.workspace
                ws = cp.empty(n, np.uint64)
                cp.cuda.runtime.memsetAsync(ws.data.ptr, 0, rows * 8, stream.ptr)
                args.append(np.uint64(ws.data.ptr))
                coop = l.barrier
            if coop:
                # a cooperative launch checks that the row's blocks are co-resident; the grid
                # is sized to fit the resident blocks (_grid) either way
                try:
                    fn(grid, (info.block, 1, 1), tuple(args), shared_mem=l.smem, stream=stream,
                       enable_cooperative_groups=True)
                    continue
                except TypeError:
                    pass
            fn(grid, (info.block, 1, 1), tuple(args), shared_mem=l.smem, stream=stream)

    def run(self, buffers: tuple) -> None:
        """The CPU calling convention (inputs, outputs, temporaries as numpy arrays): compute
        on the device, results copied into the output arrays."""
        n_in, n_out = self.n_inputs, len(self.outputs)
        ins = list(buffers[:n_in])
        outs = list(buffers[n_in:n_in + n_out])
        args = [a[()] if s.kind == "scalar" else a for a, s in zip(ins, self.specs)]
        res = self.call(args, out=outs, single=False)
        del res


def _storage(dtype: str):
    """numpy dtype of a buffer's bytes (bfloat16, which numpy lacks, as its bits)."""
    return np.dtype(np.uint16) if dtype == "bfloat16" else np.dtype(dtype)


def _ptr(o) -> int:
    if _is_torch(o):
        return o.data_ptr()
    if _is_cupy(o):
        return o.data.ptr
    return o.__cuda_array_interface__["data"][0]


def _to_host(o):
    h = o.get()
    if h.dtype == np.uint16:
        import ml_dtypes
        return h.view(ml_dtypes.bfloat16)
    return h


def _scalar_value(a, dtype: str):
    """A by-value kernel argument of the dtype (16-bit floats as their bits)."""
    if dtype == "bfloat16":
        import ml_dtypes
        return np.asarray(a, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)[()]
    if dtype == "float16":
        return np.asarray(a, dtype=np.float16).view(np.uint16)[()]
    if dtype == "bool":
        return np.uint8(bool(a))
    if hasattr(a, "item") and not isinstance(a, np.generic):
        a = a.item()
    return np.dtype(dtype).type(a)


def explain(p) -> str:
    """How the plan's kernels launch: their static launch data, and on a GPU the registers,
    shared memory and occupancy of the compiled kernels on this device."""
    from ..codegen.cuda import render_plan
    _, launches = render_plan(p)
    lines = [l.describe() for l in launches]
    if _nvrtc() is not None:
        lines.append("NVRTC " + nvrtc_version() + ": " + " ".join(compile_options() + list(module_options(p))))
    if can_run(p.target):
        from ..compiler import build as build_plan
        fn = build_plan(p)
        lines.append(fn.describe())
    else:
        lines.append("no GPU here: occupancy and grids are decided on one (from the device's SM "
                     "count and the compiled kernels)")
        lines += _ptxas_report(p)
    return "\n".join(lines)


def _ptxas_report(p) -> list[str]:
    """Registers, spills and shared memory per kernel, from ptxas through NVRTC (no GPU)."""
    import re
    if _nvrtc() is None:
        return []
    try:
        _, log = compile_cuda(render(p), p.target.arch.split("_", 1)[1],
                              extra=("-Xptxas=-v", *module_options(p)))
    except E.TorshJitError:
        return []
    out, name = [], None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            name = m.group(1)
        m = re.search(r"Used (\d+) registers.*?(?:(\d+) bytes smem)?$", line)
        if m and name:
            out.append(f"  {name} ({p.target.arch}, ptxas): {m.group(1)} registers/thread"
                       + (f", {m.group(2)} B static shared memory" if m.group(2) else ""))
        m = re.search(r"(\d+) bytes spill stores", line)
        if m and name and int(m.group(1)):
            out.append(f"  {name}: {m.group(1)} B of register spills")
    return out


# -- tuning ------------------------------------------------------------------------------------
def tune_space(group, target, default):
    """The candidates the tuner may try (schedule/gpu.py: matmul_tune_space is the part to
    adjust when the matmul templates change)."""
    from ..schedule.gpu import tune_space as ts
    return ts(group, target, default)


def tune_key(cfg):
    """What a candidate is, for the search: every field but a tensor-core schedule's
    `threads`, which follows from its warps or warpgroups (so a step along tile_m finds the
    schedule with the threads that go with it)."""
    return cfg.replace(threads=0) if cfg.mma or cfg.wgmma else cfg


def device_fingerprint(target) -> str:
    """The GPU a time was measured on: name, compute capability, SMs, memory, clocks."""
    import json
    cp = _require_cupy("tuning a CUDA kernel")
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return json.dumps({"target": target.name, "name": name, "cc": f"{props['major']}.{props['minor']}",
                       "sms": props["multiProcessorCount"], "memory": props["totalGlobalMem"],
                       "clock_khz": props.get("clockRate", 0), "nvrtc": nvrtc_version()},
                      sort_keys=True)


BATCH = 10          # launches enqueued behind one hold of the GPU


def event_times(launch, copies: int, start_event, end_event, sync, *, warmup: int = 3,
                min_runs: int = 10, max_runs: int = 100, min_s: float = 0.05,
                max_s: float = 1.0, hold=None) -> list[float]:
    """Seconds per launch from GPU events: `warmup` launches, then batches of BATCH timed
    launches, each between two events on the stream, input copy i % copies, until min_runs
    and min_s (at most max_runs or max_s of GPU time). hold(): enqueue GPU work (a spin of
    about a millisecond) before each batch, so that the host enqueues the batch while the
    GPU is busy and no launch's host overhead (Python, the driver) lands between its events;
    without it a 0.2 ms kernel measured 0.02-0.03 ms slow. Pure logic, so it is tested
    without a GPU."""
    for i in range(warmup):
        launch(i % copies)
    sync()
    ts: list[float] = []
    total = 0.0
    i = warmup
    while True:
        if hold is not None:
            hold()
        evs = []
        for _ in range(BATCH):
            s, e = start_event(), end_event()
            s.record()
            launch(i % copies)
            e.record()
            evs.append((s, e))
            i += 1
        evs[-1][1].synchronize()
        for s, e in evs:
            t = e.elapsed_since(s)
            ts.append(t)
            total += t
            if len(ts) >= max_runs or total >= max_s or (len(ts) >= min_runs and total >= min_s):
                return ts


_SPIN = r"""
extern "C" __global__ void tj_spin(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) { }
}
"""


@once
def _spin_kernel(device: int):
    """(the spin kernel, the device's clock in kHz: 2 GHz where the driver does not say)."""
    cp = _require_cupy("holding the GPU while launches are timed")
    khz = cp.cuda.runtime.getDeviceProperties(device).get("clockRate", 0) or 2_000_000
    return cp.RawKernel(_SPIN, "tj_spin"), int(khz)


def hold_gpu(stream, ms: float = 1.0) -> None:
    """Enqueue a one-thread kernel that spins for about `ms` on the stream."""
    cp = _require_cupy("holding the GPU while launches are timed")
    kernel, khz = _spin_kernel(cp.cuda.Device().id)
    kernel((1,), (1,), (np.int64(int(ms * khz)),), stream=stream)


class _CupyEvent:
    def __init__(self, cp, stream):
        self.cp, self.stream = cp, stream
        self.ev = cp.cuda.Event()

    def record(self):
        self.ev.record(self.stream)

    def synchronize(self):
        self.ev.synchronize()

    def elapsed_since(self, other) -> float:
        return self.cp.cuda.get_elapsed_time(other.ev, self.ev) * 1e-3


class TuneHarness:
    """Random inputs on the device, rotated across copies that together exceed twice the L2
    (at most 8, 4 GiB), outputs and temporaries allocated once; launches timed by events."""

    def __init__(self, specs, p0, seed: int = 0):
        cp = _require_cupy("tuning a CUDA kernel")
        self.cp = cp
        rng = np.random.default_rng(seed)
        in_bytes = sum(math.prod(s.shape) * _storage(s.dtype).itemsize for s in specs if s.kind == "array")
        out_bytes = sum(math.prod(sh) * _storage(d).itemsize for sh, d in p0.part.buffers.outputs)
        l2 = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id).get("l2CacheSize", 50 << 20)
        per = max(1, in_bytes + out_bytes)
        self.copies = int(max(1, min(8, -(-2 * l2 // per), (4 << 30) // per)))
        self.specs = specs
        # 16-bit outputs: sums in another order round to a neighbouring value (2^-8 relative)
        self.rtol = 1e-2 if any(d in ("float16", "bfloat16") for _, d in p0.part.buffers.outputs) else None
        self.sets = []
        for _ in range(self.copies):
            bufs = []
            for s in specs:
                if s.kind == "scalar":
                    bufs.append(_scalar_value(np.asarray(1.0 if s.dtype.startswith("float") else 1,
                                                         dtype=_storage(s.dtype) if s.dtype != "bfloat16"
                                                         else np.float32), s.dtype))
                    continue
                x = rng.standard_normal(s.shape).astype(np.float32)
                if s.dtype == "bfloat16":
                    host = (x.view(np.uint32) >> 16).astype(np.uint16)
                elif s.dtype == "bool":
                    host = x > 0
                elif s.dtype.startswith(("int", "uint")):
                    host = (x * 16).astype(s.dtype)
                else:
                    host = x.astype(s.dtype)
                bufs.append(cp.asarray(host))
            self.sets.append(bufs)

    def bind(self, p, fn):
        return _TuneBound(self, p, fn)


class _TuneBound:
    def __init__(self, h: TuneHarness, p, fn):
        cp = h.cp
        self.h, self.fn = h, fn
        self.outs, self.bufs = [], []
        for ins in h.sets:
            outs = [cp.empty(sh, _storage(d)) for sh, d in fn.outputs]
            temps = [cp.empty(max(1, math.prod(s)) * _storage(d).itemsize, np.uint8) for s, d in fn.temps]
            ptrs = [a if s.kind == "scalar" else a.data.ptr for a, s in zip(ins, h.specs)]
            self.bufs.append(ptrs + [o.data.ptr for o in outs] + [t.data.ptr for t in temps])
            self.outs.append(outs)
        self.stream = cp.cuda.get_current_stream()

    def run(self, i: int) -> None:
        self.fn._launch(self.bufs[i % len(self.bufs)], self.stream)

    def outputs(self, i: int) -> list:
        self.stream.synchronize()
        res = []
        for o, (_, d) in zip(self.outs[i % len(self.outs)], self.fn.outputs):
            x = self.h.cp.asnumpy(o)
            if d == "bfloat16":
                x = (x.astype(np.uint32) << 16).view(np.float32)
            res.append(x.astype(np.float32) if x.dtype == np.float16 else x)
        return res

    def time(self, *, min_runs=10, max_runs=100, min_s=0.05, max_s=1.0) -> list[float]:
        cp = self.h.cp
        return event_times(self.run, len(self.bufs), lambda: _CupyEvent(cp, self.stream),
                           lambda: _CupyEvent(cp, self.stream), self.stream.synchronize,
                           min_runs=min_runs, max_runs=max_runs, min_s=min_s, max_s=max_s,
                           hold=lambda: hold_gpu(self.stream))


def tune_harness(specs, p0, seed: int = 0) -> TuneHarness:
    return TuneHarness(specs, p0, seed)


class CudaBackend(Backend):
    language = "cuda"
    half_dtypes = HALF_DTYPES
    device_arrays = True

    def default_config(self, group, target):
        return default_config(group, target)

    def tune_space(self, group, target, default):
        return tune_space(group, target, default)

    def tune_key(self, group, config, target):
        return tune_key(config)

    def tune_harness(self, specs, plan, seed: int = 0):
        return tune_harness(specs, plan, seed)

    def device_fingerprint(self, target) -> str:
        return device_fingerprint(target)

    def render(self, plan) -> str:
        return render(plan)

    def build(self, plan, obj=None):
        return build(plan)

    def toolchain_versions(self) -> dict:
        return toolchain_versions()

    def has_assembly(self, target) -> bool:
        return True

    def assembly(self, source, target, plan=None) -> str:
        return assembly(source, target, plan)

    def explain(self, plan) -> str:
        return explain(plan)

    def spec_of(self, arg, *, index=0, name=None, where=None):
        return spec_of(arg, index=index, name=name, where=where)

    def register_device_keys(self, table: dict) -> None:
        register_device_keys(table)

    def can_run(self, target) -> bool:
        return can_run(target)

    def prepare(self, target) -> None:
        start_nvrtc()


BACKEND = CudaBackend()
